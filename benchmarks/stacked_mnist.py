"""Stacked MNIST, the field's mode-collapse benchmark: the `stacked-mnist` preset trained with EBGAN-PT and, on
the same networks and budget, with the non-saturating GAN; modes covered of 1,000 and KL to the uniform mode
distribution on 26,000 samples (VEEGAN / PacGAN protocol), per seed.

    python benchmarks/stacked_mnist.py [--losses ebgan,nsgan] [--seeds 0,1,2] [--steps N] [--threads 1]
        [--set KEY=VALUE ...] [--report-only] [--no-write]

Each run is ``ebgan train --preset stacked-mnist --loss LOSS --seed S`` into
benchmarks/results/stacked-mnist/LOSS-sS/ (checkpoints are not committed), resumed where it stopped when the
command is repeated, then ``ebgan eval`` of the finished run. The non-saturating GAN keeps the preset's Adam
settings (2e-4, beta1 0.5), which are its own DCGAN defaults. Published on this protocol (PacGAN, Table 3, DCGAN
networks): DCGAN 99 modes / KL 3.4, PacDCGAN2 1000 / 0.06; VEEGAN 150 / 2.95.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _report import ROOT, finished, header, metrics_rows, run_ebgan, write_section  # noqa: E402

from ebgan.config import PRESETS  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "stacked-mnist"
PUBLISHED = "PacGAN (Lin et al. 2018), Table 3: DCGAN 99 modes / KL 3.40, PacDCGAN2 1000 / 0.06, VEEGAN 150 / 2.95"


def run_dir(loss: str, seed: int, sets: list[str]) -> Path:
    suffix = "".join("-" + s.replace("=", "").replace("_", "") for s in sets)
    return RESULTS / f"{loss}-s{seed}{suffix}"


def one(loss: str, seed: int, steps: int, threads: int, sets: list[str], data_root: str) -> dict:
    run = run_dir(loss, seed, sets)
    scores_path = run / "scores.json"
    if not (scores_path.exists() and finished(run, steps)):
        extra = [a for s in sets for a in ("--set", s)]
        run_ebgan(
            "train",
            "--preset",
            "stacked-mnist",
            "--loss",
            loss,
            "--seed",
            str(seed),
            "--steps",
            str(steps),
            *extra,
            "--set",
            f"num_threads={threads}",
            "--data-root",
            data_root,
            "--out",
            str(run),
            "--resume",
            "--no-progress",
        )
        out = run_ebgan("eval", str(run), "--against", "stacked-mnist", "--data-root", data_root)
        scores_path.write_text(out.strip().splitlines()[-1] + "\n")
    scores = json.loads(scores_path.read_text())
    seconds = max(r.get("time", 0.0) for r in metrics_rows(run))
    return {
        "loss": loss,
        "seed": seed,
        "steps": steps,
        "modes": scores["modes"],
        "kl": scores["kl"],
        "minutes": seconds / 60,
        "run": run,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--losses", default="ebgan,nsgan")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=PRESETS["stacked-mnist"]["steps"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a change to the preset for every run (its own run folders and report section)",
    )
    ap.add_argument("--report-only", action="store_true", help="train nothing: report the finished runs")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    data_root = str(ROOT.parent / "shared" / "data")
    results = []
    for loss in args.losses.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            run = run_dir(loss, seed, args.set)
            if args.report_only and not ((run / "scores.json").exists() and finished(run, args.steps)):
                print(f"{loss} seed {seed}: not finished, left out", flush=True)
                continue
            r = one(loss, seed, args.steps, args.threads, args.set, data_root)
            print(f"{loss} seed {seed}: {r['modes']} modes, KL {r['kl']:.3f}, {r['minutes']:.1f} min", flush=True)
            results.append(r)
    if not results:
        sys.exit("no finished runs to report")
    changes = f" with `{' '.join('--set ' + s for s in args.set)}`" if args.set else ""
    lines = [
        header().rstrip(),
        f"- `stacked-mnist` preset{changes}: {args.steps} generator steps, batch 64, {args.threads} thread(s) per "
        "run; training minutes beside other jobs; samples in `benchmarks/results/stacked-mnist/*/samples.png`",
        f"- published: {PUBLISHED}",
        "",
        "| loss | seed | steps | modes (of 1000) | KL | train min |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['loss']} | {r['seed']} | {r['steps']} | {r['modes']} | {r['kl']:.3f} | {r['minutes']:.1f} |"
        )
    for loss in dict.fromkeys(r["loss"] for r in results):
        rs = [r for r in results if r["loss"] == loss]
        lines.append(
            f"| {loss} | **median** ({len(rs)}) | | {statistics.median(r['modes'] for r in rs):g} | "
            f"{statistics.median(r['kl'] for r in rs):.3f} | |"
        )
    body = "\n".join(lines) + "\n"
    print(body)
    if not args.no_write:
        name = "stacked_mnist" + "".join("-" + s.replace("=", "") for s in args.set)
        write_section(name, body)


if __name__ == "__main__":
    main()
