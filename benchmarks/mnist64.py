"""The 64-pixel image path on real data: MNIST (and Stacked MNIST) resized to 64 x 64, trained with the conv
family at 64 pixels, scored by the project's classifier on the samples resized back to 28 x 28.

    python benchmarks/mnist64.py [--data mnist|stacked-mnist] [--steps 1000] [--threads 1]

It is ``ebgan train --preset mnist-conv --set image_size=64`` (plus ``channels=3`` for Stacked MNIST) into
benchmarks/results/mnist64-DATA/ (resumable with the same command), then ``ebgan eval`` of the run: IS and FID
on 10,000 samples (mnist), modes and KL on 26,000 (stacked-mnist). No natural-image data set is available
offline here; this shows that the 64-pixel networks, data conversion and evaluation work end to end on data
whose quality the project can measure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _report import ROOT, header, run_ebgan, write_section  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="mnist", choices=["mnist", "stacked-mnist"])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    out = ROOT / "benchmarks" / "results" / f"mnist64-{args.data}"
    data_root = str(ROOT.parent / "shared" / "data")
    extra = ["--set", "channels=3"] if args.data == "stacked-mnist" else []
    run_ebgan("train", "--preset", "mnist-conv", "--data", args.data, "--set", "image_size=64", *extra,
              "--set", f"num_threads={args.threads}", "--steps", str(args.steps), "--data-root", data_root,
              "--out", str(out), "--resume", "--no-progress")
    scores = json.loads(run_ebgan("eval", str(out), "--against", args.data, "--data-root", data_root)
                        .strip().splitlines()[-1])
    seconds = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]["time"]
    keys = ("is", "fid") if args.data == "mnist" else ("modes", "kl")
    body = [header().rstrip(), f"- `mnist-conv` preset at 64 x 64 ({args.data}, {args.steps} steps, batch 64, "
            f"{args.threads} thread(s), {seconds / 60:.1f} min of training beside other jobs); samples resized "
            "to 28 x 28 for the classifier", "",
            "| data | steps | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys),
            f"| {args.data} | {args.steps} | " + " | ".join(f"{scores[k]:.3g}" for k in keys) + " |"]
    write_section(f"mnist64-{args.data}", "\n".join(body) + "\n")
    print("\n".join(body))


if __name__ == "__main__":
    main()
