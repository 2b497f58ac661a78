"""Every published figure recomputed from its committed result file.

    python benchmarks/check_claims.py              # check README.md and BENCHMARKS.md; exit 1 on any mismatch
    python benchmarks/check_claims.py --show ID    # the figures of claim ID, as a table row must print them
    python benchmarks/check_claims.py --list       # every claim: status, result files, command
    python benchmarks/check_claims.py --derive-compare-tables   # rewrite results/compare-tables.json (torch)

The README's results tables and the claims index at the top of BENCHMARKS.md mark each row with
``<!-- claim: ID -->`` in its first cell. For a row, every number in its figure cells (all cells but the first
and those headed claim, protocol, seeds, command, section, details) is compared, in order, with what the
registry below computes for ID from the result files under ``benchmarks/results/`` (formatted as published:
the rounding is the registry's). The ``anchor`` column (published figures of other work, the paper) is
compared with the claim's anchors. A number in the row that the registry does not give, one it gives that the
row lacks, a different digit, or an ID the registry does not know: each is an error. Text in backticks is not
a figure (settings such as `IS >= 3` or `--energy-keep 0.5`), nor is an HTML comment.

A claim whose figures have no result file (``missing``) or whose runs are still going (``partial``) may only
appear in the BENCHMARKS.md index, with no number in its figure cell; never in the README. Besides, the check
asks of BENCHMARKS.md: every README claim is in its index, every registered claim too, no two ``##`` or ``###`` titles
are the same, and every ``<!-- NAME:start -->`` has its ``<!-- NAME:end -->`` (the sections benchmark scripts
rewrite), and every link to one of its sections leads to a heading.

Needs only the standard library and numpy (no torch), so that the test suite runs it in well under a second.
"""

from __future__ import annotations

import argparse
import ast
import functools
import json
import re
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
BENCHMARKS = ROOT / "BENCHMARKS.md"
SIDECAR = ROOT / "src" / "ebgan" / "weights" / "mnist_classifier.json"


# ------------------------------------------------------------------------------------------------ registry


@dataclass
class Claim:
    id: str
    status: str  # "measured", "partial" (runs still going) or "missing" (no result file)
    sources: tuple[str, ...]  # result files, relative to the repository (patterns with *)
    figures: Callable[[], list[str]] | None = None
    anchors: Callable[[], list[str]] | None = None
    command: str = ""  # the command that (re-)measures it


REGISTRY: dict[str, Claim] = {}


def claim(id: str, sources: list[str], command: str, anchors: Callable[[], list[str]] | None = None):
    """Register ``fn`` (no arguments: the claim's figures, formatted as published, in the order printed)."""

    def deco(fn: Callable[[], list[str]]) -> Callable[[], list[str]]:
        REGISTRY[id] = Claim(id, "measured", tuple(sources), fn, anchors, command)
        return fn

    return deco


def pending(
    id: str, status: str, command: str, sources: list[str] = (), anchors: Callable[[], list[str]] | None = None
) -> None:
    """A claim without figures yet: ``missing`` (no result file) or ``partial`` (runs in progress)."""
    REGISTRY[id] = Claim(id, status, tuple(sources), None, anchors, command)


def constant(*figures: str) -> Callable[[], list[str]]:
    return lambda: list(figures)


# ------------------------------------------------------------------------------------------------ readers


@functools.cache
def _read(path: Path, mtime_ns: int) -> str:
    return path.read_text()


def _text(rel: str) -> str:
    """A result file's text, read once per version of the file (the claims read some files many times)."""
    path = ROOT / rel
    return _read(path, path.stat().st_mtime_ns)


def read_json(rel: str) -> dict:
    """A JSON result file, parsed once per version (shared: callers do not modify it)."""
    return _parse(_text(rel), False)


def read_jsonl(rel: str) -> list[dict]:
    """A JSON-lines result file, one dict per line, parsed once per version (shared: not modified)."""
    return _parse(_text(rel), True)


@functools.lru_cache(maxsize=256)
def _parse(text: str, lines: bool):
    return [json.loads(line) for line in text.splitlines() if line.strip()] if lines else json.loads(text)


def script_constant(script: str, name: str):
    """A literal assigned at the top level of ``benchmarks/SCRIPT`` (read, not imported: no torch)."""
    return _script_constant(script, name, (ROOT / "benchmarks" / script).stat().st_mtime_ns)


@functools.cache
def _script_constant(script: str, name: str, mtime_ns: int):
    tree = ast.parse((ROOT / "benchmarks" / script).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise KeyError(f"{name} is not assigned in benchmarks/{script}")


def train_minutes(run: str) -> float:
    """The training time a run folder's metrics.jsonl records (its largest ``time``), in minutes."""
    return max(r.get("time", 0.0) for r in read_jsonl(f"{run}/metrics.jsonl")) / 60


def keep_rows(run: str) -> dict[float, dict]:
    """``ebgan eval RUN --energy-keep Q`` scores stored in RUN/energy-keep.jsonl, by Q."""
    return {r["energy_keep"]: r for r in read_jsonl(f"{run}/energy-keep.jsonl")}


def med(values) -> float:
    return statistics.median(list(values))


def count(v: float) -> str:
    """A mode count or a median of counts (x.5 between two integers), as the tables print it."""
    return f"{v:.0f}" if v == int(v) else f"{v:.1f}"


# ------------------------------------------------------------------------------------------------ 2-D presets

ER = "benchmarks/results/energy-rejection"
SEEDS5 = range(5)


def _mixture(preset: str) -> list[dict]:
    return [keep_rows(f"{ER}/{preset}-s{s}")[1.0] for s in SEEDS5]


@claim("ring", [f"{ER}/ring-s*/energy-keep.jsonl"], "python benchmarks/energy_rejection.py --groups ring")
def _ring() -> list[str]:
    rs = _mixture("ring")
    full = [r for r in rs if r["modes"] == 8]
    others = sorted({r["modes"] for r in rs} - {8})
    hq = [r["hq_pct"] for r in rs]
    # "8/8 modes in 4 of 5 seeds (7/8 in the other); high quality 96.2% median (56.0-96.5%), `>= 95 %` in 4 of 5
    # seeds; reverse KL 0.015 median"
    return (
        ["8", "8", str(len(full)), str(len(rs))]
        + [x for m in others for x in (str(m), "8")]
        + [
            f"{med(hq):.1f}",
            f"{min(hq):.1f}",
            f"{max(hq):.1f}",
            str(sum(h >= 95 for h in hq)),
            str(len(rs)),
            f"{med(r['reverse_kl'] for r in rs):.3f}",
        ]
    )


@claim("grid", [f"{ER}/grid-s*/energy-keep.jsonl"], "python benchmarks/energy_rejection.py --groups grid")
def _grid() -> list[str]:
    rs = _mixture("grid")
    modes = [r["modes"] for r in rs]
    hq = [r["hq_pct"] for r in rs]
    return [
        str(min(modes)),
        str(max(modes)),
        "25",
        "25",
        str(sum(m == 25 for m in modes)),
        str(len(rs)),
        f"{med(hq):.1f}",
        f"{min(hq):.1f}",
        f"{max(hq):.1f}",
        f"{med(r['reverse_kl'] for r in rs):.3f}",
    ]


# The presets on ten seeds none of which chose a setting (issue 33): the EBGAN-PT runs of the mode-tools comparison
MT = "benchmarks/results/mode-tools"


def _seed_range(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def _fresh_2d(data: str, tool: str = "ebgan-pt", files: list[str] | None = None) -> list[str]:
    """'K/K modes in F of N seeds (LO-HI of K in the others); high quality M% median, W% on the worst seed;
    `>= 95 %` in H of N seeds; reverse KL R median' for ``tool``'s runs on the comparison's seeds (default: the
    preset's), or for the runs in ``files``."""
    seeds = _seed_range(script_constant("mode_tools.py", "SEEDS_2D"))
    rs = [read_json(f) for f in (files or [f"{MT}/{data}-{tool}-s{s}.json" for s in seeds])]
    k, n = rs[0]["n_modes"], len(rs)
    modes, hq = [r["modes"] for r in rs], [r["hq_pct"] for r in rs]
    others = sorted({m for m in modes if m < k})
    out = [str(k), str(k), str(sum(m == k for m in modes)), str(n)]
    if others:
        out += [str(others[0])] + ([str(others[-1])] if len(others) > 1 else []) + [str(k)]
    return out + [
        f"{med(hq):.1f}",
        f"{min(hq):.1f}",
        str(sum(h >= 95 for h in hq)),
        str(n),
        f"{med(r['reverse_kl'] for r in rs):.3f}",
    ]


@claim(
    "ring-fresh",
    [f"{MT}/ring-ebgan-pt-s*.json"],
    "python benchmarks/mode_tools.py --data ring --tools ebgan-pt",
    anchors=constant("7.8", "95.9"),  # PacGAN4's averages (Lin et al. 2018, Table 3)
)
def _ring_fresh() -> list[str]:
    return _fresh_2d("ring")


@claim(
    "grid-fresh",
    [f"{MT}/grid-ebgan-pt-s*.json"],
    "python benchmarks/mode_tools.py --data grid --tools ebgan-pt",
    anchors=constant("24.8", "93.6"),  # PacGAN4's averages (Lin et al. 2018, Table 1)
)
def _grid_fresh() -> list[str]:
    return _fresh_2d("grid")


@claim(
    "ring-mbd-tools",
    [f"{MT}/ring-mbd-s*.json"],
    "python benchmarks/mode_tools.py --data ring --tools mbd",
    anchors=constant("7.8", "95.9"),
)
def _ring_mbd_tools() -> list[str]:
    return _fresh_2d("ring", "mbd")


@claim(
    "grid-mbd-tools",
    [f"{MT}/grid-mbd-s*.json"],
    "python benchmarks/mode_tools.py --data grid --tools mbd",
    anchors=constant("24.8", "93.6"),
)
def _grid_mbd_tools() -> list[str]:
    return _fresh_2d("grid", "mbd")


# The -mbd presets on seeds 20-29 (chosen on 10-19): quality_2d.py's runs, one file each.
Q2D_MBD = "benchmarks/results/quality-2d-runs/quality_2d-ring-mbd-grid-mbd-s20-29"


@claim(
    "ring-mbd",
    [f"{Q2D_MBD}/ring-mbd-s*.json"],
    "python benchmarks/quality_2d.py --presets ring-mbd grid-mbd --seeds 20 21 22 23 24 25 26 27 28 29",
    anchors=constant("7.8", "95.9"),
)
def _ring_mbd() -> list[str]:
    return _fresh_2d("ring", files=[f"{Q2D_MBD}/ring-mbd-s{s}.json" for s in range(20, 30)])


pending(
    "grid-mbd",
    "partial",
    "python benchmarks/quality_2d.py --presets ring-mbd grid-mbd --seeds 20 21 22 23 24 25 26 27 28 29",
    [f"{Q2D_MBD}/grid-mbd-s*.json"],
    anchors=constant("24.8", "93.6"),
)


# ------------------------------------------------------------------------------------------------ MNIST quality

COMPARE = "benchmarks/results/compare.jsonl"
COMPARE_TABLES = "benchmarks/results/compare-tables.json"


def _real() -> list[str]:
    ref = json.loads(SIDECAR.read_text())["reference"]
    return [f"{ref['is']:.3f}", f"{ref['fid_test_vs_train']:.3f}"]


def compare_runs(table: str, optim: str, dataset: str, loss: str) -> list[dict]:
    """The compare.jsonl rows of one cell of a loss-comparison table, by the config keys the table used."""
    keys = read_json(COMPARE_TABLES)["tables"][table][optim][dataset][loss]
    rows = _compare_rows(_text(COMPARE))
    return sorted((rows[(dataset, loss, k)] for k in keys), key=lambda r: r["seed"])


@functools.lru_cache(maxsize=4)
def _compare_rows(text: str) -> dict:
    rows = map(json.loads, filter(str.strip, text.splitlines()))
    return {(r["dataset"], r["loss"], r["config_key"]): r for r in rows}


@claim(
    "mnist",
    [COMPARE, COMPARE_TABLES],
    "python benchmarks/compare_losses.py --datasets mnist --steps-mnist "
    "12000 --seeds 0,1 --losses ebgan,nsgan,lsgan,wgan-gp --optim preset --section compare_losses_mnist_full",
    anchors=_real,
)
def _mnist() -> list[str]:
    r = compare_runs("mnist_full", "preset", "mnist", "ebgan")[0]  # seed 0
    m = r["metrics"]
    return [f"{m['is']:.2f}", f"{m['is_std']:.2f}", f"{m['fid']:.2f}", f"{r['train_seconds']:.0f}"]


SEARCH = "benchmarks/results/search"


@claim(
    "mnist-long",
    [f"{SEARCH}/mnist_search/steps24k-ema-s*/scores.json"],
    "python benchmarks/search.py mnist_search --only steps24k-ema --seeds 0,1",
    anchors=_real,
)
def _mnist_long() -> list[str]:
    runs = [f"{SEARCH}/mnist_search/steps24k-ema-s{s}" for s in (0, 1)]
    sc = [read_json(f"{r}/scores.json") for r in runs]
    shares = [x for s in sc for x in s["class_shares"]]
    return (
        [f"{s['is']:.2f}" for s in sc]
        + [f"{s['fid']:.2f}" for s in sc]
        + [f"{min(shares):.1f}", f"{max(shares):.1f}"]
        + [f"{train_minutes(r):.1f}" for r in runs]
    )


QUALITY_MNIST = "benchmarks/results/quality_mnist.json"


@claim(
    "mnist-conv",
    [QUALITY_MNIST],
    "python benchmarks/quality_mnist.py --presets mnist,mnist-conv --threads 1",
)
def _mnist_conv() -> list[str]:
    (r,) = [f for f in read_json(QUALITY_MNIST)["figures"] if f["preset"] == "mnist-conv" and f["seed"] == 0]
    return [
        f"{r['is']:.2f}",
        f"{r['is_std']:.2f}",
        f"{r['fid']:.1f}",
        f"{r['is_mlp']:.2f}",
        f"{r['fid_mlp']:.1f}",
        f"{min(r['class_shares']):.1f}",
        f"{max(r['class_shares']):.1f}",
        f"{r['train_seconds'] / 60:.1f}",
    ]


# ------------------------------------------------------------------------------------------------ losses compared

# (loss, format) of each metric in the README's loss table: ring/grid modes / % high quality / reverse KL, MNIST
# FID / IS; medians over seeds of the defined values, as compare_losses.table prints them.
_CMP_METRICS = {
    "ring": (("modes", None), ("hq_pct", ".1f"), ("reverse_kl", ".3f")),
    "grid": (("modes", None), ("hq_pct", ".1f"), ("reverse_kl", ".3f")),
    "mnist": (("fid", ".1f"), ("is", ".2f")),
}
LOSSES = ("ebgan", "gan", "nsgan", "wgan", "wgan-gp", "lsgan", "loss-sensitive", "began", "hinge")


def _cmp_key(dataset: str, runs: list[dict]) -> tuple:
    """compare_losses.selection_key: MNIST by median FID; ring, grid by modes (more first), then reverse KL."""
    ok = [r for r in runs if r["status"] == "ok"]
    if not ok:
        return (1, float("inf"), float("inf"))
    m = {
        k: med(float("inf") if r["metrics"][k] is None else r["metrics"][k] for r in ok)
        for k, _ in _CMP_METRICS[dataset]
    }
    return (0, m["fid"], 0.0) if dataset == "mnist" else (0, -m["modes"], m["reverse_kl"])


def _cmp_cell(dataset: str, runs: list[dict]) -> list[str]:
    ok = [r for r in runs if r["status"] == "ok"]
    out = []
    for key, fmt in _CMP_METRICS[dataset]:
        v = med(r["metrics"][key] for r in ok if r["metrics"][key] is not None)
        out.append(count(v) if fmt is None else f"{v:{fmt}}")
    return out


def _cmp_best(table: str, dataset: str, setting: str, losses=LOSSES) -> list[dict]:
    """The runs of the best loss other than EBGAN under one setting (``best``: each loss's better setting)."""

    def runs(loss):
        if setting != "best":
            return compare_runs(table, setting, dataset, loss)
        return min(
            (compare_runs(table, o, dataset, loss) for o in ("defaults", "preset")),
            key=lambda rs: _cmp_key(dataset, rs),
        )

    return min((runs(loss) for loss in losses if loss != "ebgan"), key=lambda rs: _cmp_key(dataset, rs))


def _compare_row(dataset: str) -> list[str]:
    return _cmp_cell(dataset, compare_runs("main", "own", dataset, "ebgan")) + [
        x for s in ("own", "preset", "best") for x in _cmp_cell(dataset, _cmp_best("main", dataset, s))
    ]


CMP_CMD = "python benchmarks/compare_losses.py [--optim preset|best]"
for _d in ("ring", "grid", "mnist"):
    claim(f"compare-{_d}", [COMPARE, COMPARE_TABLES], CMP_CMD)(lambda d=_d: _compare_row(d))


@claim(
    "compare-mnist-12k",
    [COMPARE, COMPARE_TABLES],
    "python benchmarks/compare_losses.py --datasets mnist "
    "--steps-mnist 12000 --seeds 0,1 --losses ebgan,nsgan,lsgan,wgan-gp --optim preset --section "
    "compare_losses_mnist_full",
)
def _compare_12k() -> list[str]:
    losses = ("ebgan", "nsgan", "lsgan", "wgan-gp")
    return _cmp_cell("mnist", compare_runs("mnist_full", "preset", "mnist", "ebgan")) + _cmp_cell(
        "mnist", _cmp_best("mnist_full", "mnist", "preset", losses)
    )


@claim("ls-conv", [f"{SEARCH}/ls_mnist_search/*/scores.json"], "python benchmarks/search.py ls_mnist_search")
def _ls_conv() -> list[str]:
    sn, ref = (read_json(f"{SEARCH}/ls_mnist_search/{n}-s0/scores.json") for n in ("conv-sn", "ebgan-reference"))
    return [f"{sn['fid']:.2f}", f"{sn['is']:.2f}", f"{ref['fid']:.2f}", f"{ref['is']:.2f}"]


@claim(
    "began-mnist",
    [f"{SEARCH}/began_mnist_search/*/scores.json"],
    "python benchmarks/search.py began_mnist_search --only gamma1-lk0.01-12k",
)
def _began_mnist() -> list[str]:
    s = read_json(f"{SEARCH}/began_mnist_search/gamma1-lk0.01-12k-s0/scores.json")
    return [f"{s['is']:.2f}", f"{s['fid']:.2f}", f"{min(s['class_shares']):.1f}", f"{max(s['class_shares']):.1f}"]


# ------------------------------------------------------------------------------------------------ anomaly

ANOMALY = "benchmarks/results/anomaly.jsonl"


def _anchors_anomaly() -> list[str]:
    a = script_constant("anomaly.py", "ANCHORS")
    return [f"{a['OCGAN'][0]}", f"{a['Deep SVDD'][0]}"]


def _oneclass(model: str, field: str) -> float:
    rows = [
        r
        for r in read_jsonl(ANOMALY)
        if r["status"] == "ok"
        and r.get("anomaly") is None
        and r["model"] == model
        and r["seed"] == 0
        and not r.get("set")
    ]
    per = {d: statistics.mean(r[field] for r in rows if r["digit"] == d) for d in range(10)}
    return statistics.mean(per.values())


@claim("anomaly", [ANOMALY], "python benchmarks/anomaly.py --seeds 0", anchors=_anchors_anomaly)
def _anomaly() -> list[str]:
    ebgan = [
        r
        for r in read_jsonl(ANOMALY)
        if r["status"] == "ok" and r.get("anomaly") is None and r["model"] == "ebgan" and r["seed"] == 0
    ]
    return [
        f"{_oneclass('ebgan', 'auroc_ink'):.1f}",
        f"{_oneclass('ae', 'auroc_ink'):.1f}",
        f"{_oneclass('ae-pt', 'auroc_ink'):.1f}",
        f"{_oneclass('ebgan', 'auroc_energy'):.1f}",
        f"{med(r['train_seconds'] for r in ebgan):.0f}",
    ]


ANOMALY_FRESH = "benchmarks/results/anomaly-fresh.jsonl"
FRESH_COMMAND = (
    "python benchmarks/anomaly.py --seeds 1,2,3 --models ebgan --pairs 0 --no-throughput "
    "--out benchmarks/results/anomaly-fresh.jsonl --section anomaly_fresh"
)


def _fresh_means(field: str) -> list[float]:
    """Per fresh seed whose ten digits are all done: the mean over the digits of ``field``."""
    rows = [
        r
        for r in read_jsonl(ANOMALY_FRESH)
        if r["status"] == "ok" and r.get("anomaly") is None and r["model"] == "ebgan" and field in r
    ]
    out = []
    for s in sorted({r["seed"] for r in rows}):
        per = {r["digit"]: r[field] for r in rows if r["seed"] == s}
        if set(per) == set(range(10)):
            out.append(statistics.mean(per.values()))
    return out


def _anchors_fresh() -> list[str]:
    a = script_constant("anomaly.py", "MEAN_ANCHORS")
    return [f"{v}" for v in a.values()] + [f"{script_constant('anomaly.py', 'GOAL')}"]


@claim("anomaly-fresh", [ANOMALY_FRESH], FRESH_COMMAND, anchors=_anchors_fresh)
def _anomaly_fresh() -> list[str]:
    """The headline: the test AUROC per unit of ink (the score validation chose) on the fresh seeds that are
    complete (mean, then +- std and the number of seeds when more than one), the raw energy's, and the
    validation AUROCs of the same weights by both scores."""
    ink, energy = _fresh_means("auroc_ink"), _fresh_means("auroc_energy")
    v_ink, v_energy = _fresh_means("val_auroc_ink"), _fresh_means("val_auroc_energy")
    out = [f"{statistics.mean(ink):.1f}"]
    if len(ink) > 1:
        out += [f"{statistics.stdev(ink):.1f}", f"{len(ink)}"]
    return out + [f"{statistics.mean(x):.1f}" for x in (energy, v_ink, v_energy)]


def _anchors_deep_sad() -> list[str]:
    d = script_constant("anomaly.py", "DEEP_SAD")
    return [f"{d[0.0]}", f"{d[0.01]}", f"{d[0.05]}"]


@claim("unlearning", [ANOMALY], "python benchmarks/anomaly.py --seeds 0", anchors=_anchors_deep_sad)
def _unlearning() -> list[str]:
    rows = [r for r in read_jsonl(ANOMALY) if r["status"] == "ok" and r["seed"] == 0 and not r.get("set")]
    base = {r["digit"]: r for r in rows if r.get("anomaly") is None and r["model"] == "ebgan"}
    out = []
    for share in (0.01, 0.05):
        sel = [r for r in rows if r.get("anomaly") is not None and r["share"] == share and r["digit"] in base]
        if not out:
            out.append(f"{statistics.mean(base[r['digit']]['auroc'] for r in sel):.1f}")
        out.append(f"{statistics.mean(r['auroc'] for r in sel):.1f}")
    return out


@claim("score-throughput", ["benchmarks/results/anomaly-throughput.json"], "python benchmarks/anomaly.py --seeds 0")
def _throughput() -> list[str]:
    t = read_json("benchmarks/results/anomaly-throughput.json")
    return [f"{t['images_per_s']:,.0f}", f"{t['peak_rss_mib']:.0f}", f"{t['import_rss_mib']:.0f}"]


# ------------------------------------------------------------------------------------------------ robustness


def bootstrap_share(hits: list[bool], n_boot: int = 10000, seed: int = 0) -> tuple[float, float, float]:
    """ebgan.sweep.report.bootstrap_share (the same draws: numpy's binomial with seed 0)."""
    import numpy as np

    n, p = len(hits), sum(hits) / len(hits)
    draws = np.random.default_rng(seed).binomial(n, p, n_boot) / n
    return p, float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))


ROBUST = "benchmarks/results/robustness/results.jsonl"
ROBUST_BEST = "benchmarks/results/robustness-best/results.jsonl"


@claim("robustness", [ROBUST, ROBUST_BEST], "python benchmarks/robustness.py --sample 64 --workers 2")
def _robustness() -> list[str]:
    rows = [r for r in read_jsonl(ROBUST) if r.get("status") in ("ok", "diverged")]
    out = []
    for thr in (3, 5):
        for m in ("ebgan", "ebgan-pt", "gan"):
            p, lo, hi = bootstrap_share(
                [r["status"] == "ok" and r.get("is", 0) >= thr for r in rows if r["method"] == m]
            )
            out += [f"{100 * p:.1f}", f"{100 * lo:.1f}", f"{100 * hi:.1f}"] if thr == 3 else [f"{100 * p:.1f}"]
    out += [
        f"{max(r['is'] for r in rows if r['method'] == m and r['status'] == 'ok'):.2f}"
        for m in ("ebgan", "ebgan-pt", "gan")
    ]
    best_gan = [r for r in read_jsonl(ROBUST_BEST) if r["method"] == "gan"][0]
    return out + [f"{best_gan['is']:.2f}"]


pending(
    "robustness-10ep",
    "partial",
    "python benchmarks/robustness.py --epochs 10 --sample 32 --workers 1",
    ["benchmarks/results/robustness-10ep/results.jsonl"],
)


@claim("margin", ["benchmarks/results/margin/results.jsonl"], "python benchmarks/robustness.py --margin --workers 2")
def _margin() -> list[str]:
    rows = [r for r in read_jsonl("benchmarks/results/margin/results.jsonl") if r.get("status") == "ok"]
    low = [r["is"] for r in rows if r["margin"] <= 2]
    high = [r["is"] for r in rows if r["margin"] >= 4]
    return [f"{min(low):.2f}", f"{max(low):.2f}", f"{min(high):.2f}", f"{max(high):.2f}"]


# ------------------------------------------------------------------------------------------------ energy rejection


@claim(
    "energy-rejection",
    [
        f"{ER}/*/energy-keep.jsonl",
        f"{SEARCH}/mnist_search/*/energy-keep.jsonl",
        "benchmarks/results/stacked-mnist/ebgan-s*/energy-keep.jsonl",
    ],
    "python benchmarks/energy_rejection.py",
)
def _energy_rejection() -> list[str]:
    mn = keep_rows(f"{SEARCH}/mnist_search/preset-s0")
    long = [keep_rows(f"{SEARCH}/mnist_search/steps24k-ema-s{s}") for s in (0, 1)]
    ring = [keep_rows(f"{ER}/ring-s{s}") for s in SEEDS5]
    grid = [keep_rows(f"{ER}/grid-s{s}") for s in SEEDS5]
    st = [keep_rows(f"benchmarks/results/stacked-mnist/ebgan-s{s}") for s in (0, 1, 2)]

    def m(runs, keep, key, fmt):
        v = med(r[keep][key] for r in runs)
        return count(v) if fmt is None else f"{v:{fmt}}"

    return [
        f"{mn[1.0]['is']:.2f}",
        f"{mn[0.5]['is']:.2f}",
        f"{mn[1.0]['fid']:.2f}",
        f"{mn[0.5]['fid']:.2f}",
        m(long, 1.0, "is", ".2f"),
        m(long, 0.5, "is", ".2f"),
        m(long, 1.0, "fid", ".2f"),
        m(long, 0.5, "fid", ".2f"),
        m(ring, 1.0, "modes", None),
        m(ring, 0.5, "modes", None),
        m(ring, 0.75, "modes", None),
        m(ring, 1.0, "hq_pct", ".1f"),
        m(ring, 0.5, "hq_pct", ".1f"),
        m(grid, 1.0, "modes", None),
        m(grid, 0.5, "modes", None),
        m(st, 1.0, "kl", ".3f"),
        m(st, 0.5, "kl", ".3f"),
    ]


# ------------------------------------------------------------------------------------------------ Stacked MNIST

STACKED = "benchmarks/results/stacked-mnist"


@claim(
    "stacked-mnist",
    [f"{STACKED}/*/scores.json"],
    "python benchmarks/stacked_mnist.py --seeds 0,1,2",
    anchors=constant("99", "3.40", "1000", "0.06"),
)  # PacGAN (Lin et al. 2018), Table 3 (stacked_mnist.py)
def _stacked() -> list[str]:
    out = []
    for loss in ("ebgan", "nsgan"):
        sc = [read_json(f"{STACKED}/{loss}-s{s}/scores.json") for s in (0, 1, 2)]
        modes = [s["modes"] for s in sc]
        out += [count(med(modes)), f"{med(s['kl'] for s in sc):.3f}", str(min(modes)), str(max(modes))]
    return out


pending(
    "64px-stacked",
    "missing",
    "python benchmarks/mnist_resized.py --data stacked-mnist --preset "
    "stacked-mnist --margin 39 --steps 1000 --threads 1",
)


def _scores(name: str) -> dict:
    return read_json(f"benchmarks/results/{name}/scores.json")


@claim(
    "lapgan",
    ["benchmarks/results/mnist*-mnist*/scores.json"],
    "python benchmarks/mnist_resized.py --size S --steps N [--lapgan] --threads 1",
)
def _lapgan() -> list[str]:
    e32, l32, e64, l64 = (
        _scores(n) for n in ("mnist32-mnist-4000", "mnist32-mnist-lapgan-4000", "mnist64-mnist", "mnist64-mnist-lapgan")
    )
    return [
        f"{e32['is']:.2f}",
        f"{e32['fid']:.1f}",
        f"{l32['is']:.2f}",
        f"{l32['fid']:.1f}",
        f"{e32['gflop']:.1f}",
        f"{l32['gflop']:.1f}",
        f"{e64['is']:.2f}",
        f"{e64['fid']:.1f}",
        f"{l64['is']:.2f}",
        f"{l64['fid']:.1f}",
        f"{e64['gflop']:.1f}",
        f"{l64['gflop']:.1f}",
        f"{e64['seconds'] / 60:.1f}",
        f"{l64['seconds'] / 60:.1f}",
    ]


# ------------------------------------------------------------------------------------------------ semi-supervised

SEMI = "benchmarks/results/semisup"


def _errors(model: str, labels: int, seeds) -> list[float]:
    return [read_json(f"{SEMI}/{model}-{labels}-s{s}/result.json")["test_error"] for s in seeds]


def _mean_std(errs: list[float]) -> list[str]:
    return [f"{statistics.mean(errs):.2f}"] + ([f"{statistics.stdev(errs):.2f}"] if len(errs) > 1 else [])


def _paper(labels: int) -> Callable[[], list[str]]:
    def anchors() -> list[str]:
        p = script_constant("semisup.py", "PAPER")
        return [f"{x:.2f}" for m in ("ladder", "ebgan-ln") for x in p[(m, labels)]]

    return anchors


# labels: (Ladder seeds, EBGAN-LN's runs, their seeds): the seeds each claim is about (a later seed is a new
# claim). Below 1000 labels the EBGAN-LN runs are at margin 30 (`ebgan-ln-m30`), the default before the margin
# was chosen on validation data.
SEMI_CLAIMS = {
    100: ((0, 1, 2), "ebgan-ln-m30", (0, 1, 2)),
    200: ((0, 1, 2), "ebgan-ln-m30", (0,)),
    1000: ((0, 1), "ebgan-ln", (0,)),
}
for _n, (_ls, _ln, _es) in SEMI_CLAIMS.items():

    def _semi(n=_n, ls=_ls, name=_ln, es=_es) -> list[str]:
        lad, ln = _errors("ladder", n, ls), _errors(name, n, es)
        return (
            _mean_std(lad)
            + [f"{e:.2f}" for e in lad]
            + _mean_std(ln)
            + ([f"{e:.2f}" for e in ln] if len(ln) > 1 else [])
        )

    claim(
        f"semisup-{_n}",
        [f"{SEMI}/ladder-{_n}-s*/result.json", f"{SEMI}/{_ln}-{_n}-s*/result.json"],
        f"python benchmarks/semisup.py --labels {_n}",
        anchors=_paper(_n),
    )(_semi)

# ------------------------------------------------------------------------------------------------ log anomaly detection

SEQ = "benchmarks/results/seq-hdfs"
SEQ_COMMAND = "python benchmarks/seq_hdfs.py --epochs 50 --grid full --extra"


def _ms(xs: list[float], fmt: str) -> list[str]:
    """Mean and sample standard deviation, as ``seq_hdfs.py``'s ``ms`` prints them."""
    return [fmt.format(statistics.mean(xs)), fmt.format(statistics.stdev(xs))]


def _anchors_deeplog() -> list[str]:
    d = script_constant("seq_hdfs.py", "DEEPLOG")
    return [f"{d['precision']}", f"{d['recall']}", f"{d['f1']}"]


@claim(
    "seq-hdfs",
    [f"{SEQ}/test-s0.json", f"{SEQ}/test-s1.json", f"{SEQ}/test-s2.json"],
    SEQ_COMMAND,
    anchors=_anchors_deeplog,
)
def _seq_hdfs() -> list[str]:
    tests = [read_json(f"{SEQ}/test-s{s}.json") for s in (0, 1, 2)]
    g, t = [x["graded"] for x in tests], [x["topg"] for x in tests]
    return (
        _ms([r["f1_deeplog"] for r in g], "{:.4f}")
        + _ms([r["auroc"] for r in g], "{:.5f}")
        + _ms([r["fpr"] for r in g], "{:.5f}")
        + _ms([r["recall"] for r in g], "{:.4f}")
        + _ms([r["f1_deeplog"] for r in t], "{:.4f}")
    )


@claim("seq-hdfs-unlearning", [f"{SEQ}/unlearning-s{s}.json" for s in (0, 1, 2)], SEQ_COMMAND)
def _seq_hdfs_unlearning() -> list[str]:
    """Without -> with unlearning (1% of the abnormal patterns known): detection on the patterns never seen,
    the false-positive rate on the normal test sessions and F1 at DeepLog's ratio, mean +- std over 3 seeds,
    then the false positives per seed."""
    u = [read_json(f"{SEQ}/unlearning-s{s}.json") for s in (0, 1, 2)]
    out: list[str] = []
    for key, fmt in (("recall", "{:.4f}"), ("fpr", "{:.5f}"), ("f1_deeplog", "{:.4f}")):
        for arm in ("without", "with"):
            out += _ms([x[arm][key] for x in u], fmt)
    return out + [str(x[arm]["false_positives"]) for x in u for arm in ("without", "with")]


@claim(
    "seq-hdfs-feedback",
    [f"{SEQ}/feedback-s{s}.json" for s in (0, 1, 2)] + [f"{SEQ}/feedback-guard-s{s}.json" for s in (0, 1, 2)],
    SEQ_COMMAND,
)
def _seq_hdfs_feedback() -> list[str]:
    first = [read_json(f"{SEQ}/feedback-s{s}.json")["later"] for s in (0, 1, 2)]
    guard = [read_json(f"{SEQ}/feedback-guard-s{s}.json")["later"] for s in (0, 1, 2)]

    def per_seed(runs: list[dict], k: str) -> list[str]:
        return [str(f[w][k]) for f in runs for w in ("never", "updated")]

    out = _ms([f["never"]["fp"] for f in first], "{:.1f}")
    for runs in (first, guard):
        out += _ms([f["updated"]["fp"] for f in runs], "{:.1f}") + per_seed(runs, "fp")
    out += _ms([f["never"]["fn"] for f in guard], "{:.1f}") + _ms([f["updated"]["fn"] for f in guard], "{:.1f}")
    return out + per_seed(guard, "fn")


ABLATION_SEEDS = (0, 1)  # the seeds finished; the claim is about these (seed 2 is still to train)


@claim(
    "semisup-ablation",
    [f"{SEMI}/ladder-lnrecipe-100-s{s}/result.json" for s in ABLATION_SEEDS]
    + [f"{SEMI}/ebgan-ln-m30-100-s{s}/result.json" for s in ABLATION_SEEDS],
    "python benchmarks/semisup.py --labels 100 --seeds 0,1,2 --models ladder-lnrecipe --threads 1 --compile",
)
def _semisup_ablation() -> list[str]:
    """Per finished seed: EBGAN-LN's test error, the same-recipe Ladder's, and the paired difference."""
    ln, lad = _errors("ebgan-ln-m30", 100, ABLATION_SEEDS), _errors("ladder-lnrecipe", 100, ABLATION_SEEDS)
    # figures are read unsigned from the row: the sign of the difference is in its words
    return [f for a, b in zip(ln, lad) for f in (f"{a:.2f}", f"{b:.2f}", f"{abs(a - b):.2f}")]


@claim(
    "semisup-speed",
    [f"{SEMI}/speed.json", f"{SEMI}/speed-1t.json"],
    "python benchmarks/semisup.py --speed --threads 2 (and --threads 1)",
)
def _semisup_speed() -> list[str]:
    two, one = read_json(f"{SEMI}/speed.json"), read_json(f"{SEMI}/speed-1t.json")
    m = two["models"]
    lc = m["ladder/bottom compiled"]
    ratios = [
        s["models"][k]["s_per_step"] / s["models"][k + " compiled"]["s_per_step"]
        for s in (one, two)
        for k in ("ladder/bottom", "ebgan-ln/bottom")
    ]
    return [
        f"{m['ladder/bottom']['s_per_step']:.4f}",
        f"{lc['s_per_step']:.4f}",
        f"{lc['images_per_s']:,.0f}",
        f"{100 * lc['gflops'] / two['peak']['gflops']:.0f}",
        f"{lc['hours_per_run']:.2f}",
        f"{m['ebgan-ln/bottom']['s_per_step']:.4f}",
        f"{m['ebgan-ln/bottom compiled']['s_per_step']:.4f}",
        f"{m['ebgan-ln/bottom compiled']['hours_per_run']:.2f}",
        f"{one['models']['ebgan-ln/bottom compiled']['hours_per_run']:.2f}",
        f"{min(ratios):.2f}",
        f"{max(ratios):.2f}",
    ]


# ------------------------------------------------------------------------------------------------ the rest


@claim(
    "classifier",
    ["src/ebgan/weights/mnist_classifier.json"],
    "ebgan train-classifier (python benchmarks/eval_reference.py reports it)",
)
def _classifier() -> list[str]:
    c = json.loads(SIDECAR.read_text())
    ref = c["reference"]
    return [
        f"{100 * c['test_accuracy']:.2f}",
        f"{ref['is']:.3f}",
        f"{ref['is_std']:.3f}",
        f"{ref['fid_test_vs_train']:.3f}",
    ]


RELIABILITY = "benchmarks/results/reliability.json"


@claim("reliability", [RELIABILITY], "python benchmarks/reliability.py (the fuzz part alone: --fuzz-only)")
def _reliability() -> list[str]:
    """Faults passed of faults injected (training run, sweep, ``ebgan score``, real faults) with the write points
    of the two tables, the fuzz run (readers, inputs, unexpected exceptions; a failed run gives no figures) and
    the fsync cost of a checkpoint."""
    r = read_json(RELIABILITY)
    fz = r["fuzz"]
    if fz["exit_status"] != 0:
        return []  # the index then prints figures the registry does not give: the check fails
    readers = fz["readers"].values()
    inputs = sum(c["inputs"] for c in readers)
    unexpected = sum(c["inputs"] - c.get("valid", 0) - c.get("refused", 0) for c in readers)
    out = []
    for part in ("training", "sweep"):
        rows = r[part]
        out += [f"{sum(x['ok'] for x in rows)}", f"{len(rows)}", f"{len({x['point'] for x in rows})}"]
    for part in ("score", "real"):
        out += [f"{sum(x['ok'] for x in r[part])}", f"{len(r[part])}"]
    fs = r["fsync"]
    return out + [
        f"{len(fz['readers'])}",
        f"{inputs:,}",
        f"{unexpected}",
        f"{fs['extra_s'] * 1000:.0f}",
        f"{fs['checkpoint_bytes'] / 1e6:.1f}",
    ]


# Measured once, reported in BENCHMARKS.md, but the script kept no machine-readable record (or its record is not
# committed): to be re-measured by the command, which now writes benchmarks/results/NAME.json.
for _id, _cmd in {
    "speed": "python benchmarks/speed.py --blocks 5 --steps-per-block 30",
    "threads": "python benchmarks/threads.py --reps 5",
    "memory": "python benchmarks/memory.py --steps 2000",
    "sweep-throughput": "python benchmarks/sweep_overhead.py --workers 2 --reps 3",
    "conditional": "python benchmarks/conditional.py --losses ebgan,nsgan",
    "ema": "python benchmarks/ema.py",
    "image-presets": "python benchmarks/image_presets.py --steps 3 --threads 2",
    "stream": "python benchmarks/stream.py",
    "dist-speed": "python benchmarks/dist_speed.py --presets mnist,celeba-64 --steps 40 --warmup 5",
}.items():
    pending(_id, "missing", _cmd)


# ------------------------------------------------------------------------------------------------ the check

CLAIM_RE = re.compile(r"<!--\s*claim:\s*([\w.-]+)\s*-->")
# a number: 41,124 / 0.013 / 8 / the 1.35 of 1.35x; not the digits of a word (PacGAN4, bf16, fp32)
NUMBER_RE = re.compile(r"(?<![\w.,])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
NOT_FIGURES = {"claim", "protocol", "seeds", "command", "section", "details", "what"}


def numbers(cell: str) -> list[str]:
    """The figures of a table cell: its numbers, leaving out code spans (settings) and HTML comments."""
    cell = re.sub(r"<!--.*?-->", " ", cell)
    cell = re.sub(r"`[^`]*`", " ", cell)
    return NUMBER_RE.findall(cell)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def claim_rows(text: str) -> list[tuple[int, str, dict[str, str], list[str]]]:
    """(line number, claim ID, {header: cell}, headers) of every table row marked with a claim."""
    out, headers = [], []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("|"):
            headers = []
            continue
        if i + 1 < len(lines) and re.match(r"^\|(\s*:?-+:?\s*\|)+\s*$", lines[i + 1]):
            headers = [h.lower() for h in _cells(line)]
            continue
        m = CLAIM_RE.search(line)
        if m and headers:
            cells = _cells(line)
            out.append((i + 1, m.group(1), dict(zip(headers, cells)), headers))
    return out


def _first_table(text: str) -> str:
    """The first Markdown table of ``text`` (BENCHMARKS.md's index)."""
    lines, rows, started = text.splitlines(), [], False
    for line in lines:
        if line.startswith("|"):
            started = True
            rows.append(line)
        elif started:
            break
    return "\n".join(rows)


def check_row(doc: str, lineno: int, cid: str, row: dict[str, str], headers: list[str]) -> list[str]:
    where = f"{doc}:{lineno} claim `{cid}`"
    c = REGISTRY.get(cid)
    if c is None:
        return [f"{where}: no such claim in the registry (benchmarks/check_claims.py): a figure without a source"]
    errs = []
    fig_cols = [h for h in headers[1:] if h not in NOT_FIGURES and h != "anchor"]
    found = [n for h in fig_cols for n in numbers(row.get(h, ""))]
    if c.status != "measured":
        if doc == "README.md":
            errs.append(f"{where}: a {c.status} claim (no result file yet) cannot be in the README")
        if found:
            errs.append(f"{where}: {c.status}, so no figure may be printed for it; found {', '.join(found)}")
    else:
        try:
            want = c.figures()
        except (OSError, KeyError, ValueError, IndexError) as e:
            return [f"{where}: its result files cannot be read ({type(e).__name__}: {e})"]
        errs += _compare(where, "figure", found, want, c.sources)
    if "anchor" in headers:
        errs += _compare(
            where,
            "anchor",
            numbers(row.get("anchor", "")),
            c.anchors() if c.anchors else [],
            ("the registry's anchors",),
        )
    return errs


def _compare(where: str, what: str, found: list[str], want: list[str], sources) -> list[str]:
    if found == want:
        return []
    for k, (a, b) in enumerate(zip(found, want)):
        if a != b:
            return [
                f"{where}: {what} {k + 1} is {a} where {', '.join(sources)} give(s) {b} "
                f"(row: {' '.join(found)}; expected: {' '.join(want)})"
            ]
    extra = "more" if len(found) > len(want) else "fewer"
    return [
        f"{where}: {extra} {what}s than the result files give (row: {' '.join(found) or 'none'}; expected: "
        f"{' '.join(want) or 'none'})"
    ]


def check_text(readme: str, benchmarks: str) -> list[str]:
    """Every error of the two documents' claims (an empty list when every figure matches its result file)."""
    errs = []
    readme_ids = []
    for lineno, cid, row, headers in claim_rows(readme):
        readme_ids.append(cid)
        errs += check_row("README.md", lineno, cid, row, headers)
    index = _first_table(benchmarks)
    offset = benchmarks[: benchmarks.find(index)].count("\n") if index else 0
    index_ids = []
    for lineno, cid, row, headers in claim_rows(index):
        index_ids.append(cid)
        errs += check_row("BENCHMARKS.md", lineno + offset, cid, row, headers)
    if not index_ids:
        errs.append("BENCHMARKS.md: its first table is not the claims index (no row marked <!-- claim: ID -->)")
    for cid in sorted(set(readme_ids) - set(index_ids)):
        errs.append(f"README.md claim `{cid}` is not in BENCHMARKS.md's index")
    for cid in sorted(set(REGISTRY) - set(index_ids)):
        errs.append(f"registered claim `{cid}` is not in BENCHMARKS.md's index")
    for cid in sorted({c for c in index_ids if index_ids.count(c) > 1}):
        errs.append(f"BENCHMARKS.md's index lists claim `{cid}` more than once")
    titles = [line.strip() for line in benchmarks.splitlines() if line.startswith(("## ", "### "))]
    for t in sorted({t for t in titles if titles.count(t) > 1}):
        errs.append(f"BENCHMARKS.md: {titles.count(t)} sections are titled {t!r}")
    starts = re.findall(r"<!-- (\S+):start -->", benchmarks)
    ends = re.findall(r"<!-- (\S+):end -->", benchmarks)
    for name in sorted(set(starts) | set(ends)):
        s, e = starts.count(name), ends.count(name)
        if s != 1 or e != 1 or benchmarks.index(f"<!-- {name}:start -->") > benchmarks.index(f"<!-- {name}:end -->"):
            errs.append(f"BENCHMARKS.md: section markers of {name!r} are not one start followed by one end")
    return errs + check_links(readme, benchmarks)


def slug(title: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """The anchors of every heading (a repeated one gets -1, -2, ... as on GitHub), outside code blocks, and of
    every ``<a id="NAME"></a>`` (a stable anchor before a section whose generated title changes)."""
    seen: dict[str, int] = {}
    out, code = set(re.findall(r'<a id="([^"]+)"></a>', markdown)), False
    for line in markdown.splitlines():
        if line.startswith("```"):
            code = not code
        m = re.match(r"^#{1,6} (.*)$", line)
        if m and not code:
            s = slug(m.group(1))
            out.add(s if s not in seen else f"{s}-{seen[s]}")
            seen[s] = seen.get(s, 0) + 1
    return out


def check_links(readme: str, benchmarks: str) -> list[str]:
    """Links to sections of BENCHMARKS.md, from itself and from the README, that lead nowhere."""
    ok = anchors(benchmarks)
    errs = [
        f"BENCHMARKS.md: link to #{a}: no such section"
        for a in re.findall(r"\]\(#([^)\s]+)\)", benchmarks)
        if a not in ok
    ]
    errs += [
        f"README.md: link to BENCHMARKS.md#{a}: no such section"
        for a in re.findall(r"\]\(BENCHMARKS\.md#([^)\s]+)\)", readme)
        if a not in ok
    ]
    return errs


def check() -> list[str]:
    return check_text(README.read_text(), BENCHMARKS.read_text())


# ------------------------------------------------------------------------------------------------ derived file


def derive_compare_tables(path: Path = ROOT / COMPARE_TABLES) -> None:
    """Which compare.jsonl rows make each loss-comparison table: the config keys compare_losses.py computes for
    every (table, optimiser setting, data set, loss, seed). Imports compare_losses (torch, ebgan)."""
    import subprocess

    sys.path.insert(0, str(ROOT / "benchmarks"))
    sys.path.insert(0, str(ROOT / "src"))
    import compare_losses as c

    from ebgan.config import PRESETS

    tables: dict = {}
    plan = [
        ("main", ("own", "preset", "defaults"), c.DATASETS, list(c.LOSSES), c.DEFAULT_STEPS_MNIST, c.DEFAULT_SEEDS),
        ("mnist_full", ("preset",), ("mnist",), ["ebgan", "nsgan", "lsgan", "wgan-gp"], 12000, {"mnist": "0,1"}),
    ]
    for name, optims, datasets, losses, steps_mnist, seeds in plan:
        for o in optims:
            for d in datasets:
                steps = steps_mnist if d == "mnist" else PRESETS[d]["steps"]
                for loss in losses:
                    keys = [c.config_key(c.run_config(d, loss, int(s), steps, o)[0]) for s in seeds[d].split(",")]
                    tables.setdefault(name, {}).setdefault(o, {}).setdefault(d, {})[loss] = keys
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    path.write_text(
        json.dumps(
            {
                "what": "the config keys of the compare.jsonl rows in each loss-comparison table of BENCHMARKS.md: "
                "tables.main.OPTIM.DATASET.LOSS (OPTIM own, preset, defaults; seeds as in compare_losses.py "
                "DEFAULT_SEEDS, MNIST 3000 steps) and tables.mnist_full (12,000 steps, seeds 0,1); "
                "--optim best reports, per loss, the better of defaults and preset",
                "derived_by": "python benchmarks/check_claims.py --derive-compare-tables",
                "commit": rev.stdout.strip(),
                "tables": tables,
            },
            indent=1,
        )
        + "\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--show", metavar="ID", help="print the figures and anchors of one claim")
    ap.add_argument("--list", action="store_true", help="every claim with its status, result files and command")
    ap.add_argument("--derive-compare-tables", action="store_true", help=f"rewrite {COMPARE_TABLES} (needs torch)")
    args = ap.parse_args()
    if args.derive_compare_tables:
        derive_compare_tables()
        return
    if args.show:
        c = REGISTRY[args.show]
        print(
            f"{c.id} ({c.status}): {' '.join(c.figures()) if c.figures else '-'}; anchors: "
            f"{' '.join(c.anchors()) if c.anchors else '-'}; from {', '.join(c.sources) or '-'}"
        )
        return
    if args.list:
        for c in REGISTRY.values():
            print(f"{c.id}\t{c.status}\t{', '.join(c.sources) or '-'}\t{c.command}")
        return
    errs = check()
    for e in errs:
        print(e)
    n = len(claim_rows(README.read_text())) + len(claim_rows(_first_table(BENCHMARKS.read_text())))
    print(
        f"{n} claim rows checked against {len(REGISTRY)} registered claims: "
        + (f"{len(errs)} error(s)" if errs else "every figure matches its result file")
    )
    sys.exit(1 if errs else 0)


if __name__ == "__main__":
    main()
