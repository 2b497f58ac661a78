"""Plots of a run with matplotlib (Agg backend, files only): training curves, 2-D samples, energy landscape."""

from __future__ import annotations

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


def training_curves(rows: list[dict[str, Any]], cfg: Config, path: Path) -> None:
    """Mean real and fake energy (or D outputs) over training with the margin drawn, and the two losses.

    For EBGAN the left panel is the paper's picture of the game: fake energies pushed up to the margin ``m``,
    real energies pulled down; at equilibrium both settle in ``[0, m]``.
    """
    plt = _plt()
    fig, (ax_e, ax_l) = plt.subplots(1, 2, figsize=(11, 4))
    steps = [r["step"] for r in rows]
    drawn = False
    for key, label, color in (("energy_real", "real D(x)", "tab:blue"), ("energy_fake", "fake D(G(z))", "tab:red"),
                              ("pretrain/energy_real", "real D(x), pre-training", "tab:cyan")):
        pts = [(r["step"], r[key]) for r in rows if key in r]
        if pts:
            ax_e.plot(*zip(*pts), label=label, color=color)
            drawn = True
    margin = [(r["step"], r["margin"]) for r in rows if "margin" in r]
    if margin:
        ax_e.plot(*zip(*margin), "k--", label="margin m")
    ax_e.set_title("mean energy per sample" if cfg.loss in ("ebgan", "began") else "discriminator output")
    ax_e.set_xlabel("step")
    if drawn or margin:
        ax_e.legend()
    for key, color in (("loss_d", "tab:purple"), ("loss_g", "tab:green")):
        pts = [(r["step"], r[key]) for r in rows if key in r]
        if pts:
            ax_l.plot(*zip(*pts), label=key, color=color)
    ax_l.set_title(f"losses ({cfg.loss})")
    ax_l.set_xlabel("step")
    if steps:
        ax_l.legend()
    _save(fig, path)


def scatter_points(real: Tensor, fake: Tensor, path: Path, title: str = "") -> None:
    """Real (grey; may be empty) and generated (red) 2-D points."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    if len(real):
        ax.scatter(real[:, 0], real[:, 1], s=2, c="0.6", label="real")
    ax.scatter(fake[:, 0], fake[:, 1], s=2, c="tab:red", alpha=0.5, label="generated")
    ref = real if len(real) else fake
    lim = float(ref.abs().max()) * 1.3 + 0.1
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=4)
    if title:
        ax.set_title(title)
    _save(fig, path)


@torch.no_grad()
def energy_landscape(D: nn.Module, real: Tensor, fake: Tensor, path: Path, title: str = "",
                     resolution: int = 200, device: torch.device | str = "cpu") -> None:
    """D's output over the plane (the energy for EBGAN) with real and generated points on top."""
    plt = _plt()
    lim = float(real.abs().max()) * 1.3 + 0.1
    axis = torch.linspace(-lim, lim, resolution)
    gx, gy = torch.meshgrid(axis, axis, indexing="xy")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    was_training = D.training
    D.eval()
    values = torch.cat([D(chunk.to(device))[0].float().cpu() for chunk in grid.split(8192)])
    D.train(was_training)
    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(values.view(resolution, resolution).numpy(), origin="lower", extent=(-lim, lim, -lim, lim),
                   cmap="viridis")
    fig.colorbar(im, ax=ax, label="D(x)")
    ax.scatter(real[:, 0], real[:, 1], s=1, c="white", label="real")
    ax.scatter(fake[:, 0], fake[:, 1], s=1, c="tab:red", alpha=0.5, label="generated")
    ax.legend(loc="upper right", markerscale=5)
    if title:
        ax.set_title(title)
    _save(fig, path)


def eval_curves(rows: list[dict[str, Any]], path: Path, best: dict | None = None) -> None:
    """One panel per metric logged by periodic evaluation (``eval/*`` keys), the best step marked."""
    plt = _plt()
    keys = sorted({k for r in rows for k in r if k.startswith("eval/") and k != "eval/classifier_accuracy"})
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.5), squeeze=False)
    for ax, key in zip(axes[0], keys):
        pts = [(r["step"], r[key]) for r in rows if key in r]
        ax.plot(*zip(*pts), marker="o")
        name = key.split("/", 1)[1]
        if best and best.get("metric") == name:
            ax.axvline(best["step"], color="k", ls="--", lw=1, label=f"best {best['value']:.3g}")
            ax.legend()
        ax.set_title(name)
        ax.set_xlabel("step")
    _save(fig, path)
