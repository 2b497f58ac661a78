"""Semi-supervised permutation-invariant MNIST (the EBGAN paper's Table 2): the Ladder Network and EBGAN-LN
with 100, 200 and 1000 labels over several seeds, and the training speed.

    python benchmarks/semisup.py [--labels 100,200,1000] [--seeds 0,1,2] [--models ladder,ebgan-ln]
                                 [--threads 2] [--report-only]

Each run is ``ebgan semisup --labels N --model M --seed S --resume --out benchmarks/results/semisup/M-N-sS``
with the models' default recipes (Ladder: 90,000 steps; EBGAN-LN: 120,000), one after another, 100 labels
first, alternating the models seed by seed so that the comparison on the same seeds grows evenly; two
invocations with different ``--models`` share the work on two cores (``--threads 1`` each).
A run takes hours here: the script is resumable (a finished run is skipped, a stopped one resumes from its
checkpoint), Ctrl-C checkpoints the running run, and the section "semisup" of BENCHMARKS.md is rewritten
after every run (with the runs still in progress listed as such).

    python benchmarks/semisup.py --speed [--threads 2]    # speed alone (pause other jobs first)
    python benchmarks/semisup.py --probe                  # the short runs behind EBGAN-LN's default margin
    python benchmarks/semisup.py --select-margin [--labels 100] [--margins 10,20,30,60] [--select-steps 20000]

``--select-margin`` chooses EBGAN-LN's margin on VALIDATION data: one run per margin (seed 0, the seed the
earlier test-scored probes used, so that seeds 1-2 stay clean), 10,000 training images held out
(``--validation 10000``, never trained on) and the test images never scored (``--no-test``), a shortened
schedule of ``--select-steps`` steps (the learning rate decays over its last third, as in the full recipe);
the validation error every 2,000 steps. The rule, fixed before any run: the lowest mean validation error over
the last three evaluations; a margin within 0.05 points of the best does not displace the current default.
Section "semisup-select" of BENCHMARKS.md; runs in benchmarks/results/semisup-select/, resumable.

Runs that tried another setting and were stopped are moved by hand to ``benchmarks/results/semisup-search/``;
``--report-only`` also writes them (section "semisup-search") beside the default run and the Ladder.

Speed (``speed.json`` at 2 threads, ``speed-Nt.json`` at N): the median seconds per step over blocks of
steps of each model, eager and with ``--compile``, at full size (real
MNIST shapes), the floating-point operations of one step counted by ``torch.utils.flop_counter`` (matrix
products, forward and backward), and the machine's peak measured in the same process as the median of
float32 2048 x 2048 matrix products at the same thread count. The hours of the finished runs are wall times
on a shared machine and vary with what else ran beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
from _report import ROOT, header, matmul_peak, metrics_rows, write_section  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "semisup"
PROBE = ROOT / "benchmarks" / "results" / "semisup-probe"
# Runs stopped early that tried a setting other than today's default (kept for the record, moved here by hand
# from OUT when the default changed): section "semisup-search", beside the default run and the Ladder.
SEARCH = ROOT / "benchmarks" / "results" / "semisup-search"
SELECT = ROOT / "benchmarks" / "results" / "semisup-select"
SELECT_SEED, SELECT_VALIDATION, SELECT_EVAL = 0, 10000, 2000
SELECT_TIE = 0.05  # points of validation error within which the current default is kept
# 1,500 steps at 100 labels, seed 0, 1 thread, the test error every 500 steps: how the margin changes the
# first steps of EBGAN-LN against the Ladder with each model's Adam betas.
PROBE_RUNS = {
    "ladder": ["--model", "ladder"],
    "ladder-beta1-0.5": ["--model", "ladder", "--beta1", "0.5"],
    "ebgan-ln-m30": ["--model", "ebgan-ln", "--margin", "30"],
    "ebgan-ln-m100": ["--model", "ebgan-ln", "--margin", "100"],
}
PAPER = {  # Table 2 of the EBGAN paper (15 seeds): mean, std
    ("ladder", 100): (1.36, 0.21),
    ("ladder", 200): (1.24, 0.09),
    ("ladder", 1000): (1.04, 0.06),
    ("ebgan-ln", 100): (1.04, 0.12),
    ("ebgan-ln", 200): (0.99, 0.12),
    ("ebgan-ln", 1000): (0.89, 0.04),
}


# The clean ablation (issue: EBGAN-LN against the Ladder changed the optimiser and the length at once): the
# Ladder alone on EBGAN-LN's recipe (Adam beta1 0.5, 120,000 steps, decay from step 80,000), so that
# ``EBGAN-LN - ladder-lnrecipe`` on the same seed and labelled subset is the generator's effect alone.
# ``ebgan-ln-m30``: EBGAN-LN at margin 30, its default below 1000 labels until the margin was chosen on
# validation data (--select-margin chose 10); the runs made with it keep their results under this name.
RECIPES = {
    "ladder-lnrecipe": ("ladder", ["--beta1", "0.5", "--steps", "120000"]),
    "ebgan-ln-m30": ("ebgan-ln", ["--margin", "30"]),
}
# The EBGAN-LN runs each ablation row pairs with the same-recipe Ladder: today's default and the former one.
LN_NAMES = ("ebgan-ln", "ebgan-ln-m30")


def run_dir(model: str, labels: int, seed: int) -> Path:
    """``model`` is a model name or a key of RECIPES (a model on another recipe, in its own folders)."""
    return OUT / f"{model}-{labels}-s{seed}"


def run_name(d: Path) -> str:
    """The model or recipe of a run folder (``ladder-lnrecipe-100-s0`` -> ``ladder-lnrecipe``)."""
    return d.name.rsplit("-", 2)[0]


# A run outlives a working copy only through what is committed, and ``checkpoints/`` is not (it is rewritten
# every 1,000 steps). ``--carry`` copies the newest checkpoint of every unfinished run into ``DIR/carry/``,
# which is committed; a run without ``checkpoints/`` resumes from its carry (``restore_carry``), and a
# finished run's carry is deleted. An EBGAN-LN checkpoint (both networks and both Adam states) is 44 MB.
def carry_checkpoints() -> list[str]:
    from ebgan.checkpoint import find_checkpoint

    done = []
    for d in sorted(p for root in (OUT, SELECT) for p in root.glob("*") if p.is_dir()):
        carry = d / "carry"
        if (d / "result.json").is_file():
            shutil.rmtree(carry, ignore_errors=True)
            continue
        ckpt = find_checkpoint(d) if (d / "checkpoints").is_dir() else None
        if ckpt is None:
            continue
        tmp = d / "carry.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(ckpt, tmp / ckpt.name)
        (tmp / "latest").write_text(ckpt.name + "\n")
        shutil.rmtree(carry, ignore_errors=True)
        tmp.rename(carry)
        done.append(f"{d.name}: {ckpt.name}")
    return done


def restore_carry(out: Path) -> None:
    """Put a carried checkpoint back where ``ebgan semisup --resume`` looks, if the run has none of its own."""
    carry, ckpts = out / "carry", out / "checkpoints"
    if (carry / "latest").is_file() and not (ckpts / "latest").is_file():
        shutil.rmtree(ckpts, ignore_errors=True)
        shutil.copytree(carry, ckpts)
        print(f"{out.name}: resuming from the carried {(carry / 'latest').read_text().strip()}", flush=True)


def measure_peak(threads: int, reps: int = 15) -> dict:
    torch.set_num_threads(threads)
    return {"threads": threads, "gflops": round(matmul_peak(reps=reps), 1), "reps": reps}


def _trainer(model: str, variant: str, labels: int, threads: int, compile: bool = False):
    from ebgan.semisup.recipe import (
        SemisupConfig,
        SemisupData,
        labelled_subset,
        resolve_semisup,
    )
    from ebgan.semisup.run import SemisupTrainer

    y = torch.arange(6000) % 10
    data = SemisupData(torch.rand(6000, 784), y, torch.rand(10, 784), y[:10], labelled_subset(y, labels, 0))
    cfg = SemisupConfig(labels=labels, model=model, variant=variant, num_threads=threads, compile=compile)
    return SemisupTrainer(resolve_semisup(cfg), data)


def flops_per_step(trainer) -> float:
    """Matrix-product FLOPs of one training step (forward and backward)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        trainer.train_step()
    return float(counter.get_total_flops())


# (model, variant, compiled): the compiled steps do the same matrix products as the eager ones, whose FLOPs
# they are credited with (the counter does not see inside compiled code).
SPEED_RUNS = [
    ("ladder", "bottom", False),
    ("ladder", "full", False),
    ("ebgan-ln", "bottom", False),
    ("ladder", "bottom", True),
    ("ebgan-ln", "bottom", True),
]


def measure_speed(threads: int, blocks: int = 7, per_block: int = 20) -> dict:
    import datetime

    out = {
        "peak": measure_peak(threads),
        "threads": threads,
        "models": {},
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
    }
    flops = {}
    for model, variant, compiled in SPEED_RUNS:
        tr = _trainer(model, variant, 100, threads, compiled)
        if not compiled:
            flops[(model, variant)] = flops_per_step(tr)
        for _ in range(5):  # warm-up (and, compiled, the compilation)
            tr.train_step()
        times = []
        for _ in range(blocks):
            t = time.perf_counter()
            for _ in range(per_block):
                tr.train_step()
            times.append((time.perf_counter() - t) / per_block)
        sec = statistics.median(times)
        images = tr.cfg.batch * (3 if model == "ebgan-ln" else 2)
        f = flops[(model, variant)]
        out["models"][f"{model}/{variant}" + (" compiled" if compiled else "")] = {
            "s_per_step": round(sec, 5),
            "gflop_per_step": round(f / 1e9, 3),
            "gflops": round(f / sec / 1e9, 1),
            "images_per_s": round(images / sec, 1),
            "hours_per_run": round(sec * tr.cfg.steps / 3600, 2),
            "steps": tr.cfg.steps,
        }
    out["peak_after"] = measure_peak(threads)
    return out


def speed_files() -> list[Path]:
    """The speed measurements, one file per thread count (``speed.json`` is the first one, at 2 threads)."""
    return sorted(OUT.glob("speed*.json"))


def in_progress(d: Path) -> dict | None:
    cfg = d / "config.json"
    if not cfg.is_file():
        return None
    steps = json.loads(cfg.read_text())["steps"]
    rows = metrics_rows(d)
    step = max((r["step"] for r in rows), default=0)
    errs = [r for r in rows if "eval/test_error" in r]
    real = [r["energy/real"] for r in rows if "energy/real" in r]
    kept = [p for p in (d / "checkpoints" / "latest", d / "carry" / "latest") if p.is_file()]
    return {
        "step": step,
        "steps": steps,
        "last_error": errs[-1]["eval/test_error"] if errs else None,
        "checkpoint": kept[0].read_text().strip() if kept else None,
        "last_error_step": errs[-1]["step"] if errs else None,
        "real_cost": real[-1] if real else None,
    }


def body(command: str) -> str:
    results = [{**json.loads(p.read_text()), "name": run_name(p.parent)} for p in sorted(OUT.glob("*/result.json"))]
    pending = {
        d.name: in_progress(d) for d in sorted(OUT.glob("*")) if d.is_dir() and not (d / "result.json").is_file()
    }
    speeds = [json.loads(p.read_text()) for p in speed_files()]
    lines = [
        header(command).rstrip(),
        "- protocol: permutation-invariant MNIST, a class-balanced labelled subset drawn by the seed, all "
        "60,000 training images unlabelled, test error on the 10,000 test images (clean path, population "
        "statistics of the training images); each model's default recipe (`ebgan semisup --help`)",
        f"- status: {'PARTIAL: ' if pending else ''}{len(results)} runs finished"
        + (f", {len(pending)} in progress" if pending else ""),
        "",
    ]
    lines += [
        "| model | labels | seeds | test error % (mean +- std) | per seed | paper (15 seeds) |",
        "|---|---|---|---|---|---|",
    ]
    by: dict[tuple[str, int], list[dict]] = {}
    for r in results:
        by.setdefault((r["name"], r["labels"]), []).append(r)
    for (model, labels), rs in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0] != "ladder", kv[0][0])):
        errs = [r["test_error"] for r in sorted(rs, key=lambda r: r["seed"])]
        std = f" +- {statistics.stdev(errs):.2f}" if len(errs) > 1 else ""
        p = PAPER.get(("ebgan-ln" if model in LN_NAMES else model, labels))
        seeds = ", ".join(f"s{r['seed']} {r['test_error']:.2f}" for r in sorted(rs, key=lambda r: r["seed"]))
        lines.append(
            f"| {model} | {labels} | {len(errs)} | {statistics.mean(errs):.2f}{std} | {seeds} | "
            f"{f'{p[0]:.2f} +- {p[1]:.2f}' if p else '-'} |"
        )
    lines += [
        "",
        "`ebgan-ln`: EBGAN-LN with today's default margin (below 1000 labels 10, chosen on validation data: section "
        '"semisup-select"; 12 at 1000 labels); `ebgan-ln-m30`: at margin 30, the default below 1000 labels until '
        "then, chosen by short probes scored on test images; `ladder-lnrecipe`: the Ladder on EBGAN-LN's optimiser "
        "and length (the ablation below).",
        "",
        "The field at 100 labels (PI-MNIST): Improved GAN 0.93, Triple-GAN 0.91, Bad GAN 0.80 (PAPER.md s.4).",
        "",
    ]
    lines += ablation_lines(by)
    if pending:
        lines += ["Runs in progress (resume with the same command):", ""]
        for name, st in pending.items():
            if st:
                err = (
                    f", test error {st['last_error']:.2f}% at step {st['last_error_step']}"
                    if st["last_error"] is not None
                    else ""
                )
                cost = f", bottom cost of real images {st['real_cost']:.1f}" if st["real_cost"] is not None else ""
                kept = (
                    f"; resumes from {st['checkpoint']}"
                    if st["checkpoint"]
                    else "; no checkpoint kept (lost with an earlier working copy): restarts from step 0"
                )
                lines.append(f"- {name}: step {st['step']} of {st['steps']}{err}{cost}{kept}")
        lines.append("")
    if results:
        lines += [
            "Finished runs (wall time on a shared machine):",
            "",
            "| run | steps | hours | images/s |",
            "|---|---|---|---|",
        ]
        for r in sorted(results, key=lambda r: (r["labels"], r["name"], r["seed"])):
            lines.append(
                f"| {r['name']} {r['labels']} labels s{r['seed']} | {r['steps']} | "
                f"{r['seconds'] / 3600:.2f} | {r['images_per_s']:.0f} |"
            )
        lines.append("")
    for speed in speeds:
        peak = speed["peak"]["gflops"]
        lines += [
            f"Speed alone at {speed['threads']} thread{'s' if speed['threads'] > 1 else ''} "
            f"(`python benchmarks/semisup.py --speed --threads {speed['threads']}`, "
            f"{speed.get('date', '2026-11-24 01:08')}, median of blocks of steps; machine peak "
            f"{peak} GFLOP/s, float32 2048 x 2048 matrix products, {speed['peak_after']['gflops']} after):",
            "",
            "| model / cost | s/step | images/s | GFLOP/step | GFLOP/s | share of peak | hours per run |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, m in speed["models"].items():
            lines.append(
                f"| {name} | {m['s_per_step']:.4f} | {m['images_per_s']:.0f} | {m['gflop_per_step']:.2f} "
                f"| {m['gflops']:.1f} | {100 * m['gflops'] / peak:.0f} % | {m['hours_per_run']:.2f} "
                f"({m['steps']} steps) |"
            )
        eager = speed["models"]
        ratios = [
            f"{name.split(' ')[0]} {eager[name.split(' ')[0]]['s_per_step'] / m['s_per_step']:.2f}x"
            for name, m in eager.items()
            if name.endswith(" compiled") and name.split(" ")[0] in eager
        ]
        if ratios:
            lines += ["", "`--compile` against eager in the same process: " + ", ".join(ratios) + "."]
        lines.append("")
    if speeds:
        lines += [
            "Images/s counts every image through the Ladder per step (labelled + unlabelled, + generated for EBGAN-LN)."
        ]
    return "\n".join(lines) + "\n"


def ablation_lines(by: dict[tuple[str, int], list[dict]]) -> list[str]:
    """The paired table of EBGAN-LN against the Ladder on EBGAN-LN's own recipe, seed by seed."""
    out = []
    for labels, name in sorted({(n, m) for _, n in by for m in LN_NAMES}):
        ln = {r["seed"]: r["test_error"] for r in by.get((name, labels), [])}
        lad = {r["seed"]: r["test_error"] for r in by.get(("ladder-lnrecipe", labels), [])}
        seeds = sorted(set(ln) & set(lad))
        if not seeds:
            continue
        diffs = [ln[s] - lad[s] for s in seeds]
        margin = RECIPES[name][1][1] if name in RECIPES else f"{default_margin(labels):g} (the default)"
        out += [
            f"The generator's effect at {labels} labels, EBGAN-LN at margin {margin}, paired by seed (the Ladder "
            "on EBGAN-LN's recipe: Adam beta1 0.5, 120,000 steps; the same labelled subset per seed; EBGAN-LN "
            "minus Ladder, negative = the generator helps):",
            "",
            "| seed | EBGAN-LN % | Ladder, same recipe % | difference |",
            "|---|---|---|---|",
        ]
        out += [f"| {s} | {ln[s]:.2f} | {lad[s]:.2f} | {d:+.2f} |" for s, d in zip(seeds, diffs)]
        mean = statistics.mean(diffs)
        if len(diffs) > 1:
            # t interval on the paired differences (two-sided 95 %); t quantiles for 1-9 degrees of freedom
            t = [12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26][min(len(diffs), 10) - 2]
            half = t * statistics.stdev(diffs) / len(diffs) ** 0.5
            out += [
                f"| mean | {statistics.mean(ln[s] for s in seeds):.2f} | "
                f"{statistics.mean(lad[s] for s in seeds):.2f} | {mean:+.2f} [95% t interval "
                f"{mean - half:+.2f}, {mean + half:+.2f}] |"
            ]
        out.append("")
    return out


def probe_body(command: str) -> str:
    lines = [
        header(command).rstrip(),
        "- 100 labels, seed 0, 1,500 steps (the learning rate decays from step "
        "1,000), 1 thread; test error % after 500 / 1,000 / 1,500 steps",
        "",
        "| run | 500 | 1,000 | 1,500 | bottom cost of real images at the end |",
        "|---|---|---|---|---|",
    ]
    for name in PROBE_RUNS:
        d = PROBE / name
        if not (d / "result.json").is_file():
            lines.append(f"| {name} | not run | | | |")
            continue
        rows = metrics_rows(d)
        errs = {r["step"]: r["eval/test_error"] for r in rows if "eval/test_error" in r}
        real = [r["energy/real"] for r in rows if "energy/real" in r][-1]
        lines.append(
            f"| {name} | {errs.get(500, float('nan')):.2f} | {errs.get(1000, float('nan')):.2f} | "
            f"{errs.get(1500, float('nan')):.2f} | {real:.1f} |"
        )
    return "\n".join(lines) + "\n"


def _errors(rows: list[dict]) -> dict[int, float]:
    return {r["step"]: r["eval/test_error"] for r in rows if "eval/test_error" in r}


def search_body(command: str) -> str:
    lines = [
        header(command).rstrip(),
        "- stopped runs that tried a setting other than the default, beside the "
        "default run and the Ladder on the same labels and seed; test error % every 10,000 steps",
        "",
    ]
    for d in sorted(p for p in SEARCH.glob("*") if (p / "config.json").is_file()):
        cfg = json.loads((d / "config.json").read_text())
        labels, seed = cfg["labels"], cfg["seed"]
        rows = metrics_rows(d)
        last = [r for r in rows if "energy/fake" in r][-1]
        default = run_dir(cfg["model"], labels, seed)
        dcfg = json.loads((default / "config.json").read_text()) if (default / "config.json").is_file() else {}
        lines += [
            f"`{d.name}`: {cfg['model']}, {labels} labels, seed {seed}, margin {cfg['margin']:g}, bottom "
            f"weight {cfg['weights'][0]:g}; stopped at step {last['step']} of {cfg['steps']}, where the "
            f"energy of real images was {last['energy/real']:.1f} and of generated ones "
            f"{last['energy/fake']:.1f} (margin then {last['margin']:.1f})",
            "",
            f"| step | this run | default ({default.name}, margin {dcfg.get('margin', float('nan')):g}) | "
            f"ladder-{labels}-s{seed} |",
            "|---|---|---|---|",
        ]
        ladder = run_dir("ladder", labels, seed)
        mine, dflt, lad = (_errors(r) for r in (rows, metrics_rows(default), metrics_rows(ladder)))
        for step in sorted(k for k in mine if k % 10000 == 0):
            cells = [f"{e[step]:.2f}" if step in e else "-" for e in (mine, dflt, lad)]
            lines.append(f"| {step} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def semisup_cmd(out: Path, *args: str) -> list[str]:
    """``ebgan semisup ARGS --data-root ../shared/data --out OUT --resume`` as a subprocess command line."""
    data = str(ROOT.parent / "shared" / "data")
    return [sys.executable, "-m", "ebgan.cli", "semisup", *args, "--data-root", data, "--out", str(out), "--resume"]


def select_dir(labels: int, margin: float) -> Path:
    return SELECT / f"ebgan-ln-{labels}-s{SELECT_SEED}-m{margin:g}"


def default_margin(labels: int) -> float:
    from ebgan.semisup.recipe import SemisupConfig, resolve_semisup

    return resolve_semisup(SemisupConfig(labels=labels, model="ebgan-ln")).margin


def select_score(run: Path) -> float | None:
    """The selection rule's figure: the mean validation error over the run's last three evaluations."""
    errs = [r["eval/val_error"] for r in metrics_rows(run) if "eval/val_error" in r]
    return statistics.mean(errs[-3:]) if (run / "result.json").is_file() and len(errs) >= 3 else None


# The default each selection was set up against (its rule keeps it within SELECT_TIE): the margin below 1000
# labels was 30 when --select-margin ran; the selection itself chose today's default.
SELECT_INCUMBENT = {100: 30.0}


def select_body(command: str, labels: int, margins: list[float], steps: int) -> str:
    dflt = SELECT_INCUMBENT.get(labels, default_margin(labels))
    runs = {m: select_dir(labels, m) for m in margins}
    errs = {
        m: {r["step"]: r["eval/val_error"] for r in metrics_rows(d) if "eval/val_error" in r} for m, d in runs.items()
    }
    evals = sorted({s for e in errs.values() for s in e})
    done = {m: select_score(d) for m, d in runs.items()}
    lines = [
        header(command).rstrip(),
        f"- EBGAN-LN, {labels} labels, seed {SELECT_SEED}, {steps} steps (the learning rate decays linearly to 0 "
        f"over the last third), {SELECT_VALIDATION:,} training images held out and never trained on; the test "
        "images never scored (`--no-test`); 1 thread, `--compile`",
        f"- rule (fixed before the runs): the lowest mean validation error over the last three evaluations; a "
        f"margin within {SELECT_TIE} points of the best keeps the current default ({dflt:g})",
        f"- status: {sum(v is not None for v in done.values())} of {len(margins)} runs finished"
        + ("" if all(v is not None for v in done.values()) else " (PARTIAL: no choice yet)"),
        "",
        "Validation error % by step:",
        "",
        "| margin | " + " | ".join(f"{s:,}" for s in evals) + " | mean of the last three |",
        "|---|" + "---|" * (len(evals) + 1),
    ]
    for m in margins:
        cells = [f"{errs[m][s]:.2f}" if s in errs[m] else "-" for s in evals]
        score = done[m]
        lines.append(
            f"| {m:g}{' (default)' if m == dflt else ''} | "
            + " | ".join(cells)
            + f" | {'-' if score is None else f'{score:.3f}'} |"
        )
    if all(v is not None for v in done.values()):
        best = min(margins, key=lambda m: done[m])
        keep = dflt in done and done[dflt] - done[best] <= SELECT_TIE
        chosen = dflt if keep else best
        lines += [
            "",
            f"Choice: margin {chosen:g}"
            + (
                f" (the default; the best, {best:g}, is within {SELECT_TIE} points)"
                if keep and best != dflt
                else (" (the default is the best)" if chosen == dflt else f" (the default {dflt:g} is not)")
            ),
        ]
    return "\n".join(lines) + "\n"


def run_select(command: str, labels: int, margins: list[float], steps: int, threads: int) -> None:
    SELECT.mkdir(parents=True, exist_ok=True)
    for m in margins:
        out = select_dir(labels, m)
        if (out / "result.json").is_file():
            continue
        restore_carry(out)
        cmd = semisup_cmd(
            out,
            *("--labels", str(labels), "--model", "ebgan-ln", "--margin", f"{m:g}", "--seed", str(SELECT_SEED)),
            *("--steps", str(steps), "--validation", str(SELECT_VALIDATION), "--no-test"),
            *("--eval-every", str(SELECT_EVAL), "--threads", str(threads)),
        )
        if not (out / "config.json").is_file():
            cmd.append("--compile")
        print(f"margin {m:g}: {' '.join(cmd[2:])}", flush=True)
        proc = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, cwd=ROOT)
        write_section("semisup-select", select_body(command, labels, margins, steps))
        if proc.returncode != 0:
            raise SystemExit(proc.returncode)
        shutil.rmtree(out / "carry", ignore_errors=True)


def run_probe(command: str) -> None:
    for name, extra in PROBE_RUNS.items():
        out = PROBE / name
        if (out / "result.json").is_file():
            continue
        restore_carry(out)
        cmd = semisup_cmd(
            out,
            *("--labels", "100", "--seed", "0", "--steps", "1500", "--eval-every", "500", "--threads", "1"),
            *("--no-progress", *extra),
        )
        print(" ".join(cmd[2:]), flush=True)
        subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, cwd=ROOT, check=True)
    write_section("semisup-probe", probe_body(command))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", default="100,200,1000")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument(
        "--models",
        default="ladder,ebgan-ln",
        help="models (ladder, ebgan-ln) or recipes "
        "(ladder-lnrecipe: the Ladder on EBGAN-LN's optimiser and length, the clean ablation; ebgan-ln-m30: "
        "EBGAN-LN at its former default margin 30)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--compile", action="store_true", help="start new runs with --compile (a run keeps the setting it started with)"
    )
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument(
        "--carry",
        action="store_true",
        help="copy the newest checkpoint of each unfinished run into "
        "DIR/carry/ (committed, so that the run resumes in another working copy) and delete the "
        "carries of finished runs; pause the runs first",
    )
    ap.add_argument("--speed", action="store_true", help="measure the speed of both models and the peak only")
    ap.add_argument("--probe", action="store_true", help="the short runs behind EBGAN-LN's default margin")
    ap.add_argument(
        "--select-margin", action="store_true", help="choose EBGAN-LN's margin on validation data (see above)"
    )
    ap.add_argument("--margins", default="10,20,30,60", help="the candidates of --select-margin")
    ap.add_argument("--select-steps", type=int, default=20000, help="the length of each --select-margin run")
    args = ap.parse_args()
    command = "python benchmarks/semisup.py " + " ".join(sys.argv[1:])
    OUT.mkdir(parents=True, exist_ok=True)
    if args.select_margin:
        margins = [float(m) for m in args.margins.split(",")]
        labels = int(args.labels.split(",")[0])
        if args.report_only:
            write_section("semisup-select", select_body(command, labels, margins, args.select_steps))
        else:
            run_select(command, labels, margins, args.select_steps, args.threads)
        return
    if args.report_only:
        write_section("semisup", body(command))
        if SEARCH.is_dir():
            write_section("semisup-search", search_body(command))
        return
    if args.carry:
        for line in carry_checkpoints():
            print(f"carried {line}")
        return
    if args.probe:
        run_probe(command)
        return
    if args.speed:
        name = "speed.json" if args.threads == 2 else f"speed-{args.threads}t.json"
        (OUT / name).write_text(json.dumps(measure_speed(args.threads), indent=1) + "\n")
        write_section("semisup", body(command))
        return
    plan = [
        (model, int(n), int(s))
        for n in args.labels.split(",")
        for s in args.seeds.split(",")
        for model in args.models.split(",")
    ]
    env = {"PYTHONPATH": str(ROOT / "src")}
    for model, labels, seed in plan:
        out = run_dir(model, labels, seed)
        if (out / "result.json").is_file():
            continue
        restore_carry(out)
        base, extra = RECIPES.get(model, (model, []))
        cmd = semisup_cmd(
            out,
            *("--labels", str(labels), "--model", base, *extra, "--seed", str(seed), "--threads", str(args.threads)),
        )
        if args.compile and not (out / "config.json").is_file():
            cmd.append("--compile")
        print(f"{model} {labels} labels seed {seed}: {' '.join(cmd[2:])}", flush=True)
        proc = subprocess.run(cmd, env={**os.environ, **env}, cwd=ROOT)
        if proc.returncode != 0:
            write_section("semisup", body(command))
            raise SystemExit(proc.returncode)
        shutil.rmtree(out / "carry", ignore_errors=True)  # finished: its result replaces the carried state
        write_section("semisup", body(command))


if __name__ == "__main__":
    main()
