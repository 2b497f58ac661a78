"""The search for a better MNIST preset (issue: IS >= 9.4 and FID <= 2 on the project's classifier within about
10 minutes of training on this machine): named changes to the `mnist` preset, each trained and scored the
same way, beside the unchanged preset.

    python benchmarks/mnist_search.py [--candidates preset,steps24k,...] [--seeds 0] [--threads 1]
        [--report-only] [--no-write]

Each run is ``ebgan train --preset mnist --set ...`` into benchmarks/results/mnist-search/NAME-sS/ (checkpoints
are not committed), resumed where it stopped when the command is repeated, then ``ebgan eval`` of the finished
run (10,000 samples, sampling seed 0, IS over 10 splits, the paper's I', FID against the training set, the
share of samples in each digit). Times are training minutes beside other jobs: compare them within one table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _report import ROOT, header, run_ebgan, write_section  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "mnist-search"

# name -> (changes to the preset, why it was tried)
CANDIDATES: dict[str, tuple[list[str], str]] = {
    "preset": ([], "the `mnist` preset as shipped (12,000 steps)"),
    "ema": (["g_ema=0.999"], "a moving average of G's weights"),
    "steps24k": (["steps=24000"], "twice the steps (the same schedule, stretched)"),
    "steps24k-ema": (["steps=24000", "g_ema=0.999"], "twice the steps and G's moving average"),
    "batch128": (["batch_size=128"], "twice the batch: less noisy gradients late in the schedule"),
    "margin-decay": (["margin_schedule=linear", "margin_final=0"],
                     "the margin decayed to 0 over the run, as EBGAN-LN's; fakes near the data stop being pushed up"),
    "no-pt": (["pt_weight=0"], "without the pulling-away term (EBGAN rather than EBGAN-PT)"),
    "pt1": (["pt_weight=1"], "a 10x stronger pulling-away term: more diverse batches"),
}


def finished(run: Path) -> bool:
    return (run / "result.json").exists() or (run / "scores.json").exists()


def one(name: str, seed: int, threads: int, data_root: str) -> dict:
    sets, _ = CANDIDATES[name]
    run = RESULTS / f"{name}-s{seed}"
    scores_path = run / "scores.json"
    if not scores_path.exists():
        extra = [a for s in sets for a in ("--set", s)]
        run_ebgan("train", "--preset", "mnist", "--seed", str(seed), *extra, "--set", f"num_threads={threads}",
                  "--data-root", data_root, "--out", str(run), "--resume", "--no-progress")
        out = run_ebgan("eval", str(run), "--against", "mnist", "--data-root", data_root)
        scores_path.write_text(out.strip().splitlines()[-1] + "\n")
    scores = json.loads(scores_path.read_text())
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    steps = max(r.get("step", 0) for r in rows)
    seconds = max(r.get("time", 0.0) for r in rows)
    return {"name": name, "seed": seed, "steps": steps, "minutes": seconds / 60, **scores}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", default=",".join(CANDIDATES))
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--report-only", action="store_true", help="train nothing: report the finished runs")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    data_root = str(ROOT.parent / "shared" / "data")
    names = args.candidates.split(",")
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        sys.exit(f"unknown candidates {unknown}; known: {', '.join(CANDIDATES)}")
    results = []
    for name in CANDIDATES:  # the table keeps the catalogue's order
        if name not in names:
            continue
        for seed in (int(s) for s in args.seeds.split(",")):
            if args.report_only and not (RESULTS / f"{name}-s{seed}" / "scores.json").exists():
                continue
            r = one(name, seed, args.threads, data_root)
            print(f"{name} seed {seed}: IS {r['is']:.2f}, FID {r['fid']:.2f}, {r['minutes']:.1f} min", flush=True)
            results.append(r)
    if not results:
        sys.exit("no finished runs to report")
    lines = [header().rstrip(),
             f"- `mnist` preset with one change per row, {args.threads} thread(s) per run, training minutes beside "
             "other jobs; 10,000 samples (seed 0) on the project's classifier; goal IS >= 9.4, FID <= 2; real "
             "test set IS 9.80, FID 0.13", "",
             "| candidate | change | why | seed | steps | train min | IS | I' | FID | digit share min-max |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        sets, why = CANDIDATES[r["name"]]
        shares = r.get("class_shares") or [float("nan")]
        lines.append(f"| {r['name']} | {' '.join(f'`{s}`' for s in sets) or '-'} | {why} | {r['seed']} | {r['steps']} "
                     f"| {r['minutes']:.1f} | {r['is']:.2f} | {r['paper_score']:.2f} | {r['fid']:.2f} | "
                     f"{min(shares):.1f}-{max(shares):.1f}% |")
    body = "\n".join(lines) + "\n"
    print(body)
    if not args.no_write:
        write_section("mnist_search", body)


if __name__ == "__main__":
    main()
