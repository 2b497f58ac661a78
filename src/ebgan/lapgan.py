"""LAPGAN's training step on the project's trainer (Denton et al. 2015; networks in :mod:`ebgan.nets`).

Every level is its own GAN, trained on the real image's Laplacian pyramid, as in the LAPGAN paper: the 8x8
generator against the 8x8 discriminator, and at each finer level k the residual generator ``G_k(up(I_{k+1}))``
against ``D_k``, both conditioned on the *real* coarser image ``up(I_{k+1})``. The levels' losses (any loss
with a scalar discriminator: the same objective code as every other baseline) are summed into one D update
and one G update; the levels share no parameters, so the sum trains each level as if alone (Adam works per
parameter). Sampling needs none of this: ``G(z)`` runs the pyramid from coarse to fine.

:class:`ebgan.train.Trainer` calls :func:`d_phase` and :func:`g_phase` in place of its own for
``arch=lapgan``; this module uses the trainer it is handed and imports nothing of ``ebgan.train``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .nets import gaussian_pyramid, pyramid_up


def level_inputs(G, real: Tensor, z: Tensor) -> tuple[list[Tensor], list[Tensor]]:
    """``(real_inputs, fake_inputs)`` per level, the coarse 8x8 level last: ``(h_k, up(I_{k+1}))`` stacked as
    channels for level k, the image itself for the coarse level; the fakes are conditioned on the real
    coarser images."""
    g = gaussian_pyramid(real, G.n_levels)
    reals, fakes = [], []
    for k in range(G.n_levels):
        cond = pyramid_up(g[k + 1])
        reals.append(torch.cat([g[k] - cond, cond], dim=1))
        fakes.append(torch.cat([G.levels[k](cond), cond], dim=1))
    reals.append(g[-1])
    fakes.append(G.coarse_image(z))
    return reals, fakes


def _level_discriminators(D) -> list:
    return list(D.levels) + [D.coarse]


def d_phase(trainer, game_step: int):
    """``d_steps`` updates of every level's discriminator; returns the last fakes (with G's graph), the summed
    loss and statistics (``loss_d/level_k``, the coarse level last)."""
    cfg, G, D, obj = trainer.cfg, trainer.G_run, trainer.D, trainer.objective
    stats: dict[str, Tensor] = {}
    for k in range(cfg.d_steps):
        real = trainer.next_batch()
        last = k == cfg.d_steps - 1
        with torch.set_grad_enabled(last), trainer.autocast():
            reals, fakes = level_inputs(G, real, trainer.noise(real.shape[0]))
        loss_d = 0.0
        stats = {}
        with trainer.autocast():
            for j, (Dj, r, f) in enumerate(zip(_level_discriminators(D), reals, fakes)):
                loss_j, _ = obj.d_loss(Dj, r, f.detach(), game_step)
                loss_d = loss_d + loss_j
                stats[f"loss_d/level{j}"] = loss_j.detach()
        trainer._update(loss_d, trainer.d_params, trainer.opt_d, trainer.scaler_d)
        obj.after_d_step(D)
    return fakes, loss_d, stats


def g_phase(trainer, fakes: list[Tensor], game_step: int):
    """One update of every level's generator through its (frozen) discriminator."""
    D, obj = trainer.D, trainer.objective
    D.requires_grad_(False)
    try:
        loss_g = 0.0
        stats: dict[str, Tensor] = {}
        with trainer.autocast():
            for j, (Dj, f) in enumerate(zip(_level_discriminators(D), fakes)):
                loss_j, _ = obj.g_loss(Dj, f, game_step)
                loss_g = loss_g + loss_j
                stats[f"loss_g/level{j}"] = loss_j.detach()
        trainer._update(loss_g, trainer.g_params, trainer.opt_g, trainer.scaler_g)
    finally:
        D.requires_grad_(True)
    return loss_g, stats
