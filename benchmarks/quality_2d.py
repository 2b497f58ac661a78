"""Mode coverage and sample quality of the `ring` and `grid` presets (PacGAN protocol), several seeds.

Each preset is trained with its own default budget through the public API (``Trainer.train_step`` in a loop;
no run folder, checkpoints or plots, so the seconds are training alone), then 2500 samples are drawn from G
and scored with ``count_modes_2d``: a sample is of high quality if it lies within 3 sigma of its nearest mode
centre, a mode is covered if it is the nearest mode of at least one high-quality sample, and the reverse KL
compares the high-quality samples' mode frequencies with the uniform distribution (Lin et al. 2018, s. 5.1).

Targets (the project's issue): ring 8 of 8 modes with >= 90% high-quality samples, grid >= 23 of 25 modes
with >= 80%, each trained in <= 5 minutes on one CPU thread; they should hold for the median seed.

    python benchmarks/quality_2d.py [--seeds 0 1 2] [--presets ring grid] [--threads 1] [--no-write]
"""

from __future__ import annotations

import argparse
import time

import torch

from _report import header, median, write_section

from ebgan.config import apply_overrides, from_preset, resolve
from ebgan.data import MIXTURES, load_dataset
from ebgan.metrics.scores import count_modes_2d
from ebgan.train import Trainer

N_SAMPLES = 2500
TARGETS = {"ring": (8, 90.0), "grid": (23, 80.0)}  # (modes at least, high-quality % at least)


def run(preset: str, seed: int, device: str) -> dict:
    """Train ``preset`` with ``seed`` and score 2500 samples; returns the scores and training seconds."""
    cfg = resolve(apply_overrides(from_preset(preset), {"seed": seed, "device": device}))
    dataset = load_dataset(cfg.data, seed=seed)
    trainer = Trainer(cfg, dataset)
    t0 = time.perf_counter()
    while trainer.step < trainer.total_steps:
        trainer.train_step()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)
    seconds = time.perf_counter() - t0
    centers_fn, sigma = MIXTURES[cfg.data]
    scores = count_modes_2d(trainer.sample(N_SAMPLES, seed=seed + 12345), centers_fn(), sigma)
    return {**scores, "seconds": seconds, "steps": cfg.steps, "n_modes": len(centers_fn())}


def _kl(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--presets", nargs="+", default=["ring", "grid"], choices=sorted(TARGETS))
    ap.add_argument("--threads", type=int, default=1, help="torch threads (tiny MLPs are fastest on one)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    rows = ["| preset | seed | steps | modes | high quality % | reverse KL | train s |", "|---|---|---|---|---|---|---|"]
    verdicts = []
    for preset in args.presets:
        results = []
        for seed in args.seeds:
            r = run(preset, seed, args.device)
            results.append(r)
            line = (f"| {preset} | {seed} | {r['steps']} | {r['modes']}/{r['n_modes']} | {r['hq_pct']:.1f} | "
                    f"{_kl(r['reverse_kl'])} | {r['seconds']:.0f} |")
            rows.append(line)
            print(line, flush=True)
        kls = [r["reverse_kl"] for r in results if r["reverse_kl"] is not None]
        med = {k: median([r[k] for r in results]) for k in ("modes", "hq_pct", "seconds")}
        rows.append(f"| {preset} | **median** | | {med['modes']:g}/{results[0]['n_modes']} | {med['hq_pct']:.1f} | "
                    f"{_kl(median(kls) if kls else None)} | {med['seconds']:.0f} |")
        want_modes, want_hq = TARGETS[preset]
        ok = med["modes"] >= want_modes and med["hq_pct"] >= want_hq and max(r["seconds"] for r in results) <= 300
        verdicts.append(f"- {preset}: target {want_modes}+ modes, >= {want_hq:.0f}% high quality, <= 300 s: "
                        f"{'met' if ok else 'NOT met'} (median seed)")
    body = (
        "## Mode coverage on 2-D mixtures: `ring` and `grid` presets (PacGAN protocol)\n\n" + header() +
        f"- per seed: train the preset's default budget, sample {N_SAMPLES} points from G, high quality = within "
        "3 sigma of the nearest centre (ring sigma 0.01, grid 0.05); train s = wall time of the training steps, "
        f"{args.threads} thread(s), device {args.device}\n\n" + "\n".join(rows) + "\n\n" + "\n".join(verdicts) + "\n")
    print(body)
    if not args.no_write:
        write_section("quality_2d", body)


if __name__ == "__main__":
    main()
