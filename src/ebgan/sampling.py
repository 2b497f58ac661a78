"""Load a trained run and draw samples from its generator (``ebgan sample``, ``ebgan eval RUN_DIR``, Python)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoint import latest_checkpoint, load_state, load_weights
from .config import Config
from .data import to_uint8
from .errors import EbganError
from .nets import Conditioned, build_networks, is_conditional, seeded_noise, set_labels
from .objectives import make_objective
from .rundir import saved_config

WEIGHTS = ("auto", "ema", "raw")


def load_networks(run_dir: str | os.PathLike, device: str = "cpu", checkpoint: str = "latest",
                  weights: str = "auto") -> tuple[nn.Module, nn.Module, Config, dict, int]:
    """A run's ``(G, D, config, data.json, step)`` at a checkpoint, both networks in eval mode on ``device``.

    ``checkpoint`` is ``"latest"`` or ``"best"`` (kept when the run had ``best_metric`` set). ``weights``: the
    generator's moving average when the run kept one (``g_ema > 0``) and its raw weights otherwise
    (``"auto"``), or either explicitly (``"ema"``, ``"raw"``).
    """
    if weights not in WEIGHTS:
        raise EbganError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    run_dir = Path(run_dir)
    ckpt = latest_checkpoint(run_dir, checkpoint)
    cfg = saved_config(run_dir)
    meta = json.loads((run_dir / "data.json").read_text()) if (run_dir / "data.json").is_file() else None
    if meta is None:
        raise EbganError(f"{run_dir} has no data.json (it is not a complete run folder)")
    objective = make_objective(cfg)
    G, D = build_networks(cfg, tuple(meta["sample_shape"]), objective.head, energy=objective.energy,
                          n_classes=int(meta.get("n_classes") or 0))
    if weights == "ema" and cfg.g_ema <= 0:
        raise EbganError(f"{run_dir} kept no moving average of G's weights (g_ema=0); use the raw weights")
    use_ema = cfg.g_ema > 0 and weights != "raw"
    load_weights(ckpt, {"G_ema" if use_ema else "G": G, "D": D})
    step = int(load_state(ckpt)["step"])
    return G.to(device).eval(), D.to(device).eval(), cfg, meta, step


def load_generator(run_dir: str | os.PathLike, device: str = "cpu", checkpoint: str = "latest",
                   weights: str = "auto") -> tuple[nn.Module, Config, str]:
    """The run's generator in eval mode, its config, and the data kind (``image`` or ``points``)."""
    G, _, cfg, meta, _ = load_networks(run_dir, device, checkpoint, weights)
    return G, cfg, meta["kind"]


@torch.no_grad()
def sample_from_run(run_dir: str | os.PathLike, n: int, seed: int = 0, batch_size: int = 1000,
                    device: str = "cpu", checkpoint: str = "latest", weights: str = "auto",
                    label: int | None = None) -> np.ndarray:
    """``n`` samples of a run: ``uint8 [n, C, H, W]`` images or ``float32 [n, 2]`` points (``weights``: see
    :func:`load_networks`). A conditional run (``conditional=true``) draws class ``label``, or every class in
    turn (0, 1, ..., so each has its share) when ``label`` is None."""
    if n <= 0:
        raise EbganError(f"-n must be > 0, got {n}")
    G, cfg, kind = load_generator(run_dir, device, checkpoint, weights)
    labels = None
    if is_conditional(G):
        n_classes = next(m.n_classes for m in G.modules() if isinstance(m, Conditioned))
        if label is not None and not 0 <= label < n_classes:
            raise EbganError(f"--class must be in 0..{n_classes - 1} for this run, got {label}")
        labels = torch.full((n,), label) if label is not None else torch.arange(n) % n_classes
    elif label is not None:
        raise EbganError(f"{run_dir} is not conditional (conditional=false): it cannot draw a given class")
    gen = torch.Generator(device=device).manual_seed(seed)
    parts = []
    with seeded_noise(G, seed, device):  # noise planes (g_noise_planes): the same seed, the same images
        for i in range(0, n, batch_size):
            z = torch.randn(min(batch_size, n - i), cfg.z_dim, generator=gen, device=device)
            if labels is not None:
                set_labels(G, labels[i:i + len(z)].to(device))
            x = G(z).float().cpu()
            parts.append(to_uint8(x) if kind == "image" else x)
    return torch.cat(parts).numpy()


def run_dataset_name(run_dir: str | os.PathLike) -> str:
    """The ``data`` a run was trained on (``mnist``, ``ring``, ...)."""
    return saved_config(Path(run_dir)).data
