"""What a moving average of G's weights gives: each preset trained once with g_ema, then scored with the
averaged weights and with G's own weights from the same run and checkpoint (an A/B test without seed noise).

    python benchmarks/ema.py [--presets ring,grid,mnist] [--decay 0.999] [--seed 0]

Runs go to benchmarks/results/ema/<preset>-seed<S>/ (resumable). Writes the section "ema" of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _report import ROOT, header, run_ebgan, write_record, write_section  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "ema"
KEYS = {"mnist": ("is", "fid"), "ring": ("modes", "hq_pct", "reverse_kl"), "grid": ("modes", "hq_pct", "reverse_kl")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="ring,grid,mnist")
    ap.add_argument("--decay", type=float, default=0.999)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    args = ap.parse_args()
    lines = [
        header().rstrip(),
        f"- each preset trained once (its default budget, seed {args.seed}, 1 thread) with g_ema={args.decay}, "
        "then scored with the averaged and with the raw weights of the same final checkpoint (`ebgan eval "
        "RUN_DIR --weights ema|raw`)",
        "",
        "| preset | metric | raw G | averaged G |",
        "|---|---|---|---|",
    ]
    record = {}
    for preset in args.presets.split(","):
        run = OUT / f"{preset}-seed{args.seed}"
        run_ebgan(
            "train",
            "--preset",
            preset,
            "--seed",
            str(args.seed),
            "--set",
            f"g_ema={args.decay}",
            "--set",
            "num_threads=1",
            "--data-root",
            args.data_root,
            "--out",
            str(run),
            "--resume",
            "--no-progress",
        )
        res = {
            w: json.loads(run_ebgan("eval", str(run), "--weights", w, "--data-root", args.data_root).splitlines()[-1])
            for w in ("raw", "ema")
        }
        data = json.loads((run / "data.json").read_text())["name"]
        record[preset] = res
        for k in KEYS[data]:
            fmt = (lambda v: f"{v:.3f}") if k in ("is", "fid", "reverse_kl") else (lambda v: f"{v:g}")
            lines.append(f"| {preset} | {k} | {fmt(res['raw'][k])} | {fmt(res['ema'][k])} |")
        print("\n".join(lines[-len(KEYS[data]) :]), flush=True)
    write_record("ema", record, seed=args.seed, decay=args.decay)
    write_section("ema", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
