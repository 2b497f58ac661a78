"""MNIST sample quality of the image presets after their default training budget.

Trains each preset with its defaults (one process, the thread count given), draws 10,000 samples with a fixed
seed, and scores them with `ebgan eval`'s metrics on the project's MNIST classifier: inception score (10
splits), the paper's modified score, FID against the training set, and the class histogram of the samples
(balanced digits put 10% in each class). The real test set's scores are printed beside them.

    python benchmarks/quality_mnist.py [--presets mnist,mnist-conv] [--seeds 0] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _report import ROOT, header, write_record, write_section

from ebgan.config import apply_overrides, from_preset, resolve
from ebgan.evaluate import evaluate
from ebgan.images import save_grid
from ebgan.metrics.classifier import load_classifier
from ebgan.metrics.reference import classify_channels
from ebgan.sampling import sample_from_run
from ebgan.train import train

RESULTS = ROOT / "benchmarks" / "results"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", default="mnist")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clf = load_classifier()
    ref = clf.info.get("reference", {})
    rows = [
        "| preset | seed | steps | train time | IS (10 splits) | paper score I' | FID (train) | "
        "IS, second evaluator | FID (train), second evaluator | class share min-max | samples |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs = []
    for preset in args.presets.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            cfg = resolve(apply_overrides(from_preset(preset), {"seed": seed}, args.set))
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                train(cfg, Path(tmp) / "run", data_root=args.data_root, progress=False)
                seconds = time.perf_counter() - t0
                x = sample_from_run(Path(tmp) / "run", 10000, seed=1)
            r = evaluate(x, "mnist", args.data_root, classifier=clf)
            digits = classify_channels(clf, torch.from_numpy(x))[:, 0]
            share = np.bincount(digits.numpy(), minlength=10) / len(digits) * 100
            grid = RESULTS / f"{preset}-seed{seed}.png"
            save_grid(x[:100], grid, nrow=10)
            rows.append(
                f"| {preset} | {seed} | {cfg.steps} | {seconds / 60:.1f} min | {r['is']:.2f} +- "
                f"{r['is_std']:.2f} | {r['paper_score']:.2f} | {r['fid']:.2f} | {r.get('is_mlp', float('nan')):.2f} | "
                f"{r.get('fid_mlp', float('nan')):.2f} | {share.min():.1f}-"
                f"{share.max():.1f}% | [png](results/{grid.name}) |"
            )
            print(rows[-1], flush=True)
            runs.append(
                {
                    "preset": preset,
                    "seed": seed,
                    "steps": cfg.steps,
                    "train_seconds": seconds,
                    "class_shares": share.tolist(),
                    "samples_png": f"benchmarks/results/{grid.name}",
                    **{k: r[k] for k in ("is", "is_std", "paper_score", "fid", "is_mlp", "fid_mlp") if k in r},
                }
            )
    body = (
        "## MNIST sample quality after the default budget\n\n"
        + header()
        + f"- {args.threads} threads; 10,000 samples per run (seed 1); classifier test accuracy "
        f"{clf.test_accuracy:.2%}; real MNIST test set: IS {ref.get('is', float('nan')):.2f}, "
        f"FID(test vs train) {ref.get('fid_test_vs_train', float('nan')):.2f}; the second evaluator is the packaged "
        "fully connected classifier (`MnistMLP`, its own seed; `is_mlp`, `fid_mlp` of `ebgan eval`)\n\n"
        + "\n".join(rows)
        + "\n"
    )
    print(body)
    if not args.no_write:
        write_record("quality_mnist", runs, threads=args.threads, sets=args.set, samples=10000, sample_seed=1)
        write_section("quality_mnist", body)


if __name__ == "__main__":
    main()
