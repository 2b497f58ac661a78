"""The image path at 32 and 64 pixels on real data: MNIST (and Stacked MNIST) resized, trained with the conv
family (single-scale EBGAN) or the LAPGAN baseline, scored by the project's classifier on the samples resized
back to 28 x 28.

    python benchmarks/mnist_resized.py [--size 64] [--data mnist|stacked-mnist] [--steps 1000] [--threads 1]
                                       [--preset mnist-conv|stacked-mnist] [--margin M] [--lapgan]
    python benchmarks/mnist_resized.py --report-only

A run is ``ebgan train --preset PRESET --set image_size=SIZE`` (plus ``channels=3`` for Stacked MNIST) into
benchmarks/results/mnistSIZE-DATA[-PRESET-mM][-lapgan][-STEPS]/ (STEPS when not 1000; resumable with the same
command), then ``ebgan eval`` of the run: IS and FID on 10,000 samples (mnist), modes and KL on 26,000
(stacked-mnist), kept in the run's ``scores.json``. A longer run may start from a copy of a shorter one's folder
(without its ``scores.json``): with these presets' constant learning rates and margin, exact resume makes that
the same run as one trained from the start. ``--margin`` replaces the preset's margin: the l2 energy of an image
grows with the square root of its pixel count, so a margin chosen at 28 pixels corresponds to about 64 / 28 =
2.3 times that margin at 64 pixels.

``--lapgan`` trains the multi-scale baseline the paper argues against instead (``--set arch=lapgan --set
loss=nsgan``: a non-saturating GAN per Laplacian-pyramid level) with the preset's widths, optimiser, batch and
step budget, so that it differs from the single-scale EBGAN run only in the model. Each run also rewrites the
section ``mnist_resized_lapgan``, single-scale EBGAN against LAPGAN at every size measured on MNIST (also
``--report-only``).

No natural-image data set is available offline here; this shows that the 32/64-pixel networks, data
conversion and evaluation work end to end on data whose quality the project can measure.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _report import ROOT, header, metrics_rows, run_ebgan, write_section  # noqa: E402

from ebgan.data import expected_sample_shape  # noqa: E402
from ebgan.nets import describe_networks  # noqa: E402
from ebgan.objectives import make_objective  # noqa: E402
from ebgan.rundir import saved_config  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def run_name(size: int, data: str, preset: str, margin: float | None, lapgan: bool, steps: int) -> str:
    name = f"mnist{size}-{data}"
    if preset != "mnist-conv" or margin is not None:
        name += f"-{preset}" + (f"-m{margin:g}" if margin is not None else "")
    return name + ("-lapgan" if lapgan else "") + (f"-{steps}" if steps != 1000 else "")


def compare_lapgan() -> None:
    """The section comparing single-scale EBGAN with LAPGAN on MNIST, from every run's ``scores.json``."""
    rows = []
    for path in sorted(RESULTS.glob("mnist*-mnist*/scores.json")):
        s = json.loads(path.read_text())
        if s["data"] == "mnist" and s["preset"] == "mnist-conv" and s.get("margin_set") is None:
            rows.append(s)
    rows.sort(key=lambda s: (s["size"], s["model"] != "ebgan", s["steps"]))
    body = [
        "## Single-scale EBGAN against LAPGAN on MNIST resized to 32 and 64 pixels (`benchmarks/mnist_resized.py`)",
        "",
        "- runs: `python benchmarks/mnist_resized.py --size S --steps N [--lapgan] --threads 1`, each with the "
        "`mnist-conv` preset's widths, Adam settings and batch 64; the LAPGAN rows are `--set arch=lapgan "
        "--set loss=nsgan` (a non-saturating GAN per pyramid level), the EBGAN rows the preset itself "
        "(EBGAN-PT, margin 10)",
        "- scores: IS and FID on the project's classifier, 10,000 samples resized to 28 x 28, FID against the "
        "MNIST training set; one seed (0) per row; minutes of training beside other jobs (indicative only)",
        "",
        "| size | model | steps | GFLOP per step | IS | FID | train min | date, commit |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in rows:
        body.append(
            f"| {s['size']} | {s['model']} | {s['steps']} | {s['gflop']:.1f} | {s['is']:.2f} | "
            f"{s['fid']:.1f} | {s['seconds'] / 60:.1f} | {s['date']} |"
        )
    write_section("mnist_resized_lapgan", "\n".join(body) + "\n")
    print("\n".join(body))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64, choices=[32, 64])
    ap.add_argument("--data", default="mnist", choices=["mnist", "stacked-mnist"])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--preset", default="mnist-conv", choices=["mnist-conv", "stacked-mnist"])
    ap.add_argument("--margin", type=float, default=None, help="replaces the preset's margin")
    ap.add_argument("--lapgan", action="store_true", help="the LAPGAN baseline (arch=lapgan, loss=nsgan)")
    ap.add_argument("--report-only", action="store_true", help="rewrite the EBGAN-vs-LAPGAN section only")
    args = ap.parse_args()
    if args.report_only:
        compare_lapgan()
        return
    if args.lapgan and args.margin is not None:
        ap.error("--margin is EBGAN's; LAPGAN (--lapgan) has none")
    name = run_name(args.size, args.data, args.preset, args.margin, args.lapgan, args.steps)
    out = RESULTS / name
    data_root = str(ROOT.parent / "shared" / "data")
    extra = ["--set", f"image_size={args.size}"]
    if args.data == "stacked-mnist":
        extra += ["--set", "channels=3"]
    if args.margin is not None:
        extra += ["--set", f"margin={args.margin}"]
    if args.lapgan:
        extra += ["--set", "arch=lapgan", "--set", "loss=nsgan"]
    run_ebgan(
        "train",
        "--preset",
        args.preset,
        "--data",
        args.data,
        *extra,
        "--data-root",
        data_root,
        "--set",
        f"num_threads={args.threads}",
        "--steps",
        str(args.steps),
        "--out",
        str(out),
        "--resume",
        "--no-progress",
    )
    config = saved_config(out)
    shape = expected_sample_shape(config.data, config.image_size, config.channels)
    gflop = describe_networks(config, shape, make_objective(config).head)["flops_per_step"] / 1e9
    scores = json.loads(
        run_ebgan("eval", str(out), "--against", args.data, "--data-root", data_root).strip().splitlines()[-1]
    )
    seconds = metrics_rows(out)[-1]["time"]
    keys = ("is", "fid") if args.data == "mnist" else ("modes", "kl")
    head = header()
    date = re.search(r"date: ([^\n]+)", head).group(1)
    model = "lapgan (nsgan)" if args.lapgan else "ebgan"
    (out / "scores.json").write_text(
        json.dumps(
            {
                "size": args.size,
                "data": args.data,
                "preset": args.preset,
                "margin_set": args.margin,
                "model": model,
                "steps": args.steps,
                "gflop": gflop,
                "seconds": seconds,
                "date": date,
                **{k: scores[k] for k in keys},
            },
            indent=1,
        )
        + "\n"
    )
    what = (
        f"LAPGAN (`arch=lapgan`, `loss=nsgan`) on the `{args.preset}` preset's widths and optimiser"
        if args.lapgan
        else f"`{args.preset}` preset, margin {config.margin:g}"
    )
    body = [
        head.rstrip(),
        f"- {what} at {args.size} x {args.size} ({args.data}, {args.steps} steps, batch "
        f"{config.batch_size}, {gflop:.1f} GFLOP per step, {args.threads} thread(s), {seconds / 60:.1f} min "
        "of training beside other jobs); samples resized to 28 x 28 for the classifier",
        "",
        "| data | steps | " + " | ".join(keys) + " |",
        "|---|---|" + "---|" * len(keys),
        f"| {args.data} | {args.steps} | " + " | ".join(f"{scores[k]:.3g}" for k in keys) + " |",
    ]
    write_section(name, "\n".join(body) + "\n")
    print("\n".join(body))
    if args.data == "mnist" and args.preset == "mnist-conv" and args.margin is None:
        compare_lapgan()


if __name__ == "__main__":
    main()
