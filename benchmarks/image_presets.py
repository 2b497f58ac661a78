"""CPU cost of the image presets (celeba-64, lsun-64, imagenet-128, imagenet-256): parameters, FLOPs per
training step (``ebgan train --dry-run``'s count) and the measured seconds per step at each preset's batch size,
on random images of the preset's resolution (the step's cost does not depend on the pixels).

    python benchmarks/image_presets.py [--steps 3] [--threads 2]

The median over ``--steps`` timed steps after one warm-up step; GFLOP/s against this machine's float32 peak
measured in the same run (2048 x 2048 matrix products). No natural-image data set is available offline here,
so no quality figure: see the issue's 64-pixel MNIST runs for that.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
from _report import header, matmul_peak, write_record, write_section  # noqa: E402

from ebgan.config import apply_overrides, from_preset, resolve  # noqa: E402
from ebgan.data import Dataset  # noqa: E402
from ebgan.nets import describe_networks  # noqa: E402
from ebgan.train import Trainer  # noqa: E402

PRESETS = ("celeba-64", "lsun-64", "imagenet-128", "imagenet-256")


def measure(name: str, steps: int, threads: int) -> dict:
    cfg = resolve(apply_overrides(from_preset(name), {"data": "random", "num_threads": threads}))
    size = cfg.image_size
    n = max(cfg.batch_size * 2, 64)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    trainer = Trainer(cfg, Dataset("random", "image", images, None))
    d = describe_networks(cfg, trainer.sample_shape, trainer.objective.head)
    trainer.train_step()  # warm-up
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        trainer.train_step()
        times.append(time.perf_counter() - t)
    sec = statistics.median(times)
    return {
        "preset": name,
        "shape": list(trainer.sample_shape),
        "batch": cfg.batch_size,
        **d,
        "s_per_step": sec,
        "images_per_s": cfg.batch_size / sec,
        "gflops": d["flops_per_step"] / sec / 1e9,
        "hours_default": sec * cfg.steps / 3600,
        "steps": cfg.steps,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    p0 = matmul_peak()
    rows = [measure(name, args.steps, args.threads) for name in PRESETS]
    p1 = matmul_peak()
    lines = [
        header().rstrip(),
        f"- {args.threads} threads, fp32, median of {args.steps} steps after one warm-up; "
        f"float32 peak {p0:.0f} GFLOP/s before, {p1:.0f} after",
        "",
        "| preset | sample | batch | G params | D params | GFLOP/step | s/step | images/s | GFLOP/s | "
        "share of peak | default run |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['preset']} | {'x'.join(map(str, r['shape']))} | {r['batch']} | "
            f"{r['params_g'] / 1e6:.2f} M | {r['params_d'] / 1e6:.2f} M | {r['flops_per_step'] / 1e9:.0f} | "
            f"{r['s_per_step']:.2f} | {r['images_per_s']:.1f} | {r['gflops']:.0f} | "
            f"{100 * r['gflops'] / p0:.0f} % | {r['hours_default']:.0f} h ({r['steps']} steps) |"
        )
    write_record(
        "image-presets", {"matmul_peak_gflops": [p0, p1], "presets": rows}, threads=args.threads, steps=args.steps
    )
    write_section("image-presets", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
