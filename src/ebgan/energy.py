"""The discriminator's energy as a score: batched evaluation and a threshold at a stated false-positive rate.

An auto-encoder discriminator gives every sample an energy ``D(x)``, its reconstruction error: low on the
data it was trained on, high elsewhere. These functions only need a discriminator, so the trainer (which
calibrates a threshold on held-out data at the end of a run) and anomaly scoring (``ebgan.anomaly``) share them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from .errors import EbganError


@torch.no_grad()
def energies(D: nn.Module, x: Tensor, batch_size: int = 1000, device: torch.device | str | None = None) -> Tensor:
    """``D``'s energy of every sample of ``x``: float32 ``[N]`` on the CPU.

    ``x`` is ``uint8 [N, C, H, W]`` images (mapped to ``[-1, 1]`` as in training) or float ``[N, d]`` points.
    ``D`` runs in eval mode (dropout off, batch norm with its running statistics), so a sample's energy does
    not depend on the other samples of its batch; its mode is restored afterwards.
    """
    if getattr(D, "head", None) != "ae":
        raise EbganError("energies need an auto-encoder discriminator (a run trained with loss=ebgan or began)")
    if batch_size < 1:
        raise EbganError(f"batch size must be >= 1, got {batch_size}")
    device = torch.device(device) if device is not None else next(D.parameters()).device
    was_training = D.training
    D.eval()
    out = []
    try:
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(device)
            xb = xb.float().div_(127.5).sub_(1.0) if xb.dtype == torch.uint8 else xb.float()
            out.append(D(xb)[0].float().cpu())
    finally:
        D.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)


SCORES = ("energy", "energy/ink")


def ink(x: Tensor) -> Tensor:
    """Per-image amount of foreground: the sum of the pixel intensities in ``[0, 1]`` (``uint8 / 255``), float64
    ``[N]``. A blank (all-zero) image has ink 0."""
    if x.dtype != torch.uint8:
        raise EbganError(f"ink needs uint8 images, got {x.dtype}")
    return x.flatten(1).double().sum(1) / 255.0


def anomaly_scores(energy: Tensor, x: Tensor, score: str = "energy", energy_kind: str = "l2") -> Tensor:
    """The anomaly score of each sample, float64 ``[N]`` (higher = more anomalous).

    * ``energy``: the discriminator's energy ``D(x)`` itself.
    * ``energy/ink``: the energy per unit of the input's ink (:func:`ink`, floored at 1 so that a blank image
      divides by 1): ``D(x) / sqrt(ink)`` for the ``l2`` energy (its square, the summed squared error, over the
      ink) and ``D(x) / ink`` for ``sse``, ``mse`` and ``l1``, which grow with the ink itself. A reconstruction
      error grows with the amount of stroke to reconstruct, so on raw energies a thin digit (a 1 or a 7) looks
      normal to an auto-encoder trained on a heavier one; on one-class MNIST this lifts the AUROC of the digit 8
      from 91.4 to 96.8 with the same weights (BENCHMARKS.md). Images only.
    """
    e = energy.double()
    if score == "energy":
        return e
    if score == "energy/ink":
        power = 0.5 if energy_kind == "l2" else 1.0
        return e / ink(x).clamp_min(1.0).pow(power)
    raise EbganError(f"anomaly score must be one of {', '.join(SCORES)}, got {score!r}")


def threshold_at_fpr(scores: Tensor | np.ndarray, fpr: float) -> float:
    """The threshold that flags (strictly above it) a share ``fpr`` of ``scores`` taken as normal.

    With ``scores`` sorted ascending as ``s_1 <= ... <= s_n`` and ``k = floor(fpr * n)``, the threshold is
    ``s_{n-k}``: exactly ``k`` scores lie above it when they are distinct (fewer with ties), so the
    false-positive rate on these scores is at most ``fpr``. E.g. the scores 0..99 at ``fpr = 0.05`` give 94
    (95..99 flagged).
    """
    s = np.sort(np.asarray(scores, dtype=np.float64).reshape(-1))
    if s.size == 0:
        raise EbganError("a threshold needs at least one score")
    if not 0 < fpr < 1:
        raise EbganError(f"the false-positive rate must be in (0, 1), got {fpr}")
    if not np.isfinite(s).all():
        raise EbganError("scores hold NaN or infinite values")
    k = math.floor(fpr * s.size + 1e-9)  # the epsilon absorbs float error in fpr * n (0.05 * 100 = 5.000...1)
    return float(s[s.size - k - 1])


def calibration(scores: Tensor, fpr: float, step: int, score: str = "energy") -> dict:
    """What ``threshold.json`` holds: the threshold at ``fpr`` on held-out normal data and how it was found."""
    s = np.asarray(scores, dtype=np.float64)
    return {
        "threshold": threshold_at_fpr(s, fpr),
        "score": score,
        "fpr": fpr,
        "n_holdout": int(s.size),
        "step": int(step),
        "holdout_scores": {
            "mean": float(s.mean()),
            "min": float(s.min()),
            "median": float(np.median(s)),
            "max": float(s.max()),
        },
        "rule": f"anomalous when {score} > threshold",
    }
