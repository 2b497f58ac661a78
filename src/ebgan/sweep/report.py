"""A sweep's report: ``report.md`` and the paper's figures as PNGs, from ``results.jsonl`` alone.

- Fig. 2: histograms of the score per method over all settings, over nLayer <= 4 and over nLayer <= 3
  (nLayer: the larger of nLayerG and nLayerD), as the fraction of each method's runs, for the inception
  score and for the paper's I'.
- Fig. 3: the GAN's histograms split by optimiser pair (D, G) and learning rate, the EBGAN runs overlaid.
- Fig. 9: the score against the margin, when the sweep varies the margin.
- Shares of settings that train well (score at or above each threshold) per method with 95 % bootstrap
  confidence intervals. Diverged runs count as not training well; failed runs (errors, crashes) are
  excluded and listed.
"""

from __future__ import annotations

import datetime
import math
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..plots import _plt, _save
from . import store

BOOTSTRAP = 10000
# The thresholds a run must reach to "train well", per score. MNIST IS (real data: 9.8): 3 (it draws several
# digits; one collapsed digit scores 1), 5 and 8.
# The paper's I' (a KL the other way round, unbounded) has no natural threshold: its median is reported.
THRESHOLDS: dict[str, tuple[float, ...]] = {"is": (3.0, 5.0, 8.0), "modes": (4.0, 8.0), "hq_pct": (50.0, 80.0)}
LABELS = {
    "is": "inception score (IS)",
    "paper_score": "the paper's I' = E KL(p(y) || p(y|x))",
    "fid": "FID",
    "modes": "modes covered",
    "hq_pct": "high-quality samples (%)",
}


def primary_score(rows: list[dict[str, Any]]) -> str:
    """The score the report is about: IS for images, modes covered for 2-D mixtures."""
    for key in ("is", "modes"):
        if any(r.get(key) is not None for r in rows):
            return key
    return "is"


def bootstrap_share(hits: np.ndarray, n_boot: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float, float]:
    """The share of True in ``hits`` and its 95 % percentile-bootstrap interval.

    Resampling n binary outcomes with replacement and taking the mean has exactly the distribution
    Binomial(n, p) / n with p the observed share, so the bootstrap draws binomials instead of index arrays.
    """
    n = len(hits)
    if n == 0:
        return math.nan, math.nan, math.nan
    p = float(np.mean(hits))
    draws = np.random.default_rng(seed).binomial(n, p, n_boot) / n
    return p, float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))


def bootstrap_median(values: np.ndarray, n_boot: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float, float]:
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    meds = np.median(values[rng.integers(0, n, (n_boot, n))], axis=1)
    return float(np.median(values)), float(np.quantile(meds, 0.025)), float(np.quantile(meds, 0.975))


def _scored(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("status") in ("ok", "diverged")]


def _values(rows: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([r[key] for r in rows if r.get("status") == "ok" and r.get(key) is not None], dtype=float)


def _hits(rows: list[dict[str, Any]], key: str, thr: float) -> np.ndarray:
    return np.array([r.get("status") == "ok" and r.get(key) is not None and r[key] >= thr for r in _scored(rows)])


def _nlayer(r: dict[str, Any]) -> int | None:
    g, d = r.get("g_layers"), r.get("d_layers")
    return max(g, d) if g is not None and d is not None else None


def _pct(t: tuple[float, float, float]) -> str:
    p, lo, hi = t
    return "-" if math.isnan(p) else f"{100 * p:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def _num(t: tuple[float, float, float], spec: str = ".2f") -> str:
    v, lo, hi = t
    return "-" if math.isnan(v) else f"{v:{spec}} [{lo:{spec}}, {hi:{spec}}]"


def _by_method(rows: list[dict[str, Any]], methods: list[str]) -> dict[str, list[dict[str, Any]]]:
    return {m: [r for r in rows if r.get("method") == m] for m in methods}


def summary_table(rows: list[dict[str, Any]], methods: list[str], key: str, thresholds: tuple[float, ...]) -> list[str]:
    head = (
        ["method", "runs", "ok", "diverged", "failed", f"median {key} [95% CI]"]
        + [f"% {key} >= {t:g} [95% CI]" for t in thresholds]
        + [f"best {key}"]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m, rs in _by_method(rows, methods).items():
        c = Counter(r.get("status") for r in rs)
        vals = _values(rs, key)
        cells = [m, str(len(rs)), str(c["ok"]), str(c["diverged"]), str(c["failed"]), _num(bootstrap_median(vals))]
        cells += [_pct(bootstrap_share(_hits(rs, key, t))) for t in thresholds]
        cells.append(f"{vals.max():.2f}" if len(vals) else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# One colour and line style per method, the same in every figure of a report (fig2, fig3, fig9). Methods not
# named here get a spare colour picked from their name (the same in every report), or the next free one.
METHOD_COLORS = {"gan": "tab:red", "gan-minimax": "tab:orange", "ebgan": "tab:blue", "ebgan-pt": "tab:green"}
METHOD_LINESTYLES = {"gan": "-", "gan-minimax": "-.", "ebgan": "--", "ebgan-pt": ":"}
_SPARE_COLORS = ("tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")
_LINESTYLES = ("-", "--", ":", "-.")
# Step outlines drawn later are thinner, so an earlier outline that coincides with a later one still shows.
_LINEWIDTHS = (2.8, 2.0, 1.5, 1.2)


def _name_hash(name: str) -> int:
    return zlib.crc32(name.encode())


def method_colors(methods: list[str]) -> dict[str, str]:
    """A colour per method: :data:`METHOD_COLORS` for the paper's methods; any other method gets the spare
    colour its name hashes to, or the next one not yet taken in this report (deterministic)."""
    colors = {m: METHOD_COLORS[m] for m in methods if m in METHOD_COLORS}
    for m in sorted(set(methods) - set(colors)):
        taken = set(colors.values())
        start = _name_hash(m) % len(_SPARE_COLORS)
        order = [_SPARE_COLORS[(start + i) % len(_SPARE_COLORS)] for i in range(len(_SPARE_COLORS))]
        colors[m] = next((c for c in order if c not in taken), order[0])
    return colors


def method_linestyle(method: str) -> str:
    return METHOD_LINESTYLES.get(method) or _LINESTYLES[_name_hash(method) % len(_LINESTYLES)]


def _legend(ax, **kw) -> None:
    """A legend only when the axes has labelled artists (else matplotlib warns "No artists with labels")."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kw)


def _hist_panel(
    ax, rows_by_method: dict[str, list[dict[str, Any]]], key: str, bins: np.ndarray, title: str, colors: dict[str, str]
) -> None:
    """Per method the fraction of its runs per bin, as a translucent fill under a step outline: the colour
    and line style are the method's, outlines drawn later are thinner, so overlapping histograms stay visible."""
    drawn = 0
    for m, rs in rows_by_method.items():
        vals = _values(rs, key)
        n = len(_scored(rs))
        if not n:
            continue
        div = sum(r.get("status") == "diverged" for r in rs)
        w = np.full(len(vals), 1.0 / n)
        label = f"{m} (n={n}{f', {div} diverged' if div else ''})"
        color = colors.get(m) or method_colors([m])[m]
        clipped = np.clip(vals, bins[0], bins[-1])
        ax.hist(clipped, bins=bins, weights=w, histtype="stepfilled", color=color, alpha=0.15, linewidth=0)
        ax.hist(
            clipped,
            bins=bins,
            weights=w,
            histtype="step",
            color=color,
            linestyle=method_linestyle(m),
            linewidth=_LINEWIDTHS[min(drawn, len(_LINEWIDTHS) - 1)],
            label=label,
        )
        drawn += 1
    if not drawn:
        ax.text(0.5, 0.5, "no finished runs", transform=ax.transAxes, ha="center", va="center", color="0.4")
    ax.set_xlim(bins[0], bins[-1])
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(LABELS.get(key, key))
    ax.set_ylabel("fraction of runs")
    _legend(ax, fontsize=8)


def _bins(rows: list[dict[str, Any]], key: str) -> np.ndarray:
    if key == "is":
        return np.linspace(1.0, 10.0, 37)
    vals = _values(rows, key)
    hi = float(vals.max()) if len(vals) else 1.0
    if key == "modes":
        return np.arange(-0.5, hi + 1.5, 1.0)
    return np.linspace(min(0.0, float(vals.min()) if len(vals) else 0.0), max(hi, 1e-9) * 1.0001, 25)


def fig2_figure(rows: list[dict[str, Any]], methods: list[str], key: str, colors: dict[str, str] | None = None):
    """The figure of :func:`fig2` (a matplotlib Figure, not saved, not closed)."""
    plt = _plt()
    colors = colors or method_colors(methods)
    panels = [("all settings", rows)]
    if any(_nlayer(r) is not None for r in rows):
        panels += [(f"nLayer <= {k}", [r for r in rows if (_nlayer(r) or 0) <= k]) for k in (4, 3)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), layout="constrained", squeeze=False)
    bins = _bins(rows, key)
    for ax, (title, rs) in zip(axes[0], panels):
        _hist_panel(ax, _by_method(rs, methods), key, bins, title, colors)
    fig.suptitle(f"Fig. 2: {LABELS.get(key, key)} per method", fontsize=11)
    return fig


def fig2(
    rows: list[dict[str, Any]], methods: list[str], key: str, path: Path, colors: dict[str, str] | None = None
) -> None:
    _save(fig2_figure(rows, methods, key, colors), path)


def _gan_split(rows: list[dict[str, Any]]) -> tuple[list[tuple[str, str | None]], list[float]]:
    pairs = sorted({(r["optim_d"], r.get("optim_g")) for r in rows if r.get("optim_d")})
    lrs = sorted({r["lr"] for r in rows if r.get("lr") is not None}, reverse=True)
    return pairs, lrs


def fig3_figure(rows: list[dict[str, Any]], gan: str, ref: list[str], key: str, colors: dict[str, str] | None = None):
    """The figure of :func:`fig3`, or None when the sweep has no runs of ``gan`` split by optimiser and lr."""
    g_rows = [r for r in rows if r.get("method") == gan]
    pairs, lrs = _gan_split(g_rows)
    if not pairs or not lrs:
        return None
    plt = _plt()
    colors = colors or method_colors([gan] + list(ref))
    fig, axes = plt.subplots(
        len(pairs), len(lrs), figsize=(4.4 * len(lrs), 3.4 * len(pairs)), layout="constrained", squeeze=False
    )
    bins = _bins(rows, key)
    for i, (od, og) in enumerate(pairs):
        for j, lr in enumerate(lrs):
            sub = [r for r in g_rows if r.get("optim_d") == od and r.get("optim_g") == og and r.get("lr") == lr]
            groups = {gan: sub}
            groups.update({m: [r for r in rows if r.get("method") == m] for m in ref if m != gan})
            _hist_panel(axes[i][j], groups, key, bins, f"{gan}: D {od}, G {og}, lr {lr:g}", colors)
    over = f"; {', '.join(m for m in ref if m != gan)} over all settings" if any(m != gan for m in ref) else ""
    fig.suptitle(f"Fig. 3: {gan} by optimiser pair (D, G) and learning rate{over}", fontsize=11)
    return fig


def fig3(
    rows: list[dict[str, Any]], gan: str, ref: list[str], key: str, path: Path, colors: dict[str, str] | None = None
) -> bool:
    """Write Fig. 3 for the GAN method ``gan``; False (nothing written) when it has no runs to split."""
    fig = fig3_figure(rows, gan, ref, key, colors)
    if fig is None:
        return False
    _save(fig, path)
    return True


def fig9_figure(rows: list[dict[str, Any]], methods: list[str], key: str, colors: dict[str, str] | None = None):
    """The figure of :func:`fig9` (a matplotlib Figure, not saved, not closed)."""
    plt = _plt()
    colors = colors or method_colors(methods)
    fig, ax = plt.subplots(figsize=(6, 4.2), layout="constrained")
    for m, rs in _by_method(rows, methods).items():
        ok = sorted(
            (r["margin"], r[key])
            for r in rs
            if r.get("status") == "ok" and r.get("margin") is not None and r.get(key) is not None
        )
        if ok:
            xs, ys = zip(*ok)
            ax.plot(
                xs, ys, marker="o", color=colors.get(m) or method_colors([m])[m], linestyle=method_linestyle(m), label=m
            )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("margin m")
    ax.set_ylabel(LABELS.get(key, key))
    if not ax.get_legend_handles_labels()[0]:
        ax.text(0.5, 0.5, "no finished runs", transform=ax.transAxes, ha="center", va="center", color="0.4")
    _legend(ax)
    ax.set_title("score against the margin (Fig. 9)")
    return fig


def fig9(
    rows: list[dict[str, Any]], methods: list[str], key: str, path: Path, colors: dict[str, str] | None = None
) -> None:
    _save(fig9_figure(rows, methods, key, colors), path)


def write_report(out: str | Path, thresholds: tuple[float, ...] | None = None) -> Path:
    """Write ``out/report.md`` and its PNGs from ``out/results.jsonl``; returns the report's path."""
    out = Path(out)
    meta = store.read_meta(out)
    rows = store.read_rows(out)
    methods = list(dict.fromkeys(list(meta.get("methods", [])) + [r["method"] for r in rows]))
    methods = [m for m in methods if any(r["method"] == m for r in rows)] or list(meta.get("methods", []))
    key = primary_score(rows)
    thr = tuple(thresholds) if thresholds else THRESHOLDS.get(key, ())
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [
        f"# Sweep report: {meta['grid']}",
        "",
        f"- {now}; {len(rows)} rows in `{store.RESULTS}`; {meta['steps']} steps per run, seed {meta['seed']}, "
        f"sample {meta.get('sample') or 'all'} per method; base preset `{meta['spec']['preset']}`.",
        "- A run *trains well* at a threshold when it finished (`ok`) with a score at or above it; diverged "
        "runs (a NaN loss) count as not training well, failed runs (errors) are left out. Intervals: 95 % "
        f"bootstrap ({BOOTSTRAP} resamples).",
        "",
    ]
    if not rows:
        lines.append("No finished runs yet.")
    else:
        lines += [f"## {LABELS.get(key, key)}, all settings", ""] + summary_table(rows, methods, key, thr) + [""]
        if any(_nlayer(r) is not None for r in rows):
            for k in (4, 3):
                sub = [r for r in rows if (_nlayer(r) or 0) <= k]
                lines += [f"### nLayer <= {k} (nLayerG and nLayerD)", ""] + summary_table(sub, methods, key, thr) + [""]
        figs = []
        colors = method_colors(methods)
        fig2(rows, methods, key, out / f"fig2_{key}.png", colors)
        figs.append((f"fig2_{key}.png", f"Fig. 2: {LABELS.get(key, key)} per method"))
        if key == "is" and any(r.get("paper_score") is not None for r in rows):
            fig2(rows, methods, "paper_score", out / "fig2_paper_score.png", colors)
            figs.append(("fig2_paper_score.png", "Fig. 2 with the paper's I'"))
            lines += ["## The paper's I', all settings", ""] + summary_table(rows, methods, "paper_score", ()) + [""]
        gans = [m for m in methods if m.startswith("gan")]
        for gan in gans:
            g_rows = [r for r in rows if r["method"] == gan]
            pairs, lrs = _gan_split(g_rows)
            if len(pairs) * len(lrs) > 1:
                ref = [m for m in methods if m.startswith("ebgan")]
                if not fig3(rows, gan, ref, key, out / f"fig3_{gan}.png", colors):
                    continue
                figs.append((f"fig3_{gan}.png", f"Fig. 3: {gan} by optimiser pair and learning rate"))
                lines += [
                    f"## {gan} by optimiser pair (D / G) and learning rate",
                    "",
                    f"| D / G | lr | runs | median {key} | " + " | ".join(f"% >= {t:g} [95% CI]" for t in thr) + " |",
                    "|---|---|---|---|" + "---|" * len(thr),
                ]
                for od, og in pairs:
                    for lr in lrs:
                        sub = [r for r in g_rows if (r.get("optim_d"), r.get("optim_g"), r.get("lr")) == (od, og, lr)]
                        vals = _values(sub, key)
                        med = f"{np.median(vals):.2f}" if len(vals) else "-"
                        lines.append(
                            f"| {od} / {og} | {lr:g} | {len(_scored(sub))} | {med} | "
                            + " | ".join(_pct(bootstrap_share(_hits(sub, key, t))) for t in thr)
                            + " |"
                        )
                lines.append("")
        margins = {r["margin"] for r in rows if r.get("margin") is not None}
        if len(margins) > 1:
            fig9(rows, methods, key, out / "fig9_margin.png", colors)
            figs.append(("fig9_margin.png", "Fig. 9: score against the margin"))
            lines += [
                "## Score against the margin",
                "",
                "| method | " + " | ".join(f"m={m:g}" for m in sorted(margins)) + " |",
                "|---|" + "---|" * len(margins),
            ]
            for m, rs in _by_method(rows, methods).items():
                cells = []
                for mg in sorted(margins):
                    vals = _values([r for r in rs if r.get("margin") == mg], key)
                    cells.append(f"{np.median(vals):.2f}" if len(vals) else "-")
                lines.append(f"| {m} | " + " | ".join(cells) + " |")
            lines.append("")
        lines += ["## Figures", ""] + [f"![{cap}]({name})\n\n*{cap}*\n" for name, cap in figs]
        failed = [r for r in rows if r.get("status") == "failed"]
        if failed:
            lines += [f"## Failed runs ({len(failed)})", ""]
            lines += [f"- {r['method']} {r['setting_id']}: {str(r.get('error', ''))[:200]}" for r in failed[:20]]
            lines.append("")
    path = out / "report.md"
    from .._fileio import atomic_write_text

    atomic_write_text(path, "\n".join(lines).rstrip() + "\n")
    return path
