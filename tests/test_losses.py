"""Hand-derived values for every loss in ebgan.losses.

Each test's docstring carries the derivation of the expected number; the assertions compare exact values with
torch.testing.assert_close (float32 default tolerances, or float64 where stated).
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch.testing import assert_close

from ebgan import losses as L


def t(*values: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype)


# ------------------------------------------------------------------------------------------------ EBGAN


def test_ebgan_d_loss_worked_example():
    """E_real = [0.5, 1.0], E_fake = [2.0, 0.3], m = 1.

    Per sample: 0.5 + max(0, 1 - 2.0) = 0.5; 1.0 + max(0, 1 - 0.3) = 1.7. Mean = 2.2 / 2 = 1.1.
    """
    assert_close(L.ebgan_d_loss(t(0.5, 1.0), t(2.0, 0.3), 1.0), torch.tensor(1.1))


def test_ebgan_g_loss_worked_example():
    """L_G = mean D(G(z)) = (2.0 + 0.3) / 2 = 1.15."""
    assert_close(L.ebgan_g_loss(t(2.0, 0.3)), torch.tensor(1.15))


def test_ebgan_d_loss_gradient_wrt_fake_energy():
    """dL_D/dE_fake_i = -(1/N) * [E_fake_i < m].

    N = 2, m = 1: E_fake = 2.0 is above the margin -> 0; E_fake = 0.3 is below -> -1/2. dL_D/dE_real_i = 1/N.
    """
    e_real = t(0.5, 1.0).requires_grad_(True)
    e_fake = t(2.0, 0.3).requires_grad_(True)
    L.ebgan_d_loss(e_real, e_fake, 1.0).backward()
    assert_close(e_fake.grad, t(0.0, -0.5))
    assert_close(e_real.grad, t(0.5, 0.5))


def test_ebgan_d_loss_gradcheck_away_from_hinge():
    """The loss is piecewise linear; away from E_fake = m it is differentiable and autograd must match finite
    differences. Fakes at 0.2, 1.7, 0.6 (none within 0.1 of m = 1; finite-difference step 1e-6)."""
    e_real = t(0.3, 0.9, 1.4, dtype=torch.float64).requires_grad_(True)
    e_fake = t(0.2, 1.7, 0.6, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: L.ebgan_d_loss(a, b, 1.0), (e_real, e_fake))


def test_ebgan_energy_shape_errors():
    """A [N, 1] energy (a forgotten squeeze) would broadcast against [N] into an [N, N] matrix and silently give
    a wrong mean; it must be rejected, as must mismatched batch sizes."""
    with pytest.raises(ValueError, match="1-D"):
        L.ebgan_d_loss(torch.ones(2, 1), torch.ones(2), 1.0)
    with pytest.raises(ValueError, match="1-D"):
        L.ebgan_d_loss(torch.ones(2), torch.ones(2, 1), 1.0)
    with pytest.raises(ValueError, match="differ"):
        L.ebgan_d_loss(torch.ones(2), torch.ones(3), 1.0)
    with pytest.raises(ValueError, match="1-D"):
        L.ebgan_g_loss(torch.ones(2, 1))


# ------------------------------------------------------------------------------------------------ pulling-away term


def test_pt_orthogonal_rows_zero():
    """Rows e1, e2, e3: every off-diagonal cosine is 0, so f_PT = 0."""
    assert_close(L.pulling_away_term(torch.eye(3)), torch.tensor(0.0))


def test_pt_identical_rows_one():
    """Four copies of [1, 2, 3]: every off-diagonal cosine is 1, squared 1; 12 / (4 * 3) = 1."""
    assert_close(L.pulling_away_term(t(1.0, 2.0, 3.0).repeat(4, 1)), torch.tensor(1.0))


def test_pt_worked_example_one_third():
    """Rows [1,0], [-1,0], [0,1]: cosines (1,2) = -1, (1,3) = 0, (2,3) = 0, each pair counted twice.

    Squared: (1 + 0 + 0) * 2 = 2; divided by N(N-1) = 6 gives 1/3 (the unsquared version would give -1/3).
    """
    s = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    assert_close(L.pulling_away_term(s), torch.tensor(1.0 / 3.0))


def test_pt_scale_invariance():
    """Each row is normalised on its own, so scaling rows by 1e-3, 7 and 1e4 leaves f_PT unchanged."""
    g = torch.Generator().manual_seed(0)
    s = torch.randn(3, 5, generator=g, dtype=torch.float64)
    scaled = s * torch.tensor([[1e-3], [7.0], [1e4]], dtype=torch.float64)
    assert_close(L.pulling_away_term(scaled), L.pulling_away_term(s))


def test_pt_matches_brute_force_double_loop():
    """f_PT = 1/(N(N-1)) sum_{i != j} (S_i.S_j / (|S_i| |S_j|))^2, computed with an explicit double loop on a
    random [6, 4] float64 matrix; the embeddings are also given as [6, 2, 2] to check the flattening."""
    g = torch.Generator().manual_seed(1)
    s = torch.randn(6, 4, generator=g, dtype=torch.float64)
    n = s.shape[0]
    total = 0.0
    for i in range(n):
        for j in range(n):
            if i != j:
                cos = float(s[i] @ s[j]) / (float(s[i].norm()) * float(s[j].norm()))
                total += cos**2
    expected = torch.tensor(total / (n * (n - 1)), dtype=torch.float64)
    assert_close(L.pulling_away_term(s), expected)
    assert_close(L.pulling_away_term(s.reshape(6, 2, 2)), expected)


def test_pt_gradcheck():
    """f_PT is smooth wherever no row is zero; autograd must match finite differences in float64."""
    g = torch.Generator().manual_seed(2)
    s = torch.randn(4, 3, generator=g, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(L.pulling_away_term, (s,))


def test_pt_shape_errors():
    """A single row has no pairs (0/0), and a 1-D vector is not a batch of embeddings."""
    with pytest.raises(ValueError, match="at least 2"):
        L.pulling_away_term(torch.ones(1, 3))
    with pytest.raises(ValueError, match=r"\[N, d\]"):
        L.pulling_away_term(torch.ones(3))


# ------------------------------------------------------------------------------------------------ GAN / NS-GAN


def test_gan_d_loss_at_zero_logits_is_two_log_two():
    """D = sigmoid(0) = 1/2 everywhere: -log(1/2) - log(1 - 1/2) = 2 log 2."""
    assert_close(L.gan_d_loss(torch.zeros(3), torch.zeros(5)), torch.tensor(2 * math.log(2)))


def test_gan_d_loss_matches_bce_definition():
    """l_real = [2, -1], l_fake = [0.5, -3]: -mean log sigmoid(l_real) - mean log(1 - sigmoid(l_fake)),
    computed from the definition in float64."""
    lr, lf = t(2.0, -1.0, dtype=torch.float64), t(0.5, -3.0, dtype=torch.float64)
    expected = -torch.log(torch.sigmoid(lr)).mean() - torch.log(1 - torch.sigmoid(lf)).mean()
    assert_close(L.gan_d_loss(lr, lf), expected)


def test_gan_d_loss_is_finite_for_extreme_logits():
    """softplus form: a confidently right D (l_real = 100, l_fake = -100) gives softplus(-100) * 2 = ~7.4e-44,
    i.e. 0 in float32, not NaN from log(0); a confidently wrong one gives 100 + 100 = 200."""
    assert_close(L.gan_d_loss(t(100.0), t(-100.0)), torch.tensor(0.0))
    assert_close(L.gan_d_loss(t(-100.0), t(100.0)), torch.tensor(200.0))


def test_minimax_g_loss_at_zero_is_minus_log_two():
    """E log(1 - D(G(z))) with D = 1/2: log(1/2) = -log 2."""
    assert_close(L.gan_g_loss(torch.zeros(4)), torch.tensor(-math.log(2)))


def test_ns_g_loss_at_zero_is_log_two():
    """-E log D(G(z)) with D = 1/2: -log(1/2) = log 2."""
    assert_close(L.nsgan_g_loss(torch.zeros(4)), torch.tensor(math.log(2)))


def test_ns_and_minimax_gradients_at_rejected_fakes():
    """At l_fake = -5 (D confidently rejects): d/dl [-softplus(l)] = -sigmoid(-5) = -0.006693 (saturated) and
    d/dl softplus(-l) = -sigmoid(5) = -0.993307 (non-saturating); N = 1."""
    l1 = t(-5.0).requires_grad_(True)
    L.gan_g_loss(l1).backward()
    l2 = t(-5.0).requires_grad_(True)
    L.nsgan_g_loss(l2).backward()
    assert_close(l1.grad, t(-1.0 / (1.0 + math.exp(5.0))))
    assert_close(l2.grad, t(-1.0 / (1.0 + math.exp(-5.0))))


# ------------------------------------------------------------------------------------------------ WGAN / WGAN-GP


def test_wgan_d_loss_equal_critic_values_zero():
    """mean f(G(z)) - mean f(x) = 0.7 - 0.7 = 0."""
    assert_close(L.wgan_d_loss(t(0.7, 0.7), t(0.7, 0.7)), torch.tensor(0.0))


def test_wgan_losses_worked_example():
    """f(x) = [1, 3] (mean 2), f(G(z)) = [0, 2] (mean 1): L_D = 1 - 2 = -1, L_G = -1."""
    assert_close(L.wgan_d_loss(t(1.0, 3.0), t(0.0, 2.0)), torch.tensor(-1.0))
    assert_close(L.wgan_g_loss(t(0.0, 2.0)), torch.tensor(-1.0))


def _linear_critic(w: torch.Tensor):
    return lambda x: x.flatten(1) @ w


def test_gp_linear_critic_unit_norm_is_zero():
    """f(x) = w.x has grad w at every x_hat; ||w|| = ||[0.6, 0.8]|| = 1, so (1 - 1)^2 = 0 for every alpha."""
    g = torch.Generator().manual_seed(3)
    real, fake = torch.randn(5, 2, generator=g), torch.randn(5, 2, generator=g)
    gp = L.gradient_penalty(_linear_critic(t(0.6, 0.8)), real, fake, generator=g)
    assert_close(gp, torch.tensor(0.0))


def test_gp_linear_critic_norm_two_is_one():
    """||w|| = ||[1.2, 1.6]|| = 2, so (2 - 1)^2 = 1 for every sample, mean 1."""
    g = torch.Generator().manual_seed(4)
    real, fake = torch.randn(5, 2, generator=g), torch.randn(5, 2, generator=g)
    gp = L.gradient_penalty(_linear_critic(t(1.2, 1.6)), real, fake, generator=g)
    assert_close(gp, torch.tensor(1.0))


def test_gp_flattens_image_gradients():
    """Images [3, 1, 2, 2]; critic f(x) = sum(W * x) with W = all 1s: grad is W, ||W||_F = sqrt(4) = 2, so the
    penalty is (2 - 1)^2 = 1 (a per-pixel or per-row norm would give (1 - 1)^2 = 0 instead)."""
    w = torch.ones(1, 1, 2, 2)
    real, fake = torch.zeros(3, 1, 2, 2), torch.ones(3, 1, 2, 2)
    gp = L.gradient_penalty(lambda x: (x * w).flatten(1).sum(1), real, fake)
    assert_close(gp, torch.tensor(1.0))


def test_gp_interpolation_convention_and_center():
    """f(x) = ||x||^2 / 2 has grad x_hat. real = [[2, 0]], fake = [[0, 0]]:
    alpha = 1 -> x_hat = real, norm 2, (2 - 1)^2 = 1; alpha = 0.5 -> x_hat = [1, 0], (1 - 1)^2 = 0;
    alpha = 0.25 -> x_hat = [0.5, 0], (0.5 - 1)^2 = 0.25; with center = 0 at alpha = 1: 2^2 = 4.
    Two samples with alpha given as [N] = [1, 0.25]: (1 + 0.25) / 2 = 0.625."""
    f = lambda x: 0.5 * x.pow(2).sum(1)  # noqa: E731
    real, fake = t(2.0, 0.0).reshape(1, 2), torch.zeros(1, 2)
    assert_close(L.gradient_penalty(f, real, fake, alpha=torch.ones(1, 1)), torch.tensor(1.0))
    assert_close(L.gradient_penalty(f, real, fake, alpha=t(0.5)), torch.tensor(0.0))
    assert_close(L.gradient_penalty(f, real, fake, alpha=t(0.25)), torch.tensor(0.25))
    assert_close(L.gradient_penalty(f, real, fake, alpha=t(1.0), center=0.0), torch.tensor(4.0))
    real2, fake2 = real.repeat(2, 1), fake.repeat(2, 1)
    assert_close(L.gradient_penalty(f, real2, fake2, alpha=t(1.0, 0.25)), torch.tensor(0.625))


def test_gp_backpropagates_into_critic_and_not_into_samples():
    """create_graph=True: with f(x) = w.x, GP = (||w|| - 1)^2 and dGP/dw = 2 (||w|| - 1) w / ||w||.
    w = [2, 0]: 2 * 1 * [1, 0] = [2, 0]. real and fake are detached, so the fake batch gets no gradient."""
    w = t(2.0, 0.0).requires_grad_(True)
    fake = torch.randn(4, 2).requires_grad_(True)
    gp = L.gradient_penalty(_linear_critic(w), torch.randn(4, 2), fake)
    gp.backward()
    assert_close(w.grad, t(2.0, 0.0))
    assert fake.grad is None


def test_gp_alpha_drawn_from_generator_is_reproducible():
    """f(x) = ||x||^2 / 2, real = [[1, 0]] * 8, fake = 0: x_hat = alpha * real, so GP = mean (alpha - 1)^2 over
    the same alphas as torch.rand([8, 1]) from a generator seeded 5."""
    f = lambda x: 0.5 * x.pow(2).sum(1)  # noqa: E731
    real, fake = t(1.0, 0.0).repeat(8, 1), torch.zeros(8, 2)
    alpha = torch.rand(8, 1, generator=torch.Generator().manual_seed(5))
    gp = L.gradient_penalty(f, real, fake, generator=torch.Generator().manual_seed(5))
    assert_close(gp, (alpha.squeeze(1) - 1).pow(2).mean())


def test_gp_shape_errors():
    """Mismatched batches, a wrong alpha shape and a [N, 1] critic output are all rejected."""
    f = lambda x: x.sum(1)  # noqa: E731
    with pytest.raises(ValueError, match="differ"):
        L.gradient_penalty(f, torch.zeros(2, 3), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="alpha"):
        L.gradient_penalty(f, torch.zeros(2, 3), torch.zeros(2, 3), alpha=torch.ones(2, 3))
    with pytest.raises(ValueError, match="1-D"):
        L.gradient_penalty(lambda x: x.sum(1, keepdim=True), torch.zeros(2, 3), torch.zeros(2, 3))


# ------------------------------------------------------------------------------------------------ LSGAN


def test_lsgan_d_loss_worked_example():
    """D(x) = [1.0, 0.5], D(G(z)) = [0.0, 0.5]:
    mean (D(x) - 1)^2 = (0 + 0.25)/2 = 0.125; mean D(G(z))^2 = (0 + 0.25)/2 = 0.125; total 0.25 (no 1/2s)."""
    assert_close(L.lsgan_d_loss(t(1.0, 0.5), t(0.0, 0.5)), torch.tensor(0.25))


def test_lsgan_d_loss_optimum_and_worst_case():
    """Perfect D (real 1, fake 0) gives 0; inverted D (real 0, fake 1) gives 1 + 1 = 2."""
    assert_close(L.lsgan_d_loss(t(1.0, 1.0), t(0.0, 0.0)), torch.tensor(0.0))
    assert_close(L.lsgan_d_loss(t(0.0), t(1.0)), torch.tensor(2.0))


def test_lsgan_g_loss_worked_example():
    """D(G(z)) = [0.0, 0.5]: ((0 - 1)^2 + (0.5 - 1)^2) / 2 = (1 + 0.25) / 2 = 0.625."""
    assert_close(L.lsgan_g_loss(t(0.0, 0.5)), torch.tensor(0.625))


# ------------------------------------------------------------------------------------------------ loss-sensitive


def test_pairwise_distance_l1_and_l2():
    """real = [[1, 2], [0, 0]], fake = [[0, 0], [3, 4]]: differences [1, 2] and [-3, -4].
    L1 (sum, not mean): [3, 7]; L2: [sqrt 5, 5]. As [2, 1, 1, 2] images the result is the same."""
    real = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    fake = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert_close(L.pairwise_distance(real, fake), t(3.0, 7.0))
    assert_close(L.pairwise_distance(real, fake, p=2), t(math.sqrt(5.0), 5.0))
    assert_close(L.pairwise_distance(real.reshape(2, 1, 1, 2), fake.reshape(2, 1, 1, 2)), t(3.0, 7.0))


def test_pairwise_distance_errors():
    with pytest.raises(ValueError, match="differ"):
        L.pairwise_distance(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"\[N, \.\.\.\]"):
        L.pairwise_distance(torch.zeros(3), torch.zeros(3))


def test_loss_sensitive_d_loss_with_active_and_inactive_pairs():
    """L(x) = [1, 2, 0.5], L(G(z)) = [3, 2.5, 0.5], delta = [1, 1, 0.2], lam = 2.
    Hinges: 1 + 1 - 3 = -1 -> 0 (inactive); 1 + 2 - 2.5 = 0.5; 0.2 + 0.5 - 0.5 = 0.2. Mean hinge 0.7/3.
    Mean L(x) = 3.5/3. L_D = 3.5/3 + 2 * 0.7/3 = 4.9/3.
    Gradients (N = 3): dL/dL(G(z)) = -lam/N on active pairs = [0, -2/3, -2/3];
    dL/dL(x) = 1/N + lam/N * active = [1/3, 1, 1]."""
    lr = t(1.0, 2.0, 0.5).requires_grad_(True)
    lf = t(3.0, 2.5, 0.5).requires_grad_(True)
    loss = L.loss_sensitive_d_loss(lr, lf, t(1.0, 1.0, 0.2), 2.0)
    assert_close(loss, torch.tensor(4.9 / 3.0))
    loss.backward()
    assert_close(lf.grad, t(0.0, -2.0 / 3.0, -2.0 / 3.0))
    assert_close(lr.grad, t(1.0 / 3.0, 1.0, 1.0))


def test_loss_sensitive_g_loss():
    """mean L(G(z)) = (3 + 2.5 + 0.5) / 3 = 2."""
    assert_close(L.loss_sensitive_g_loss(t(3.0, 2.5, 0.5)), torch.tensor(2.0))


def test_loss_sensitive_shape_errors():
    """The three per-pair tensors must share one [N] shape."""
    with pytest.raises(ValueError, match="same"):
        L.loss_sensitive_d_loss(torch.ones(3), torch.ones(3), torch.ones(2), 1.0)
    with pytest.raises(ValueError, match="1-D"):
        L.loss_sensitive_d_loss(torch.ones(3), torch.ones(3), torch.ones(3, 1), 1.0)


# ------------------------------------------------------------------------------------------------ BEGAN


def test_began_d_and_g_losses():
    """L(x) = [1, 3] (mean 2), L(G(z)) = [2, 4] (mean 3), k = 0.25: L_D = 2 - 0.25 * 3 = 1.25, L_G = 3."""
    assert_close(L.began_d_loss(t(1.0, 3.0), t(2.0, 4.0), 0.25), torch.tensor(1.25))
    assert_close(L.began_g_loss(t(2.0, 4.0)), torch.tensor(3.0))


def test_began_update_k_interior():
    """k = 0.5, L(x) = 1, L(G(z)) = 0.3, gamma 0.5, lambda_k 0.001: 0.5 + 0.001 * (0.5 - 0.3) = 0.5002.
    Tensor means are accepted and a Python float comes back."""
    k = L.began_update_k(0.5, 1.0, 0.3, gamma=0.5, lambda_k=0.001)
    assert type(k) is float
    assert_close(k, 0.5002)
    assert_close(L.began_update_k(0.5, torch.tensor(1.0), torch.tensor(0.3)), 0.5002)


def test_began_update_k_clips_at_zero_and_one():
    """k = 0, L(x) = 0.1, L(G(z)) = 1: 0 + 0.001 * (0.05 - 1) = -0.00095 -> clipped to 0.
    k = 1, L(x) = 2, L(G(z)) = 0: 1 + 0.001 * (1 - 0) = 1.001 -> clipped to 1."""
    assert_close(L.began_update_k(0.0, 0.1, 1.0), 0.0)
    assert_close(L.began_update_k(1.0, 2.0, 0.0), 1.0)


def test_began_convergence_measure():
    """M = L(x) + |gamma L(x) - L(G(z))| = 1 + |0.5 - 0.8| = 1.3; at equilibrium (L(G(z)) = 0.5) M = L(x) = 1."""
    assert_close(L.began_convergence(1.0, 0.8, 0.5), 1.3)
    assert_close(L.began_convergence(torch.tensor(1.0), torch.tensor(0.5), 0.5), 1.0)


# ------------------------------------------------------------------------------------------------ hinge


def test_hinge_d_loss_real_and_fake_at_one():
    """D(x) = D(G(z)) = 1: max(0, 1 - 1) + max(0, 1 + 1) = 0 + 2 = 2."""
    assert_close(L.hinge_d_loss(torch.ones(3), torch.ones(3)), torch.tensor(2.0))


def test_hinge_d_loss_margins_inactive():
    """D(x) = [2, 0.5], D(G(z)) = [-3, -0.5]: mean [0, 0.5] + mean [0, 0.5] = 0.25 + 0.25 = 0.5."""
    assert_close(L.hinge_d_loss(t(2.0, 0.5), t(-3.0, -0.5)), torch.tensor(0.5))


def test_hinge_g_loss():
    """-mean D(G(z)): all ones gives -1; [2, -1] gives -0.5."""
    assert_close(L.hinge_g_loss(torch.ones(3)), torch.tensor(-1.0))
    assert_close(L.hinge_g_loss(t(2.0, -1.0)), torch.tensor(-0.5))


@pytest.mark.parametrize(
    "fn",
    [
        L.gan_g_loss,
        L.nsgan_g_loss,
        L.wgan_g_loss,
        L.lsgan_g_loss,
        L.hinge_g_loss,
        L.began_g_loss,
        L.loss_sensitive_g_loss,
    ],
)
def test_family_g_losses_reject_unreduced_outputs(fn):
    """An [N, 1] discriminator output must be squeezed by the caller; every G loss rejects it."""
    with pytest.raises(ValueError, match="1-D"):
        fn(torch.zeros(4, 1))


@pytest.mark.parametrize("fn", [L.gan_d_loss, L.wgan_d_loss, L.lsgan_d_loss, L.hinge_d_loss])
def test_family_d_losses_reject_unreduced_outputs(fn):
    """[N, 1] against [N] would broadcast; every D loss rejects it on either side."""
    with pytest.raises(ValueError, match="1-D"):
        fn(torch.zeros(4, 1), torch.zeros(4))
    with pytest.raises(ValueError, match="1-D"):
        fn(torch.zeros(4), torch.zeros(4, 1))


# ------------------------------------------------------------------------------------------------ registry

EXPECTED_NAMES = ["ebgan", "gan", "nsgan", "wgan", "wgan-gp", "lsgan", "loss-sensitive", "began", "hinge"]


def test_registry_names_and_heads():
    """Nine objectives; the auto-encoder head for EBGAN and BEGAN, a scalar head for the rest."""
    assert L.list_losses() == EXPECTED_NAMES
    assert list(L.LOSSES) == EXPECTED_NAMES
    heads = {name: spec.head for name, spec in L.LOSSES.items()}
    assert heads == {n: ("ae" if n in ("ebgan", "began") else "logit") for n in EXPECTED_NAMES}
    for name, spec in L.LOSSES.items():
        assert spec.name == name
        assert spec.description and spec.paper


def test_registry_wiring():
    """Each name points at its own functions (nsgan shares D with gan; wgan-gp shares both with wgan)."""
    expected = {
        "ebgan": (L.ebgan_d_loss, L.ebgan_g_loss),
        "gan": (L.gan_d_loss, L.gan_g_loss),
        "nsgan": (L.gan_d_loss, L.nsgan_g_loss),
        "wgan": (L.wgan_d_loss, L.wgan_g_loss),
        "wgan-gp": (L.wgan_d_loss, L.wgan_g_loss),
        "lsgan": (L.lsgan_d_loss, L.lsgan_g_loss),
        "loss-sensitive": (L.loss_sensitive_d_loss, L.loss_sensitive_g_loss),
        "began": (L.began_d_loss, L.began_g_loss),
        "hinge": (L.hinge_d_loss, L.hinge_g_loss),
    }
    assert {n: (s.d_loss, s.g_loss) for n, s in L.LOSSES.items()} == expected
    assert L.get_loss("wgan-gp") is L.LOSSES["wgan-gp"]


def test_lossspec_is_frozen_and_checks_head():
    spec = L.get_loss("ebgan")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.head = "logit"  # type: ignore[misc]
    with pytest.raises(ValueError, match="head"):
        L.LossSpec("x", L.gan_d_loss, L.gan_g_loss, "sigmoid", "d", "p")


def test_get_loss_unknown_name_lists_valid_names():
    """An unknown name raises ValueError naming it and every valid name."""
    with pytest.raises(ValueError, match="unknown loss 'wgangp'") as err:
        L.get_loss("wgangp")
    for name in EXPECTED_NAMES:
        assert name in str(err.value)


def test_gradient_norm_penalty_docstring_example():
    w = torch.tensor([1.0, 2.0])
    x = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    assert_close(L.gradient_norm_penalty(lambda v: (w * v * v).sum(1), x), torch.tensor(18.0))
    with pytest.raises(ValueError, match="values for 2 samples"):
        L.gradient_norm_penalty(lambda v: v.sum().reshape(1), x)
