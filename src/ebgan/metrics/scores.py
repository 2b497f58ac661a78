"""Metrics as pure functions of class probabilities, features, points or labels, and their registry.

Nothing here touches files or networks; everything is computed in float64 and returned as Python numbers.
Each function gives its formula and its source; docs/paper.md ("Evaluation protocols") gives the protocols.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..errors import EbganError

ArrayLike = Tensor | np.ndarray


def _as_f64(name: str, x: ArrayLike, dims: int) -> Tensor:
    t = torch.as_tensor(x).detach().to(torch.float64)
    if t.dim() != dims:
        raise EbganError(f"{name} must be a {dims}-D array, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise EbganError(f"{name} contains NaN or infinite values")
    return t


def _check_probs(probs: ArrayLike) -> Tensor:
    p = _as_f64("probs", probs, 2)
    if p.shape[0] == 0 or p.shape[1] == 0:
        raise EbganError(f"probs must be a non-empty [N, K] array, got shape {tuple(p.shape)}")
    if (p < 0).any() or not torch.allclose(p.sum(1), torch.ones(p.shape[0], dtype=p.dtype), atol=1e-4):
        raise EbganError("probs must be non-negative with rows summing to 1 (softmax outputs, not logits)")
    return p


def inception_score(probs: ArrayLike, splits: int = 10) -> tuple[float, float]:
    """Inception score (Salimans et al. 2016, "Improved techniques for training GANs", section 4).

    ``IS = exp( E_x KL( p(y|x) || p(y) ) )``, with ``p(y) = E_x p(y|x)`` the marginal over the split.

    As in the reference implementation, the ``N`` rows are cut into ``splits`` consecutive, nearly equal parts;
    the score is computed on each and the mean and the (population) standard deviation over the parts are
    returned. ``0 log 0 = 0``. Uniform predictions give 1; one-hot predictions balanced over ``K`` classes in
    every split give ``K``.

    Args:
        probs: ``[N, K]`` class probabilities ``p(y|x)`` (rows sum to 1).
        splits: number of parts, ``1 <= splits <= N``.

    Returns:
        ``(mean, std)`` over the splits.
    """
    p = _check_probs(probs)
    if not 1 <= splits <= p.shape[0]:
        raise EbganError(f"splits must be between 1 and the number of samples ({p.shape[0]}), got {splits}")
    scores = []
    for part in torch.tensor_split(p, splits):
        py = part.mean(0, keepdim=True)  # [1, K]
        # xlogy makes 0 * log 0 = 0; a class with p(y|x) > 0 has p(y) > 0, so the division is safe.
        kl = (torch.xlogy(part, part) - torch.xlogy(part, py.expand_as(part))).sum(1)  # [n]
        scores.append(math.exp(kl.mean().item()))
    return float(np.mean(scores)), float(np.std(scores))


def paper_inception_score(probs: ArrayLike, eps: float = 1e-12) -> float:
    """The EBGAN paper's modified inception score (Zhao et al. 2017, section 4.1; docs/paper.md s.1).

    ``I' = E_x KL( p(y) || p(y|x) ) = E_x sum_y p(y) (log p(y) - log p(y|x))``, ``p(y) = E_x p(y|x)``.

    The KL is swapped with respect to the inception score and there is no ``exp``. It is 0 for uniform
    predictions and grows as predictions become confident and diverse. Because a confident classifier gives
    ``p(y|x)`` close to 0 for most classes, the swapped KL is unbounded; ``p(y|x)`` is clamped below at ``eps``
    (so one-hot predictions balanced over ``K`` classes give ``-log K - (K-1)/K log eps``, about 24.6 for
    ``K = 10``). Compare values only at the same ``eps`` and with the same classifier.

    Args:
        probs: ``[N, K]`` class probabilities (rows sum to 1).
        eps: lower clamp of ``p(y|x)`` inside the log.
    """
    p = _check_probs(probs)
    if not eps > 0:
        raise EbganError(f"eps must be > 0, got {eps}")
    py = p.mean(0, keepdim=True)  # [1, K]
    kl = (torch.xlogy(py, py) - py * p.clamp_min(eps).log()).sum(1)  # [N]
    return float(kl.mean())


class GaussianStats:
    """Streaming mean and covariance of feature rows (Chan, Golub and LeVeque 1979, pairwise update).

    ``update(batch)`` merges a ``[B, D]`` batch: with ``delta = mean_b - mean``,
    ``M2 += M2_b + delta delta^T n n_b / (n + n_b)`` and ``mean += delta n_b / (n + n_b)``. Everything is in
    float64, so memory is one ``[D, D]`` matrix however many rows are seen, and the result does not depend on
    the batch size beyond rounding.
    """

    def __init__(self, dim: int):
        self.n = 0
        self.mean = torch.zeros(dim, dtype=torch.float64)
        self.m2 = torch.zeros(dim, dim, dtype=torch.float64)

    def update(self, batch: ArrayLike) -> None:
        x = _as_f64("features", batch, 2)
        if x.shape[1] != self.mean.shape[0]:
            raise EbganError(f"features have {x.shape[1]} columns, expected {self.mean.shape[0]}")
        nb = x.shape[0]
        if nb == 0:
            return
        mb = x.mean(0)
        xc = x - mb
        n = self.n
        delta = mb - self.mean
        self.m2 += xc.T @ xc + torch.outer(delta, delta) * (n * nb / (n + nb))
        self.mean += delta * (nb / (n + nb))
        self.n = n + nb

    def result(self) -> tuple[Tensor, Tensor]:
        """``(mu [D], sigma [D, D])``; ``sigma`` is the unbiased covariance (divided by ``N - 1``)."""
        if self.n < 2:
            raise EbganError(f"need at least 2 feature rows for a covariance, got {self.n}")
        return self.mean.clone(), self.m2 / (self.n - 1)


def gaussian_stats(features: ArrayLike | Iterable[ArrayLike], batch_size: int = 10_000) -> tuple[Tensor, Tensor]:
    """Mean and unbiased covariance of feature rows, in float64, computed in batches.

    ``mu = 1/N sum_i f_i``, ``sigma = 1/(N-1) sum_i (f_i - mu)(f_i - mu)^T`` (as ``numpy.cov``, which the
    reference FID code uses).

    Args:
        features: a ``[N, D]`` array, or an iterable of ``[B, D]`` batches (streamed; never concatenated).
        batch_size: rows per update when ``features`` is one array.

    Returns:
        ``(mu float64 [D], sigma float64 [D, D])``.
    """
    if isinstance(features, (Tensor, np.ndarray)):
        f = torch.as_tensor(features)
        if f.dim() != 2:
            raise EbganError(f"features must be a 2-D [N, D] array, got shape {tuple(f.shape)}")
        batches: Iterable[ArrayLike] = (f[i : i + batch_size] for i in range(0, f.shape[0], batch_size))
    else:
        batches = features
    acc: GaussianStats | None = None
    for b in batches:
        if acc is None:
            acc = GaussianStats(torch.as_tensor(b).shape[-1])
        acc.update(b)
    if acc is None:
        raise EbganError("need at least 2 feature rows for a covariance, got 0")
    return acc.result()


def _sqrtm_psd(s: Tensor) -> Tensor:
    # Symmetric square root through the eigendecomposition; rounding can leave eigenvalues of a PSD matrix
    # slightly negative, and they are clamped to 0 (their true value).
    w, v = torch.linalg.eigh(s)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """Fréchet distance between two Gaussians (Heusel et al. 2017, "GANs trained by a two time-scale update
    rule converge to a local Nash equilibrium"; Dowson and Landau 1982), the FID when the Gaussians are fitted
    to network features.

    ``d^2 = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr( (S1^(1/2) S2 S1^(1/2))^(1/2) )``

    The last trace equals ``tr((S1 S2)^(1/2))`` of the usual formula, but its argument is symmetric positive
    semi-definite, so it is computed with ``torch.linalg.eigh`` in float64 (no scipy ``sqrtm``, no complex
    parts); tiny negative eigenvalues from rounding are clamped to 0, and so is a result of ``-1e-12``.
    Identical statistics give 0; a pure mean shift ``d`` with equal covariances gives ``||d||^2``.
    """
    m1, m2 = _as_f64("mu1", mu1, 1), _as_f64("mu2", mu2, 1)
    s1, s2 = _as_f64("sigma1", sigma1, 2), _as_f64("sigma2", sigma2, 2)
    d = m1.shape[0]
    for name, s in (("sigma1", s1), ("sigma2", s2)):
        if tuple(s.shape) != (d, d):
            raise EbganError(f"{name} must be [{d}, {d}] to match the means, got {tuple(s.shape)}")
    if m2.shape[0] != d:
        raise EbganError(f"mu1 and mu2 differ in length: {d} and {m2.shape[0]}")
    s1 = (s1 + s1.T) / 2
    s2 = (s2 + s2.T) / 2
    r1 = _sqrtm_psd(s1)
    m = r1 @ s2 @ r1
    w = torch.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = w.clamp_min(0).sqrt().sum()
    diff = m1 - m2
    fid = diff.dot(diff) + torch.trace(s1) + torch.trace(s2) - 2 * tr_covmean
    return max(float(fid), 0.0)


def _kl_to_uniform(counts: Tensor, k: int) -> float:
    # KL(p || U_k) = sum_i p_i log(p_i k), 0 log 0 = 0; finite even for missing modes ("reverse" KL).
    p = counts.to(torch.float64) / counts.sum()
    return float(torch.xlogy(p, p * k).sum())


def count_modes_2d(points: ArrayLike, centers: ArrayLike, sigma: float, threshold: float = 3.0) -> dict:
    """Mode coverage of 2-D samples from a Gaussian mixture (PacGAN protocol: Lin et al. 2018, section 5.1;
    after VEEGAN, Srivastava et al. 2017).

    * each point is assigned to its nearest centre; it is **high quality** if that distance is at most
      ``threshold * sigma`` (3 standard deviations);
    * a mode is **covered** if it is the nearest centre of at least one high-quality point;
    * ``reverse_kl = KL(q || U_K) = sum_k q_k log(K q_k)``, where ``q`` is the histogram of the high-quality
      points over the ``K`` modes (as in the PacGAN code, points further than the threshold belong to no mode).
      It is 0 for perfectly balanced modes and ``log K`` when all points sit on one mode. It is ``None`` when
      no point is of high quality.

    Args:
        points: ``[N, 2]`` samples.
        centers: ``[K, 2]`` mixture means.
        sigma: the mixture's standard deviation (ring 0.01, grid 0.05).
        threshold: high-quality radius in units of ``sigma``.

    Returns:
        ``{"modes": int, "hq_pct": float (0-100), "reverse_kl": float | None, "counts": list[int]}``.
    """
    x = _as_f64("points", points, 2)
    c = _as_f64("centers", centers, 2)
    if x.shape[0] == 0 or x.shape[1] != 2 or c.shape[1] != 2 or c.shape[0] == 0:
        raise EbganError(f"points must be [N, 2] and centers [K, 2], got {tuple(x.shape)} and {tuple(c.shape)}")
    if not sigma > 0:
        raise EbganError(f"sigma must be > 0, got {sigma}")
    k = c.shape[0]
    counts = torch.zeros(k, dtype=torch.int64)
    n_hq = 0
    for i in range(0, x.shape[0], 65536):  # [B, K] distance blocks: bounded memory for any N
        dist = torch.cdist(x[i : i + 65536], c)  # [B, K]
        dmin, nearest = dist.min(1)
        hq = dmin <= threshold * sigma
        n_hq += int(hq.sum())
        counts += torch.bincount(nearest[hq], minlength=k)
    return {
        "modes": int((counts > 0).sum()),
        "hq_pct": 100.0 * n_hq / x.shape[0],
        "reverse_kl": _kl_to_uniform(counts, k) if n_hq > 0 else None,
        "counts": counts.tolist(),
    }


def stacked_mnist_modes(labels: ArrayLike, num_modes: int = 1000) -> dict:
    """Mode coverage on Stacked MNIST (VEEGAN, Srivastava et al. 2017, section 5.2; PacGAN, Lin et al. 2018,
    section 5.2).

    Each sample is three MNIST digits stacked as channels; its mode is ``100 a + 10 b + c`` from the digits
    ``(a, b, c)`` the classifier reads in channels 0, 1, 2. With ``q`` the histogram of modes:

    * ``modes`` = number of the 1000 modes hit at least once;
    * ``kl = KL(q || U_1000) = sum_m q_m log(1000 q_m)``: 0 for uniform coverage, ``log 1000 = 6.91`` for a
      single mode, ``log 2`` when exactly half the modes are hit evenly.

    Args:
        labels: ``int [N]`` modes in ``[0, num_modes)``, or ``int [N, 3]`` digits per channel.
        num_modes: 1000 for three stacked digits.

    Returns:
        ``{"modes": int, "kl": float}``.
    """
    t = torch.as_tensor(labels)
    if t.is_floating_point() or t.dtype == torch.bool:
        raise EbganError(f"labels must be integers, got {t.dtype}")
    t = t.to(torch.int64)
    if t.dim() == 2 and t.shape[1] == 3:
        if ((t < 0) | (t > 9)).any():
            raise EbganError("per-channel digits must be in 0..9")
        t = t[:, 0] * 100 + t[:, 1] * 10 + t[:, 2]
    if t.dim() != 1 or t.shape[0] == 0:
        raise EbganError(f"labels must be a non-empty [N] or [N, 3] array, got shape {tuple(t.shape)}")
    if ((t < 0) | (t >= num_modes)).any():
        raise EbganError(f"mode labels must be in [0, {num_modes}), got {int(t.min())}..{int(t.max())}")
    counts = torch.bincount(t, minlength=num_modes)
    return {"modes": int((counts > 0).sum()), "kl": _kl_to_uniform(counts, num_modes)}


def auroc(scores: ArrayLike, labels: ArrayLike) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic (Hanley and McNeil 1982).

    ``AUROC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg)``, where ``R_pos`` is the sum of the ranks
    (1-based, ties given their average rank) of the positive samples among all scores. It equals the
    probability that a random positive scores higher than a random negative, counting ties as 1/2.

    Args:
        scores: ``[N]`` real scores, higher meaning "more positive" (e.g. the energy ``D(x)`` as an anomaly
            score).
        labels: ``[N]`` with values 0/1 or booleans; 1 marks a positive (e.g. an anomaly).
    """
    s = _as_f64("scores", scores, 1).numpy()
    lab = torch.as_tensor(labels)
    if lab.dim() != 1 or lab.shape[0] != s.shape[0]:
        raise EbganError(f"labels must be [N] like scores ({s.shape[0]}), got shape {tuple(lab.shape)}")
    lab_np = lab.numpy()
    if not np.isin(lab_np, (0, 1)).all():
        raise EbganError("labels must be 0/1 or booleans")
    pos = lab_np.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise EbganError(f"AUROC needs both classes, got {n_pos} positives and {n_neg} negatives")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    last_rank = np.cumsum(counts)  # rank of the last member of each group of equal scores
    avg_rank = last_rank - (counts - 1) / 2.0
    ranks = avg_rank[inverse.reshape(-1)]
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


@dataclass(frozen=True)
class Metric:
    """A registry entry: the name the CLI lists, a one-line description with the formula, and the function."""

    name: str
    description: str
    fn: Callable


METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric(
            "is",
            "inception score exp(E_x KL(p(y|x) || p(y))) on classifier probabilities, mean/std over "
            "10 splits (Salimans et al. 2016)",
            inception_score,
        ),
        Metric(
            "paper_score",
            "EBGAN's modified score I' = E_x KL(p(y) || p(y|x)), no exp (Zhao et al. 2017)",
            paper_inception_score,
        ),
        Metric(
            "fid",
            "Frechet distance of Gaussians fitted to classifier penultimate features (Heusel et al. 2017)",
            frechet_distance,
        ),
        Metric(
            "modes_2d",
            "2-D mixture modes covered, % high-quality (<= 3 sigma), reverse KL to uniform (PacGAN, Lin et al. 2018)",
            count_modes_2d,
        ),
        Metric(
            "stacked_mnist",
            "Stacked MNIST modes covered of 1000 and KL(mode freq || uniform) (VEEGAN, Srivastava et al. 2017)",
            stacked_mnist_modes,
        ),
        Metric("auroc", "area under the ROC curve, rank-based with averaged ties (Mann-Whitney U)", auroc),
    ]
}


def list_metrics() -> list[str]:
    """The registered metric names, sorted."""
    return sorted(METRICS)


def get_metric(name: str) -> Metric:
    """The registry entry for ``name``; an unknown name raises :class:`EbganError` listing the valid ones."""
    try:
        return METRICS[name]
    except KeyError:
        raise EbganError(f"unknown metric {name!r}; valid metrics: {', '.join(list_metrics())}") from None
