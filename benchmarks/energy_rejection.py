"""Rejection by the learned energy (``ebgan eval RUN --energy-keep Q``): what keeping the lowest-energy fraction
Q of the generator's samples does to the scores of finished EBGAN runs, per run and seed.

    python benchmarks/energy_rejection.py [--groups mnist,mnist-long,stacked-mnist,ring,grid]
        [--keeps 1,0.75,0.5,0.25] [--seeds 0,1,2,3,4] [--threads 1] [--report-only] [--no-write] [--section NAME]

The runs scored are the project's own benchmark runs, trained here when missing (``ebgan train --preset P
--seed S --resume`` into benchmarks/results/energy-rejection/P-sS/; checkpoints are not committed):
``mnist`` and ``mnist-long`` (the presets), ``stacked-mnist`` (the preset, EBGAN-PT), ``ring`` and ``grid``
(the presets, whose targets are every mode with >= 95 % high-quality samples on every seed). Every score is
``ebgan eval RUN --energy-keep Q`` on the protocol's number of samples (10,000 / 26,000 / 2,500): Q = 1 is G
alone. The rejected samples are chosen by D, not by the metric: nothing of the scoring classifier or the
mixture's modes enters the choice.

MNIST figures are given on both of the project's evaluators: the ConvNet's features (``is``, ``fid``) and the
independently trained fully connected classifier's (``is_mlp``, ``fid_mlp``), with the balance of the digits
as the KL divergence of each classifier's class shares from uniform (0: every digit 10 %). Where the two
disagree, the table shows it instead of one of them.

The runs of presets whose discriminator has batch norm (``mnist``, ``mnist-long``, ``stacked-mnist``) are those
trained after D's running statistics came from real images only (before, the passes on generated images updated
them too, and the energy D scores with in eval mode described mostly fakes): their folders carry the suffix
``-bnreal``; the 2-D presets have no batch norm and keep their runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _report import ROOT, finished, header, median, run_ebgan, write_section  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "energy-rejection"
GROUPS = ("mnist", "mnist-long", "stacked-mnist", "ring", "grid")


# Runs another benchmark already trained with a preset's exact settings (checked against the preset before use,
# and used only while their checkpoints are there): the EBGAN-PT Stacked MNIST runs of mode_tools.py (the preset
# with its pulling-away weight spelt out), trained after the batch-norm change. The runs listed here before it
# (search/mnist_search, stacked-mnist/ebgan-sS) had running statistics of fakes and are not used.
TRAINED = {"stacked-mnist": "stacked-mnist/ebgan-s{seed}-ptweight0.1"}
BN_GROUPS = ("mnist", "mnist-long", "stacked-mnist")  # presets whose D has batch norm: runs retrained, -bnreal
RUNTIME_KEYS = {"num_threads", "device", "progress"}  # settings that do not change what is trained


def same_settings(run: Path, preset: str, seed: int) -> bool:
    from ebgan.config import apply_overrides, from_preset, resolve
    from ebgan.rundir import saved_config

    if not (run / "config.json").exists() or not (run / "checkpoints").exists():
        return False
    a = dataclasses.asdict(saved_config(run))
    b = dataclasses.asdict(resolve(apply_overrides(from_preset(preset), {"seed": seed})))
    return all(a[k] == b[k] for k in a.keys() - RUNTIME_KEYS)


def run_dir(preset: str, seed: int) -> Path:
    if preset in TRAINED:
        other = ROOT / "benchmarks" / "results" / TRAINED[preset].format(seed=seed)
        if same_settings(other, preset, seed):
            return other
    return RESULTS / (f"{preset}-s{seed}-bnreal" if preset in BN_GROUPS else f"{preset}-s{seed}")


def class_kl(shares: list[float]) -> float:
    """KL divergence (nats) of class shares given in percent from the uniform distribution over the classes."""
    import math

    p = [s / 100 for s in shares]
    return sum(q * math.log(q * len(p)) for q in p if q > 0)


def trained(preset: str, seed: int, threads: int, data_root: str) -> Path:
    """The finished run of ``preset`` with ``seed`` (trained, or continued, here when not finished)."""
    from ebgan.rundir import saved_config

    run = run_dir(preset, seed)
    if not ((run / "config.json").exists() and finished(run, saved_config(run).steps)):
        print(f"training {preset} seed {seed} into {run}", flush=True)
        run_ebgan(
            "train",
            "--preset",
            preset,
            "--seed",
            str(seed),
            "--set",
            f"num_threads={threads}",
            "--data-root",
            data_root,
            "--out",
            str(run),
            "--resume",
            "--no-progress",
        )
    return run


def cached(run: Path, keep: float) -> dict | None:
    """The score of ``run`` at ``keep`` stored in RUN/energy-keep.jsonl, if any."""
    cache = run / "energy-keep.jsonl"
    rows = [json.loads(r) for r in cache.read_text().splitlines()] if cache.exists() else []
    return next((r for r in rows if r["energy_keep"] == keep), None)


def scored(run: Path, keep: float, data_root: str) -> dict:
    """``ebgan eval RUN --energy-keep keep``, cached in RUN/energy-keep.jsonl."""
    r = cached(run, keep)
    if r is not None:
        return r
    cache = run / "energy-keep.jsonl"
    out = run_ebgan("eval", str(run), "--data-root", data_root, "--energy-keep", str(keep))
    r = json.loads(out.strip().splitlines()[-1])
    r["energy_keep"] = keep  # also written by eval when keep < 1
    with cache.open("a") as f:
        f.write(json.dumps(r) + "\n")
    return r


def cells(r: dict) -> tuple[str, str]:
    if r["against"] == "mnist":
        s = r["class_shares"]
        cols = "IS | FID | digit share min-max | class KL"
        vals = f"{r['is']:.2f} | {r['fid']:.2f} | {min(s):.1f}-{max(s):.1f}% | {class_kl(s):.4f}"
        if "fid_mlp" in r:  # the second evaluator (runs scored before it existed have only the first)
            s2 = r["class_shares_mlp"]
            cols += " | IS (MLP) | FID (MLP) | class KL (MLP)"
            vals += f" | {r['is_mlp']:.2f} | {r['fid_mlp']:.2f} | {class_kl(s2):.4f}"
        return (cols, vals)
    if r["against"] in ("ring", "grid"):
        kl = "-" if r["reverse_kl"] is None else f"{r['reverse_kl']:.3f}"
        return ("modes | high quality | reverse KL", f"{r['modes']} | {r['hq_pct']:.1f}% | {kl}")
    return ("modes | KL", f"{r['modes']} | {r['kl']:.3f}")


def median_cells(rs: list[dict]) -> str:
    def med(key: str, spec: str) -> str:
        vals = [r[key] for r in rs if r.get(key) is not None]
        return format(median(vals), spec) if vals else "-"

    if rs[0]["against"] == "mnist":
        for r in rs:
            r["class_kl"] = class_kl(r["class_shares"])
            if "class_shares_mlp" in r:
                r["class_kl_mlp"] = class_kl(r["class_shares_mlp"])
        text = f"{med('is', '.2f')} | {med('fid', '.2f')} | - | {med('class_kl', '.4f')}"
        if all("fid_mlp" in r for r in rs):
            text += f" | {med('is_mlp', '.2f')} | {med('fid_mlp', '.2f')} | {med('class_kl_mlp', '.4f')}"
        return text
    if rs[0]["against"] in ("ring", "grid"):
        return f"{med('modes', 'g')} | {med('hq_pct', '.1f')}% | {med('reverse_kl', '.3f')}"
    return f"{med('modes', 'g')} | {med('kl', '.3f')}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", default=",".join(GROUPS))
    ap.add_argument("--keeps", default="1,0.75,0.5,0.25")
    ap.add_argument(
        "--seeds",
        default=None,
        help="default: 0,1 for mnist-long, 0,1,2 for stacked-mnist, 0 for mnist, 0-4 for ring and grid",
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--report-only", action="store_true", help="train and score nothing: report the cache")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument(
        "--section",
        default="energy_rejection",
        help="the BENCHMARKS.md section to write (the re-measure after the batch-norm change: energy_rejection_bnreal)",
    )
    args = ap.parse_args()
    default_seeds = {
        "mnist": [0],
        "mnist-long": [0, 1],
        "stacked-mnist": [0, 1, 2],
        "ring": list(range(5)),
        "grid": list(range(5)),
    }
    keeps = [float(k) for k in args.keeps.split(",")]
    data_root = str(ROOT.parent / "shared" / "data")
    sections = []
    for group in args.groups.split(","):
        if group not in GROUPS:
            raise SystemExit(f"unknown group {group!r}; known: {', '.join(GROUPS)}")
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else default_seeds[group]
        results = []
        for seed in seeds:
            if args.report_only and not (run_dir(group, seed) / "energy-keep.jsonl").exists():
                continue
            run = run_dir(group, seed) if args.report_only else trained(group, seed, args.threads, data_root)
            for keep in keeps:
                r = cached(run, keep) if args.report_only else scored(run, keep, data_root)
                if r is None:
                    continue
                print(f"{group} seed {seed} keep {keep:g}: {cells(r)[1]}", flush=True)
                results.append((seed, keep, r))
        if not results:
            continue
        cols = cells(results[0][2])[0]
        lines = [
            f"### Rejection on {group}" + (", after the batch-norm change" if group in BN_GROUPS else ""),
            "",
            f"| seed | keep | {cols} |",
            "|---|---|" + "---|" * (cols.count("|") + 1),
        ]
        lines += [f"| {seed} | {keep:g} | {cells(r)[1]} |" for seed, keep, r in results]
        if len(seeds) > 1:
            for keep in keeps:
                rs = [r for _, k, r in results if k == keep]
                if rs:
                    lines.append(f"| **median** ({len(rs)}) | {keep:g} | {median_cells(rs)} |")
        sections.append("\n".join(lines))
    if not sections:
        raise SystemExit("no scored runs to report")
    body = (
        header().rstrip() + "\n- `ebgan eval RUN --energy-keep Q`: draw N / Q samples, keep the N of lowest "
        "energy D(G(z)) (Q = 1: G alone); N = the protocol's (MNIST 10,000, Stacked MNIST 26,000, 2-D 2,500); "
        "runs trained with each preset's defaults\n\n" + "\n\n".join(sections) + "\n"
    )
    print(body)
    if not args.no_write:
        write_section(args.section, body)


if __name__ == "__main__":
    main()
