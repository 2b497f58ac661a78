"""Losses as pure tensor functions: energies or logits in, a scalar out.

This module imports only torch (and the standard library). Every function states its formula and the paper it
comes from; shapes are checked at the boundary so that a wrongly reduced energy (``[N, 1]`` instead of ``[N]``)
fails loudly instead of broadcasting into a wrong value.

Besides EBGAN, the GAN family the project compares against lives here too (GAN, non-saturating GAN, WGAN,
WGAN-GP, LSGAN, loss-sensitive GAN, BEGAN, hinge), registered by name in :data:`LOSSES`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
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


def unlearning_loss(energy_anomaly: Tensor, margin: float | Tensor) -> Tensor:
    """Unlearning term for known anomalies: ``mean_i max(0, m - D(a_i))`` (the margin hinge of eq. 1 applied to
    anomalies instead of generated samples; Du et al. 2019 bound the pushed-up score the same way).

    Added to the discriminator's loss (weighted by ``anomaly_weight``), it pushes the energy of each known
    anomaly up until it reaches the margin ``m`` and leaves it alone beyond; the gradient with respect to
    ``D(a_i)`` is ``-1/N`` below the margin and 0 above.

    Example: ``energy_anomaly=[2.0, 12.0]``, ``m=10`` gives ``(8 + 0) / 2 = 4``.
    """
    _check_batch("energy_anomaly", energy_anomaly)
    return torch.clamp(margin - energy_anomaly, min=0).mean()


def pack_margin_scale(energy: str, m: int) -> float:
    """The factor on EBGAN's per-sample margin when D scores packs of ``m`` samples (PacGAN packing).

    The energy of a pack is the reconstruction error of the packed input, whose squared error is the sum of its
    members' squared errors. A pack of ``m`` samples each at the per-sample margin's energy ``e`` therefore has
    the energy ``sqrt(m e^2) = sqrt(m) e`` under ``l2`` (``||r - x||_2``), ``m e`` under ``sse`` (the sum of
    squares), and ``e`` under ``mse`` and ``l1`` (means over the pack's ``m P`` values, the same as over one
    sample's ``P``). The scaled margin asks of a pack what the margin asks of each of its members; for members
    of unequal energies it is the margin on their root-mean-square (``l2``, ``sse``) or mean (``mse``, ``l1``)
    per-sample energy.

    Worked values: ``l2`` with ``m = 4``: 2 (a grid margin of 1.0 becomes 2.0); ``sse`` with ``m = 3``: 3;
    ``mse``, ``l1``: 1; any energy with ``m = 1``: 1.
    """
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    if energy == "l2":
        return math.sqrt(m)
    if energy == "sse":
        return float(m)
    if energy in ("mse", "l1"):
        return 1.0
    raise ValueError(f"unknown energy {energy!r}")


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


# ----------------------------------------------------------------------------------------------------------------
# The GAN family (baselines on the same trainer). Unless a function says otherwise, the real and fake batches are
# not paired, so they may differ in size; each is averaged on its own.
# ----------------------------------------------------------------------------------------------------------------


def gan_d_loss(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    """GAN discriminator loss (Goodfellow et al. 2014), binary cross-entropy on logits.

    ``L_D = -E log D(x) - E log(1 - D(G(z)))`` with ``D = sigmoid(l)``. Written in the numerically stable form
    ``-log sigmoid(l) = softplus(-l)`` and ``-log(1 - sigmoid(l)) = softplus(l)``:

    ``L_D = mean softplus(-l_real) + mean softplus(l_fake)``

    The same loss serves the minimax and the non-saturating game; only the generator loss differs.

    Args:
        logits_real: ``[N]`` pre-sigmoid outputs on real samples.
        logits_fake: ``[M]`` pre-sigmoid outputs on generated samples (detached from G in the D step).

    Example: all logits 0 (``D = 1/2`` everywhere) gives ``log 2 + log 2 = 2 log 2 ~ 1.3863``.
    """
    _check_batch("logits_real", logits_real)
    _check_batch("logits_fake", logits_fake)
    return F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()


def gan_g_loss(logits_fake: Tensor) -> Tensor:
    """Minimax (saturating) GAN generator loss (Goodfellow et al. 2014): ``L_G = E log(1 - D(G(z)))``.

    ``log(1 - sigmoid(l)) = -softplus(l)``, so ``L_G = -mean softplus(l_fake)``. G *minimises* it. Its gradient
    vanishes when D confidently rejects the fakes (``l -> -inf``), which is why :func:`nsgan_g_loss` is used in
    practice.

    Example: logit 0 gives ``log(1/2) = -log 2 ~ -0.6931``.
    """
    _check_batch("logits_fake", logits_fake)
    return -F.softplus(logits_fake).mean()


def nsgan_g_loss(logits_fake: Tensor) -> Tensor:
    """Non-saturating GAN generator loss (Goodfellow et al. 2014, sec. 3): ``L_G = -E log D(G(z))``.

    ``-log sigmoid(l) = softplus(-l)``, so ``L_G = mean softplus(-l_fake)``.

    Example: logit 0 gives ``-log(1/2) = log 2 ~ 0.6931``.
    """
    _check_batch("logits_fake", logits_fake)
    return F.softplus(-logits_fake).mean()


def wgan_d_loss(critic_real: Tensor, critic_fake: Tensor) -> Tensor:
    """WGAN critic loss (Arjovsky et al. 2017): ``L_D = E f(G(z)) - E f(x)``, the negated Wasserstein estimate.

    ``f`` is an unbounded critic (no sigmoid). It must be kept (roughly) 1-Lipschitz by the caller: weight
    clipping (WGAN, c = 0.01) or :func:`gradient_penalty` (WGAN-GP).

    Example: ``critic_real=[1, 3]``, ``critic_fake=[0, 2]`` gives ``1 - 2 = -1``; equal values give 0.
    """
    _check_batch("critic_real", critic_real)
    _check_batch("critic_fake", critic_fake)
    return critic_fake.mean() - critic_real.mean()


def wgan_g_loss(critic_fake: Tensor) -> Tensor:
    """WGAN generator loss (Arjovsky et al. 2017): ``L_G = -E f(G(z))``.

    Example: ``critic_fake=[0, 2]`` gives -1.
    """
    _check_batch("critic_fake", critic_fake)
    return -critic_fake.mean()


def gradient_penalty(
    critic_fn: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    alpha: Tensor | None = None,
    generator: torch.Generator | None = None,
    center: float = 1.0,
) -> Tensor:
    """WGAN-GP two-sided gradient penalty (Gulrajani et al. 2017, eq. 3), *without* the weight lambda.

    ``GP = mean_i (||grad_x f(x_hat_i)||_2 - center)^2``,  ``x_hat = alpha * real + (1 - alpha) * fake``,
    ``alpha ~ U[0, 1]`` drawn once per sample (shape ``[N, 1, ..., 1]``, broadcast over the sample's elements).

    The caller multiplies by lambda (10 in the paper) and adds the result to the critic loss. ``real`` and
    ``fake`` are detached: the penalty trains the critic only. The gradient is taken with ``create_graph=True``,
    so the returned scalar can be backpropagated into the critic's parameters. Each sample's gradient is
    flattened before its L2 norm is taken, so images of any shape work. The critic must treat samples
    independently (no batch norm: the paper uses layer norm or none), otherwise ``grad`` of the summed outputs
    mixes samples.

    Args:
        critic_fn: maps a batch shaped like ``real`` to ``[N]`` critic values.
        real, fake: ``[N, ...]`` batches of the same shape.
        alpha: optional interpolation weights, ``[N]`` or ``[N, 1, ..., 1]``; weight 1 means the real sample.
        generator: the ``torch.Generator`` alpha is drawn from when it is not given.
        center: the target gradient norm (1 in the paper; 0 gives a zero-centred penalty).

    Example: a linear critic ``f(x) = w . x`` has gradient ``w`` everywhere, so ``||w|| = 1`` gives 0 and
    ``||w|| = 2`` gives ``(2 - 1)^2 = 1``.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} differ")
    if real.dim() < 2:
        raise ValueError(f"real and fake must be [N, ...] batches, got shape {tuple(real.shape)}")
    n = real.shape[0]
    bshape = (n,) + (1,) * (real.dim() - 1)
    if alpha is None:
        alpha = torch.rand(bshape, generator=generator, device=real.device, dtype=real.dtype)
    else:
        if alpha.numel() != n or (alpha.dim() != 1 and tuple(alpha.shape) != bshape):
            raise ValueError(f"alpha must be [N] or {bshape}, got shape {tuple(alpha.shape)}")
        alpha = alpha.reshape(bshape).to(device=real.device, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = critic_fn(x_hat)
    _check_batch("critic_fn(x_hat)", out)
    if out.shape[0] != n:
        raise ValueError(f"critic_fn returned {out.shape[0]} values for {n} samples")
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)  # [N] per-sample L2 norms
    return (norms - center).pow(2).mean()


def gradient_norm_penalty(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Mean squared gradient norm ``mean_i ||grad_x fn(x)_i||_2^2`` at the samples ``x`` (detached), a
    zero-centred penalty that keeps ``fn`` smooth (Lipschitz) around them.

    The loss-sensitive GAN's regulariser (Qi 2017, first version, s.5: minimise the gradient norm of the loss
    function ``L_theta`` at the samples, instead of constraining its weights). Taken with ``create_graph=True``,
    so the result trains ``fn``'s parameters; ``fn`` must treat samples independently (no batch norm).

    Example: ``fn(x) = sum_j w_j x_j^2`` per sample has gradient ``2 w * x``; with ``w = [1, 2]`` and
    ``x = [[1, 1], [0, 1]]`` the gradients are ``[2, 4]`` and ``[0, 4]``, so the penalty is ``(20 + 16)/2 = 18``.
    """
    if x.dim() < 2:
        raise ValueError(f"x must be an [N, ...] batch, got shape {tuple(x.shape)}")
    x = x.detach().requires_grad_(True)
    out = fn(x)
    _check_batch("fn(x)", out)
    if out.shape[0] != x.shape[0]:
        raise ValueError(f"fn returned {out.shape[0]} values for {x.shape[0]} samples")
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(dim=1).mean()


def lsgan_d_loss(out_real: Tensor, out_fake: Tensor) -> Tensor:
    """Least-squares GAN discriminator loss (Mao et al. 2017, the 0-1 coding a=0, b=1, c=1).

    ``L_D = mean (D(x) - 1)^2 + mean D(G(z))^2`` on the linear (no sigmoid) output of D.

    Mao et al. write ``1/2 E[...] + 1/2 E[...]``; the 1/2 factors are dropped here (as in docs/paper.md), which
    doubles the loss and its gradient: with Adam this changes nothing, with SGD it doubles the step.

    Example: ``out_real=[1.0, 0.5]``, ``out_fake=[0.0, 0.5]`` gives ``(0 + 0.25)/2 + (0 + 0.25)/2 = 0.25``.
    """
    _check_batch("out_real", out_real)
    _check_batch("out_fake", out_fake)
    return (out_real - 1).pow(2).mean() + out_fake.pow(2).mean()


def lsgan_g_loss(out_fake: Tensor) -> Tensor:
    """Least-squares GAN generator loss (Mao et al. 2017, 0-1 coding): ``L_G = mean (D(G(z)) - 1)^2`` (1/2 dropped).

    Example: ``out_fake=[0.0, 0.5]`` gives ``(1 + 0.25) / 2 = 0.625``.
    """
    _check_batch("out_fake", out_fake)
    return (out_fake - 1).pow(2).mean()


def pairwise_distance(real: Tensor, fake: Tensor, p: float = 1.0) -> Tensor:
    """Per-pair L_p distance ``Delta(x_i, G(z_i)) = ||flatten(x_i) - flatten(G(z_i))||_p``, shape ``[N]``.

    The margin of the loss-sensitive GAN (Qi 2017). Qi uses the L1 norm (p = 1), and his reference code
    (``nn.PairwiseDistance(1)`` on the flattened images) takes the **sum** of absolute differences over all
    elements, not the per-pixel mean; this function does the same. The scale therefore grows with the image
    size (up to ``2 * 784 = 1568`` for 28x28 images in [-1, 1]), and the weight that multiplies ``Delta`` must
    be chosen for it: Qi's code scales ``Delta`` by ``tau = 0.0002`` on 64x64x3 images. Divide by the number
    of elements per sample for the per-pixel mean absolute difference.

    Args:
        real, fake: ``[N, ...]`` batches of the same shape; sample ``i`` of one is paired with sample ``i`` of
            the other.
        p: the norm's order (``p > 0``).

    Example: ``real=[[1, 2], [0, 0]]``, ``fake=[[0, 0], [3, 4]]`` gives ``[3, 7]`` for p = 1 and
    ``[sqrt 5, 5]`` for p = 2.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} differ")
    if real.dim() < 2:
        raise ValueError(f"real and fake must be [N, ...] batches, got shape {tuple(real.shape)}")
    if not p > 0:
        raise ValueError(f"p must be > 0, got {p}")
    return torch.linalg.vector_norm((real - fake).flatten(1), ord=p, dim=1)


def loss_sensitive_d_loss(loss_real: Tensor, loss_fake: Tensor, delta: Tensor, lam: float) -> Tensor:
    """Loss-sensitive GAN loss-function objective (Qi 2017), per pair, then averaged.

    ``L_D = mean L(x) + lam * mean max(0, Delta(x, G(z)) + L(x) - L(G(z)))``

    ``L_theta`` is a scalar loss per sample (low for real data); a generated sample must have a loss at least
    ``Delta`` above the real sample it is paired with, and pairs already separated by the margin give no
    gradient. ``loss_real[i]``, ``loss_fake[i]`` and ``delta[i]`` belong to the same pair, so the three must
    have the same ``[N]`` shape. ``delta`` is a constant for this step (e.g. :func:`pairwise_distance` on the
    detached fakes, times a scale).

    Example: ``L(x) = [1, 2, 0.5]``, ``L(G(z)) = [3, 2.5, 0.5]``, ``delta = [1, 1, 0.2]``, ``lam = 2``: the
    hinge terms are ``[max(0, -1), 0.5, 0.2] = [0, 0.5, 0.2]``, so ``L_D = 3.5/3 + 2 * 0.7/3 = 4.9/3``.
    """
    _check_batch("loss_real", loss_real)
    _check_batch("loss_fake", loss_fake)
    _check_batch("delta", delta)
    if not (loss_real.shape == loss_fake.shape == delta.shape):
        raise ValueError(
            f"loss_real {tuple(loss_real.shape)}, loss_fake {tuple(loss_fake.shape)} and delta "
            f"{tuple(delta.shape)} must have the same [N] shape (one value per real/fake pair)"
        )
    return loss_real.mean() + lam * torch.clamp(delta + loss_real - loss_fake, min=0).mean()


def loss_sensitive_g_loss(loss_fake: Tensor) -> Tensor:
    """Loss-sensitive GAN generator objective (Qi 2017): ``L_G = mean L(G(z))``.

    Example: ``L(G(z)) = [3, 2.5, 0.5]`` gives 2.
    """
    _check_batch("loss_fake", loss_fake)
    return loss_fake.mean()


def began_d_loss(loss_real: Tensor, loss_fake: Tensor, k: float | Tensor) -> Tensor:
    """BEGAN discriminator loss (Berthelot et al. 2017): ``L_D = mean L(x) - k_t * mean L(G(z))``.

    ``L(v) = |v - D(v)|^eta`` is the auto-encoder's per-sample reconstruction loss (eta = 1: an L1
    reconstruction error per sample); ``k_t`` in ``[0, 1]`` is a constant for this step, updated by
    :func:`began_update_k` afterwards.

    Example: ``L(x) = [1, 3]``, ``L(G(z)) = [2, 4]``, ``k = 0.25`` gives ``2 - 0.25 * 3 = 1.25``.
    """
    _check_batch("loss_real", loss_real)
    _check_batch("loss_fake", loss_fake)
    return loss_real.mean() - k * loss_fake.mean()


def began_g_loss(loss_fake: Tensor) -> Tensor:
    """BEGAN generator loss (Berthelot et al. 2017): ``L_G = mean L(G(z))``.

    Example: ``L(G(z)) = [2, 4]`` gives 3.
    """
    _check_batch("loss_fake", loss_fake)
    return loss_fake.mean()


def began_update_k(
    k: float,
    loss_real_mean: float | Tensor,
    loss_fake_mean: float | Tensor,
    gamma: float = 0.5,
    lambda_k: float = 0.001,
) -> float:
    """BEGAN equilibrium control (Berthelot et al. 2017), a proportional controller on ``k``.

    ``k_{t+1} = clip(k_t + lambda_k * (gamma * L(x) - L(G(z))), 0, 1)``, returned as a Python float.

    ``gamma = E L(G(z)) / E L(x)`` is the diversity ratio (0.5 in the paper's figures; lower means sharper,
    less diverse samples); ``lambda_k = 0.001``. Tensors are read as plain numbers (no gradient).

    Examples: ``k = 0.5, L(x) = 1, L(G(z)) = 0.3`` gives ``0.5 + 0.001 * (0.5 - 0.3) = 0.5002``;
    ``k = 0, L(x) = 0.1, L(G(z)) = 1`` would go to -0.00095 and is clipped to 0; ``k = 1, L(x) = 2, L(G(z)) = 0``
    would go to 1.001 and is clipped to 1.
    """
    if not 0 <= gamma <= 1:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    if lambda_k < 0:
        raise ValueError(f"lambda_k must be >= 0, got {lambda_k}")
    k_next = float(k) + lambda_k * (gamma * float(loss_real_mean) - float(loss_fake_mean))
    return min(max(k_next, 0.0), 1.0)


def began_convergence(loss_real_mean: float | Tensor, loss_fake_mean: float | Tensor, gamma: float) -> float:
    """BEGAN global convergence measure (Berthelot et al. 2017, sec. 3.4.1), a Python float; lower is better.

    ``M_global = L(x) + |gamma * L(x) - L(G(z))|``

    Example: ``L(x) = 1, L(G(z)) = 0.8, gamma = 0.5`` gives ``1 + |0.5 - 0.8| = 1.3``.
    """
    lr, lf = float(loss_real_mean), float(loss_fake_mean)
    return lr + abs(gamma * lr - lf)


def hinge_d_loss(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    """Hinge discriminator loss (Lim & Ye 2017; Miyato et al. 2018).

    ``L_D = mean max(0, 1 - D(x)) + mean max(0, 1 + D(G(z)))`` on the raw (no sigmoid) output.

    Example: ``D(x) = D(G(z)) = 1`` gives ``0 + 2 = 2``.
    """
    _check_batch("logits_real", logits_real)
    _check_batch("logits_fake", logits_fake)
    return F.relu(1 - logits_real).mean() + F.relu(1 + logits_fake).mean()


def hinge_g_loss(logits_fake: Tensor) -> Tensor:
    """Hinge-GAN generator loss (Lim & Ye 2017; Miyato et al. 2018): ``L_G = -mean D(G(z))``.

    Example: ``D(G(z)) = 1`` gives -1.
    """
    _check_batch("logits_fake", logits_fake)
    return -logits_fake.mean()


# ----------------------------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------------------------

HEADS = ("ae", "logit")


@dataclass(frozen=True)
class LossSpec:
    """One adversarial objective: its D and G losses and the discriminator head they expect.

    Attributes:
        name: the registry key.
        d_loss: the discriminator (critic, loss-function) loss. Signatures differ: ``ebgan`` takes a margin,
            ``began`` the current ``k``, ``loss-sensitive`` the per-pair ``delta`` and ``lam``; the others take
            the real and fake outputs only.
        g_loss: the generator loss, taking the fake outputs.
        head: ``"ae"``: D is an auto-encoder and the per-sample value is a reconstruction energy (EBGAN, BEGAN);
            ``"logit"``: D outputs one unbounded scalar per sample (a logit, a critic value or, for the
            loss-sensitive GAN, the loss ``L_theta``).
        description: one line, including what the caller adds (regularisers, weight clipping, k updates).
        paper: the citation.
    """

    name: str
    d_loss: Callable[..., Tensor]
    g_loss: Callable[..., Tensor]
    head: str
    description: str
    paper: str

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")


LOSSES: dict[str, LossSpec] = {
    spec.name: spec
    for spec in (
        LossSpec(
            "ebgan",
            ebgan_d_loss,
            ebgan_g_loss,
            "ae",
            "energy-based GAN: margin hinge on fake energies; add 0.1 * pulling_away_term to G for EBGAN-PT",
            "Zhao, Mathieu, LeCun. Energy-based Generative Adversarial Network. ICLR 2017 (arXiv 1609.03126)",
        ),
        LossSpec(
            "gan",
            gan_d_loss,
            gan_g_loss,
            "logit",
            "minimax GAN: BCE discriminator, saturating generator loss E log(1 - D(G(z)))",
            "Goodfellow et al. Generative Adversarial Nets. NIPS 2014 (arXiv 1406.2661)",
        ),
        LossSpec(
            "nsgan",
            gan_d_loss,
            nsgan_g_loss,
            "logit",
            "non-saturating GAN: BCE discriminator, generator loss -log D(G(z))",
            "Goodfellow et al. Generative Adversarial Nets. NIPS 2014 (arXiv 1406.2661)",
        ),
        LossSpec(
            "wgan",
            wgan_d_loss,
            wgan_g_loss,
            "logit",
            "Wasserstein GAN: linear critic; the caller clips critic weights (0.01) after each step",
            "Arjovsky, Chintala, Bottou. Wasserstein GAN. ICML 2017 (arXiv 1701.07875)",
        ),
        LossSpec(
            "wgan-gp",
            wgan_d_loss,
            wgan_g_loss,
            "logit",
            "WGAN with gradient penalty: the caller adds lambda (10) * gradient_penalty to the critic loss",
            "Gulrajani et al. Improved Training of Wasserstein GANs. NIPS 2017 (arXiv 1704.00028)",
        ),
        LossSpec(
            "lsgan",
            lsgan_d_loss,
            lsgan_g_loss,
            "logit",
            "least-squares GAN, 0-1 coding, linear output, Mao's 1/2 factors dropped",
            "Mao et al. Least Squares Generative Adversarial Networks. ICCV 2017 (arXiv 1611.04076)",
        ),
        LossSpec(
            "loss-sensitive",
            loss_sensitive_d_loss,
            loss_sensitive_g_loss,
            "logit",
            "loss-sensitive GAN: scalar loss L_theta, fakes must exceed paired reals by a distance margin",
            "Qi. Loss-Sensitive Generative Adversarial Networks on Lipschitz Densities. IJCV 2020 (arXiv 1701.06264)",
        ),
        LossSpec(
            "began",
            began_d_loss,
            began_g_loss,
            "ae",
            "boundary-equilibrium GAN: auto-encoder D, L_D = L(x) - k L(G(z)); the caller updates k each step",
            "Berthelot, Schumm, Metz. BEGAN: Boundary Equilibrium Generative Adversarial Networks. "
            "arXiv 1703.10717, 2017",
        ),
        LossSpec(
            "hinge",
            hinge_d_loss,
            hinge_g_loss,
            "logit",
            "hinge GAN: hinge discriminator, generator loss -E D(G(z)) (used with spectral normalisation)",
            "Lim & Ye. Geometric GAN. arXiv 1705.02894, 2017; Miyato et al. Spectral Normalization for GANs. ICLR 2018",
        ),
    )
}


def list_losses() -> list[str]:
    """The registered loss names, in registry order."""
    return list(LOSSES)


def get_loss(name: str) -> LossSpec:
    """The :class:`LossSpec` registered under ``name``; ``ValueError`` naming the valid ones otherwise."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; valid names: {', '.join(LOSSES)}") from None
