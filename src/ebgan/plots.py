"""Plots of a run with matplotlib (Agg backend, files only): training curves, 2-D samples, energy landscape."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ._fileio import atomic_write
from .config import Config


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    """Save a figure as PNG atomically (temp file in the same folder, then os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_write(path) as f:
            fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    finally:
        _plt().close(fig)


# What D says about real and generated samples, per logged key: (label, colour). ``energy_*`` is logged by the
# energy-based losses (ebgan, began), ``d_*`` by the others (the raw D output: a logit, a critic value, a
# least-squares output or the loss-sensitive |f|); the energies of known anomalies by runs that unlearn some.
_D_KEYS: dict[str, tuple[str, str]] = {
    "energy_real": ("real: D(x)", "tab:blue"),
    "energy_fake": ("fake: D(G(z))", "tab:red"),
    "d_real": ("real: D(x)", "tab:blue"),
    "d_fake": ("fake: D(G(z))", "tab:red"),
    "pretrain/energy_real": ("real: D(x), pre-training", "tab:cyan"),
    "energy_anomaly": ("known anomalies: D(a)", "tab:orange"),
    "pretrain/energy_anomaly": ("known anomalies: D(a), pre-training", "tab:brown"),
}
# The left panel's title per loss: what the plotted D output is.
_D_TITLES = {
    "ebgan": "mean energy per sample (lower: more real)",
    "began": "mean reconstruction error L per sample",
    "gan": "mean D logit",
    "nsgan": "mean D logit",
    "wgan": "mean critic value",
    "wgan-gp": "mean critic value",
    "lsgan": "mean D output",
    "hinge": "mean D output",
    "loss-sensitive": "mean loss L(x) = |f(x)| (lower: more real)",
}
_LOSS_COLORS = {"loss_d": "tab:purple", "loss_g": "tab:green"}
_NOT_PLOTTED = {"step", "time"}
# A series with at most this many points gets a marker on every point: one logged row is a visible dot.
FEW_POINTS = 12


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """The (steps, values) of ``key`` over the rows that log it as a number."""
    pts = [
        (r["step"], r[key])
        for r in rows
        if isinstance(r.get(key), (int, float)) and not isinstance(r[key], bool) and "step" in r
    ]
    return [p[0] for p in pts], [p[1] for p in pts]


def _line(ax, xs: list[float], ys: list[float], fmt: str = "-", **kw) -> None:
    """``ax.plot`` with a marker on each point when there are few (a single point is otherwise invisible)."""
    if len(xs) <= FEW_POINTS:
        kw.setdefault("marker", "o")
        kw.setdefault("markersize", 4 if len(xs) > 1 else 6)
    ax.plot(xs, ys, fmt, **kw)


def _legend(ax, **kw) -> None:
    """A legend only when the axes has labelled artists (else matplotlib warns "No artists with labels")."""
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(**kw)


def _empty(ax, text: str = "nothing logged") -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")


def training_curves_figure(rows: list[dict[str, Any]], cfg: Config):
    """The figure of :func:`training_curves` (a matplotlib Figure, not saved, not closed)."""
    plt = _plt()
    keys = list(dict.fromkeys(k for r in rows for k in r if k not in _NOT_PLOTTED))
    numeric = [k for k in keys if _series(rows, k)[0]]
    d_keys = [k for k in _D_KEYS if k in numeric]
    loss_keys = [k for k in numeric if k == "loss_d" or k == "loss_g" or k.startswith(("loss_d/", "loss_g/"))]
    other_keys = [k for k in numeric if k not in d_keys and k not in loss_keys and k != "margin"]
    n_panels = 3 if other_keys else 2
    fig, axes = plt.subplots(
        1, n_panels, figsize=(16 if other_keys else 11.5, 4.2), layout="constrained", squeeze=False
    )
    ax_e, ax_l = axes[0][0], axes[0][1]
    for key in d_keys:
        label, color = _D_KEYS[key]
        _line(ax_e, *_series(rows, key), label=label, color=color)
    if "margin" in numeric:
        _line(ax_e, *_series(rows, "margin"), "--", color="k", label="margin m")
    ax_e.set_title(_D_TITLES.get(cfg.loss, "mean discriminator output"), fontsize=10)
    ax_e.set_xlabel("step")
    if not d_keys and "margin" not in numeric:
        _empty(ax_e)
    _legend(ax_e, fontsize=8)
    for key in loss_keys:
        _line(ax_l, *_series(rows, key), "--" if "/level" in key else "-", label=key, color=_LOSS_COLORS.get(key))
    ax_l.set_title(f"losses ({cfg.loss})", fontsize=10)
    ax_l.set_xlabel("step")
    if not loss_keys:
        _empty(ax_l)
    _legend(ax_l, fontsize=8)
    if other_keys:
        ax_o = axes[0][2]
        for key in other_keys:
            _line(ax_o, *_series(rows, key), label=key)
        ax_o.set_title("other logged statistics", fontsize=10)
        ax_o.set_xlabel("step")
        _legend(ax_o, fontsize=8)
    fig.suptitle(f"{cfg.loss} on {cfg.data}: training curves", fontsize=11)
    return fig


def training_curves(rows: list[dict[str, Any]], cfg: Config, path: Path) -> None:
    """Mean real and fake energy (or D outputs) over training with the margin drawn, the losses, and a third
    panel with any other statistic the loss logs (``gp``, ``delta``, ``k``, ``pt``, ``lr_scale``, ...).

    For EBGAN the left panel is the paper's picture of the game: fake energies pushed up to the margin ``m``,
    real energies pulled down; at equilibrium both settle in ``[0, m]``. The other losses log the mean raw D
    output on real and fake samples (``d_real``, ``d_fake``) instead. Series with few points get markers.
    """
    _save(training_curves_figure(rows, cfg), path)


def scatter_points_figure(real: Tensor, fake: Tensor, title: str = ""):
    """The figure of :func:`scatter_points` (a matplotlib Figure, not saved, not closed)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5), layout="constrained")
    if len(real):
        ax.scatter(real[:, 0], real[:, 1], s=2, c="0.55", label="real")
    ax.scatter(fake[:, 0], fake[:, 1], s=2, c="tab:red", alpha=0.5, label="generated")
    ref = real if len(real) else fake
    lim = float(ref.abs().max()) * 1.3 + 0.1 if len(ref) else 1.0
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=4)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def scatter_points(real: Tensor, fake: Tensor, path: Path, title: str = "") -> None:
    """Real (grey; may be empty) and generated (red) 2-D points, with an optional title (e.g. "ebgan on ring,
    step 1000")."""
    _save(scatter_points_figure(real, fake, title), path)


# The landscape's range: the real data's, widened to show generated points up to this many times farther out.
LANDSCAPE_MAX_ZOOM_OUT = 3.0


def _landscape_lim(real: Tensor, fake: Tensor) -> float:
    lim = float(real.abs().max()) * 1.3 + 0.1 if len(real) else 1.0
    if len(fake):
        far = torch.quantile(fake.detach().float().abs().amax(1).cpu(), 0.99).item()
        if math.isfinite(far):
            lim = max(lim, min(far * 1.1, LANDSCAPE_MAX_ZOOM_OUT * lim))
    return lim


@torch.no_grad()
def energy_landscape_figure(
    D: nn.Module, real: Tensor, fake: Tensor, title: str = "", resolution: int = 200, device: torch.device | str = "cpu"
):
    """The figure of :func:`energy_landscape` (a matplotlib Figure, not saved, not closed)."""
    plt = _plt()
    lim = _landscape_lim(real, fake)
    axis = torch.linspace(-lim, lim, resolution)
    gx, gy = torch.meshgrid(axis, axis, indexing="xy")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    was_training = D.training
    D.eval()
    values = torch.cat([D(chunk.to(device))[0].float().cpu() for chunk in grid.split(8192)])
    D.train(was_training)
    fig, ax = plt.subplots(figsize=(6.2, 5), layout="constrained")
    # Pixel centres at the grid points: the image spans [-lim - h/2, lim + h/2] and the axes show exactly it.
    half = lim / (resolution - 1) if resolution > 1 else lim
    extent = (-lim - half, lim + half, -lim - half, lim + half)
    im = ax.imshow(
        values.view(resolution, resolution).numpy(),
        origin="lower",
        extent=extent,
        cmap="viridis",
        interpolation="nearest",
    )
    fig.colorbar(im, ax=ax, label="D(x)")
    ax.scatter(real[:, 0], real[:, 1], s=7, c="black", edgecolors="white", linewidths=0.4, label="real")
    ax.scatter(fake[:, 0], fake[:, 1], s=4, c="tab:red", alpha=0.6, linewidths=0, label="generated")
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=3, framealpha=0.85)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def energy_landscape(
    D: nn.Module,
    real: Tensor,
    fake: Tensor,
    path: Path,
    title: str = "",
    resolution: int = 200,
    device: torch.device | str = "cpu",
) -> None:
    """D's output over the plane (the energy for EBGAN) with real (black, white edge) and generated (red)
    points on top. The plane covers the real data and, up to :data:`LANDSCAPE_MAX_ZOOM_OUT` times farther,
    the generated points; the image fills the axes."""
    _save(energy_landscape_figure(D, real, fake, title, resolution, device), path)


def eval_curves(rows: list[dict[str, Any]], path: Path, best: dict | None = None) -> None:
    """One panel per metric logged by periodic evaluation (``eval/*`` keys), the best step marked."""
    plt = _plt()
    keys = sorted({k for r in rows for k in r if k.startswith("eval/") and k != "eval/classifier_accuracy"})
    fig, axes = plt.subplots(
        1, max(1, len(keys)), figsize=(4 * max(1, len(keys)), 3.5), layout="constrained", squeeze=False
    )
    if not keys:
        _empty(axes[0][0], "no evaluation metric logged")
    for ax, key in zip(axes[0], keys):
        ax.plot(*_series(rows, key), marker="o")
        name = key.split("/", 1)[1]
        if best and best.get("metric") == name:
            ax.axvline(best["step"], color="k", ls="--", lw=1, label=f"best {best['value']:.3g}")
            ax.legend()
        ax.set_title(name)
        ax.set_xlabel("step")
    _save(fig, path)
