"""The 64-pixel image path on real data: MNIST (and Stacked MNIST) resized to 64 x 64, trained with the conv
family at 64 pixels, scored by the project's classifier on the samples resized back to 28 x 28.

    python benchmarks/mnist64.py [--data mnist|stacked-mnist] [--steps 1000] [--threads 1]
                                 [--preset mnist-conv|stacked-mnist] [--margin M]

It is ``ebgan train --preset PRESET --set image_size=64`` (plus ``channels=3`` for Stacked MNIST) into
benchmarks/results/mnist64-DATA[-PRESET-mM]/ (resumable with the same command), then ``ebgan eval`` of the
run: IS and FID on 10,000 samples (mnist), modes and KL on 26,000 (stacked-mnist). ``--margin`` replaces the
preset's margin: the l2 energy of an image grows with the square root of its pixel count, so a margin chosen
at 28 pixels corresponds to about 64 / 28 = 2.3 times that margin at 64 pixels. No natural-image data set is
available offline here; this shows that the 64-pixel networks, data conversion and evaluation work end to end
on data whose quality the project can measure.
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
    ap.add_argument("--preset", default="mnist-conv", choices=["mnist-conv", "stacked-mnist"])
    ap.add_argument("--margin", type=float, default=None, help="replaces the preset's margin")
    args = ap.parse_args()
    name = f"mnist64-{args.data}"
    if args.preset != "mnist-conv" or args.margin is not None:
        name += f"-{args.preset}" + (f"-m{args.margin:g}" if args.margin is not None else "")
    out = ROOT / "benchmarks" / "results" / name
    data_root = str(ROOT.parent / "shared" / "data")
    extra = ["--set", "channels=3"] if args.data == "stacked-mnist" else []
    if args.margin is not None:
        extra += ["--set", f"margin={args.margin}"]
    run_ebgan("train", "--preset", args.preset, "--data", args.data, "--set", "image_size=64", *extra,
              "--set", f"num_threads={args.threads}", "--steps", str(args.steps), "--data-root", data_root,
              "--out", str(out), "--resume", "--no-progress")
    scores = json.loads(run_ebgan("eval", str(out), "--against", args.data, "--data-root", data_root)
                        .strip().splitlines()[-1])
    seconds = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]["time"]
    keys = ("is", "fid") if args.data == "mnist" else ("modes", "kl")
    margin = json.loads((out / "config.json").read_text())["margin"]
    body = [header().rstrip(), f"- `{args.preset}` preset at 64 x 64, margin {margin:g} ({args.data}, {args.steps} "
            f"steps, batch 64, "
            f"{args.threads} thread(s), {seconds / 60:.1f} min of training beside other jobs); samples resized "
            "to 28 x 28 for the classifier", "",
            "| data | steps | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys),
            f"| {args.data} | {args.steps} | " + " | ".join(f"{scores[k]:.3g}" for k in keys) + " |"]
    write_section(name, "\n".join(body) + "\n")
    print("\n".join(body))


if __name__ == "__main__":
    main()
