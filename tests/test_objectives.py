"""Objectives: hand values on a fixed discriminator, short end-to-end runs of every loss, WGAN clipping, BEGAN's
k_t, frozen networks in each phase, and bit-exact resume of the stateful objectives.

Hand values use ``ScoreD``, a discriminator whose per-sample value is ``scale * x[:, 0]`` (a logit for the
logit-head losses, an energy for the auto-encoder ones) and whose code is ``x`` itself, on the batches
``real = [[1, 0], [3, 0]]`` and ``fake = [[0, 0], [2, 0]]``: values ``[1, 3]`` and ``[0, 2]`` at scale 1.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn
from torch.testing import assert_close

from ebgan import losses as L
from ebgan.config import LOSS_OPTIM_DEFAULTS, apply_overrides, from_preset, resolve
from ebgan.data import Dataset, sample_mixture
from ebgan.errors import EbganError
from ebgan.objectives import OBJECTIVES, make_objective
from ebgan.train import Trainer

ALL = ["ebgan", "gan", "nsgan", "wgan", "wgan-gp", "lsgan", "loss-sensitive", "began", "hinge"]


def sp(v: float) -> float:
    """softplus(v) = log(1 + e^v)."""
    return math.log1p(math.exp(v))


class ScoreD(nn.Module):
    """``x -> (scale * x[:, 0], x)``: fixed outputs, differentiable in ``x`` (the penalty needs that)."""

    energy = "l1"  # passes BEGAN's check that the auto-encoder uses its L1 energy

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        flat = x.flatten(1)
        return self.scale * flat[:, 0], flat


REAL = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
FAKE = torch.tensor([[0.0, 0.0], [2.0, 0.0]])


def ring_cfg(loss: str, **kw):
    # Pinned here so that re-tuning the ring preset cannot change these hand-derived values.
    small = dict(
        loss=loss,
        steps=20,
        g_size=32,
        d_size=32,
        batch_size=64,
        device="cpu",
        pt_weight=0.1,
        margin=1.0,
        lr_schedule="constant",
    )
    small.update(kw)
    return resolve(apply_overrides(from_preset("ring"), small))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These nets are tiny: a second intra-op thread only adds synchronisation, and on a shared 2-core machine
    a busy neighbour makes every op wait for it (the file takes ~3 s on one thread, up to a minute on two)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ring() -> Dataset:
    x, y = sample_mixture("ring", 1024, torch.Generator().manual_seed(0))
    return Dataset("ring", "points", x, y)


# ------------------------------------------------------------------------------------------------ registry


def test_registry_covers_every_loss_with_its_head():
    assert list(OBJECTIVES) == list(L.LOSSES) == ALL
    assert set(LOSS_OPTIM_DEFAULTS) == set(ALL)
    for name in ALL:
        assert OBJECTIVES[name].head == L.LOSSES[name].head, name


# ------------------------------------------------------------------------------------------------ hand values

# (loss, D scale, extra config, expected d_loss, expected g_loss, expected stats), derivations inline.
HAND = [
    # EBGAN, m = 1: mean(1 + max(0, 1 - 0), 3 + max(0, 1 - 2)) = mean(2, 3) = 2.5; G: mean(0, 2) = 1 (PT off).
    ("ebgan", 1.0, dict(pt_weight=0.0), 2.5, 1.0, {"energy_real": 2.0, "energy_fake": 1.0}),
    # GAN: mean softplus(-[1, 3]) + mean softplus([0, 2]); G: -mean softplus([0, 2]).
    ("gan", 1.0, {}, (sp(-1) + sp(-3)) / 2 + (sp(0) + sp(2)) / 2, -(sp(0) + sp(2)) / 2, {"d_real": 2.0, "d_fake": 1.0}),
    # NS-GAN: same D loss; G: mean softplus(-[0, 2]) = (log 2 + softplus(-2)) / 2.
    (
        "nsgan",
        1.0,
        {},
        (sp(-1) + sp(-3)) / 2 + (sp(0) + sp(2)) / 2,
        (math.log(2) + sp(-2)) / 2,
        {"d_real": 2.0, "d_fake": 1.0},
    ),
    # WGAN: mean f(fake) - mean f(real) = 1 - 2 = -1; G: -1.
    ("wgan", 1.0, {}, -1.0, -1.0, {"d_real": 2.0, "d_fake": 1.0}),
    # WGAN-GP with f(x) = 2 x_0: gradient (2, 0) everywhere, norm 2, penalty (2 - 1)^2 = 1 whatever alpha is;
    # critic term mean[0, 4] - mean[2, 6] = -2, so L_D = -2 + 10 * 1 = 8; G: -2.
    ("wgan-gp", 2.0, {}, 8.0, -2.0, {"d_real": 4.0, "d_fake": 2.0, "gp": 1.0}),
    # LSGAN: mean([0, 2]^2) + mean([0, 2]^2) = 2 + 2 = 4; G: mean([-1, 1]^2) = 1.
    ("lsgan", 1.0, {}, 4.0, 1.0, {"d_real": 2.0, "d_fake": 1.0}),
    # Hinge: mean relu(1 - [1, 3]) + mean relu(1 + [0, 2]) = 0 + 2 = 2; G: -1.
    ("hinge", 1.0, {}, 2.0, -1.0, {"d_real": 2.0, "d_fake": 1.0}),
    # Loss-sensitive, lambda 1: L = |f| = [1, 3] and [0, 2]; Delta = mean |x - G(z)| per pair = [1/2, 1/2];
    # L_D = mean L(x) + mean max(0, 1/2 + L(x) - L(G(z))) = 2 + mean(1.5, 1.5) = 3.5; G: mean(0, 2) = 1.
    # The Lipschitz regulariser off (ls_gp = 0); with it, see the test below.
    ("loss-sensitive", 1.0, dict(ls_gp=0.0), 3.5, 1.0, {"d_real": 2.0, "d_fake": 1.0, "delta": 0.5}),
    # f = -x_0 gives the same |f|, so the same values: the loss sees only |f|.
    ("loss-sensitive", -1.0, dict(ls_gp=0.0), 3.5, 1.0, {"d_real": 2.0, "d_fake": 1.0, "delta": 0.5}),
    # BEGAN at k = 0 (k_0): mean L(x) = 2; G: mean L(G(z)) = 1; M = 2 + |0.5 * 2 - 1| = 2.
    ("began", 1.0, {}, 2.0, 1.0, {"energy_real": 2.0, "energy_fake": 1.0, "k": 0.0, "convergence": 2.0}),
]


@pytest.mark.parametrize("name,scale,extra,d_expected,g_expected,stats_expected", HAND, ids=[h[0] for h in HAND])
def test_hand_values_on_fixed_discriminator(name, scale, extra, d_expected, g_expected, stats_expected):
    obj = make_objective(ring_cfg(name, **extra))
    D = ScoreD(scale)
    loss_d, stats = obj.d_loss(D, REAL, FAKE, 0)
    loss_g, _ = obj.g_loss(D, FAKE, 0)
    assert_close(loss_d, torch.tensor(d_expected))
    assert_close(loss_g, torch.tensor(g_expected))
    assert set(stats) == set(stats_expected)
    for k, v in stats_expected.items():
        assert_close(stats[k].float(), torch.tensor(v), msg=k)
        assert not stats[k].requires_grad


def test_loss_sensitive_lipschitz_regulariser_by_hand():
    """L(x) = |scale * x_0| has gradient scale * sign(x_0) * e_0 (0 at x_0 = 0, torch's subgradient), so over
    the four samples (x_0 = 1, 3 real; 0, 2 fake) the penalty is scale^2 * 3/4; L_D adds ls_gp times it and
    G's loss is unchanged."""
    scale, w = 2.0, 0.5
    obj = make_objective(ring_cfg("loss-sensitive", ls_gp=w))
    base = make_objective(ring_cfg("loss-sensitive", ls_gp=0.0))
    gp = scale**2 * 3 / 4
    loss, stats = obj.d_loss(ScoreD(scale), REAL, FAKE, 0)
    loss0, stats0 = base.d_loss(ScoreD(scale), REAL, FAKE, 0)
    assert_close(stats["gp"], torch.tensor(gp))
    assert_close(loss, loss0 + w * gp)
    assert "gp" not in stats0
    assert_close(obj.g_loss(ScoreD(scale), FAKE, 0)[0], base.g_loss(ScoreD(scale), FAKE, 0)[0])


def test_loss_sensitive_regulariser_trains_the_loss_function():
    """The penalty is built with create_graph: its gradient reaches D's weights. For L = softplus(w . x + b) the
    per-sample penalty is sigmoid(f)^2 ||w||^2; at f = 0 (sigmoid 1/2, sigmoid' 1/4) it is ||w||^2 / 4 = 5/4,
    its gradient in b is 2 * 1/2 * 1/4 * ||w||^2 = 5/4 and in w it is w / 2 + 5/4 * mean(x) = w / 2 for
    samples whose mean is 0."""
    D = nn.Linear(2, 1)
    with torch.no_grad():
        D.weight.copy_(torch.tensor([[1.0, -2.0]]))
        D.bias.zero_()
    x = torch.tensor([[2.0, 1.0], [0.0, 0.0], [-2.0, -1.0]])  # f(x) = 0 for all three, mean 0
    gp = L.gradient_norm_penalty(lambda v: nn.functional.softplus(D(v)[:, 0]), x)
    assert_close(gp, torch.tensor(5 / 4))
    gp.backward()
    assert_close(D.weight.grad, torch.tensor([[0.5, -1.0]]))
    assert_close(D.bias.grad, torch.tensor([5 / 4]))


def test_loss_sensitive_regulariser_refuses_batch_norm():
    with pytest.raises(EbganError, match="batch_norm=false or ls_gp=0"):
        resolve(apply_overrides(from_preset("ring"), {"loss": "loss-sensitive", "batch_norm": True, "d_layers": 3}))
    resolve(
        apply_overrides(
            from_preset("ring"), {"loss": "loss-sensitive", "batch_norm": True, "d_layers": 3, "ls_gp": 0.0}
        )
    )
    with pytest.raises(EbganError, match="ls_gp must be >= 0"):
        resolve(apply_overrides(from_preset("ring"), {"loss": "loss-sensitive", "ls_gp": -1.0}))


def test_hand_values_match_the_pure_losses():
    """Each score objective's loss is its registry functions applied to D's outputs ([1, 3] and [0, 2])."""
    s_real, s_fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.0])
    for name in ("gan", "nsgan", "wgan", "lsgan", "hinge"):
        obj, spec = make_objective(ring_cfg(name)), L.LOSSES[name]
        assert_close(obj.d_loss(ScoreD(), REAL, FAKE, 0)[0], spec.d_loss(s_real, s_fake), msg=name)
        assert_close(obj.g_loss(ScoreD(), FAKE, 0)[0], spec.g_loss(s_fake), msg=name)


def test_nsgan_generator_at_logit_zero_is_log2():
    """-log sigmoid(0) = log 2; the minimax G loss there is log(1 - 1/2) = -log 2."""
    fake = torch.zeros(3, 2)
    assert_close(make_objective(ring_cfg("nsgan")).g_loss(ScoreD(), fake, 0)[0], torch.tensor(math.log(2)))
    assert_close(make_objective(ring_cfg("gan")).g_loss(ScoreD(), fake, 0)[0], torch.tensor(-math.log(2)))


def test_loss_sensitive_margin_scale_is_the_same_for_points_and_images():
    """Delta is the per-element mean |x - G(z)|: all-ones against all-minus-ones is 2 for 2-D points and for
    28x28 images alike (the summed L1 distance would be 4 and 1568)."""
    obj = make_objective(ring_cfg("loss-sensitive"))
    for shape in ((2,), (1, 28, 28)):
        real, fake = torch.ones(2, *shape), -torch.ones(2, *shape)
        assert_close(obj.d_loss(ScoreD(), real, fake, 0)[1]["delta"], torch.tensor(2.0))


# ------------------------------------------------------------------------------------------------ short runs


@pytest.mark.parametrize("name", ALL)
def test_short_run_on_ring(name, ring):
    """20 steps of every loss: finite losses, stats and samples of the right shape."""
    cfg = ring_cfg(name)
    trainer = Trainer(cfg, ring)
    for _ in range(cfg.steps):
        stats = trainer.train_step()
        for k, v in stats.items():
            assert v.dim() == 0 and not v.requires_grad, k
            assert torch.isfinite(v), (k, float(v))
    expected = {"energy_real", "energy_fake"} if OBJECTIVES[name].head == "ae" else {"d_real", "d_fake"}
    expected |= {
        "wgan-gp": {"gp"},
        "began": {"k", "convergence"},
        "loss-sensitive": {"delta", "gp"},
        "ebgan": {"pt", "margin"},
    }.get(name, set())
    assert set(stats) == {"loss_d", "loss_g"} | expected
    x = trainer.sample(100, seed=0)
    assert x.shape == (100, 2) and torch.isfinite(x).all()


# ------------------------------------------------------------------------------------------------ WGAN, WGAN-GP


def test_wgan_clips_every_discriminator_parameter(ring):
    cfg = ring_cfg("wgan", steps=3)
    trainer = Trainer(cfg, ring)
    assert any(p.abs().max() > cfg.wgan_clip for p in trainer.D.parameters())  # the init is not clipped
    for _ in range(3):
        trainer.train_step()
    c = cfg.wgan_clip
    for p in trainer.D.parameters():  # every value already inside [-c, c]: clamping changes nothing
        torch.testing.assert_close(p.detach().clamp(-c, c), p.detach(), rtol=0, atol=0)
    assert any((p.abs() == c).any() for p in trainer.D.parameters())  # the clip was active


def test_wgan_gp_refuses_batch_norm_in_the_discriminator():
    with pytest.raises(EbganError, match="batch_norm=false") as e:
        resolve(apply_overrides(from_preset("ring"), {"loss": "wgan-gp", "batch_norm": True, "d_layers": 3}))
    assert "\n" not in str(e.value)
    with pytest.raises(EbganError, match="batch_norm=false"):
        resolve(apply_overrides(from_preset("mnist-conv"), {"loss": "wgan-gp"}))
    # A 2-layer MLP D has no batch norm (none on its input layer), so the MNIST MLP preset is fine as it is.
    resolve(apply_overrides(from_preset("mnist"), {"loss": "wgan-gp"}))
    resolve(apply_overrides(from_preset("mnist-conv"), {"loss": "wgan-gp", "batch_norm": False}))


# ------------------------------------------------------------------------------------------------ BEGAN


def test_began_k_update_and_state_round_trip():
    """k = 0.5, L(x) = 1, L(G(z)) = 0.3, gamma 0.5, lambda_k 0.001: 0.5 + 0.001 (0.5 - 0.3) = 0.5002."""
    obj = make_objective(ring_cfg("began"))
    assert obj.k == 0.0
    obj.k = 0.5
    obj.after_d_loss({"energy_real": torch.tensor(1.0), "energy_fake": torch.tensor(0.3)})
    assert obj.k == pytest.approx(0.5002, abs=1e-9)  # 0.3 is a float32
    fresh = make_objective(ring_cfg("began"))
    fresh.load_state_dict(obj.state_dict())
    assert fresh.k == obj.k


def test_began_k_moves_as_began_update_k_says(ring):
    cfg = ring_cfg("began", energy="l2")  # BEGAN builds its l1 auto-encoder whatever cfg.energy says
    trainer = Trainer(cfg, ring)
    assert trainer.D.energy == "l1"
    for _ in range(5):
        k_before = trainer.objective.k
        stats = trainer.train_step()
        assert float(stats["k"]) == pytest.approx(k_before)
        expected = L.began_update_k(
            k_before, stats["energy_real"], stats["energy_fake"], cfg.began_gamma, cfg.began_lambda_k
        )
        assert trainer.objective.k == expected
    assert trainer.objective.k > 0


# ------------------------------------------------------------------------------------------------ frozen nets


def snapshot(module: nn.Module) -> list[Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def bitwise_equal(a: list[Tensor], b: list[Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("name", ["ebgan", "nsgan", "wgan-gp", "began"])
def test_d_step_leaves_g_and_g_step_leaves_d_unchanged(name, ring):
    """The two phases of ``Trainer.train_step``, run one at a time."""
    trainer = Trainer(ring_cfg(name), ring)
    G, D, obj = trainer.G, trainer.D, trainer.objective
    real = trainer.next_batch()
    fake = G(trainer.noise(real.shape[0]))

    g_before, d_before = snapshot(G), snapshot(D)
    loss_d, _ = obj.d_loss(D, real, fake.detach(), 0)
    trainer._update(loss_d, trainer.d_params, trainer.opt_d, trainer.scaler_d)
    obj.after_d_step(D)
    assert bitwise_equal(snapshot(G), g_before)
    assert all(p.grad is None for p in G.parameters())
    assert not bitwise_equal(snapshot(D), d_before)  # the D step did something

    d_before, g_before = snapshot(D), snapshot(G)
    D.requires_grad_(False)
    loss_g, _ = obj.g_loss(D, fake, 0)
    trainer._update(loss_g, trainer.g_params, trainer.opt_g, trainer.scaler_g)
    D.requires_grad_(True)
    assert bitwise_equal(snapshot(D), d_before)
    assert not bitwise_equal(snapshot(G), g_before)


# ------------------------------------------------------------------------------------------------ resume


@pytest.mark.parametrize("name", ["wgan-gp", "began"])
def test_resume_is_bit_exact(name, ring):
    """10 uninterrupted steps equal 5 steps, a state_dict round trip into a fresh Trainer, and 5 more."""
    cfg = ring_cfg(name, steps=10)
    a = Trainer(cfg, ring)
    for _ in range(10):
        a.train_step()

    b = Trainer(cfg, ring)
    for _ in range(5):
        b.train_step()
    weights = {"G": b.G.state_dict(), "D": b.D.state_dict()}
    state = b.state_dict()
    c = Trainer(cfg, ring)
    c.G.load_state_dict(weights["G"])
    c.D.load_state_dict(weights["D"])
    c.load_state_dict(state)
    for _ in range(5):
        c.train_step()

    assert bitwise_equal(snapshot(a.G), snapshot(c.G))
    assert bitwise_equal(snapshot(a.D), snapshot(c.D))
    assert a.objective.state_dict().keys() == c.objective.state_dict().keys()
    if name == "began":
        assert a.objective.k == c.objective.k > 0
    else:
        assert torch.equal(a.objective.gen_alpha.get_state(), c.objective.gen_alpha.get_state())


def test_discriminate_joint_pass_equals_separate_passes_without_batch_norm():
    from torch import nn

    from ebgan.nets import AEDiscriminator
    from ebgan.objectives import discriminate, has_batch_norm

    torch.manual_seed(0)
    D = AEDiscriminator(nn.Sequential(nn.Linear(4, 6), nn.ReLU()), nn.Linear(6, 4), "l2")
    real, fake = torch.randn(3, 4), torch.randn(5, 4)
    vr, vf, cr, cf = discriminate(D, real, fake)
    assert not has_batch_norm(D)
    torch.testing.assert_close(vr, D(real)[0])
    torch.testing.assert_close(vf, D(fake)[0])
    torch.testing.assert_close(cf, D(fake)[1])


def test_discriminate_with_batch_norm_normalises_fakes_on_their_own():
    """With batch norm, the D step must see fakes normalised by fake-only statistics, as the G step does."""
    from torch import nn

    from ebgan.nets import AEDiscriminator
    from ebgan.objectives import discriminate, has_batch_norm

    torch.manual_seed(0)
    D = AEDiscriminator(nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU()), nn.Linear(6, 4), "l2")
    real, fake = torch.randn(8, 4) + 3.0, torch.randn(8, 4)
    _, vf, _, _ = discriminate(D, real, fake)
    assert has_batch_norm(D)
    torch.testing.assert_close(vf, D(fake)[0])  # what the G step computes
    joint = D(torch.cat([real, fake]))[0][8:]
    assert not torch.allclose(vf, joint)
