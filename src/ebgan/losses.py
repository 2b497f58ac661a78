"""Losses as pure tensor functions: energies or logits in, a scalar out.

This module imports only torch. Every function states its formula and the paper it comes from; shapes are
checked at the boundary so that a wrongly reduced energy (``[N, 1]`` instead of ``[N]``) fails loudly instead
of broadcasting into a wrong value.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _check_batch(name: str, t: Tensor) -> None:
    if t.dim() != 1:
        raise ValueError(f"{name} must be a 1-D [N] tensor of per-sample values, got shape {tuple(t.shape)}")


def ebgan_d_loss(energy_real: Tensor, energy_fake: Tensor, margin: float | Tensor) -> Tensor:
    """EBGAN discriminator loss (Zhao et al. 2017, eq. 1), per sample, then averaged over the batch.

    ``L_D(x, z) = D(x) + max(0, m - D(G(z)))``

    Args:
        energy_real: ``[N]`` energies ``D(x)`` of real samples.
        energy_fake: ``[N]`` energies ``D(G(z))`` of generated samples (detached from G in the D step).
        margin: ``m >= 0``; fakes whose energy is above ``m`` give no gradient.

    Example: ``energy_real=[0.5, 1.0]``, ``energy_fake=[2.0, 0.3]``, ``m=1`` gives
    ``((0.5 + 0) + (1.0 + 0.7)) / 2 = 1.1``.
    """
    _check_batch("energy_real", energy_real)
    _check_batch("energy_fake", energy_fake)
    if energy_real.shape != energy_fake.shape:
        raise ValueError(f"energy_real {tuple(energy_real.shape)} and energy_fake {tuple(energy_fake.shape)} differ")
    return (energy_real + torch.clamp(margin - energy_fake, min=0)).mean()


def ebgan_g_loss(energy_fake: Tensor) -> Tensor:
    """EBGAN generator loss (Zhao et al. 2017, eq. 2): ``L_G(z) = D(G(z))``, averaged over the batch.

    The gradient must flow through the whole energy ``||Dec(Enc(G(z))) - G(z)||``, i.e. through both the
    reconstruction and the target ``G(z)``; callers must not detach the target.

    Example: ``energy_fake=[2.0, 0.3]`` gives 1.15.
    """
    _check_batch("energy_fake", energy_fake)
    return energy_fake.mean()


def pulling_away_term(embeddings: Tensor, eps: float = 1e-8) -> Tensor:
    """Pulling-away term (Zhao et al. 2017, eq. 6), a repelling regulariser against mode collapse.

    ``f_PT(S) = 1 / (N (N - 1)) * sum_i sum_{j != i} (S_i . S_j / (||S_i|| ||S_j||))^2``

    ``S`` is ``[N, d]``: the encoder outputs of the *generated* batch, one row per sample, flattened. Each row is
    L2-normalised on its own (not across the batch), the cosine is *squared*, and the diagonal is excluded.

    Worked values: orthogonal rows give 0; identical rows give 1; rows ``[1,0]``, ``[-1,0]``, ``[0,1]`` give
    ``(1 + 0 + 1 + 0 + 0 + 0) / 6 = 1/3``; scaling a row changes nothing.
    """
    if embeddings.dim() < 2:
        raise ValueError(f"embeddings must be [N, d], got shape {tuple(embeddings.shape)}")
    s = embeddings.flatten(1)  # [N, d]
    n = s.shape[0]
    if n < 2:
        raise ValueError(f"the pulling-away term needs at least 2 samples, got {n}")
    s = s / s.norm(dim=1, keepdim=True).clamp_min(eps)  # per-row unit vectors
    cos2 = (s @ s.t()).pow(2)  # [N, N] squared cosine similarities
    off_diag = cos2.sum() - cos2.diagonal().sum()
    return off_diag / (n * (n - 1))
