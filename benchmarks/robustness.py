"""The paper's robustness experiment on this machine: a seeded subset of its MNIST grid, GAN vs EBGAN vs
EBGAN-PT, the same number of settings per method, each trained for one epoch and scored by the project's
classifier; histograms and shares of settings that train well, with bootstrap intervals.

    python benchmarks/robustness.py [--sample 64] [--workers 2] [--report-only]
    python benchmarks/robustness.py --margin [--workers 2]      # Fig. 9: the paper-margin grid


It is `ebgan sweep paper-mnist --sample K --prune` into benchmarks/results/robustness/ (resumable: re-running
continues where a stopped run left off, across sessions), then the section "robustness" of BENCHMARKS.md.
Budget per run: 938 steps = one epoch of MNIST's 60,000 images at batch 64, the paper's batch size (the
paper does not state its own training length). It is what 192 runs cost on two cores in a few hours (a run
takes 10 s to 4 min, by the width of its generator). It measures which settings *start* to train within an
epoch, not how good each can become: the paper's best setting (nLayerG 5, sizeG 800, nLayerD 2, sizeD 1024)
reaches IS ~3.8 at this budget (the reference runs below) against 8.7 for the `mnist` preset after 12,000
steps. Hence the thresholds IS >= 3 (learns digits), 5 and 8.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _report import ROOT, header, write_section  # noqa: E402

from ebgan.sweep import run_sweep  # noqa: E402
from ebgan.sweep.report import THRESHOLDS, summary_table, write_report  # noqa: E402
from ebgan.sweep.store import read_meta, read_rows  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "robustness"
MARGIN = ROOT / "benchmarks" / "results" / "margin"
BEST = ROOT / "benchmarks" / "results" / "robustness-best"
# The paper's best setting (PAPER.md s.1) for each method at the same budget: where one epoch gets.
BEST_GRID = {
    "preset": "mnist",
    "steps": 938,
    "base": {
        "g_layers": 5,
        "d_layers": 2,
        "g_size": 800,
        "d_size": 1024,
        "d_dropout": 0.0,
        "optim_g": "adam",
        "optim_d": "adam",
        "lr": 0.001,
    },
    "methods": {"ebgan-pt": {}, "gan": {}, "ebgan": {}},
}


def body(out: Path, command: str) -> str:
    meta = read_meta(out)
    rows = read_rows(out)
    methods = list(meta["methods"])
    total = (meta.get("sample") or 0) * len(methods)
    done = {m: sum(r["method"] == m for r in rows) for m in methods}
    partial = len(rows) < total
    rel = out.relative_to(ROOT).as_posix()
    lines = [
        header(command).rstrip(),
        f"- grid: paper-mnist (the paper's Table 1), {meta.get('sample')} settings per method drawn with "
        f"seed {meta['seed']}; {meta['steps']} steps per run (one epoch at batch 64); everything outside the "
        "grid from the `mnist` preset, the same for every method; scores on 10,000 samples by the "
        "project's classifier",
        f"- status: {'PARTIAL, ' if partial else ''}{len(rows)} of {total} runs recorded "
        f"({', '.join(f'{m} {n}' for m, n in done.items())})",
        f"- files: `{rel}/results.jsonl` (one row per run), `{rel}/report.md`, figures `{rel}/fig2_is.png`, "
        f"`{rel}/fig2_paper_score.png`, `{rel}/fig3_gan.png`",
        "",
    ]
    lines += ["Inception score, all settings (trains well: IS >= 3 / 5 / 8; real MNIST 9.81):", ""]
    lines += summary_table(rows, methods, "is", THRESHOLDS["is"]) + [""]
    for k in (4, 3):
        sub = [r for r in rows if max(r.get("g_layers", 0), r.get("d_layers", 0)) <= k]
        lines += [f"nLayer <= {k}:", ""] + summary_table(sub, methods, "is", THRESHOLDS["is"]) + [""]
    lines += ["The paper's I' (median only: it is unbounded and not monotone in quality):", ""]
    lines += summary_table(rows, methods, "paper_score", ()) + [""]
    lines += [f"![IS histograms]({rel}/fig2_is.png)", ""]
    best = read_rows(BEST) if (BEST / "results.jsonl").is_file() else []
    if best:
        lines += [
            "Reference: the paper's best setting (nLayerG 5, sizeG 800, nLayerD 2, sizeD 1024, no dropout, Adam "
            "lr 1e-3) for each method at the same budget:",
            "",
            "| method | IS | FID | train s |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['method']} | {r.get('is', float('nan')):.2f} | {r.get('fid', float('nan')):.1f} | "
            f"{r.get('train_seconds', float('nan')):.0f} |"
            for r in best
        ]
        lines.append("")
    return "\n".join(lines)


EPOCH = 938  # steps: one epoch of 60,000 images at batch 64


def long_body(out: Path, command: str, epochs: int) -> str:
    """The longer-budget sweep: its shares, and each setting paired with its one-epoch run."""
    meta = read_meta(out)
    rows = read_rows(out)
    methods = list(meta["methods"])
    total = (meta.get("sample") or 0) * len(methods)
    partial = len(rows) < total
    rel = out.relative_to(ROOT).as_posix()
    lines = [
        header(command).rstrip(),
        f"- grid: paper-mnist, the first {meta.get('sample')} settings per method of the one-epoch sweep's "
        f"seeded sample (seed {meta['seed']}), {meta['steps']} steps per run ({epochs} epochs at batch 64); "
        "the same settings, seeds and scoring as the one-epoch runs",
        f"- status: {'PARTIAL, ' if partial else ''}{len(rows)} of {total} runs recorded",
        f"- files: `{rel}/results.jsonl`, `{rel}/report.md`, `{rel}/fig2_is.png`",
        "",
        "Inception score, all settings (IS >= 3 / 5 / 8; real MNIST 9.81):",
        "",
    ]
    lines += summary_table(rows, methods, "is", THRESHOLDS["is"]) + [""]
    one = {(r["method"], r["setting_id"]): r for r in read_rows(OUT)} if (OUT / "results.jsonl").is_file() else {}
    paired = [(r, one[(r["method"], r["setting_id"])]) for r in rows if (r["method"], r["setting_id"]) in one]
    if paired:
        lines += [
            "Paired with the one-epoch run of the same setting (runs with a score at both budgets):",
            "",
            "| method | pairs | median IS, 1 epoch | median IS, " + f"{epochs} epochs | settings that improved | "
            "IS >= 5 at 1 epoch | IS >= 5 at " + f"{epochs} epochs |",
            "|---|---|---|---|---|---|---|",
        ]
        import statistics

        for m in methods:
            ps = [(a, b) for a, b in paired if a["method"] == m and "is" in a and "is" in b]
            if not ps:
                continue
            lines.append(
                f"| {m} | {len(ps)} | {statistics.median(b['is'] for _, b in ps):.2f} | "
                f"{statistics.median(a['is'] for a, _ in ps):.2f} | "
                f"{sum(a['is'] > b['is'] for a, b in ps)} | {sum(b['is'] >= 5 for _, b in ps)} | "
                f"{sum(a['is'] >= 5 for a, _ in ps)} |"
            )
        lines.append("")
    lines += [f"![IS histograms]({rel}/fig2_is.png)", ""]
    return "\n".join(lines)


def margin_body(out: Path, command: str) -> str:
    meta = read_meta(out)
    rows = read_rows(out)
    rel = out.relative_to(ROOT).as_posix()
    report = (out / "report.md").read_text()
    table = report[report.index("## Score against the margin") :].split("\n\n")[1]
    lines = [
        header(command).rstrip(),
        f"- grid: paper-margin (the paper's Fig. 9: nLayerG 5 x 1600, nLayerD 2 x 1024, no dropout, Adam lr 1e-3), "
        f"{meta['steps']} steps per run, seed {meta['seed']}; {len(rows)} of 16 runs recorded; median IS per "
        f"margin (one run each); figure `{rel}/fig9_margin.png`",
        "",
        table,
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", type=int, default=64)
    ap.add_argument(
        "--epochs",
        type=int,
        default=1,
        help="epochs of 938 steps per run; more than one writes "
        "into results/robustness-{N}ep/ and its own section, paired with the one-epoch runs",
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--report-only", action="store_true", help="write the report and section from what is there")
    ap.add_argument("--margin", action="store_true", help="the margin sweep (paper-margin) instead")
    args = ap.parse_args()
    if args.margin:
        command = f"python benchmarks/robustness.py --margin --workers {args.workers}"
        if not args.report_only:
            run_sweep("paper-margin", MARGIN, workers=args.workers, threads=1, data_root=args.data_root, prune=True)
        write_report(MARGIN)
        write_section("robustness_margin", margin_body(MARGIN, command))
        return
    if args.epochs > 1:
        out = Path(args.out) if args.out != str(OUT) else OUT.with_name(f"robustness-{args.epochs}ep")
        command = (
            f"python benchmarks/robustness.py --epochs {args.epochs} --sample {args.sample} --workers {args.workers}"
        )
        if not args.report_only:
            run_sweep(
                "paper-mnist",
                out,
                sample=args.sample,
                steps=EPOCH * args.epochs,
                workers=args.workers,
                threads=1,
                data_root=args.data_root,
                prune=True,
            )
        write_report(out)
        write_section(f"robustness_{args.epochs}ep", long_body(out, command, args.epochs))
        return
    out = Path(args.out)
    command = f"python benchmarks/robustness.py --sample {args.sample} --workers {args.workers}"
    if not args.report_only:
        run_sweep(BEST_GRID, BEST, workers=1, threads=1, data_root=args.data_root, prune=True)
        run_sweep(
            "paper-mnist",
            out,
            sample=args.sample,
            workers=args.workers,
            threads=1,
            data_root=args.data_root,
            prune=True,
        )
    write_report(out)
    write_section("robustness", body(out, command))


if __name__ == "__main__":
    main()
