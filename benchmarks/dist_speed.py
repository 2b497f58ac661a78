"""Data-parallel training on CPU processes (gloo): what the gradient all-reduce costs, and the scaling.

    python benchmarks/dist_speed.py [--presets mnist,celeba-64] [--steps 30] [--warmup 5] [--no-write]

For each preset, three ways to train the same per-process batch on one thread per process:

- one process (the reference);
- two processes joined by gloo (``ebgan.dist``), each on its half of a twice-larger global batch, gradients
  averaged by one flat all-reduce after the backward pass (``grad_overlap=off``, ``dist.average_gradients``; what
  ``auto`` does on CPU);
- the same with the all-reduce started bucket by bucket during the backward pass (``grad_overlap=on``, what
  ``auto`` does on CUDA; ``dist.OverlappedAverage``, as ``DistributedDataParallel`` does it).

Reported: the median seconds per step of each, the share of the flat two-process step spent inside
``average_gradients`` (the all-reduce and its copies: the upper bound of what overlapping can save), and the
throughput ratio (global images per second of two processes over one). Images are random (speed does not
depend on the data); ``celeba-64`` runs at a small per-process batch so a step takes about a second.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _report import header, write_record, write_section  # noqa: E402

from ebgan import dist  # noqa: E402
from ebgan.config import apply_overrides, from_preset, resolve  # noqa: E402
from ebgan.data import Dataset, sample_mixture  # noqa: E402
from ebgan.train import Trainer  # noqa: E402

BATCH = {"mnist": 64, "celeba-64": 8, "ring": 256}  # per process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dataset(cfg) -> Dataset:
    if cfg.data in ("ring", "grid"):
        x, y = sample_mixture(cfg.data, 4096, torch.Generator().manual_seed(0))
        return Dataset(cfg.data, "points", x, y)
    shape = {"mnist": (1, 28, 28)}.get(cfg.data, (cfg.channels, cfg.image_size, cfg.image_size))
    x = torch.randint(0, 256, (512, *shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return Dataset("random", "image", x)


def _worker(rank: int, world: int, port: int, preset: str, steps: int, warmup: int, out: str, overlap: bool) -> None:
    if world > 1:
        os.environ.update(
            RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
        )
    torch.set_num_threads(1)
    info = dist.setup("cpu") if world > 1 else dist.DistInfo()
    sets = {"batch_size": BATCH[preset] * world, "num_threads": 1, "grad_overlap": "on" if overlap else "off"}
    if preset not in ("mnist", "ring"):
        sets["data"] = "random-folder"  # the image presets name no data set; the images are made here
    cfg = resolve(apply_overrides(from_preset(preset), sets))
    t = Trainer(cfg, _dataset(cfg), info)
    spent = [0.0]
    average = dist.average_gradients

    def timed_average(params, info_):
        t0 = time.perf_counter()
        average(params, info_)
        spent[0] += time.perf_counter() - t0

    dist.average_gradients = timed_average
    step_s, sync_s = [], []
    for i in range(warmup + steps):
        dist.barrier(info)
        spent[0] = 0.0
        t0 = time.perf_counter()
        t.train_step()
        if i >= warmup:
            step_s.append(time.perf_counter() - t0)
            sync_s.append(spent[0])
    n_params = sum(p.numel() for p in list(t.G.parameters()) + list(t.D.parameters()))
    Path(out, f"rank{rank}.json").write_text(json.dumps({"step_s": step_s, "sync_s": sync_s, "params": n_params}))
    if world > 1:
        dist.cleanup()


def measure(preset: str, world: int, steps: int, warmup: int, overlap: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as out:
        mp.start_processes(
            _worker,
            args=(world, _free_port(), preset, steps, warmup, out, overlap),
            nprocs=world,
            join=True,
            start_method="spawn",
        )
        r = json.loads(Path(out, "rank0.json").read_text())
    return {
        "step_s": statistics.median(r["step_s"]),
        "sync_share": statistics.median(s / t for s, t in zip(r["sync_s"], r["step_s"])),
        "params": r["params"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="mnist,celeba-64")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    lines = [
        header().rstrip(),
        f"- {args.steps} timed steps after {args.warmup} warm-up steps, one thread per "
        "process, random images; medians over steps",
        "",
        "| preset | parameters (G + D) | batch per process | 1 process s/step | 2 processes, flat s/step | "
        "all-reduce share of the flat step | 2 processes, overlapped s/step | overlapped vs flat speed | "
        "throughput 2 processes (flat) vs 1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    record = {}
    for preset in args.presets.split(","):
        one = measure(preset, 1, args.steps, args.warmup)
        flat = measure(preset, 2, args.steps, args.warmup, overlap=False)
        over = measure(preset, 2, args.steps, args.warmup, overlap=True)
        record[preset] = {"one_process": one, "two_flat": flat, "two_overlapped": over, "batch": BATCH[preset]}
        lines.append(
            f"| {preset} | {flat['params'] / 1e6:.2f} M | {BATCH[preset]} | {one['step_s']:.4f} | "
            f"{flat['step_s']:.4f} | {100 * flat['sync_share']:.1f}% | {over['step_s']:.4f} | "
            f"{flat['step_s'] / over['step_s']:.2f}x | {2 * one['step_s'] / flat['step_s']:.2f}x |"
        )
        print(lines[-1], flush=True)
    body = "\n".join(lines) + "\n"
    print(body)
    if not args.no_write:
        write_record("dist_speed", record, steps=args.steps, warmup=args.warmup)
        write_section("dist_speed", body)


if __name__ == "__main__":
    main()
