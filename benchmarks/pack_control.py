"""Why packing m >= 3 loses the high-quality share on the 2-D grid: a control on the same seed.

    python benchmarks/pack_control.py [--seeds 10] [--report-only]

In the mode-tools comparison (`mode_tools.py`, seeds 10-19) packing keeps the grid's modes but the share of
high-quality samples falls with m, for EBGAN and for the non-saturating GAN (the PacGAN baseline) alike, where
PacGAN's paper reports 93.6 % for m = 4 (24.8 of 25 modes). This control varies one thing at a time around the
`grid` preset (its networks, optimiser settings and 10,000 steps), non-saturating GAN (PacGAN's loss), no
pulling-away term:

- m = 1, 2, 4 at the preset's 256 samples a step (64 packs for m = 4): the effect of m alone;
- m = 4 with 1,024 samples a step (256 packs, PacGAN's convention of a fixed number of packs): the number of packs;
- m = 1 and m = 4 for 40,000 steps (the cosine schedule stretched over the longer run): the budget (PacGAN's own
  grid runs train for 400 epochs of 100,000 points at 100 packs a step, 400,000 steps, with learning rate 1e-4, a
  maxout D of 3 x 200 units and a batch-norm G of 4 x 400);
- EBGAN (margin scaled by sqrt(m)) with m = 4 for 40,000 steps, against its 10,000-step run in mode_tools, and the
  preset itself (EBGAN-PT) for 40,000 steps: whether a longer budget helps packing more than the preset.

Scoring is `quality_2d.py`'s (2,500 samples of G, high quality within 3 sigma, reverse KL). Each finished run writes
benchmarks/results/pack-control/NAME-sSEED.json and is skipped when the command is repeated; the section
`pack_control` of BENCHMARKS.md is rewritten after each run (PARTIAL until all are in).
"""

from __future__ import annotations

import argparse
import json

import quality_2d
import torch
from _report import ROOT, header, write_json, write_record, write_section

OUT = ROOT / "benchmarks" / "results" / "pack-control"

# (name, loss, --set assignments, what it varies)
VARIANTS = [
    ("nsgan-m1", "nsgan", ["pack=1"], "m = 1 (no packing), 256 samples"),
    ("nsgan-m2", "nsgan", ["pack=2"], "m = 2, 256 samples (128 packs)"),
    ("nsgan-m4", "nsgan", ["pack=4"], "m = 4, 256 samples (64 packs): the PacGAN row of mode_tools"),
    ("nsgan-m4-b1024", "nsgan", ["pack=4", "batch_size=1024"], "m = 4, 1,024 samples (256 packs)"),
    ("nsgan-m1-40k", "nsgan", ["pack=1", "steps=40000"], "m = 1, 40,000 steps"),
    ("nsgan-m4-40k", "nsgan", ["pack=4", "steps=40000"], "m = 4, 64 packs, 40,000 steps"),
    ("ebgan-m4-40k", "ebgan", ["pt_weight=0", "pack=4", "steps=40000"], "EBGAN, m = 4, 64 packs, 40,000 steps"),
    ("ebgan-pt-40k", "ebgan", ["steps=40000"], "EBGAN-PT (the `grid` preset as it is), 40,000 steps"),
]


def run_variant(name: str, loss: str, sets: list[str], seed: int) -> dict:
    path = OUT / f"{name}-s{seed}.json"
    if path.is_file():
        return json.loads(path.read_text())
    r = quality_2d.run("grid", seed, "cpu", ["num_threads=1", f"loss={loss}", *sets])
    rec = {k: r[k] for k in ("modes", "hq_pct", "reverse_kl", "steps", "n_modes", "seconds")}
    rec.update(name=name, loss=loss, sets=sets, seed=seed)
    write_json(path, rec)
    return rec


def report(seeds: list[int], done: dict) -> None:
    n_plan = len(VARIANTS) * len(seeds)
    partial = len(done) < n_plan
    rows = [
        "| run | what varies | seed | steps | modes | high quality % | reverse KL | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, _loss, _sets, what in VARIANTS:
        for seed in seeds:
            r = done.get((name, seed))
            if r is None:
                rows.append(f"| `{name}` | {what} | {seed} | - | - | - | - | - |")
                continue
            kl = "-" if r["reverse_kl"] is None else f"{r['reverse_kl']:.3f}"
            rows.append(
                f"| `{name}` | {what} | {seed} | {r['steps']} | {r['modes']}/{r['n_modes']} | {r['hq_pct']:.1f} | "
                f"{kl} | {r['seconds']:.0f} |"
            )
    cmd = "python benchmarks/pack_control.py" + (f" --seeds {','.join(map(str, seeds))}" if seeds != [10] else "")
    body = (
        "## Packing on the grid: the number of packs and the budget (`benchmarks/pack_control.py`)"
        + (f" -- PARTIAL, {len(done)} of {n_plan} runs" if partial else "")
        + "\n\n"
        + header(cmd)
        + "- the `grid` preset (its networks, optimiser settings, cosine schedule over the run) with the loss and "
        "packing shown, no pulling-away term except the EBGAN-PT row; scored as `quality_2d.py` (2,500 samples "
        "of G); one thread\n\n" + "\n".join(rows) + "\n"
    )
    write_section("pack_control", body)
    write_record("pack-control/summary", {f"{k[0]}-s{k[1]}": v for k, v in done.items()}, partial=partial)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="10", help="comma-separated 2-D seeds (10: the first of mode_tools')")
    ap.add_argument("--report-only", action="store_true", help="train nothing: report what is done")
    args = ap.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    done = {}
    for name, loss, sets, _ in VARIANTS:
        for seed in seeds:
            if (OUT / f"{name}-s{seed}.json").is_file():
                done[(name, seed)] = run_variant(name, loss, sets, seed)
    report(seeds, done)
    if args.report_only:
        return
    for name, loss, sets, _ in VARIANTS:
        for seed in seeds:
            if (name, seed) in done:
                continue
            print(f"{name} seed {seed} ...", flush=True)
            r = done[(name, seed)] = run_variant(name, loss, sets, seed)
            print(f"{name} seed {seed}: {r['modes']}/{r['n_modes']} modes, {r['hq_pct']:.1f} % hq", flush=True)
            report(seeds, done)
    print("all runs done", flush=True)


if __name__ == "__main__":
    main()
