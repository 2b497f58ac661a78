"""Mode-coverage tools beside the pulling-away term: minibatch discrimination (Salimans et al. 2016) and PacGAN
packing (Lin et al. 2018). Formulas checked by hand, packs' shapes and member order, the packed margin and
penalties, every loss training with each tool, exact resume, checkpoints holding T, and the refusals."""

from __future__ import annotations

import copy
import json
import math
import shutil

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.testing import assert_close

from ebgan import losses
from ebgan.config import apply_overrides, from_preset, resolve
from ebgan.data import Dataset, sample_mixture
from ebgan.energy import energies
from ebgan.errors import EbganError
from ebgan.nets import (
    AEDiscriminator,
    LogitDiscriminator,
    MinibatchDiscrimination,
    Packed,
    PackOfCopies,
    build_networks,
    minibatch_features,
    pack_samples,
    reconstruction_energy,
    unpack_samples,
)
from ebgan.objectives import make_objective
from ebgan.train import Trainer, train

LOSSES = ["ebgan", "gan", "nsgan", "wgan", "wgan-gp", "lsgan", "loss-sensitive", "began", "hinge"]
TINY_2D = dict(
    g_size=32,
    d_size=32,
    g_layers=3,
    d_layers=3,
    batch_size=24,
    log_every=5,
    sample_every=1000,
    ckpt_every=1000,
    n_grid=64,
)
E1, E2 = math.exp(-1), math.exp(-2)


def ring(n=2048) -> Dataset:
    x, y = sample_mixture("ring", n, torch.Generator().manual_seed(0))
    return Dataset("ring", "points", x, y)


def images(n=96) -> Dataset:
    g = torch.Generator().manual_seed(0)
    return Dataset("mnist", "image", torch.randint(0, 256, (n, 1, 28, 28), generator=g).to(torch.uint8), None)


def cfg_2d(**kw):
    return resolve(apply_overrides(from_preset("ring"), {**TINY_2D, **kw}))


def cfg_img(**kw):
    sets = dict(
        g_channels=8,
        d_channels=8,
        z_dim=16,
        batch_size=12,
        steps=3,
        log_every=1,
        sample_every=1000,
        ckpt_every=1000,
        n_grid=16,
    )
    if kw.get("loss") in ("wgan-gp", "loss-sensitive"):
        sets["batch_norm"] = False  # their per-sample gradient penalties refuse batch norm
    return resolve(apply_overrides(from_preset("mnist-conv"), {**sets, **kw}))


# -- minibatch discrimination: the formula by hand ----------------------------------------------------------


def hand_T() -> torch.Tensor:
    """Kernel 0: M = f; kernel 1: M = [f_0, f_0] (A = 2 features, B = 2 kernels, C = 2)."""
    T = torch.zeros(2, 2, 2)
    T[:, 0, :] = torch.eye(2)
    T[:, 1, :] = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    return T


HAND_F = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


@pytest.mark.parametrize("twice", [False, True])
def test_minibatch_features_on_three_hand_made_rows(twice):
    # Kernel 0's L1 distances: rows 1-2: 2, 1-3: 1, 2-3: 1. Kernel 1 (M = [1,1], [0,0], [1,1]): 2, 0, 2.
    o = minibatch_features(HAND_F, hand_T(), twice_differentiable=twice)
    expected = torch.tensor([[(E2 + E1) / 2, (E2 + 1) / 2], [(E2 + E1) / 2, E2], [E1, (1 + E2) / 2]])
    assert_close(o, expected)
    assert_close(o[0], torch.tensor([0.251607, 0.567668]), atol=1e-6, rtol=0)
    # The paper's sum over j = 1..n, the j = i term (exp 0 = 1) included: 1 + (n - 1) o.
    paper = minibatch_features(HAND_F, hand_T(), include_self=True, mean=False, twice_differentiable=twice)
    assert_close(paper, 1 + 2 * expected)
    assert_close(paper[0], torch.tensor([1 + E2 + E1, 2 + E2]))
    # Without the self term, not averaged: the plain sum over the others.
    assert_close(minibatch_features(HAND_F, hand_T(), mean=False), 2 * expected)


def test_minibatch_features_of_two_rows_and_of_extreme_batches():
    T = hand_T()
    two = torch.tensor([[0.5, 0.0], [0.0, 0.25]])  # kernel 0: |0.5| + |-0.25| = 0.75; kernel 1: 2 * 0.5 = 1
    assert_close(minibatch_features(two, T), torch.tensor([[math.exp(-0.75), E1], [math.exp(-0.75), E1]]))
    same = torch.ones(5, 2)  # a collapsed batch: every other sample identical in every kernel
    assert_close(minibatch_features(same, T), torch.ones(5, 2))
    far = torch.tensor([[0.0, 0.0], [100.0, 0.0], [200.0, 300.0]])  # nothing close: features 0
    assert_close(minibatch_features(far, T), torch.zeros(3, 2))
    assert_close(minibatch_features(torch.ones(1, 2), T), torch.zeros(1, 2))  # no other sample


def test_minibatch_module_appends_its_features_and_t_is_learned():
    torch.manual_seed(0)
    mbd = MinibatchDiscrimination(2, 2, 2)
    with torch.no_grad():
        mbd.T.copy_(hand_T())
    assert_close(mbd(HAND_F)[0], torch.tensor([(E2 + E1) / 2, (E2 + 1) / 2]))
    # Scalar D: the output layer reads [features, o].
    enc = nn.Identity()
    D = LogitDiscriminator(enc, 2, spectral_norm=False, mbd=mbd)
    assert D.out.in_features == 2 + 2
    with torch.no_grad():
        D.out.weight.copy_(torch.tensor([[0.0, 0.0, 1.0, 10.0]]))
        D.out.bias.zero_()
    score, feats = D(HAND_F)
    assert_close(
        score, torch.tensor([(E2 + E1) / 2 + 10 * (E2 + 1) / 2, (E2 + E1) / 2 + 10 * E2, E1 + 10 * (1 + E2) / 2])
    )
    assert torch.equal(feats, HAND_F)  # the features returned are the encoder's own
    score.sum().backward()
    assert mbd.T.grad is not None and mbd.T.grad.abs().sum() > 0


def test_auto_encoder_appends_minibatch_features_to_its_code():
    # MLP: the decoder's first linear layer takes d + B inputs.
    cfg = cfg_2d(d_code=None, mbd_kernels=3, mbd_dim=4)
    _, D = build_networks(cfg, (2,), "ae")
    assert isinstance(D, AEDiscriminator) and D.mbd.T.shape == (32, 3, 4)
    assert D.decoder.in_features == 32 + 3
    _, D = build_networks(cfg_2d(d_code=5, mbd_kernels=3), (2,), "ae")
    assert D.decoder[0].in_features == 5 + 3 and D.mbd.T.shape == (5, 3, 5)
    # Conv: B constant planes beside the code's maps; the first transposed convolution takes code_ch + B.
    cfg = cfg_img(mbd_kernels=6)
    _, D = build_networks(cfg, (1, 28, 28), "ae")
    assert D.decoder[0].in_channels == 16 + 6 and D.mbd.T.shape == (16 * 7 * 7, 6, 5)
    code = torch.randn(4, 16, 7, 7)
    torch.manual_seed(1)
    inp = D._decoder_input(code)
    assert inp.shape == (4, 22, 7, 7)
    o = D.mbd(code.flatten(1))
    assert torch.equal(inp[:, :16], code)
    assert torch.equal(inp[:, 16:], o[:, :, None, None].expand(-1, -1, 7, 7))
    _, D = build_networks(cfg_img(mbd_kernels=6, d_code=10), (1, 28, 28), "ae")
    assert D.decoder[0].in_features == 10 + 6
    _, D = build_networks(cfg_img(mbd_kernels=6, loss="nsgan"), (1, 28, 28), "logit")
    assert D.out.in_features == 16 * 7 * 7 + 6


def test_with_minibatch_features_a_sample_energy_depends_on_its_batch():
    x = torch.randn(8, 2)
    for B in (0, 4):
        torch.manual_seed(0)
        _, D = build_networks(cfg_2d(mbd_kernels=B), (2,), "ae")
        a, _ = D(x)
        b, _ = D(torch.cat([x[:4], torch.randn(4, 2)]))
        same = torch.equal(a[:4], b[:4])
        assert same == (B == 0)


def test_default_networks_have_neither_tool():
    """mbd_kernels=0, pack=1 (the defaults) build the plain networks: no T, no pack wrapper."""
    for cfg, shape, head in [
        (cfg_2d(), (2,), "ae"),
        (cfg_2d(d_code=3), (2,), "ae"),
        (cfg_img(), (1, 28, 28), "ae"),
        (cfg_img(d_code=8), (1, 28, 28), "ae"),
        (cfg_img(loss="nsgan"), (1, 28, 28), "logit"),
    ]:
        torch.manual_seed(0)
        _, D = build_networks(cfg, shape, head)
        assert not any(isinstance(m, (MinibatchDiscrimination, Packed)) for m in D.modules())
        assert all(not k.startswith(("mbd", "inner")) for k in D.state_dict())


# -- packing ----------------------------------------------------------------------------------------------------


def test_pack_shape_and_member_order_for_points():
    x = torch.arange(8.0).view(4, 2)  # [[0, 1], [2, 3], [4, 5], [6, 7]]
    p = pack_samples(x, 2)
    assert torch.equal(p, torch.tensor([[0.0, 1, 2, 3], [4, 5, 6, 7]]))
    assert torch.equal(unpack_samples(p, 2), x)
    p4 = pack_samples(x, 4)
    assert torch.equal(p4, torch.arange(8.0).view(1, 8))
    assert pack_samples(x, 1) is x
    with pytest.raises(EbganError, match="multiple of 3"):
        pack_samples(x, 3)


def test_pack_shape_and_member_order_for_images():
    # 6 images of 2 channels, 3x3; image i, channel c is filled with 10 i + c.
    x = (10 * torch.arange(6.0)[:, None] + torch.arange(2.0)[None, :])[:, :, None, None].expand(6, 2, 3, 3)
    p = pack_samples(x.contiguous(), 3)
    assert p.shape == (2, 6, 3, 3)
    # pack k, channel j*C + c holds image k*m + j, channel c.
    assert p[:, :, 0, 0].tolist() == [[0, 1, 10, 11, 20, 21], [30, 31, 40, 41, 50, 51]]
    assert torch.equal(unpack_samples(p, 3), x)
    # channels_last batches pack to the same values.
    assert torch.equal(pack_samples(x.contiguous(memory_format=torch.channels_last), 3), p)


def test_packed_discriminator_scores_packs_with_wider_first_layer():
    torch.manual_seed(0)
    G, D = build_networks(cfg_2d(pack=3), (2,), "ae")
    assert isinstance(D, Packed) and D.head == "ae" and D.energy == "l2"
    assert D.inner.encoder[1][0].in_features == 6 and D.inner.decoder.out_features == 6
    assert G(torch.randn(4, G.net[0].in_features)).shape == (4, 2)  # G is unchanged
    x = torch.randn(12, 2)
    e, code = D(x)
    assert e.shape == (4,) and code.shape == (4, 32)
    e_inner, _ = D.inner(pack_samples(x, 3))
    assert torch.equal(e, e_inner)
    # The energy of a pack is the reconstruction error of the packed input.
    recon = D.inner.decoder(D.inner.encoder(pack_samples(x, 3)))
    assert_close(e, (recon - pack_samples(x, 3)).pow(2).sum(1).sqrt())
    _, Dc = build_networks(cfg_img(pack=2), (1, 28, 28), "ae")
    assert Dc.inner.encoder[0].in_channels == 2 and Dc.inner.decoder[-1].out_channels == 2
    _, Dl = build_networks(cfg_img(pack=4, loss="nsgan"), (3, 28, 28), "logit")
    assert Dl.inner.encoder[0].in_channels == 12
    assert Dl(torch.randn(8, 3, 28, 28))[0].shape == (2,)


def test_packed_margin_rule_by_hand():
    assert losses.pack_margin_scale("l2", 4) == 2.0
    assert losses.pack_margin_scale("l2", 2) == math.sqrt(2)
    assert losses.pack_margin_scale("sse", 3) == 3.0
    assert losses.pack_margin_scale("mse", 3) == losses.pack_margin_scale("l1", 4) == 1.0
    assert all(losses.pack_margin_scale(k, 1) == 1.0 for k in ("l2", "sse", "mse", "l1"))
    # Why: a pack of m samples, each reconstructed with error e, has the energy sqrt(m) e (l2), m e (sse), e (mse).
    err = torch.tensor([[3.0, 4.0], [0.0, 5.0], [5.0, 0.0], [4.0, 3.0]])  # per-sample l2 error 5 each
    x = torch.zeros(4, 2)
    for kind, per_sample in (("l2", 5.0), ("sse", 25.0), ("mse", 12.5), ("l1", 3.5)):
        single = reconstruction_energy(err, x, kind)
        if kind != "l1":
            assert_close(single, torch.full((4,), per_sample))
        packed = reconstruction_energy(pack_samples(err, 4), pack_samples(x, 4), kind)
        if kind != "l1":
            assert_close(packed, torch.tensor([per_sample * losses.pack_margin_scale(kind, 4)]))
        else:  # l1 is a mean over values: the pack's is the mean of its members'
            assert_close(packed, single.mean().view(1))


class FirstCoordinate(nn.Module):
    """A stand-in discriminator on packs: value = the pack's first coordinate (its first member's x)."""

    head, energy = "ae", "l2"

    def forward(self, x):
        return x[:, 0], x


def test_ebgan_objective_uses_the_packed_margin():
    cfg = cfg_2d(pack=4, margin=1.0, batch_size=8)  # l2: the margin of a pack of 4 is 2
    obj = make_objective(cfg)
    D = Packed(FirstCoordinate(), 4)
    real = torch.zeros(8, 2)
    real[0, 0], real[4, 0] = 0.5, 1.5  # the two real packs' energies
    fake = torch.zeros(8, 2)
    fake[0, 0], fake[4, 0] = 1.0, 3.0  # generated packs: 1.0 (below the packed margin 2), 3.0 (above)
    loss, stats = obj.d_loss(D, real, fake, step=0)
    assert_close(loss, torch.tensor(((0.5 + (2 - 1.0)) + (1.5 + 0.0)) / 2))
    assert_close(stats["margin_pack"], torch.tensor(2.0))
    assert_close(stats["energy_real"], torch.tensor(1.0))


class LinearCritic(nn.Module):
    head = "logit"

    def __init__(self, w):
        super().__init__()
        self.w = w

    def forward(self, x):
        return x.flatten(1) @ self.w, x.flatten(1)


def test_wgan_gp_penalises_the_gradient_of_a_whole_pack():
    # A linear critic on packs of 2 points, w = (1, 1, 1, 1) / sqrt(2): the gradient of a pack has norm sqrt 2,
    # so the penalty is (sqrt 2 - 1)^2 whatever alpha; per member it would have been (1 - 1)^2 = 0.
    cfg = cfg_2d(loss="wgan-gp", batch_norm=False, pack=2, batch_size=8, pt_weight=0.0)
    obj = make_objective(cfg)
    D = Packed(LinearCritic(torch.ones(4) / math.sqrt(2)), 2)
    state = obj.gen_alpha.get_state()
    _, stats = obj.d_loss(D, torch.randn(8, 2), torch.randn(8, 2), step=0)
    assert_close(stats["gp"], torch.tensor((math.sqrt(2) - 1) ** 2))
    # One alpha per pack: 4 draws for 8 samples in packs of 2.
    gen = torch.Generator()
    gen.set_state(state)
    torch.rand(4, generator=gen)
    assert torch.equal(gen.get_state(), obj.gen_alpha.get_state())


def test_loss_sensitive_distance_is_per_pack():
    cfg = cfg_2d(loss="loss-sensitive", batch_norm=False, pack=2, batch_size=4, pt_weight=0.0, ls_gp=0.0)
    obj = make_objective(cfg)
    D = Packed(LinearCritic(torch.zeros(4)), 2)
    real = torch.zeros(4, 2)
    fake = torch.tensor([[1.0, 1.0], [3.0, 3.0], [0.0, 2.0], [2.0, 0.0]])
    _, stats = obj.d_loss(D, real, fake, step=0)
    # pack 0: mean |diff| over (1, 1, 3, 3) = 2; pack 1: over (0, 2, 2, 0) = 1; the mean: 1.5
    assert_close(stats["delta"], torch.tensor(1.5))


def test_pulling_away_term_acts_on_the_packs_codes():
    cfg = cfg_2d(pack=2, batch_size=8, pt_weight=1.0)
    obj = make_objective(cfg)
    seen = {}

    class Codes(nn.Module):
        head, energy = "ae", "l2"

        def forward(self, x):
            seen["rows"] = x.shape[0]
            return x.sum(1), x

    fake = torch.randn(8, 2)
    _, stats = obj.g_loss(Packed(Codes(), 2), fake, step=0)
    assert seen["rows"] == 4
    assert_close(stats["pt"], losses.pulling_away_term(pack_samples(fake, 2)))


# -- every loss trains with each tool ----------------------------------------------------------------------

TOOLS = {"mbd": dict(mbd_kernels=4, mbd_dim=3), "pack": dict(pack=3), "both": dict(pack=2, mbd_kernels=3)}


@pytest.mark.parametrize("tool", sorted(TOOLS))
@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_trains_with_the_tool_on_points_and_images(loss, tool):
    for cfg, data in (
        (cfg_2d(loss=loss, steps=3, **TOOLS[tool]), ring()),
        (cfg_img(loss=loss, **TOOLS[tool]), images()),
    ):
        t = Trainer(cfg, data)
        d0 = [p.detach().clone() for p in t.D.parameters()]
        for _ in range(3):
            stats = t.train_step()
        assert all(bool(torch.isfinite(v).all()) for v in stats.values()), stats
        assert any(not torch.equal(a, b) for a, b in zip(d0, t.D.parameters()))
        if "mbd" in tool:
            mbd = next(m for m in t.D.modules() if isinstance(m, MinibatchDiscrimination))
            assert mbd.T.grad is not None  # T is trained


def test_batch_norm_statistics_still_come_from_the_real_pass_alone():
    """A D with batch norm and both tools: after an iteration (D step, G step), its running statistics are
    those of one training-mode pass over the real batch, as without the tools."""
    for extra in (dict(mbd_kernels=4), dict(pack=2), dict(pack=2, mbd_kernels=3)):
        cfg = resolve(
            apply_overrides(
                from_preset("mnist-oneclass"),
                dict(
                    d_layers=4,
                    d_size=32,
                    g_size=32,
                    z_dim=8,
                    d_code=8,
                    steps=2,
                    batch_size=16,
                    holdout=0.0,
                    amp="none",
                    **extra,
                ),
            )
        )
        t = Trainer(cfg, images(64))
        real = t.next_batch()
        t.next_batch = lambda real=real: real
        D_ref = copy.deepcopy(t.D)
        t.train_step()
        D_ref(real)
        bn = [m for m in t.D.modules() if isinstance(m, nn.BatchNorm1d)]
        ref = [m for m in D_ref.modules() if isinstance(m, nn.BatchNorm1d)]
        assert bn
        for a, b in zip(bn, ref):
            assert torch.equal(a.running_mean, b.running_mean) and torch.equal(a.running_var, b.running_var)
            assert int(a.num_batches_tracked) == int(b.num_batches_tracked) == 1


# -- exact resume, checkpoints, landscape ------------------------------------------------------------------


@pytest.mark.parametrize("tool", ["mbd", "pack"])
def test_resume_equals_uninterrupted_and_checkpoints_hold_t(tool, tmp_path):
    sets = dict(steps=30, ckpt_every=10, **TOOLS[tool])
    full = train(cfg_2d(**sets), tmp_path / "full", dataset=ring(), progress=False)
    part = tmp_path / "part"
    train(cfg_2d(**sets), part, dataset=ring(), progress=False)
    # Roll "part" back to its step-20 checkpoint, as if killed between steps 20 and 30, and resume.
    shutil.rmtree(part / "checkpoints")
    shutil.copytree(tmp_path / "full" / "checkpoints", part / "checkpoints")
    for p in (part / "checkpoints").glob("step-*"):
        if p.name != "step-00000020":
            shutil.rmtree(p)
    (part / "checkpoints" / "latest").write_text("step-00000020\n")
    resumed = train(cfg_2d(**sets), part, dataset=ring(), progress=False, resume=True)
    a = load_file(str(tmp_path / "full/checkpoints/step-00000030/weights.safetensors"))
    b = load_file(str(part / "checkpoints/step-00000030/weights.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert {k: v for k, v in resumed["final"].items() if k != "time"} == {
        k: v for k, v in full["final"].items() if k != "time"
    }
    if tool == "mbd":
        assert a["D.mbd.T"].shape == (32, 4, 3)
        start = load_file(str(tmp_path / "full/checkpoints/step-00000020/weights.safetensors"))
        assert not torch.equal(start["D.mbd.T"], a["D.mbd.T"])  # T is learned and saved
        assert not (tmp_path / "full" / "landscape.png").exists()  # no per-point energy: no landscape
    else:
        assert a["D.inner.encoder.1.0.weight"].shape == (32, 6)  # packs of 3 points
        assert (tmp_path / "full" / "landscape.png").is_file()  # drawn on packs of 3 copies of a point
    rows = [json.loads(line) for line in (part / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == sorted({r["step"] for r in rows})


def test_per_sample_energies_are_refused_and_the_landscape_uses_copies():
    torch.manual_seed(0)
    _, D = build_networks(cfg_2d(pack=2), (2,), "ae")
    with pytest.raises(EbganError, match="packs of 2 samples"):
        energies(D, torch.randn(10, 2))
    x = torch.randn(5, 2)
    e, _ = PackOfCopies(D).eval()(x)
    assert_close(e, D.inner(torch.cat([x, x], dim=1))[0])
    _, D = build_networks(cfg_2d(mbd_kernels=2), (2,), "ae")
    with pytest.raises(EbganError, match="minibatch discrimination"):
        energies(D, torch.randn(10, 2))


# -- refusals --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sets, match",
    [
        (dict(mbd_kernels=4, holdout=0.1), "anomaly-scoring"),
        (dict(mbd_kernels=4, known_anomalies="a.npy"), "anomaly-scoring"),
        (dict(pack=2, holdout=0.1), "anomaly-scoring"),
        (dict(pack=3, batch_size=256), "multiple of 3"),
        (dict(pack=2, conditional=True), "conditional"),
        (dict(pack=128, batch_size=128, pt_weight=1.0), "batch_size / pack >= 2"),
        (dict(mbd_kernels=2, pack=64, batch_size=64, pt_weight=0.0), "at least 2"),
        (dict(pack=0), "pack must be >= 1"),
        (dict(mbd_kernels=-1), "mbd_kernels must be >= 0"),
        (dict(mbd_dim=0), "mbd_dim must be >= 1"),
    ],
)
def test_config_refuses_what_the_tools_cannot_do(sets, match):
    with pytest.raises(EbganError, match=match):
        resolve(apply_overrides(from_preset("ring"), sets))


def test_config_refuses_the_tools_with_lapgan():
    for sets in (dict(pack=2), dict(mbd_kernels=3)):
        with pytest.raises(EbganError, match="lapgan"):
            resolve(apply_overrides(from_preset("mnist-conv"), dict(arch="lapgan", loss="nsgan", **sets)))


def test_set_options_parse_from_the_command_line():
    cfg = resolve(apply_overrides(from_preset("grid"), assignments=["mbd_kernels=8", "mbd_dim=4", "pack=4"]))
    assert (cfg.mbd_kernels, cfg.mbd_dim, cfg.pack) == (8, 4, 4)


def test_describe_networks_counts_t_and_the_packed_first_layer():
    """`ebgan train --dry-run` describes the nets on shape-only tensors: both tools must run there too."""
    from ebgan.nets import describe_networks

    plain = describe_networks(cfg_2d(), (2,), "ae")
    mbd = describe_networks(cfg_2d(mbd_kernels=4, mbd_dim=3), (2,), "ae")
    assert mbd["params_d"] == plain["params_d"] + 32 * 4 * 3 + 4 * 2  # T, and 4 more decoder inputs
    packed = describe_networks(cfg_2d(pack=3), (2,), "ae")
    assert packed["params_d"] == plain["params_d"] + 32 * 4 + 2 * 32 * 2 + 2 * 2  # wider first and last layers
    assert describe_networks(cfg_img(mbd_kernels=5, pack=2), (1, 28, 28), "ae")["flops_per_step"] > 0


# -- the minibatch-discrimination presets ------------------------------------------------------------------


@pytest.mark.parametrize("base", ["ring", "grid"])
def test_mbd_presets_are_the_base_preset_with_the_measured_tool(base):
    """`ring-mbd` / `grid-mbd` are exactly what benchmarks/mode_tools.py measured as `mbd` on seeds 10-19: the
    base preset with the pulling-away term off and 8 kernels of 5; nothing else differs."""
    tool = resolve(apply_overrides(from_preset(base), assignments=["pt_weight=0", "mbd_kernels=8"]))
    preset = resolve(from_preset(f"{base}-mbd"))
    assert preset == tool
    assert (preset.mbd_kernels, preset.mbd_dim, preset.pt_weight) == (8, 5, 0.0)


def test_mbd_preset_trains_from_the_command_line_without_a_landscape(tmp_path, capsys):
    """The run folder of a minibatch-discrimination preset has its samples and curves, and no energy landscape
    (D has no energy per point); `ebgan score` says why it cannot score."""
    from ebgan.cli import main

    out = tmp_path / "run"
    assert main(["train", "--preset", "ring-mbd", "--steps", "6", "--out", str(out), "--no-progress"]) == 0
    assert (out / "samples.png").is_file() and (out / "energy.png").is_file()
    assert not (out / "landscape.png").exists()
    pts = tmp_path / "x.npy"
    import numpy as np

    np.save(pts, np.zeros((4, 2), dtype=np.float32))
    capsys.readouterr()
    assert main(["score", str(out), str(pts), "-o", str(tmp_path / "s.csv")]) != 0
    assert "minibatch discrimination" in capsys.readouterr().err


# -- benchmarks/pack_control.py: the control varies one thing at a time ------------------------------------------


def _bench(name: str, monkeypatch):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    monkeypatch.syspath_prepend(str(path.parent))  # its siblings (_report, quality_2d, stacked_mnist)
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_pack_control_variants_change_only_what_they_state(monkeypatch):
    """`nsgan-m4` is the configuration of mode_tools' PacGAN row on the grid (so their runs are the same run), and
    every other variant differs from the `grid` preset with the non-saturating loss (or EBGAN without the
    pulling-away term) in the fields its name states only."""
    control, tools = _bench("pack_control", monkeypatch), _bench("mode_tools", monkeypatch)

    def cfg(loss, sets):
        return resolve(apply_overrides(from_preset("grid"), {"seed": 10}, [f"loss={loss}", *sets]))

    v = {name: cfg(loss, sets) for name, loss, sets, _ in control.VARIANTS}
    loss, sets = tools.tool_sets("pacgan", "grid", "samples")
    assert v["nsgan-m4"] == cfg(loss, sets)
    base = cfg("nsgan", [])
    assert v["nsgan-m1"] == base
    for name, want in [
        ("nsgan-m2", {"pack": 2}),
        ("nsgan-m4", {"pack": 4}),
        ("nsgan-m4-b1024", {"pack": 4, "batch_size": 1024}),
        ("nsgan-m1-40k", {"steps": 40000}),
        ("nsgan-m4-40k", {"pack": 4, "steps": 40000}),
    ]:
        diff = {k: getattr(v[name], k) for k in vars(base) if getattr(v[name], k) != getattr(base, k)}
        assert diff == want, name
    ebgan = cfg("ebgan", [])
    diff = {k: getattr(v["ebgan-m4-40k"], k) for k in vars(ebgan) if getattr(v["ebgan-m4-40k"], k) != getattr(ebgan, k)}
    assert diff == {"pt_weight": 0.0, "pack": 4, "steps": 40000}
    assert v["ebgan-pt-40k"] == cfg("ebgan", ["steps=40000"]) and v["ebgan-pt-40k"].pt_weight == ebgan.pt_weight > 0
