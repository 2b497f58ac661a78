"""Objectives: how one loss turns discriminator outputs into the D and G losses of one step.

An objective knows the discriminator head it needs (``"ae"`` or ``"logit"``) and any state the loss carries
between steps (BEGAN's ``k_t``). It never touches optimisers, files or data: ``steps.py`` calls it.

Each ``d_loss``/``g_loss`` returns ``(loss, stats)``; ``stats`` are detached scalars named like paths' leaves
(``energy_real``, ``pt``) that the trainer averages and logs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from . import losses
from .config import Config, margin_at

Stats = dict[str, Tensor]


def discriminate(D: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One D pass over real and fake together: ``(value_real [N], value_fake [M], code_real, code_fake)``.

    A single pass is faster than two and keeps batch-norm statistics and DDP buffer syncs to one forward.
    """
    n = real.shape[0]
    value, code = D(torch.cat([real, fake], dim=0))
    return value[:n], value[n:], code[:n], code[n:]


class Objective:
    """Base: subclasses set ``head`` and implement ``d_loss`` and ``g_loss``."""

    head = "logit"

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def d_loss(self, D: nn.Module, real: Tensor, fake: Tensor, step: int) -> tuple[Tensor, Stats]:
        raise NotImplementedError

    def g_loss(self, D: nn.Module, fake: Tensor, step: int) -> tuple[Tensor, Stats]:
        raise NotImplementedError

    def after_d_step(self, D: nn.Module) -> None:
        """Hook after each D optimiser step (WGAN weight clipping)."""

    def after_d_loss(self, stats: Stats) -> None:
        """Hook with the D step's statistics (BEGAN's k_t update)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class EBGANObjective(Objective):
    """EBGAN (Zhao et al. 2017): margin loss for D (eq. 1), energy plus pulling-away term for G (eq. 2, 6)."""

    head = "ae"

    def d_loss(self, D, real, fake, step):
        e_real, e_fake, _, _ = discriminate(D, real, fake)
        e_real, e_fake = e_real.float(), e_fake.float()
        m = margin_at(self.cfg, step)
        loss = losses.ebgan_d_loss(e_real, e_fake, m)
        return loss, {"energy_real": e_real.mean().detach(), "energy_fake": e_fake.mean().detach()}

    def g_loss(self, D, fake, step):
        e_fake, code = D(fake)
        loss = losses.ebgan_g_loss(e_fake.float())
        stats: Stats = {}
        if self.cfg.pt_weight > 0:
            pt = losses.pulling_away_term(code.float())
            loss = loss + self.cfg.pt_weight * pt
            stats["pt"] = pt.detach()
        return loss, stats


def pretrain_loss(D: nn.Module, real: Tensor) -> Tensor:
    """Auto-encoder pre-training on real data alone: the mean energy (reconstruction error) of real samples."""
    energy, _ = D(real)
    return energy.float().mean()


OBJECTIVES: dict[str, type[Objective]] = {"ebgan": EBGANObjective}


def make_objective(cfg: Config) -> Objective:
    from .errors import EbganError

    if cfg.loss not in OBJECTIVES:
        raise EbganError(f"unknown loss {cfg.loss!r}; valid losses: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[cfg.loss](cfg)
