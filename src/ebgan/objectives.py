"""Objectives: how one loss turns discriminator outputs into the D and G losses of one step.

An objective knows the discriminator head it needs (``"ae"`` or ``"logit"``) and any state the loss carries
between steps (BEGAN's ``k_t``, WGAN-GP's random generator). It never touches optimisers, files or data: the
trainer calls it.

Each ``d_loss``/``g_loss`` returns ``(loss, stats)``; ``stats`` are detached scalars named like paths' leaves
(``energy_real``, ``pt``) that the trainer averages and logs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as td
from torch import Tensor, nn

from . import losses
from .config import Config, margin_at
from .errors import EbganError
from .nets import frozen_bn_stats, has_minibatch_features, pack_samples, unpack_samples

Stats = dict[str, Tensor]

# Batch-norm running statistics (every loss, auto-encoder and scalar discriminators alike): only D's passes
# over real training data update them. Every other pass of D (generated samples in the D and G steps, known
# anomalies, gradient-penalty interpolates and pairs) runs inside ``frozen_bn_stats(D)``, which restores them
# afterwards (ebgan.nets): in training mode each batch is normalised with its own statistics either way, so the
# losses and gradients are unchanged, and the statistics that eval mode normalises with describe the real data.
# That is what an auto-encoder's energy is calibrated on (``energies()``: `ebgan score`, thresholds, the energy
# landscape, energy rejection); a scalar discriminator gets the same rule, so that its eval-mode output (a
# checkpoint's D, loaded in eval mode by ``ebgan.sampling.load_networks``) is D's function on data-like
# batches rather than a mixture fitted mostly to the generator's moving target, and one rule holds for all.
# Pre-training passes are on real data and keep updating them.
#
# Packing (cfg.pack = m > 1): D is a ``nets.Packed`` wrapper that forms packs of m consecutive samples of the
# batch it is given and returns one value (and code) per pack, so the losses below run unchanged on ``[N/m]``
# values: real packs against generated packs, the pulling-away term on the packs' codes. What they compute per
# sample themselves is done per pack: EBGAN's margin is scaled (``losses.pack_margin_scale``), WGAN-GP's
# interpolates and the loss-sensitive GAN's distances and gradient penalty are taken in the packed space (see
# those objectives). Minibatch discrimination (cfg.mbd_kernels > 0): D's output depends on the batch it is
# given, so real and generated samples always go through D in separate passes (``discriminate``), as Salimans
# et al. compute the features over a real and a generated batch separately.


def has_batch_norm(D: nn.Module) -> bool:
    """Whether ``D`` contains batch norm (cached on the module: its structure never changes)."""
    cached = getattr(D, "_ebgan_has_batch_norm", None)
    if cached is None:
        cached = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())
        D._ebgan_has_batch_norm = cached  # type: ignore[assignment]  # a plain attribute (typed for tensors, modules)
    return cached


def discriminate(D: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """D over real and fake samples: ``(value_real [N], value_fake [M], code_real, code_fake)``.

    Without batch norm or minibatch discrimination, one pass over the concatenated batch (faster than two, and
    the same values; packs never straddle the two halves, whose sizes are multiples of the pack size). With
    minibatch discrimination, two passes, so that each batch's features compare it with itself. With
    batch norm, two passes, real-only and fake-only: the G step sees D on an all-fake batch, so the D step
    must normalise fakes with fake-only statistics too; with mixed statistics in the D step the generator
    meets a different function than the one D was trained to be, and exploits the gap (a DCGAN-style conv
    EBGAN collapsed to one texture that way). Only the real pass updates the running statistics.
    """
    if has_batch_norm(D) or has_minibatch_features(D):
        value_real, code_real = D(real)
        with frozen_bn_stats(D):
            value_fake, code_fake = D(fake)
        return value_real, value_fake, code_real, code_fake
    value, code = D(torch.cat([real, fake], dim=0))
    n = real.shape[0] * value.shape[0] // (real.shape[0] + fake.shape[0])  # real values: N, or N/m packs
    return value[:n], value[n:], code[:n], code[n:]


class Objective:
    """Base: subclasses set ``head`` and implement ``d_loss`` and ``g_loss``.

    ``energy`` (auto-encoder heads only) overrides ``cfg.energy`` when the networks are built: ``None`` keeps
    the configured reduction; BEGAN sets ``"l1"``, its ``L(v) = |v - D(v)|``.
    """

    head = "logit"
    energy: str | None = None

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def d_loss(self, D: nn.Module, real: Tensor, fake: Tensor, step: int) -> tuple[Tensor, Stats]:
        raise NotImplementedError

    def g_loss(self, D: nn.Module, fake: Tensor, step: int) -> tuple[Tensor, Stats]:
        raise NotImplementedError

    def anomaly_loss(self, D: nn.Module, anomalies: Tensor, step: int) -> tuple[Tensor, Stats]:
        """The unlearning term for a batch of known anomalies (``known_anomalies``); energy losses only."""
        raise EbganError(f"known anomalies need an energy: loss {self.cfg.loss} has none (use loss=ebgan)")

    def after_d_step(self, D: nn.Module) -> None:
        """Hook after each D optimiser step (WGAN weight clipping)."""

    def after_d_loss(self, stats: Stats) -> None:
        """Hook with the D step's statistics (BEGAN's k_t update)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def _global_mean(t: Tensor) -> Tensor:
    """``t`` averaged over the processes of a ``torch.distributed`` run (``t`` itself in a single process).

    Objectives whose state is driven by batch statistics (BEGAN's ``k_t``) use it so that every rank keeps the
    same state; the trainer's gradient averaging keeps the weights equal but not such state.
    """
    if td.is_available() and td.is_initialized() and td.get_world_size() > 1:
        t = t.detach().float().clone()
        td.all_reduce(t)
        return t / td.get_world_size()
    return t


def _rank() -> int:
    return td.get_rank() if td.is_available() and td.is_initialized() else 0


class EBGANObjective(Objective):
    """EBGAN (Zhao et al. 2017): margin loss for D (eq. 1), energy plus pulling-away term for G (eq. 2, 6)."""

    head = "ae"

    def d_loss(self, D, real, fake, step):
        e_real, e_fake, _, _ = discriminate(D, real, fake)
        e_real, e_fake = e_real.float(), e_fake.float()
        # Packs (pack > 1): the margin of a pack, sqrt(m) times the per-sample margin for the l2 energy (m for
        # sse, 1 for mse and l1: losses.pack_margin_scale); exactly the configured margin without packing.
        m = margin_at(self.cfg, step) * losses.pack_margin_scale(self.cfg.energy, self.cfg.pack)
        loss = losses.ebgan_d_loss(e_real, e_fake, m)
        stats = {"energy_real": e_real.mean().detach(), "energy_fake": e_fake.mean().detach()}
        if self.cfg.pack > 1:
            stats["margin_pack"] = torch.tensor(m)
        return loss, stats

    def anomaly_loss(self, D, anomalies, step):
        """``max(0, m_a - D(a))`` averaged over the batch: known anomalies pushed above a margin, as fakes are.

        ``m_a`` is ``cfg.anomaly_margin`` or, by default, the game's starting margin ``cfg.margin``, held
        constant: a margin schedule decaying to 0 (the ``mnist-oneclass`` preset's) would otherwise switch the
        unlearning off by the end of training. A pass of its own, so a batch-norm D normalises the anomalies
        with their own statistics (see ``discriminate``), leaving the running statistics to the real data."""
        with frozen_bn_stats(D):
            e_anom, _ = D(anomalies)
        e_anom = e_anom.float()
        m = self.cfg.anomaly_margin if self.cfg.anomaly_margin is not None else self.cfg.margin
        loss = losses.unlearning_loss(e_anom, m)
        return loss, {"energy_anomaly": e_anom.mean().detach()}

    def g_loss(self, D, fake, step):
        with frozen_bn_stats(D):
            e_fake, code = D(fake)
        loss = losses.ebgan_g_loss(e_fake.float())
        stats: Stats = {}
        if self.cfg.pt_weight > 0:
            pt = losses.pulling_away_term(code.float())
            loss = loss + self.cfg.pt_weight * pt
            stats["pt"] = pt.detach()
        return loss, stats


# ----------------------------------------------------------------------------------------------------------------
# The GAN family. Every loss below whose D and G losses are plain functions of the scores of real and fake
# samples is a ``ScoreObjective`` naming the two pure functions of ``losses.py``; the others add a penalty
# (WGAN-GP), a hook (WGAN's clipping), a per-pair margin (loss-sensitive) or state (BEGAN).


class ScoreObjective(Objective):
    """A logit-head loss given by ``d_fn(score_real, score_fake)`` and ``g_fn(score_fake)``.

    Stats: ``d_real``, ``d_fake``, the mean raw D outputs (logits, critic values) on real and fake samples.
    """

    head = "logit"
    d_fn: Callable[[Tensor, Tensor], Tensor]
    g_fn: Callable[[Tensor], Tensor]

    def d_loss(self, D, real, fake, step):
        s_real, s_fake, _, _ = discriminate(D, real, fake)  # [N], [M]
        s_real, s_fake = s_real.float(), s_fake.float()
        loss = self.d_fn(s_real, s_fake)
        return loss, {"d_real": s_real.mean().detach(), "d_fake": s_fake.mean().detach()}

    def g_loss(self, D, fake, step):
        with frozen_bn_stats(D):
            s_fake, _ = D(fake)
        return self.g_fn(s_fake.float()), {}


class GANObjective(ScoreObjective):
    """Minimax GAN (Goodfellow et al. 2014): ``L_D = mean softplus(-l(x)) + mean softplus(l(G(z)))`` (BCE on
    logits), ``L_G = E log(1 - D(G(z))) = -mean softplus(l(G(z)))``, the saturating generator loss."""

    d_fn = staticmethod(losses.gan_d_loss)
    g_fn = staticmethod(losses.gan_g_loss)


class NSGANObjective(ScoreObjective):
    """Non-saturating GAN (Goodfellow et al. 2014, sec. 3): the BCE discriminator of the minimax GAN and
    ``L_G = -E log D(G(z)) = mean softplus(-l(G(z)))``."""

    d_fn = staticmethod(losses.gan_d_loss)
    g_fn = staticmethod(losses.nsgan_g_loss)


class WGANObjective(ScoreObjective):
    """WGAN (Arjovsky et al. 2017): critic ``L_D = E f(G(z)) - E f(x)``, ``L_G = -E f(G(z))``.

    After every critic step each D parameter is clipped to ``[-wgan_clip, wgan_clip]`` (0.01 in the paper); the
    paper's RMSProp (lr 5e-5) and 5 critic steps per G step are the loss's config defaults. The clip follows each
    step, so only the very first critic forward of a run sees unclipped initial weights.
    """

    d_fn = staticmethod(losses.wgan_d_loss)
    g_fn = staticmethod(losses.wgan_g_loss)

    @torch.no_grad()
    def after_d_step(self, D):
        c = self.cfg.wgan_clip
        for p in D.parameters():
            p.clamp_(-c, c)


class WGANGPObjective(ScoreObjective):
    """WGAN-GP (Gulrajani et al. 2017, eq. 3): ``L_D = E f(G(z)) - E f(x) + lambda E (||grad f(x_hat)||_2 - 1)^2``,
    ``x_hat = alpha x + (1 - alpha) G(z)``, ``alpha ~ U[0, 1]`` per sample; ``L_G = -E f(G(z))``.

    ``lambda`` is ``cfg.gp_weight`` (10). ``alpha`` comes from a CPU ``torch.Generator`` this objective owns,
    seeded from ``cfg.seed`` (and the process rank) and saved in :meth:`state_dict`, so a resumed run draws the
    same interpolates as an uninterrupted one. D must not use batch norm (the per-sample penalty assumes
    independent samples): ``config.validate`` refuses ``loss=wgan-gp`` with ``batch_norm=true`` wherever the D
    would have a batch-norm layer, so wgan-gp presets set ``batch_norm=False``.

    Packs (``pack = m``): the penalty is WGAN-GP's in D's own input space, the space of packs. One ``alpha`` per
    pack (``N/m`` draws), shared by its members, so that the packed interpolate is ``alpha`` times the real pack
    plus ``1 - alpha`` times the generated pack it is paired with (pack ``k`` of each batch), and the gradient
    norm is taken over the whole pack (its ``m`` members' gradients together). With minibatch discrimination the
    interpolates form their own batch for the features, and the gradient of the batch's summed critic values
    with respect to one interpolate includes its effect on the others' features.

    Stats: ``d_real``, ``d_fake`` and ``gp``, the penalty before its weight.
    """

    d_fn = staticmethod(losses.wgan_d_loss)
    g_fn = staticmethod(losses.wgan_g_loss)
    SEED_OFFSET = 200_003  # keeps alpha's stream apart from the data order (seeded with cfg.seed itself)

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        self.gen_alpha = torch.Generator().manual_seed(cfg.seed + self.SEED_OFFSET + 7919 * _rank())

    def d_loss(self, D, real, fake, step):
        loss, stats = super().d_loss(D, real, fake, step)
        p = self.cfg.pack
        alpha = torch.rand(real.shape[0] // p, generator=self.gen_alpha).to(real.device)  # [N/p], on the CPU
        with frozen_bn_stats(D):  # interpolates (D has no batch norm here: config.validate; kept for safety)
            gp = losses.gradient_penalty(
                lambda xp: D(unpack_samples(xp, p))[0].float(),
                pack_samples(real.float(), p),
                pack_samples(fake.float(), p),
                alpha=alpha,
            )
        stats["gp"] = gp.detach()
        return loss + self.cfg.gp_weight * gp, stats

    def state_dict(self):
        return {"gen_alpha": self.gen_alpha.get_state()}

    def load_state_dict(self, state):
        self.gen_alpha.set_state(state["gen_alpha"])


class LSGANObjective(ScoreObjective):
    """Least-squares GAN (Mao et al. 2017, 0-1 coding, 1/2 factors dropped): ``L_D = E (D(x) - 1)^2 +
    E D(G(z))^2``, ``L_G = E (D(G(z)) - 1)^2`` on the linear output."""

    d_fn = staticmethod(losses.lsgan_d_loss)
    g_fn = staticmethod(losses.lsgan_g_loss)


class HingeObjective(ScoreObjective):
    """Hinge GAN (Lim & Ye 2017; Miyato et al. 2018): ``L_D = E max(0, 1 - D(x)) + E max(0, 1 + D(G(z)))``,
    ``L_G = -E D(G(z))``; usually paired with ``spectral_norm=true``."""

    d_fn = staticmethod(losses.hinge_d_loss)
    g_fn = staticmethod(losses.hinge_g_loss)


class LossSensitiveObjective(Objective):
    """Loss-sensitive GAN (Qi 2017): ``L_D = E L(x) + lambda E max(0, Delta(x, G(z)) + L(x) - L(G(z)))``,
    ``L_G = E L(G(z))``, with ``lambda = cfg.ls_lambda`` and real sample ``i`` paired with fake sample ``i``.

    * ``L_theta(v) = |f(v)|`` with ``f`` the logit head's output. Qi's theory needs a non-negative loss (his
      reference code ends D with a ReLU); without one ``E L(x)`` is unbounded below (a constant shift of ``f``
      leaves the hinge unchanged and lowers ``L_D``). The absolute value keeps a slope of 1 everywhere: with
      ``softplus(f)`` (or a ReLU) the first term drove ``f`` far below 0 on real and generated samples alike
      within 1,000 steps, where the loss and its gradient vanish and training stops (ring: 0 modes; with ``|f|``
      and the regulariser 5 of 8: BENCHMARKS.md, "Reading the loss comparison"). Real samples are pulled to
      the zero set of ``f``, generated ones pushed at least ``Delta`` away from it.
    * ``Delta = pairwise_distance(x, G(z), p=1) / P``, the per-element mean absolute difference over the ``P``
      values of a sample. It is at most 2 both for 2-D points on the unit ring and for images in [-1, 1] (about
      0.5-1 for unrelated samples), so ``ls_lambda = 1`` suits both. Qi's code uses the summed L1 distance times
      ``tau = 0.0002`` on 64x64x3 images, i.e. 2.46 times this mean.
    * The Lipschitz regulariser: Qi's analysis assumes a Lipschitz ``L_theta``; without a constraint the hinge
      is met by making ``L_theta`` steep between real and generated samples.
      ``ls_gp * mean ||grad_x L_theta||^2`` over the real and the generated samples of the step
      (:func:`~ebgan.losses.gradient_norm_penalty`; Qi 2017 v1 s.5) is added to ``L_D``; ``ls_gp = 0`` removes
      it. The penalty is per sample, so D must not have batch norm (``config.validate`` refuses it).

    Packs (``pack = m``): real pack ``k`` is paired with generated pack ``k``; ``Delta`` is the per-element mean
    absolute difference of the two packs (the mean of their members' ``Delta``s, so ``ls_lambda`` keeps its
    scale), and the regulariser's gradient norm is taken per pack, in D's input space.

    Stats: ``d_real``, ``d_fake`` (mean ``L_theta``), ``delta`` (mean margin) and, with the regulariser,
    ``gp`` (the penalty before its weight).
    """

    head = "logit"

    def d_loss(self, D, real, fake, step):
        f_real, f_fake, _, _ = discriminate(D, real, fake)
        l_real, l_fake = f_real.float().abs(), f_fake.float().abs()  # [N] non-negative losses ([N/p] packs)
        p = self.cfg.pack
        real_p, fake_p = pack_samples(real.float(), p), pack_samples(fake.float().detach(), p)
        n_values = real_p[0].numel()
        delta = losses.pairwise_distance(real_p, fake_p, p=1) / n_values  # [N] ([N/p])
        loss = losses.loss_sensitive_d_loss(l_real, l_fake, delta, self.cfg.ls_lambda)
        stats = {"d_real": l_real.mean().detach(), "d_fake": l_fake.mean().detach(), "delta": delta.mean().detach()}
        if self.cfg.ls_gp > 0:

            def fn(xp):
                return D(unpack_samples(xp, p))[0].float().abs()

            with frozen_bn_stats(D):  # real and generated samples (no batch norm here either: config.validate)
                if has_minibatch_features(D):  # each batch its own features, as in the loss's passes
                    gp = (
                        losses.gradient_norm_penalty(fn, pack_samples(real.float(), p))
                        + losses.gradient_norm_penalty(fn, pack_samples(fake.float(), p))
                    ) / 2
                else:
                    gp = losses.gradient_norm_penalty(fn, pack_samples(torch.cat([real.float(), fake.float()]), p))
            stats["gp"] = gp.detach()
            loss = loss + self.cfg.ls_gp * gp
        return loss, stats

    def g_loss(self, D, fake, step):
        with frozen_bn_stats(D):
            f_fake, _ = D(fake)
        return losses.loss_sensitive_g_loss(f_fake.float().abs()), {}


class BEGANObjective(Objective):
    """BEGAN (Berthelot et al. 2017): ``L_D = L(x) - k_t L(G(z))``, ``L_G = L(G(z))``,
    ``k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1)``, ``k_0 = 0``.

    ``L(v) = |v - D(v)|`` (eta = 1) is the per-pixel mean L1 reconstruction error of the auto-encoder D: this
    objective sets :attr:`energy` to ``"l1"``, which ``build_networks`` uses whatever ``cfg.energy`` says.
    ``k_t`` is a Python float, constant within a step, updated in :meth:`after_d_loss` with the last D step's
    mean energies (averaged over processes in a distributed run) and saved in :meth:`state_dict`.
    ``gamma = cfg.began_gamma`` (0.5), ``lambda_k = cfg.began_lambda_k`` (0.001).

    Stats: ``energy_real``, ``energy_fake`` (mean ``L``), ``k`` (the ``k_t`` this step used) and
    ``convergence``, the global measure ``M = L(x) + |gamma L(x) - L(G(z))|``.
    """

    head = "ae"
    energy = "l1"

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        self.k = 0.0

    def d_loss(self, D, real, fake, step):
        if getattr(D, "energy", "l1") != "l1":
            raise EbganError(f"BEGAN needs an auto-encoder with the l1 energy, got {D.energy!r}")
        e_real, e_fake, _, _ = discriminate(D, real, fake)
        e_real, e_fake = e_real.float(), e_fake.float()
        loss = losses.began_d_loss(e_real, e_fake, self.k)
        m_real, m_fake = e_real.mean().detach(), e_fake.mean().detach()
        conv = losses.began_convergence(m_real, m_fake, self.cfg.began_gamma)
        return loss, {
            "energy_real": m_real,
            "energy_fake": m_fake,
            "k": torch.tensor(self.k),
            "convergence": torch.tensor(conv),
        }

    def g_loss(self, D, fake, step):
        with frozen_bn_stats(D):
            e_fake, _ = D(fake)
        return losses.began_g_loss(e_fake.float()), {}

    def after_d_loss(self, stats):
        self.k = losses.began_update_k(
            self.k,
            _global_mean(stats["energy_real"]),
            _global_mean(stats["energy_fake"]),
            self.cfg.began_gamma,
            self.cfg.began_lambda_k,
        )

    def state_dict(self):
        return {"k": self.k}

    def load_state_dict(self, state):
        self.k = float(state["k"])


def pretrain_loss(D: nn.Module, real: Tensor) -> Tensor:
    """Auto-encoder pre-training on real data alone: the mean energy (reconstruction error) of real samples.
    A real pass: it updates batch-norm running statistics."""
    energy, _ = D(real)
    return energy.float().mean()


OBJECTIVES: dict[str, type[Objective]] = {
    "ebgan": EBGANObjective,
    "gan": GANObjective,
    "nsgan": NSGANObjective,
    "wgan": WGANObjective,
    "wgan-gp": WGANGPObjective,
    "lsgan": LSGANObjective,
    "loss-sensitive": LossSensitiveObjective,
    "began": BEGANObjective,
    "hinge": HingeObjective,
}


def make_objective(cfg: Config) -> Objective:
    if cfg.loss not in OBJECTIVES:
        raise EbganError(f"unknown loss {cfg.loss!r}; valid losses: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[cfg.loss](cfg)
