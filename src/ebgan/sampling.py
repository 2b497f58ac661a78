"""Load a trained run and draw samples from its generator (``ebgan sample``, ``ebgan eval RUN_DIR``, Python)."""

from __future__ import annotations

import json
import math
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


def load_networks(
    run_dir: str | os.PathLike, device: str = "cpu", checkpoint: str = "latest", weights: str = "auto"
) -> tuple[nn.Module, nn.Module, Config, dict, int]:
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
    G, D = build_networks(
        cfg,
        tuple(meta["sample_shape"]),
        objective.head,
        energy=objective.energy,
        n_classes=int(meta.get("n_classes") or 0),
    )
    if weights == "ema" and cfg.g_ema <= 0:
        raise EbganError(f"{run_dir} kept no moving average of G's weights (g_ema=0); use the raw weights")
    use_ema = cfg.g_ema > 0 and weights != "raw"
    load_weights(ckpt, {"G_ema" if use_ema else "G": G, "D": D})
    step = int(load_state(ckpt)["step"])
    return G.to(device).eval(), D.to(device).eval(), cfg, meta, step


def load_generator(
    run_dir: str | os.PathLike, device: str = "cpu", checkpoint: str = "latest", weights: str = "auto"
) -> tuple[nn.Module, Config, str]:
    """The run's generator in eval mode, its config, and the data kind (``image`` or ``points``)."""
    G, _, cfg, meta, _ = load_networks(run_dir, device, checkpoint, weights)
    return G, cfg, meta["kind"]


@torch.no_grad()
def sample_from_run(
    run_dir: str | os.PathLike,
    n: int,
    seed: int = 0,
    batch_size: int = 1000,
    device: str = "cpu",
    checkpoint: str = "latest",
    weights: str = "auto",
    label: int | None = None,
    energy_keep: float = 1.0,
) -> np.ndarray:
    """``n`` samples of a run: ``uint8 [n, C, H, W]`` images or ``float32 [n, 2]`` points (``weights``: see
    :func:`load_networks`). A conditional run (``conditional=true``) draws class ``label``, or every class in
    turn (0, 1, ..., so each has its share) when ``label`` is None.

    ``energy_keep`` < 1 (runs with an auto-encoder discriminator: EBGAN, BEGAN) is rejection by the learned
    energy: ``ceil(n / energy_keep)`` candidates are drawn and the ``n`` of lowest energy ``D(G(z))`` kept (in
    the order they were drawn; within each class for a conditional run, so the classes keep their shares).
    The samples then follow the generator's distribution re-weighted towards what D reconstructs well, as in
    discriminator rejection sampling (Azadi et al. 2019) with the energy as the score: it is a different
    sampler from G alone, and scores measured with it should say so.
    """
    if n <= 0:
        raise EbganError(f"-n must be > 0, got {n}")
    if not 0.0 < energy_keep <= 1.0:
        raise EbganError(f"energy_keep must be in (0, 1], got {energy_keep}")
    G, D, cfg, meta, _ = load_networks(run_dir, device, checkpoint, weights)
    kind = meta["kind"]
    if energy_keep < 1.0 and getattr(D, "head", None) != "ae":
        raise EbganError(
            f"energy_keep needs an auto-encoder discriminator (loss ebgan or began); {run_dir} "
            f"was trained with loss {cfg.loss}, whose discriminator has no energy"
        )
    m = n if energy_keep == 1.0 else math.ceil(n / energy_keep - 1e-9)  # 1e-9: 0.1 * 10 is not exactly 1
    labels = None
    if is_conditional(G):
        n_classes = next(mod.n_classes for mod in G.modules() if isinstance(mod, Conditioned))
        if label is not None and not 0 <= label < n_classes:
            raise EbganError(f"--class must be in 0..{n_classes - 1} for this run, got {label}")
        labels = torch.full((m,), label) if label is not None else torch.arange(m) % n_classes
    elif label is not None:
        raise EbganError(f"{run_dir} is not conditional (conditional=false): it cannot draw a given class")
    gen = torch.Generator(device=device).manual_seed(seed)
    parts, energies = [], []
    with seeded_noise(G, seed, device):  # noise planes (g_noise_planes): the same seed, the same images
        for i in range(0, m, batch_size):
            z = torch.randn(min(batch_size, m - i), cfg.z_dim, generator=gen, device=device)
            if labels is not None:
                set_labels(G, labels[i : i + len(z)].to(device))
            x = G(z)
            if m > n:
                if labels is not None:
                    set_labels(D, labels[i : i + len(z)].to(device))
                energies.append(D(x)[0].float().cpu())
            x = x.float().cpu()
            parts.append(to_uint8(x) if kind == "image" else x)
    out = torch.cat(parts)
    if m > n:
        out = out[_lowest_energy(torch.cat(energies), labels, n)]
    return out.numpy()


def _lowest_energy(energy: torch.Tensor, labels: torch.Tensor | None, n: int) -> torch.Tensor:
    """Indices of the ``n`` candidates kept: the lowest energies, in drawing order; with ``labels``, each class
    keeps the share it has among the first ``n`` labels (``arange % K`` or one class), placed where the first
    ``n`` candidates had that class, so the output's labels are those of an unfiltered draw of ``n``."""
    if labels is None:
        return torch.sort(torch.argsort(energy, stable=True)[:n]).values
    idx = torch.empty(n, dtype=torch.long)
    for k in labels[:n].unique():
        slots = (labels[:n] == k).nonzero().squeeze(1)
        cand = (labels == k).nonzero().squeeze(1)
        idx[slots] = torch.sort(cand[torch.argsort(energy[cand], stable=True)[: len(slots)]]).values
    return idx


def run_dataset_name(run_dir: str | os.PathLike) -> str:
    """The ``data`` a run was trained on (``mnist``, ``ring``, ...)."""
    return saved_config(Path(run_dir)).data
