"""A recorded search: named changes to a preset, each trained and scored the same way, in one table.

    python benchmarks/search.py CATALOGUE [--only NAME,...] [--seeds 0] [--threads 1] [--report-only]
        [--no-write]
    python benchmarks/search.py --preset P [--loss L] --try NAME:KEY=VALUE,KEY=VALUE ... --section S

A catalogue (below) names the preset, the loss and the candidates with why each was tried; ``--try`` gives
candidates on the command line. Each run is ``ebgan train --preset P --loss L --set ... --seed S`` into
benchmarks/results/search/SECTION/NAME-sS/ (checkpoints are not committed), resumed where it stopped when the
command is repeated, then ``ebgan eval`` of the finished run on the run's data set (MNIST: 10,000 samples, IS,
the paper's I', FID, digit shares; ring/grid: 2,500 points, modes, % high quality, reverse KL). The table goes
to BENCHMARKS.md under the section's name. Times are training minutes beside other jobs: compare within a table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _report import ROOT, header, metrics_rows, run_ebgan, write_section  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "search"

# section -> preset, loss, goal, {name: (changes, why)}
CATALOGUES: dict[str, dict] = {
    "mnist_search": dict(
        preset="mnist",
        loss="ebgan",
        goal="IS >= 9.4, FID <= 2 (real test set: IS 9.80, FID 0.13)",
        candidates={
            "preset": ([], "the `mnist` preset as shipped (12,000 steps)"),
            "ema": (["g_ema=0.999"], "a moving average of G's weights"),
            "steps24k": (["steps=24000"], "twice the steps (the same schedule, stretched)"),
            "steps24k-ema": (["steps=24000", "g_ema=0.999"], "twice the steps and G's moving average"),
            "batch128": (["batch_size=128"], "twice the batch: less noisy gradients late in the schedule"),
            "margin-decay": (
                ["margin_schedule=linear", "margin_final=0"],
                "the margin decayed to 0 over the run: fakes near the data stop being pushed up",
            ),
            "no-pt": (["pt_weight=0"], "without the pulling-away term (EBGAN rather than EBGAN-PT)"),
            "pt1": (["pt_weight=1"], "a 10x stronger pulling-away term: more diverse batches"),
            "margin20": (["margin=20"], "twice the margin: fakes pushed further above the real energies"),
            "margin5": (["margin=5"], "half the margin: D's attention on fakes close to the data"),
            "lr5e-4": (["lr_g=5e-4", "lr_d=5e-4"], "half the learning rates: smaller, steadier late steps"),
        },
    ),
    "stacked_search": dict(
        preset="stacked-mnist",
        loss="ebgan",
        goal="1,000 modes and KL <= 0.05 (PacDCGAN2: 1000 / 0.06; real "
        "triplets 0.022; the preset at 4,000 steps: 997 / 0.313)",
        candidates={
            "ema": (["g_ema=0.999"], "a moving average of G's weights (it evened MNIST's digit shares)"),
            "steps12k-ema": (
                ["steps=12000", "g_ema=0.999"],
                "three times the steps and G's moving average (mnist-conv's digits were still "
                "unevenly shared after 4,000 steps)",
            ),
            "pt1": (
                ["pt_weight=1"],
                "a 10x stronger pulling-away term (the KL is mostly each channel's digit "
                "imbalance: 7 at 19 %, 4 and 8 at 5 % of samples)",
            ),
            "margin10": (["margin=10"], "a lower margin (17 now, scaled from mnist-conv's 10 by sqrt(3))"),
            "margin25": (["margin=25"], "a higher margin (margin 10 lost 63 modes)"),
            "lr-decay": (
                ["lr_schedule=linear", "lr_decay_from=0.5"],
                "the learning rates decayed linearly to 0 over the second half, as the `mnist` preset",
            ),
        },
    ),
    "began_2d_search": dict(
        preset="ring",
        loss="began",
        goal="BEGAN covering the ring's 8 modes (EBGAN: 8 / 94.9 %)",
        candidates={
            "default": ([], "the ring preset with BEGAN's defaults (gamma 0.5, 1-unit code, the preset's Adam)"),
            "gamma0.75": (["began_gamma=0.75"], "a higher diversity ratio"),
            "gamma1": (["began_gamma=1.0"], "gamma 1: fakes reconstructed as badly as real points"),
            "gamma1-lk0.01": (["began_gamma=1.0", "began_lambda_k=0.01"], "and a 10x faster k controller"),
            "code2": (["d_code=2"], "a 2-unit code, as wide as the data"),
            "began-adam": (["lr_g=1e-4", "lr_d=1e-4", "beta2=0.999"], "BEGAN's own Adam (1e-4, 0.5, 0.999)"),
        },
    ),
    "began_mnist_search": dict(
        preset="mnist",
        loss="began",
        goal="BEGAN training to sensible MNIST samples (EBGAN at 3,000 steps: IS "
        "7.44, FID 14.7; BEGAN so far IS 1.92, FID 107)",
        candidates={
            "began-adam": (
                ["steps=3000", "lr_g=1e-4", "lr_d=1e-4", "beta2=0.999"],
                "BEGAN's own Adam (the loss comparison's best BEGAN setting)",
            ),
            "began-adam-gamma0.7": (
                ["steps=3000", "lr_g=1e-4", "lr_d=1e-4", "beta2=0.999", "began_gamma=0.7"],
                "a higher diversity ratio",
            ),
            "began-adam-gamma1": (
                ["steps=3000", "lr_g=1e-4", "lr_d=1e-4", "beta2=0.999", "began_gamma=1.0"],
                "gamma 1: fakes as hard to reconstruct as real digits",
            ),
            "lr3e-4": (["steps=3000", "lr_g=3e-4", "lr_d=3e-4", "beta2=0.999"], "between 1e-4 and the preset's 1e-3"),
            "code16": (
                ["steps=3000", "lr_g=1e-4", "lr_d=1e-4", "beta2=0.999", "d_code=16"],
                "a 16-unit code (the one-class preset's), narrower than 64",
            ),
            "conv": (
                ["arch=conv", "g_channels=32", "d_channels=32", "steps=3000", "lr_g=1e-4", "lr_d=1e-4", "beta2=0.999"],
                "the conv nets of mnist-conv (BEGAN's paper uses a conv auto-encoder)",
            ),
            "no-bn": (
                ["steps=3000", "lr_g=1e-4", "lr_d=1e-4", "beta2=0.999", "batch_norm=false"],
                "without batch norm in G and D, as BEGAN's own networks",
            ),
            "no-bn-gamma1": (
                ["steps=3000", "lr_g=1e-4", "lr_d=1e-4", "beta2=0.999", "batch_norm=false", "began_gamma=1.0"],
                "without batch norm, and gamma 1",
            ),
            "gamma1-lk0.01": (
                ["steps=3000", "lr_g=1e-4", "lr_d=1e-4", "beta2=0.999", "began_gamma=1.0", "began_lambda_k=0.01"],
                "gamma 1 with a 10x faster k controller: at 0.001, k was "
                "still near 0 after 3,000 steps, so D never pushed the thin strokes up",
            ),
            "gamma1-12k": (
                ["steps=12000", "lr_g=1e-4", "lr_d=1e-4", "beta2=0.999", "began_gamma=1.0"],
                "gamma 1 at the `mnist` preset's full 12,000 steps (k has 4x longer to rise)",
            ),
            "gamma1-lk0.01-12k": (
                ["steps=12000", "lr_g=1e-4", "lr_d=1e-4", "beta2=0.999", "began_gamma=1.0", "began_lambda_k=0.01"],
                "the faster controller at the full 12,000 steps (the convergence measure was still falling at 3,000)",
            ),
            "conv-gamma1-lk0.01": (
                [
                    "arch=conv",
                    "g_channels=32",
                    "d_channels=32",
                    "steps=3000",
                    "lr_g=1e-4",
                    "lr_d=1e-4",
                    "beta2=0.999",
                    "began_gamma=1.0",
                    "began_lambda_k=0.01",
                ],
                "the faster controller and gamma 1 on mnist-conv's conv nets",
            ),
        },
    ),
    "ls_mnist_search": dict(
        preset="mnist-conv",
        loss="loss-sensitive",
        goal="the loss-sensitive GAN training to sensible MNIST samples (with the MLP nets: IS 1.11, FID 122)",
        candidates={
            "conv": (
                ["steps=3000", "batch_norm=false"],
                "a convolutional critic, as in Qi's experiments "
                "(mnist-conv nets without batch norm, which the per-sample gradient penalty needs; Adam 2e-4)",
            ),
            "conv-gp10": (["steps=3000", "batch_norm=false", "ls_gp=10"], "and a 10x stronger gradient penalty"),
            "conv-sn": (
                ["steps=3000", "ls_gp=0", "spectral_norm=true"],
                "spectral norm as the Lipschitz constraint instead, batch norm kept",
            ),
            "ebgan-reference": (
                ["steps=3000", "loss=ebgan"],
                "EBGAN-PT on the same conv nets and budget, for reference",
            ),
        },
    ),
}


def parse_try(text: str) -> tuple[str, list[str]]:
    name, _, sets = text.partition(":")
    if not name or any("=" not in s for s in sets.split(",") if s):
        raise SystemExit(f"--try wants NAME:KEY=VALUE,KEY=VALUE, got {text!r}")
    return name, [s for s in sets.split(",") if s]


def one(
    section: str, preset: str, loss: str, name: str, sets: list[str], seed: int, threads: int, data_root: str
) -> dict:
    run = RESULTS / section / f"{name}-s{seed}"
    scores_path = run / "scores.json"
    if not scores_path.exists():
        extra = [a for s in sets for a in ("--set", s)]
        run_ebgan(
            "train",
            "--preset",
            preset,
            "--loss",
            loss,
            "--seed",
            str(seed),
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
        out = run_ebgan("eval", str(run), "--data-root", data_root)
        scores_path.write_text(out.strip().splitlines()[-1] + "\n")
    scores = json.loads(scores_path.read_text())
    rows = metrics_rows(run)
    steps = max(r.get("step", 0) for r in rows)
    seconds = max(r.get("time", 0.0) for r in rows)
    return {"name": name, "seed": seed, "steps": steps, "minutes": seconds / 60, **scores}


def _f(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)  # reverse KL is undefined without high-quality samples


def score_cells(r: dict) -> tuple[str, str]:
    if r["against"] == "mnist":
        shares = r.get("class_shares") or [float("nan")]
        return (
            "IS | I' | FID | digit share min-max",
            f"{r['is']:.2f} | {r['paper_score']:.2f} | {r['fid']:.2f} | {min(shares):.1f}-{max(shares):.1f}%",
        )
    if r["against"] in ("ring", "grid"):
        return (
            "modes | high quality | reverse KL",
            f"{r['modes']} | {_f(r['hq_pct'], '.1f')}% | {_f(r['reverse_kl'], '.3f')}",
        )
    return "modes | KL", f"{r['modes']} | {_f(r['kl'], '.3f')}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("catalogue", nargs="?", choices=sorted(CATALOGUES), help="a recorded search")
    ap.add_argument("--only", default=None, help="these candidates of the catalogue (comma-separated)")
    ap.add_argument("--preset", help="with --try: the preset searched around")
    ap.add_argument("--loss", default="ebgan")
    ap.add_argument("--try", dest="tries", action="append", default=[], metavar="NAME:KEY=VALUE,...")
    ap.add_argument("--section", help="with --try: the BENCHMARKS.md section (and results folder) name")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--report-only", action="store_true", help="train nothing: report the finished runs")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if args.catalogue:
        cat = CATALOGUES[args.catalogue]
        section, preset, loss, goal = args.catalogue, cat["preset"], cat["loss"], cat["goal"]
        candidates = dict(cat["candidates"])
        if args.only:
            unknown = [n for n in args.only.split(",") if n not in candidates]
            if unknown:
                raise SystemExit(f"unknown candidates {unknown}; known: {', '.join(candidates)}")
            candidates = {n: c for n, c in candidates.items() if n in args.only.split(",")}
    else:
        if not (args.preset and args.tries and args.section):
            raise SystemExit("give a CATALOGUE, or --preset, --try ... and --section")
        section, preset, loss, goal = args.section, args.preset, args.loss, None
        candidates = {name: (sets, "") for name, sets in map(parse_try, args.tries)}
    data_root = str(ROOT.parent / "shared" / "data")
    results = []
    for name, (sets, _) in candidates.items():
        for seed in (int(s) for s in args.seeds.split(",")):
            if args.report_only and not (RESULTS / section / f"{name}-s{seed}" / "scores.json").exists():
                continue
            r = one(section, preset, loss, name, sets, seed, args.threads, data_root)
            print(f"{name} seed {seed}: {score_cells(r)[1]}, {r['minutes']:.1f} min", flush=True)
            results.append(r)
    if not results:
        raise SystemExit("no finished runs to report")
    cols = score_cells(results[0])[0]
    lines = [
        header().rstrip(),
        f"- `{preset}` preset, loss `{loss}`, one change per row, {args.threads} thread(s) per run, training "
        "minutes beside other jobs" + (f"; goal: {goal}" if goal else ""),
        "",
        f"| candidate | change | why | seed | steps | train min | {cols} |",
        "|---|---|---|---|---|---|" + "---|" * (cols.count("|") + 1),
    ]
    for r in results:
        sets, why = candidates[r["name"]]
        lines.append(
            f"| {r['name']} | {' '.join(f'`{s}`' for s in sets) or '-'} | {why} | {r['seed']} | "
            f"{r['steps']} | {r['minutes']:.1f} | {score_cells(r)[1]} |"
        )
    body = "\n".join(lines) + "\n"
    print(body)
    if not args.no_write:
        write_section(section, body)


if __name__ == "__main__":
    main()
