"""Every loss in ``ebgan.losses.LOSSES`` trained on ring, grid and MNIST with the same networks and budget.

For each data set the networks and batch size are those of the preset of the same name (``ring``, ``grid``,
``mnist``), and every loss runs the same number of GENERATOR steps. Each loss keeps its own optimiser settings
(``LOSS_OPTIM_DEFAULTS``) and its own number of D updates per G step (``LOSS_D_STEPS``), filled in by
``resolve``: WGAN and WGAN-GP therefore make 5 critic updates per generator step, 5x the D updates of the other
losses. EBGAN keeps the preset's optimiser values (the presets are EBGAN's configurations; on ring and grid they
equal EBGAN's loss defaults, on MNIST they add Adam beta1 0.5). Preset options that only mean something for
EBGAN (margin, pt_weight) are ignored by the other losses; the preset's learning-rate schedule applies to all.

Each (data set, loss, seed) trains in its own subprocess (one thread, ``OMP_NUM_THREADS=1``), ``--jobs`` of
them at a time, so a crash or a NaN in one loss is recorded as failed / diverged instead of ending the
benchmark. Samples are drawn with seed 1 from the final weights and scored with ``ebgan eval``'s metrics:
2,500 points (modes, % high quality, reverse KL; PacGAN protocol) or 10,000 MNIST images (IS, FID against the
training set). Each finished run is appended to ``--out`` (JSON lines), so an interrupted benchmark resumes
without redoing finished runs (a run is identified by its data set, loss, seed and resolved config).

Defaults: the ring and grid presets' 10,000 steps with seeds 0,1,2 (ring) and 0,1 (grid), and 3000 steps on
MNIST (a quarter of the mnist preset's 12,000) with seeds 0,1: about an hour with 2 workers on 2 cores.

``--optim preset`` is a control for the optimiser settings: every loss then trains with the preset's optimiser,
learning rates and betas (the values tuned for EBGAN) instead of its own defaults; it reports into its own
BENCHMARKS.md section. ``--report-only`` runs nothing and reports the runs already in ``--out``. Other
selections (say, MNIST at the full budget for a few losses) report into a ``--section`` of their own:

    python benchmarks/compare_losses.py --datasets mnist --steps-mnist 12000 --seeds 0,1 \
        --losses ebgan,nsgan,lsgan,wgan-gp --optim preset --section compare_losses_mnist_full --title "..."

    python benchmarks/compare_losses.py [--datasets ring,grid,mnist] [--losses ebgan,gan,...] [--seeds 0,1]
        [--steps-2d N] [--steps-mnist 3000] [--optim own|preset] [--jobs 2] [--data-root ../shared/data]
        [--out benchmarks/results/compare.jsonl] [--section NAME] [--title TEXT] [--report-only] [--no-write]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import hashlib
import json
import math
import os
import shlex
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import torch
from _report import ROOT, header, launch_worker, median, write_section

from ebgan.config import LOSS_D_STEPS, PRESETS, Config, from_preset, resolve, to_dict
from ebgan.losses import LOSSES

RESULTS = ROOT / "benchmarks" / "results"
DATASETS = ("ring", "grid", "mnist")
# Seeds per data set, chosen to keep the default run near an hour on a 2-core machine with 2 single-threaded
# workers (grid WGAN-GP takes 8 min per seed there, MNIST runs 1-3 min with bf16 autocast, ring runs 1-3 min).
DEFAULT_SEEDS = {"ring": "0,1,2", "grid": "0,1", "mnist": "0,1"}
DEFAULT_STEPS_MNIST = 3000
EVAL_N = {"ring": 2500, "grid": 2500, "mnist": 10_000}
SAMPLE_SEED = 1
OPTIM_FIELDS = ("optim_g", "optim_d", "lr_g", "lr_d", "beta1", "beta2", "d_steps")
# --optim best: the equal tuning budget, the same two optimiser settings tried for every loss (run_config).
TUNING = ("defaults", "preset")
METRICS = {  # data set -> (key, label, higher is better, format)
    "ring": [
        ("modes", "modes (of 8)", True, ".0f"),
        ("hq_pct", "% high quality", True, ".1f"),
        ("reverse_kl", "reverse KL", False, ".3f"),
    ],
    "grid": [
        ("modes", "modes (of 25)", True, ".0f"),
        ("hq_pct", "% high quality", True, ".1f"),
        ("reverse_kl", "reverse KL", False, ".3f"),
    ],
    "mnist": [("is", "IS", True, ".2f"), ("fid", "FID", False, ".1f")],
}


# ------------------------------------------------------------------------------------------------ configs


def adjustments(dataset: str, loss: str, cfg: Config) -> tuple[dict, str | None]:
    """The minimal change a loss needs to run on the preset's networks as they are, and why (or none)."""
    if loss == "wgan-gp" and cfg.batch_norm and (cfg.arch == "conv" or cfg.d_layers > 2):
        return (
            {"batch_norm": False},
            "batch_norm=false: the gradient penalty is per sample, and this preset's D has batch norm",
        )
    return {}, None


def run_config(dataset: str, loss: str, seed: int, steps: int, optim: str = "own") -> tuple[Config, str | None]:
    """The resolved config of one run and a note on any change made for this loss.

    ``optim="own"``: every loss but EBGAN takes its own optimiser defaults; ``"preset"``: every loss keeps the
    preset's optimiser, learning rates and betas (EBGAN's tuned values) and only takes its own D steps per G step;
    ``"defaults"``: every loss, EBGAN included, takes its own optimiser defaults (``LOSS_OPTIM_DEFAULTS``).
    """
    base = from_preset(dataset)
    # One sample grid and one checkpoint, at the end: intermediate ones are not used here.
    # No moving average of G (g_ema 0) whatever the preset says: the comparison is of the losses, and its stored
    # runs were all trained and scored on G's own weights.
    changes: dict = {
        "loss": loss,
        "seed": seed,
        "steps": steps,
        "device": "cpu",
        "num_threads": 1,
        "sample_every": steps,
        "ckpt_every": steps,
        "g_ema": 0.0,
    }
    if optim == "defaults" or (loss != "ebgan" and optim == "own"):  # the loss's own optimiser defaults
        changes.update({k: None for k in OPTIM_FIELDS})
    elif loss != "ebgan":  # EBGAN's resolved optimiser on this preset, with the loss's own D steps per G step
        ref = resolve(dataclasses.replace(base, loss="ebgan"))
        changes.update({k: getattr(ref, k) for k in OPTIM_FIELDS if k != "d_steps"}, d_steps=None)
    cfg = dataclasses.replace(base, **changes)
    extra, note = adjustments(dataset, loss, cfg)
    return resolve(dataclasses.replace(cfg, **extra)), note


# The Config fields when the first runs of this benchmark were stored (2026-11-22). A field added since then
# enters a run's key only when it is away from its default, so that adding an option (off by default) does not
# orphan the stored runs. Options whose default changed what a loss trains are listed in CHANGED_SINCE: runs of
# those losses keep every field in their key and train anew.
KEY_FIELDS_V1 = (
    "data",
    "image_size",
    "channels",
    "loss",
    "margin",
    "margin_schedule",
    "margin_final",
    "margin_decay_steps",
    "pt_weight",
    "energy",
    "pretrain_steps",
    "d_steps",
    "wgan_clip",
    "gp_weight",
    "ls_lambda",
    "began_gamma",
    "began_lambda_k",
    "spectral_norm",
    "arch",
    "z_dim",
    "g_layers",
    "g_size",
    "d_layers",
    "d_size",
    "d_dropout",
    "batch_norm",
    "g_channels",
    "d_channels",
    "batch_size",
    "steps",
    "optim_g",
    "optim_d",
    "lr_g",
    "lr_d",
    "beta1",
    "beta2",
    "lr_schedule",
    "lr_decay_from",
    "lr_final_scale",
    "seed",
    "amp",
    "eval_every",
    "eval_against",
    "eval_samples",
    "best_metric",
)
# BEGAN: a bottleneck in its auto-encoder by default (d_code None); loss-sensitive: L = |f| and ls_gp.
CHANGED_SINCE = ("began", "loss-sensitive")
# Fields that do not change what a single-process run trains: never part of a key. grad_overlap (added after the
# stored BEGAN and loss-sensitive runs, whose keys hash every field) only schedules a multi-process all-reduce.
_RUN_ONLY = (
    "device",
    "num_threads",
    "log_every",
    "sample_every",
    "ckpt_every",
    "keep_checkpoints",
    "n_grid",
    "grad_overlap",
)


# Fields added to Config after every stored run: part of a key only when set away from their default (a run at
# the default trains exactly as the stored runs did), so that adding an option never orphans the stored runs.
_ADDED_LATER = ("mbd_kernels", "mbd_dim", "pack")


def config_key(cfg: Config) -> str:
    """A run's identity: a hash of its resolved config, without the fields that do not change its result."""
    default = to_dict(Config())
    d = {
        k: v for k, v in to_dict(cfg).items() if k not in _RUN_ONLY and not (k in _ADDED_LATER and v == default.get(k))
    }
    if cfg.loss not in CHANGED_SINCE:
        d = {k: v for k, v in d.items() if k in KEY_FIELDS_V1 or v != default[k]}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def cost(spec: dict) -> float:
    """Rough relative cost of a run (for scheduling the longest first): G steps x (D steps + 1) x net size."""
    size = {"ring": 1.0, "grid": 2.0, "mnist": 6.0}[spec["dataset"]]
    return spec["steps"] * (LOSS_D_STEPS.get(spec["loss"], 1) + 1) * size


# ------------------------------------------------------------------------------------------------ worker


def worker(spec: dict) -> dict:
    """Train, sample and score one run in this process; never raises."""
    torch.set_num_threads(1)
    from ebgan.errors import EbganError
    from ebgan.evaluate import evaluate
    from ebgan.sampling import sample_from_run
    from ebgan.train import TrainingDiverged, train

    out = {"status": "failed"}
    try:
        cfg, _ = run_config(spec["dataset"], spec["loss"], spec["seed"], spec["steps"], spec.get("optim", "own"))
        with tempfile.TemporaryDirectory(prefix="ebgan-compare-") as tmp:
            run = Path(tmp) / "run"
            t0 = time.perf_counter()
            summary = train(cfg, run, data_root=spec["data_root"], progress=False)
            out["train_seconds"] = summary["seconds"]
            out["wall_seconds"] = round(time.perf_counter() - t0, 2)
            x = sample_from_run(run, EVAL_N[spec["dataset"]], seed=SAMPLE_SEED)
        if x.dtype.kind == "f" and not torch.isfinite(torch.from_numpy(x)).all():
            out.update(status="diverged", error="the generator's samples contain NaN or infinite values")
            return out
        t0 = time.perf_counter()
        r = evaluate(x, spec["dataset"], spec["data_root"], n=EVAL_N[spec["dataset"]])
        out["eval_seconds"] = round(time.perf_counter() - t0, 2)
        # reverse KL is None when no sample is of high quality
        out["metrics"] = {k: None if r[k] is None else float(r[k]) for k, *_ in METRICS[spec["dataset"]]}
        if spec["dataset"] == "mnist":
            out["metrics"]["is_std"] = float(r["is_std"])
        out["status"] = "ok"
    except TrainingDiverged as e:
        out.update(status="diverged", error=str(e).splitlines()[0][:300])
    except EbganError as e:
        out.update(status="failed", error=str(e).splitlines()[0][:300])
    except Exception as e:  # noqa: BLE001 - record any crash of this run and keep the benchmark going
        traceback.print_exc()
        out.update(status="failed", error=f"{type(e).__name__}: {e}".splitlines()[0][:300])
    return out


def launch(spec: dict) -> dict:
    """Run one spec in a fresh single-threaded Python process (``_report.launch_worker``)."""
    return launch_worker(__file__, spec)


# ------------------------------------------------------------------------------------------------ report


def medians(dataset: str, runs: list[dict]) -> dict | None:
    """Median of each metric over the scored runs (an undefined reverse KL counts as infinite), or None."""
    ok = [r for r in runs if r["status"] == "ok"]
    if not ok:
        return None
    return {
        k: median([math.inf if r["metrics"][k] is None else r["metrics"][k] for r in ok]) for k, *_ in METRICS[dataset]
    }


def selection_key(dataset: str, runs: list[dict]) -> tuple:
    """Lower is better: MNIST by median FID; ring and grid by median modes covered, then reverse KL. No scored
    run ranks last. The order of the verdict, and the choice between the settings of ``--optim best``."""
    med = medians(dataset, runs)
    if med is None:
        return (1, math.inf, math.inf)
    return (0, med["fid"], 0.0) if dataset == "mnist" else (0, -med["modes"], med["reverse_kl"])


def tuning_table(dataset: str, losses: list[str], results: dict, keys_of: dict, chosen: dict) -> str:
    """Per loss, the median of the selection metrics under each setting of the tuning budget, and the choice."""
    show = (
        [("fid", "FID", ".1f"), ("is", "IS", ".2f")]
        if dataset == "mnist"
        else [("modes", "modes", "g"), ("hq_pct", "% hq", ".1f"), ("reverse_kl", "KL", ".3f")]
    )
    out = [
        "| loss | " + " | ".join(f"{o}: {lab}" for o in TUNING for _, lab, _ in show) + " | reported |",
        "|---|" + "---|" * (len(TUNING) * len(show) + 1),
    ]
    for loss in losses:
        cells = [f"`{loss}`"]
        for o in TUNING:
            med = medians(dataset, [results[k] for k in keys_of.get((dataset, loss, o), []) if k in results])
            cells += [
                "-" if med is None else "undefined" if math.isinf(med[k]) else f"{med[k]:{fmt}}" for k, _, fmt in show
            ]
        cells.append(chosen[(dataset, loss)])
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def spread(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    med = median(values)
    # a median of an even number of counts can fall between two integers: show it as it is
    mfmt = ".1f" if fmt == ".0f" and med != int(med) else fmt
    lo, hi = f"{min(values):{fmt}}", f"{max(values):{fmt}}"
    if lo == hi:
        return f"{med:{mfmt}}"
    return f"{med:{mfmt}} ({lo}-{hi})"


def table(dataset: str, losses: list[str], rows: dict) -> str:
    mets = METRICS[dataset]
    head = ["loss"] + [m[1] for m in mets] + ["train s", "diverged", "failed"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for loss in losses:
        runs = rows.get(loss, [])
        ok = [r for r in runs if r["status"] == "ok"]
        cells = [f"`{loss}`"]
        for key, _, _, fmt in mets:
            vals = [r["metrics"][key] for r in ok]
            cell = spread([v for v in vals if v is not None], fmt)
            undefined = sum(v is None for v in vals)
            if undefined:
                cell = "undefined" if cell == "-" else f"{cell}; undefined for {undefined}"
            cells.append(cell)
        cells.append(spread([r["train_seconds"] for r in runs if "train_seconds" in r], ".0f"))
        n = len(runs)
        cells.append(f"{sum(r['status'] == 'diverged' for r in runs)}/{n}")
        cells.append(f"{sum(r['status'] == 'failed' for r in runs)}/{n}")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def settings_table(dataset: str, losses: list[str], steps: int, optim: str | dict) -> str:
    """The settings of each loss's runs; ``optim`` is one setting for all, or ``{(data set, loss): setting}``."""
    out = [
        "| loss | optimiser | lr G / D | betas | D steps per G step | G steps | D updates | change for this loss |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for loss in losses:
        cfg, note = run_config(dataset, loss, 0, steps, optim if isinstance(optim, str) else optim[(dataset, loss)])
        betas = f"{cfg.beta1:g}, {cfg.beta2:g}" if cfg.optim_g == "adam" else "-"
        out.append(
            f"| `{loss}` | {cfg.optim_g} | {cfg.lr_g:g} / {cfg.lr_d:g} | {betas} | {cfg.d_steps} | "
            f"{cfg.steps} | {cfg.steps * cfg.d_steps} | {note or 'none'} |"
        )
    return "\n".join(out)


def errors_list(dataset: str, losses: list[str], rows: dict) -> list[str]:
    out = []
    for loss in losses:
        for r in rows.get(loss, []):
            if r["status"] != "ok":
                out.append(f"- {dataset} `{loss}` seed {r['seed']}: {r['status']}: {r.get('error', '?')}")
    return out


def _fmt_kl(v: float) -> str:
    return "undefined" if math.isinf(v) else f"{v:.3f}"


def verdict(dataset: str, losses: list[str], rows: dict) -> str:
    """A plain-language comparison of EBGAN with the others on one data set, from the medians over seeds.

    ring / grid: ordered by modes covered, then reverse KL (an undefined KL counts as the worst); mnist: by FID.
    The other measure (% high quality, IS) is reported beside it.
    """
    med = {}
    for loss in losses:
        m = medians(dataset, rows.get(loss, []))  # an undefined reverse KL (no high-quality sample) is the worst
        if m is not None:
            med[loss] = m
    n_div = {l: sum(r["status"] != "ok" for r in rows.get(l, [])) for l in losses}
    if "ebgan" not in med:
        return f"On {dataset}, EBGAN produced no scored run (every seed diverged or failed)."
    key = {l: selection_key(dataset, rows[l]) for l in med}  # the same order --optim best chooses by
    if dataset == "mnist":
        crit = "median FID"

        def desc(l):
            return f"{l} (FID {med[l]['fid']:.1f}, IS {med[l]['is']:.2f})"
    else:
        crit = "median modes covered, then reverse KL"

        def desc(l):
            return f"{l} ({med[l]['modes']:g} modes, KL {_fmt_kl(med[l]['reverse_kl'])})"

    others = [l for l in sorted(med, key=lambda l: key[l]) if l != "ebgan"]
    better = [l for l in others if key[l] < key["ebgan"]]
    tied = [l for l in others if key[l] == key["ebgan"]]
    worse = [l for l in others if key[l] > key["ebgan"]]
    s = f"**{dataset}**: by {crit}, EBGAN ({desc('ebgan').split(' (', 1)[1][:-1]}) "
    if not better and not tied:
        s += f"is ahead of all {len(others)} other losses"
    elif not better:
        s += f"is level with {', '.join(tied)}" + (" and ahead of the rest" if worse else "")
    else:
        s += f"is behind {len(better)} of {len(others)}: " + ", ".join(desc(l) for l in better)
        if tied:
            s += f"; level with {', '.join(tied)}"
    if worse and (better or tied):
        s += f"; ahead of {', '.join(worse)}"
    missing = [l for l in losses if l not in med]
    if missing:
        s += f"; no scored run at all: {', '.join(missing)}"
    measure, unit, fmt = ("is", "", ".2f") if dataset == "mnist" else ("hq_pct", "%", ".1f")
    ahead = [l for l in sorted(med, key=lambda l: -med[l][measure]) if med[l][measure] > med["ebgan"][measure]]
    listed = ", ".join(f"{l} {med[l][measure]:{fmt}}{unit}" for l in ahead)
    name = "IS" if dataset == "mnist" else "% high-quality samples"
    s += f". By {name} (EBGAN {med['ebgan'][measure]:{fmt}}{unit}), {len(ahead)} of {len(others)} score higher" + (
        f": {listed}" if ahead else ""
    )
    if n_div["ebgan"]:
        s += f". EBGAN diverged or failed on {n_div['ebgan']} seed(s)"
    unstable = [f"{l} ({n_div[l]})" for l in losses if l != "ebgan" and n_div[l]]
    if unstable:
        s += f". Diverged or failed seeds elsewhere: {', '.join(unstable)}"
    return s + "."


def plot(datasets: list[str], losses: list[str], by_ds: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncol = 4
    fig, axes = plt.subplots(len(datasets), ncol, figsize=(4.2 * ncol, 3.2 * len(datasets)), squeeze=False)
    for i, ds in enumerate(datasets):
        panels = [(k, lab, hi) for k, lab, hi, _ in METRICS[ds]] + [("train_seconds", "train seconds", False)]
        for j in range(ncol):
            ax = axes[i][j]
            if j >= len(panels):
                ax.axis("off")
                continue
            key, lab, hi = panels[j]
            for x, loss in enumerate(losses):
                runs = by_ds[ds].get(loss, [])
                if key == "train_seconds":
                    vals = [r["train_seconds"] for r in runs if "train_seconds" in r]
                else:
                    vals = [r["metrics"][key] for r in runs if r["status"] == "ok" and r["metrics"][key] is not None]
                color = "tab:red" if loss == "ebgan" else "tab:blue"
                if vals:
                    m = median(vals)
                    ax.bar(x, m, color=color, alpha=0.6)
                    ax.errorbar(x, m, yerr=[[m - min(vals)], [max(vals) - m]], color="k", capsize=3, lw=1)
                    ax.scatter([x] * len(vals), vals, color="k", s=8, zorder=3)
                n_bad = sum(r["status"] != "ok" for r in runs)
                if n_bad:
                    ax.text(x, 0, "x" * n_bad, ha="center", va="bottom", color="tab:red", fontsize=9)
                n_undef = sum(
                    r["status"] == "ok" and key != "train_seconds" and r["metrics"][key] is None for r in runs
                )
                if n_undef and not vals:  # no bar: say why, so that an empty slot does not read as 0
                    ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
            ax.set_xticks(range(len(losses)))
            ax.set_xticklabels(losses, rotation=60, ha="right", fontsize=8)
            arrow = "higher is better" if hi else "lower is better"
            ax.set_title(f"{ds}: {lab}" + ("" if key == "train_seconds" else f" ({arrow})"), fontsize=9)
            ax.grid(axis="y", alpha=0.3)
    fig.suptitle(
        "Losses on the same networks and generator-step budget: median over seeds, bar = min-max, "
        "dots = seeds, x = diverged/failed seed, n/a = undefined in every seed",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------ main


def load_results(path: Path) -> dict:
    done = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:  # a line cut by an interruption
                    continue
                done[(r["dataset"], r["loss"], r["seed"], r["config_key"])] = r
    return done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--losses", default=",".join(LOSSES))
    ap.add_argument(
        "--seeds", default=None, help="for every data set (default: 0,1,2 for ring, 0,1 for grid and mnist)"
    )
    ap.add_argument("--steps-2d", type=int, default=None, help="default: the ring / grid preset's steps")
    ap.add_argument("--steps-mnist", type=int, default=DEFAULT_STEPS_MNIST)
    ap.add_argument(
        "--optim",
        choices=("own", "preset", "best"),
        default="own",
        help="own: each loss's optimiser defaults (EBGAN: the preset's); preset: every loss uses the "
        "preset's optimiser settings (a control for EBGAN's tuned values); best: an equal tuning "
        "budget, every loss trained with both its own defaults and the preset's settings and "
        "reported with the better of the two per data set; default own",
    )
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: report the runs already in --out (missing ones are left out)",
    )
    ap.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(RESULTS / "compare.jsonl"))
    ap.add_argument("--plot", default=None, help="default: benchmarks/results/compare[-preset-optim].png")
    ap.add_argument("--no-write", action="store_true", help="print the report, leave BENCHMARKS.md alone")
    ap.add_argument(
        "--section",
        default=None,
        help="BENCHMARKS.md section to write (default: compare_losses, or compare_losses_preset_optim "
        "with --optim preset); also names the default plot",
    )
    ap.add_argument("--title", default=None, help="heading of the section (default: by --optim)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))), flush=True)
        return

    datasets = [d for d in args.datasets.split(",") if d]
    losses = [l for l in args.losses.split(",") if l]
    for d in datasets:
        if d not in DATASETS:
            sys.exit(f"unknown data set {d!r}; valid: {', '.join(DATASETS)}")
    for l in losses:
        if l not in LOSSES:
            sys.exit(f"unknown loss {l!r}; valid: {', '.join(LOSSES)}")
    seeds = {d: [int(s) for s in (args.seeds or DEFAULT_SEEDS[d]).split(",")] for d in datasets}
    steps = {d: (args.steps_mnist if d == "mnist" else args.steps_2d or PRESETS[d]["steps"]) for d in datasets}
    data_root = str(Path(args.data_root).resolve())
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    done = load_results(out_path)

    candidates = TUNING if args.optim == "best" else (args.optim,)
    specs, results, notes, missing = [], {}, {}, []
    queued: set = set()  # keys already in specs (two settings can give one config)
    keys_of: dict = {}  # (data set, loss, optimiser setting) -> the keys of its runs
    for d in datasets:
        for loss in losses:
            for optim in candidates:
                for seed in seeds[d]:
                    cfg, note = run_config(d, loss, seed, steps[d], optim)
                    notes[(d, loss)] = note
                    key = (d, loss, seed, config_key(cfg))
                    keys_of.setdefault((d, loss, optim), []).append(key)
                    prev = done.get(key)
                    if prev is not None and prev["status"] in ("ok", "diverged"):
                        results[key] = prev
                    elif args.report_only:
                        missing.append(f"{d} {loss} {optim} seed {seed}")
                    elif key not in queued:  # new, or failed before (perhaps interrupted): run it
                        queued.add(key)
                        specs.append(
                            {
                                "dataset": d,
                                "loss": loss,
                                "seed": seed,
                                "steps": steps[d],
                                "optim": optim,
                                "data_root": data_root,
                                "config_key": key[3],
                            }
                        )
    specs.sort(key=lambda s: -cost(s))
    print(f"{len(results)} runs already in {out_path}, {len(specs)} to run with {args.jobs} jobs", flush=True)
    if missing:
        print(f"not in {out_path}, left out of the report: {', '.join(missing)}", flush=True)

    lock = threading.Lock()
    t_start = time.perf_counter()

    def one(spec):
        t0 = time.perf_counter()
        r = launch(spec)
        rec = {
            "dataset": spec["dataset"],
            "loss": spec["loss"],
            "seed": spec["seed"],
            "steps": spec["steps"],
            "optim": spec["optim"],
            "config_key": spec["config_key"],
            **r,
            "process_seconds": round(time.perf_counter() - t0, 1),
        }
        with lock:
            with out_path.open("a") as f:
                f.write(json.dumps(rec) + "\n")
            results[(spec["dataset"], spec["loss"], spec["seed"], spec["config_key"])] = rec
            m = " ".join(
                f"{k}={v:.4g}" if v is not None else f"{k}=undefined" for k, v in rec.get("metrics", {}).items()
            )
            print(
                f"[{len(results)}] {rec['dataset']} {rec['loss']} seed {rec['seed']}: {rec['status']} "
                f"{m} {rec.get('error', '')} ({rec['process_seconds']:.0f} s, "
                f"{time.perf_counter() - t_start:.0f} s elapsed)",
                flush=True,
            )

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for fut in [pool.submit(one, s) for s in specs]:
            fut.result()
    elapsed = time.perf_counter() - t_start

    chosen: dict = {}  # (data set, loss) -> the optimiser setting reported
    by_ds: dict = {d: {} for d in datasets}
    for d in datasets:
        for loss in losses:
            runs = {o: [results[k] for k in keys_of[(d, loss, o)] if k in results] for o in candidates}
            chosen[(d, loss)] = o = min(candidates, key=lambda o: selection_key(d, runs[o]))
            if runs[o]:
                by_ds[d][loss] = sorted(runs[o], key=lambda r: r["seed"])
    total_process = sum(r.get("process_seconds", 0.0) for r in results.values())

    section = (
        args.section
        or {"own": "compare_losses", "preset": "compare_losses_preset_optim", "best": "compare_losses_best"}[args.optim]
    )
    default_plot = {
        "compare_losses": "compare.png",
        "compare_losses_preset_optim": "compare-preset-optim.png",
        "compare_losses_best": "compare-best.png",
    }
    plot_path = Path(args.plot or RESULTS / default_plot.get(section, section.replace("_", "-") + ".png"))
    plot(datasets, losses, by_ds, plot_path)
    budget = []
    for d in datasets:
        preset_steps = PRESETS[d]["steps"]
        extra = (
            ""
            if steps[d] == preset_steps
            else f" (a reduced budget: the `{d}` preset trains for {preset_steps})"
            if steps[d] < preset_steps
            else f" (the `{d}` preset trains for {preset_steps})"
        )
        budget.append(
            f"{d}: {steps[d]} generator steps{extra}, batch {PRESETS[d]['batch_size']}, seeds "
            f"{','.join(map(str, seeds[d]))}"
        )
    ebgan_optim = "; ".join(
        f"{d}: {c.optim_g} {c.lr_g:g}" + (f", betas ({c.beta1:g}, {c.beta2:g})" if c.optim_g == "adam" else "")
        for d in datasets
        for c in [run_config(d, "ebgan", 0, steps[d])[0]]
    )
    if args.optim == "own":
        title = "## Losses compared on the same networks and budget (`benchmarks/compare_losses.py`)"
        optim_text = (
            "Each loss keeps its own optimiser defaults (`LOSS_OPTIM_DEFAULTS`) and D steps per G step "
            "(`LOSS_D_STEPS`), so **WGAN and WGAN-GP see 5x the critic updates** of the other losses. EBGAN keeps "
            "the preset's optimiser values, which were tuned for EBGAN on these data sets (" + ebgan_optim + "); "
            "the other losses use the values of their papers (see the settings per loss). The `--optim preset` "
            "control (next section) gives every loss EBGAN's values instead."
        )
    elif args.optim == "best":
        title = (
            "## Losses compared with an equal tuning budget: the better of two optimiser settings per loss "
            "(`benchmarks/compare_losses.py --optim best`)"
        )
        optim_text = (
            "**Tuning budget, the same for every loss: two optimiser settings**, each trained on every seed: the "
            "loss's own defaults (`LOSS_OPTIM_DEFAULTS`, the values of its paper; for EBGAN the paper's Adam "
            "1e-3, betas (0.9, 0.999)) and the preset's (the values tuned for EBGAN: " + ebgan_optim + "). Each "
            "loss is reported with the setting whose median is better on that data set (MNIST: FID; ring and "
            "grid: modes covered, then reverse KL); the same seeds choose and report, which flatters every loss "
            "alike. Every loss keeps its own D steps per G step (`LOSS_D_STEPS`: WGAN and WGAN-GP make 5 critic "
            "updates per generator step)."
        )
    else:
        title = (
            "## Control: every loss with the preset's (EBGAN's) optimiser settings "
            "(`benchmarks/compare_losses.py --optim preset`)"
        )
        optim_text = (
            "Every loss uses the preset's optimiser, learning rates and betas (the values tuned for EBGAN) and "
            "only keeps its own number of D steps per G step (`LOSS_D_STEPS`: **WGAN and WGAN-GP make 5 critic "
            "updates per generator step**). This separates the losses from the optimiser settings the main "
            "comparison gives them."
        )
    lines = [
        f"## {args.title} (`benchmarks/compare_losses.py`)" if args.title else title,
        "",
        # the command that trains the runs (a --report-only invocation reports them without training)
        header(
            shlex.join(
                ["python", "benchmarks/compare_losses.py"]
                + [a for a in sys.argv[1:] if a not in ("--report-only", "--no-write")]
            )
        ).rstrip(),
        f"- budget: {'; '.join(budget)}",
        (
            f"- wall clock {elapsed / 60:.1f} min for the {len(specs)} runs done in this invocation ({args.jobs} "
            "single-threaded worker processes); "
            if specs
            else "- report of runs stored in "
            f"`{Path(os.path.relpath(out_path.resolve(), ROOT)).as_posix()}` ({len(results)} runs, one per line); "
        )
        + f"{total_process / 60:.1f} min of process time over all {len(results)} runs in the table (train, "
        "sample and score; timings are indicative)",
        "",
        "Each data set uses the networks and batch size of its preset and every loss runs the same number of "
        "generator steps. " + optim_text + " The preset's learning-rate schedule applies to every loss; margin "
        "and pt_weight only affect EBGAN. Samples: seed 1 from the final weights; ring/grid scored on 2,500 points "
        "(PacGAN protocol: modes covered, % within 3 sigma of a mode, reverse KL over the modes of the "
        "high-quality samples, undefined when there are none), MNIST on 10,000 images (IS over 10 splits and "
        "FID against the training set, on the project's classifier). Cells: median over the seeds that "
        "finished (min-max); diverged: a loss became NaN/inf or the samples did; failed: the run crashed.",
        "",
        "Changes to a preset's networks for single losses (the minimum for the loss to run on them): "
        + ("; ".join(f"{d} `{l}`: {n}" for (d, l), n in notes.items() if n) or "none were needed.")
        + "",
        "",
        f"![losses compared]({Path(os.path.relpath(plot_path.resolve(), ROOT)).as_posix()})",
        "",
    ]
    # subtitles name the optimiser settings and budget, so that the four sections' tables have unique titles
    scope = {
        "own": "each loss's own optimiser settings",
        "preset": "EBGAN's optimiser settings",
        "best": "the better of two optimiser settings",
    }[args.optim]
    for d in datasets:
        lines += [f"### {d}: {scope}, {steps[d]:,} steps", "", table(d, losses, by_ds[d]), ""]
        errs = errors_list(d, losses, by_ds[d])
        if errs:
            lines += errs + [""]
        if args.optim == "best":
            lines += [
                "Medians under each setting of the tuning budget, and the one reported above:",
                "",
                tuning_table(d, losses, results, keys_of, chosen),
                "",
            ]
        lines += [
            "<details><summary>settings per loss</summary>",
            "",
            settings_table(d, losses, steps[d], args.optim if args.optim != "best" else chosen),
            "",
            "</details>",
            "",
        ]
    if "ebgan" in losses and len(losses) > 1:
        lines += [
            (
                "### Where EBGAN wins and where it does not"
                if args.optim in ("own", "best")
                else "### EBGAN against the others under the same optimiser settings"
            )
            + f" ({scope}; "
            + ", ".join(f"{d} {steps[d]:,} steps" for d in datasets)
            + ")",
            "",
        ]
        lines += ["- " + verdict(d, losses, by_ds[d]) for d in datasets]
        lines += [
            "",
            "(Generated from the medians above; a few seeds per loss, so differences within the "
            "min-max spread are not meaningful.)",
            "",
        ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(section, body)


if __name__ == "__main__":
    main()
