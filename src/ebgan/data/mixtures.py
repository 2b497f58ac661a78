"""2-D Gaussian mixtures sampled on the fly: the ring and grid of the PacGAN protocol (:func:`sample_mixture`)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


# 2-D mixtures, PacGAN protocol (Lin et al. 2018): ring = 8 Gaussians on the unit circle, sigma 0.01;
# grid = 25 Gaussians at {-4, -2, 0, 2, 4}^2, sigma 0.05.
def ring_centers() -> Tensor:
    """``[8, 2]`` centres on the unit circle."""
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return torch.stack([angles.cos(), angles.sin()], dim=1).float()


def grid_centers() -> Tensor:
    """``[25, 2]`` centres at ``{-4, -2, 0, 2, 4}^2``."""
    v = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    return torch.cartesian_prod(v, v)


MIXTURES = {"ring": (ring_centers, 0.01), "grid": (grid_centers, 0.05)}


def sample_mixture(name: str, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """``n`` points from an equal-weight Gaussian mixture: ``(float32 [n, 2], int64 [n] component)``."""
    centers_fn, sigma = MIXTURES[name]
    centers = centers_fn()
    comp = torch.randint(len(centers), (n,), generator=generator)
    noise = torch.randn(n, 2, generator=generator) * sigma
    return centers[comp] + noise, comp
