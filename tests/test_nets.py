"""Networks: shapes for every family, the paper's layer counts, energy reductions, gradient paths."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from ebgan.config import Config, apply_overrides, resolve
from ebgan.nets import AEDiscriminator, build_networks, reconstruction_energy


def _cfg(**kw) -> Config:
    return resolve(apply_overrides(Config(), kw))


@pytest.mark.parametrize(
    "arch, shape",
    [
        ("mlp", (2,)),
        ("mlp", (1, 28, 28)),
        ("conv", (1, 28, 28)),
        ("conv", (1, 32, 32)),
        ("conv", (3, 32, 32)),
        ("conv", (3, 64, 64)),
        ("conv", (1, 64, 64)),
    ],
)
@pytest.mark.parametrize("head", ["ae", "logit"])
def test_shapes(arch, shape, head):
    cfg = _cfg(arch=arch, g_size=32, d_size=32, g_channels=8, d_channels=8, z_dim=16)
    G, D = build_networks(cfg, shape, head)
    x = G(torch.randn(3, 16))
    assert x.shape == (3, *shape)
    value, code = D(x)
    assert value.shape == (3,)
    assert code.dim() == 2 and code.shape[0] == 3
    if len(shape) == 3:
        assert float(x.detach().abs().max()) <= 1.0  # tanh output for images


def test_mlp_layer_counts_follow_the_paper_grid():
    cfg = _cfg(g_layers=5, g_size=800, d_layers=3, d_size=256)
    G, D = build_networks(cfg, (1, 28, 28), "ae")
    g_lin = [m for m in G.modules() if isinstance(m, nn.Linear)]
    d_lin = [m for m in D.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in g_lin] == [(100, 800)] + [(800, 800)] * 3 + [(800, 784)]
    # nLayerD 3 = two encoder layers + one decoder layer
    assert [(m.in_features, m.out_features) for m in d_lin] == [(784, 256), (256, 256), (256, 784)]
    # batch norm after every G layer but the output; in D after every layer but the input (and the decoder)
    assert sum(isinstance(m, nn.BatchNorm1d) for m in G.modules()) == 4
    assert sum(isinstance(m, nn.BatchNorm1d) for m in D.modules()) == 1


def test_dropout_and_spectral_norm_options():
    cfg = _cfg(d_layers=3, d_size=16, d_dropout=0.5, spectral_norm=True)
    _, D = build_networks(cfg, (2,), "logit")
    assert sum(isinstance(m, nn.Dropout) for m in D.modules()) == 2
    lin = [m for m in D.modules() if isinstance(m, nn.Linear)]
    assert all(hasattr(m, "parametrizations") for m in lin)


def test_energy_reductions_exact():
    x = torch.zeros(2, 1, 2, 2)
    r = torch.tensor([[3.0, 4.0, 0.0, 0.0], [1.0, -1.0, 1.0, -1.0]]).view(2, 1, 2, 2)
    assert_close(reconstruction_energy(r, x, "l2"), torch.tensor([5.0, 2.0]))
    assert_close(reconstruction_energy(r, x, "sse"), torch.tensor([25.0, 4.0]))
    assert_close(reconstruction_energy(r, x, "mse"), torch.tensor([25.0 / 4, 1.0]))
    assert_close(reconstruction_energy(r, x, "l1"), torch.tensor([7.0 / 4, 1.0]))


def test_l2_energy_gradient_finite_at_perfect_reconstruction():
    x = torch.randn(3, 4, requires_grad=True)
    e = reconstruction_energy(x.detach().clone(), x, "l2")
    e.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_generator_gradient_flows_through_target_and_reconstruction():
    """dD(x)/dx = d||Dec(Enc(x)) - x||/dx has two parts; detaching the target drops the -(r - x)/||r - x|| one."""
    torch.manual_seed(0)
    D = AEDiscriminator(nn.Linear(4, 3), nn.Linear(3, 4), "l2")
    x = torch.randn(5, 4, requires_grad=True)
    D(x)[0].sum().backward()
    full = x.grad.clone()
    x.grad = None
    recon = D.reconstruct(x)
    reconstruction_energy(recon, x.detach(), "l2").sum().backward()
    recon_only = x.grad.clone()
    r = D.reconstruct(x).detach()
    target_part = -(r - x.detach()) / (r - x.detach()).norm(dim=1, keepdim=True)
    assert_close(full, recon_only + target_part)


def test_conv_64_autoencoder_is_the_papers():
    """Encoder (64)4c2s-(128)4c2s-(256)4c2s, decoder (128)4c2s-(64)4c2s-(C)4c2s."""
    cfg = _cfg(arch="conv", d_channels=64)
    _, D = build_networks(cfg, (3, 64, 64), "ae")
    enc = [(m.out_channels, m.kernel_size, m.stride) for m in D.encoder.modules() if isinstance(m, nn.Conv2d)]
    dec = [(m.out_channels, m.kernel_size, m.stride) for m in D.decoder.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert enc == [(64, (4, 4), (2, 2)), (128, (4, 4), (2, 2)), (256, (4, 4), (2, 2))]
    assert dec == [(128, (4, 4), (2, 2)), (64, (4, 4), (2, 2)), (3, (4, 4), (2, 2))]
    _, code = D(torch.zeros(2, 3, 64, 64))
    assert code.shape == (2, 256 * 8 * 8)
    assert math.prod(code.shape[1:]) == 16384


@pytest.mark.parametrize(
    "arch, shape", [("mlp", (1, 28, 28)), ("mlp", (2,)), ("conv", (1, 28, 28)), ("conv", (3, 64, 64))]
)
def test_d_code_bottleneck_sets_the_code_size(arch, shape):
    cfg = _cfg(arch=arch, d_size=32, d_channels=8, d_code=5)
    _, D = build_networks(cfg, shape, "ae")
    x = torch.rand(4, *shape) * 2 - 1
    energy, code = D(x)
    assert code.shape == (4, 5) and energy.shape == (4,)  # the pulling-away term sees the 5-unit code
    assert D.reconstruct(x).shape == x.shape
    # The code is the only path from input to reconstruction: every decoder input is the 5-d code.
    first = next(m for m in D.decoder.modules() if isinstance(m, nn.Linear))
    assert first.in_features == 5
    _, plain = build_networks(_cfg(arch=arch, d_size=32, d_channels=8), shape, "ae")
    assert plain(x)[1].shape[1] != 5


@pytest.mark.parametrize("arch, shape, code", [("mlp", (2,), 1), ("mlp", (1, 28, 28), 64), ("conv", (1, 28, 28), 64)])
def test_began_defaults_to_a_code_narrower_than_the_data(arch, shape, code):
    """BEGAN's auto-encoder gets its paper's bottleneck unless d_code says otherwise; EBGAN gets none."""
    x = torch.rand(4, *shape) * 2 - 1
    _, D = build_networks(_cfg(arch=arch, loss="began", d_size=32, d_channels=8), shape, "ae", energy="l1")
    assert D(x)[1].shape == (4, code)
    _, D = build_networks(_cfg(arch=arch, loss="began", d_size=32, d_channels=8, d_code=3), shape, "ae")
    assert D(x)[1].shape == (4, 3)
    for cfg in (
        _cfg(arch=arch, loss="began", d_size=32, d_channels=8, d_code=0),
        _cfg(arch=arch, loss="ebgan", d_size=32, d_channels=8),
    ):
        _, D = build_networks(cfg, shape, "ae")
        assert D(x)[1].shape[1] == (32 if arch == "mlp" else math.prod(D.encoder(x).shape[1:]))
