"""Metrics against closed forms, and the shipped classifier against its recorded figures.

Closed forms (derived in each test's docstring):
* FID of identical statistics is 0; of a pure mean shift ``d`` with equal covariances it is ``||d||^2``;
  of two diagonal Gaussians it is ``||d||^2 + sum (sqrt(a_i) - sqrt(b_i))^2``.
* IS of uniform predictions is 1; of one-hot predictions balanced over ``K`` classes it is ``K``.
* Mode counts and KLs on constructed point and label sets.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from ebgan.data import grid_centers, ring_centers, sample_mixture
from ebgan.errors import EbganError
from ebgan.metrics import (
    METRICS,
    auroc,
    count_modes_2d,
    frechet_distance,
    gaussian_stats,
    get_metric,
    inception_score,
    list_metrics,
    paper_inception_score,
    stacked_mnist_modes,
)
from ebgan.metrics.classifier import DEFAULT_WEIGHTS, MnistClassifier, sidecar_path


def f64(x) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float64)


# ------------------------------------------------------------------------------------------ inception score


def test_is_uniform_predictions_is_one():
    """p(y|x) = p(y) = 1/K for every x: every KL term is 0, so IS = exp(0) = 1 in every split, std 0."""
    mean, std = inception_score(torch.full((100, 10), 0.1))
    assert_close(f64(mean), f64(1.0))
    assert_close(f64(std), f64(0.0))


@pytest.mark.parametrize("k", [2, 10])
def test_is_balanced_one_hot_is_k(k):
    """One-hot predictions, each class equally often in each split: p(y) = 1/K and
    KL(onehot || uniform) = log K for every x, so IS = exp(log K) = K."""
    labels = torch.arange(10 * k * 3) % k  # each consecutive split of 3k rows holds every class 3 times
    probs = torch.nn.functional.one_hot(labels, k).double()
    mean, std = inception_score(probs, splits=10)
    assert_close(f64(mean), f64(float(k)))
    assert_close(f64(std), f64(0.0))


def test_is_by_hand_two_classes():
    """Rows [1, 0] and [0.5, 0.5], one split: p(y) = [0.75, 0.25].
    KL1 = log(1/0.75); KL2 = 0.5 log(0.5/0.75) + 0.5 log(0.5/0.25); IS = exp((KL1 + KL2)/2)."""
    kl1 = math.log(1 / 0.75)
    kl2 = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    mean, _ = inception_score(torch.tensor([[1.0, 0.0], [0.5, 0.5]]), splits=1)
    assert_close(f64(mean), f64(math.exp((kl1 + kl2) / 2)))


def test_paper_score_closed_forms():
    """I' = E_x KL(p(y) || p(y|x)). Uniform predictions: p(y) = p(y|x), I' = 0.
    Balanced one-hot over K with p(y|x) clamped at eps: each x gives
    sum_y (1/K)(log(1/K) - log p(y|x)) = -log K - (K-1)/K log eps."""
    assert_close(f64(paper_inception_score(torch.full((50, 10), 0.1))), f64(0.0))
    k, eps = 10, 1e-12
    probs = torch.nn.functional.one_hot(torch.arange(100) % k, k).double()
    expected = -math.log(k) - (k - 1) / k * math.log(eps)
    assert_close(f64(paper_inception_score(probs, eps=eps)), f64(expected))


def test_paper_score_by_hand():
    """Rows [0.9, 0.1] and [0.3, 0.7]: p(y) = [0.6, 0.4];
    KL(p(y) || row) = 0.6 log(0.6/r0) + 0.4 log(0.4/r1), averaged over the two rows."""
    rows = [(0.9, 0.1), (0.3, 0.7)]
    expected = sum(0.6 * math.log(0.6 / a) + 0.4 * math.log(0.4 / b) for a, b in rows) / 2
    assert_close(f64(paper_inception_score(torch.tensor(rows, dtype=torch.float64))), f64(expected))


def test_scores_reject_logits_and_bad_splits():
    with pytest.raises(EbganError, match="rows summing to 1"):
        inception_score(torch.randn(20, 10))
    with pytest.raises(EbganError, match="splits"):
        inception_score(torch.full((5, 10), 0.1), splits=10)


# ------------------------------------------------------------------------------------------------------ FID


def _random_cov(d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


def test_fid_identical_statistics_is_zero():
    """d^2 = 0 + tr S + tr S - 2 tr((S^1/2 S S^1/2)^1/2) = 2 tr S - 2 tr S = 0."""
    mu, s = torch.randn(16, dtype=torch.float64), _random_cov(16, 0)
    assert_close(f64(frechet_distance(mu, s, mu, s)), f64(0.0), atol=1e-9, rtol=0)


def test_fid_pure_mean_shift_is_squared_shift():
    """Equal covariances: the trace terms cancel as above, leaving ||mu1 - mu2||^2."""
    mu, s = torch.randn(16, dtype=torch.float64), _random_cov(16, 1)
    shift = torch.linspace(-1, 2, 16, dtype=torch.float64)
    assert_close(f64(frechet_distance(mu, s, mu + shift, s)), shift.dot(shift), atol=1e-8, rtol=1e-9)


def test_fid_diagonal_covariances():
    """Diagonal a, b: tr((A^1/2 B A^1/2)^1/2) = sum sqrt(a_i b_i), so d^2 = ||d||^2 + sum (sqrt a - sqrt b)^2."""
    a, b = f64([1.0, 4.0, 9.0]), f64([4.0, 1.0, 0.25])
    mu1, mu2 = f64([0.0, 1.0, 2.0]), f64([1.0, 1.0, 0.0])
    expected = (mu1 - mu2).square().sum() + (a.sqrt() - b.sqrt()).square().sum()
    assert_close(f64(frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b))), expected)


def test_fid_singular_covariance_is_finite():
    """A rank-1 covariance (dead features) must not produce NaN: 1-D Gaussians N(0,1) vs N(0,4) in 2-D
    with the second coordinate constant give (1 - 2)^2 = 1."""
    s1, s2 = torch.diag(f64([1.0, 0.0])), torch.diag(f64([4.0, 0.0]))
    assert_close(f64(frechet_distance(torch.zeros(2), s1, torch.zeros(2), s2)), f64(1.0))


def test_gaussian_stats_streaming_matches_numpy():
    """Batched (Chan) updates equal numpy's mean and unbiased covariance, whatever the batch size."""
    x = torch.randn(1003, 7, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 3 + 5
    mu_ref = torch.from_numpy(x.numpy().mean(0))
    cov_ref = torch.from_numpy(np.cov(x.numpy(), rowvar=False))
    for bs in (1, 64, 5000):
        mu, s = gaussian_stats(x, batch_size=bs)
        assert_close(mu, mu_ref)
        assert_close(s, cov_ref)
    mu, s = gaussian_stats(iter([x[:10], x[10:11], x[11:]]))  # an iterable of batches
    assert_close(s, cov_ref)


def test_fid_shape_mismatch_is_an_error():
    with pytest.raises(EbganError, match="sigma2"):
        frechet_distance(torch.zeros(3), torch.eye(3), torch.zeros(3), torch.eye(4))


# ------------------------------------------------------------------------------------------- 2-D mixtures


def test_exact_ring_and_grid_samples_cover_every_mode():
    for name, centers, sigma, k in (("ring", ring_centers(), 0.01, 8), ("grid", grid_centers(), 0.05, 25)):
        pts, _ = sample_mixture(name, 2500, torch.Generator().manual_seed(0))
        r = count_modes_2d(pts, centers, sigma)
        assert r["modes"] == k
        assert r["hq_pct"] >= 95.0  # 3 sigma in 2-D holds 1 - exp(-4.5) = 98.9 % of the mass
        assert 0 <= r["reverse_kl"] < 0.02


def test_collapsed_set_counts_one_mode():
    """All points on one centre: one mode, 100 % high quality, q = one-hot so KL(q || U_8) = log 8."""
    pts = ring_centers()[3].repeat(2500, 1)
    r = count_modes_2d(pts, ring_centers(), 0.01)
    assert (r["modes"], r["hq_pct"]) == (1, 100.0)
    assert_close(f64(r["reverse_kl"]), f64(math.log(8)))


def test_mode_counts_by_hand():
    """Grid, sigma 0.05 (HQ radius 0.15): 3 points at (0,0), 1 at (2,2), 1 just inside (4, 4.14), 1 just
    outside (4, 4.16), 2 far away. HQ = 5 of 8 = 62.5 %; modes = 3; q = [3, 1, 1]/5 over K = 25:
    KL = 0.6 log(15) + 0.2 log(5) + 0.2 log(5)."""
    pts = torch.tensor([[0, 0], [0, 0.01], [0.01, 0], [2, 2], [4, 4.14], [4, 4.16], [1, 1], [10, 10]])
    r = count_modes_2d(pts, grid_centers(), 0.05)
    assert r["modes"] == 3
    assert_close(f64(r["hq_pct"]), f64(62.5))
    assert_close(f64(r["reverse_kl"]), f64(0.6 * math.log(15) + 0.4 * math.log(5)))
    assert sum(r["counts"]) == 5


def test_no_high_quality_points_gives_no_kl():
    r = count_modes_2d(torch.full((10, 2), 0.5), ring_centers(), 0.01)
    assert (r["modes"], r["hq_pct"], r["reverse_kl"]) == (0, 0.0, None)


# ------------------------------------------------------------------------------------------ Stacked MNIST


def test_stacked_mnist_all_modes_uniform():
    """Every mode exactly twice: 1000 modes, q = uniform, KL = 0."""
    r = stacked_mnist_modes(torch.arange(2000) % 1000)
    assert r["modes"] == 1000
    assert_close(f64(r["kl"]), f64(0.0), atol=1e-12, rtol=0)


def test_stacked_mnist_half_and_single_mode():
    """Modes 0..499 evenly: q = 1/500 on half, KL = sum (1/500) log(1000/500) = log 2.
    One mode only: KL = log 1000."""
    half = stacked_mnist_modes(torch.arange(1000) % 500)
    assert half["modes"] == 500
    assert_close(f64(half["kl"]), f64(math.log(2)))
    one = stacked_mnist_modes(torch.full((26,), 417))
    assert one["modes"] == 1
    assert_close(f64(one["kl"]), f64(math.log(1000)))


def test_stacked_mnist_digit_triplets():
    """[N, 3] digits map to 100 a + 10 b + c: (1,2,3) twice and (0,0,7) once -> q = [2/3, 1/3] on two modes,
    KL = 2/3 log(2000/3) + 1/3 log(1000/3)."""
    r = stacked_mnist_modes(torch.tensor([[1, 2, 3], [1, 2, 3], [0, 0, 7]]))
    assert r["modes"] == 2
    assert_close(f64(r["kl"]), f64(2 / 3 * math.log(2000 / 3) + 1 / 3 * math.log(1000 / 3)))
    with pytest.raises(EbganError):
        stacked_mnist_modes(torch.tensor([1000]))


# -------------------------------------------------------------------------------------------------- AUROC


def _auroc_pairwise(s: torch.Tensor, y: torch.Tensor) -> float:
    pos, neg = s[y == 1], s[y == 0]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).double() + 0.5 * (diff == 0).double()).mean())


def test_auroc_matches_brute_force_pairwise_count_with_ties():
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        s = torch.randint(0, 6, (200,), generator=g).double()  # many ties
        y = torch.randint(0, 2, (200,), generator=g)
        assert_close(f64(auroc(s, y)), f64(_auroc_pairwise(s, y)))


def test_auroc_extremes():
    y = torch.tensor([0, 0, 1, 1])
    assert auroc(torch.tensor([0.1, 0.2, 0.8, 0.9]), y) == 1.0
    assert auroc(torch.tensor([0.9, 0.8, 0.2, 0.1]), y) == 0.0
    assert auroc(torch.ones(4), y) == 0.5
    with pytest.raises(EbganError, match="both classes"):
        auroc(torch.ones(3), torch.ones(3))


# ----------------------------------------------------------------------------------------------- registry


def test_registry_lists_and_rejects():
    assert {"is", "paper_score", "fid", "modes_2d", "stacked_mnist", "auroc"} <= set(list_metrics())
    assert get_metric("fid").fn is frechet_distance
    assert all(m.description for m in METRICS.values())
    with pytest.raises(EbganError, match="unknown metric 'nope'; valid metrics: auroc"):
        get_metric("nope")


# --------------------------------------------------------------------------------------------- classifier


def test_classifier_shapes_and_input_conventions():
    """uint8 v in [0, 255] and float (2 v / 255 - 1) in [-1, 1] are the same image to the classifier."""
    torch.manual_seed(0)
    m = MnistClassifier().eval()
    x = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    with torch.no_grad():
        assert m(x).shape == (4, 10)
        assert m.features(x).shape == (4, 128)
        assert_close(m(x), m(x.float() / 127.5 - 1.0), atol=1e-5, rtol=1e-5)
    assert sum(p.numel() for p in m.parameters()) < 500_000  # well under 2 MB of float32
    with pytest.raises(EbganError, match=r"\[N, 1, 28, 28\]"):
        m(torch.zeros(2, 3, 28, 28))


def test_packaged_classifier_sidecar():
    assert DEFAULT_WEIGHTS.is_file() and DEFAULT_WEIGHTS.stat().st_size < 2_000_000
    info = json.loads(sidecar_path(DEFAULT_WEIGHTS).read_text())
    assert info["test_accuracy"] >= 0.992
    ref = info["reference"]
    assert ref["is"] >= 9.5
    assert 0 <= ref["fid_test_vs_train"] < 1.0
    assert ref["stacked_modes"] >= 990 and ref["stacked_kl"] <= 0.05
    from safetensors import safe_open

    from ebgan.metrics.classifier import file_sha256, stats_path

    assert file_sha256(DEFAULT_WEIGHTS) == info["sha256"]
    with safe_open(str(stats_path(DEFAULT_WEIGHTS)), framework="pt") as f:
        assert f.metadata()["classifier_sha256"] == info["sha256"]
        assert set(f.keys()) == {"train_mu", "train_sigma", "test_mu", "test_sigma"}
