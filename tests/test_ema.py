"""The moving average of G's weights (g_ema): the update by hand, resume equality, what sampling uses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_train import params, ring, tiny_cfg

from ebgan.errors import EbganError
from ebgan.sampling import load_generator, sample_from_run
from ebgan.train import Trainer, train


def test_ema_update_by_hand():
    t = Trainer(tiny_cfg(g_ema=0.9, batch_norm=True), ring())
    g0 = params(t.G)
    assert all(torch.equal(a, b) for a, b in zip(params(t.G_ema), g0))  # starts as G
    t.train_step()
    g1 = params(t.G)
    d1 = min(0.9, 2 / 11)  # warm-up: (1 + t) / (10 + t) at t = 1
    for e, a, b in zip(t.G_ema.parameters(), g0, g1, strict=True):
        torch.testing.assert_close(e, d1 * a + (1 - d1) * b)
    t.train_step()
    g2 = params(t.G)
    d2 = min(0.9, 3 / 12)
    for e, a, b, c in zip(t.G_ema.parameters(), g0, g1, g2, strict=True):
        torch.testing.assert_close(e, d2 * (d1 * a + (1 - d1) * b) + (1 - d2) * c)
    for _ in range(100):
        t.train_step()
    assert t.ema_updates == 102
    # Past the warm-up the decay is g_ema itself; batch-norm statistics are G's.
    before = params(t.G_ema)
    t.train_step()
    for e, a, b in zip(t.G_ema.parameters(), before, t.G.parameters(), strict=True):
        torch.testing.assert_close(e, 0.9 * a + 0.1 * b)
    for be, b in zip(t.G_ema.buffers(), t.G.buffers(), strict=True):
        assert torch.equal(be, b)


def test_ema_off_by_default_and_pretraining_does_not_update_it():
    from ebgan.config import PRESETS, Config

    assert Config().g_ema == 0.0 and PRESETS["ring"]["g_ema"] == 0.999  # on only where a preset says so
    t = Trainer(tiny_cfg(g_ema=0.0), ring())
    assert t.G_ema is None and "G_ema" not in t.nets()
    t = Trainer(tiny_cfg(g_ema=0.99, pretrain_steps=2), ring())
    t.train_step()
    t.train_step()
    assert t.ema_updates == 0
    t.train_step()
    assert t.ema_updates == 1


def test_ema_resume_equals_uninterrupted(tmp_path):
    # A constant learning rate: the 20-step run extended to 30 then follows the 30-step run exactly.
    cfg = tiny_cfg(steps=30, ckpt_every=10, g_ema=0.95, lr_schedule="constant")
    train(cfg, tmp_path / "full", dataset=ring(), progress=False)
    train(cfg.__class__(**{**cfg.__dict__, "steps": 20}), tmp_path / "part", dataset=ring(), progress=False)
    train(cfg, tmp_path / "part", dataset=ring(), progress=False, resume=True)
    a = load_file(str(tmp_path / "full/checkpoints/step-00000030/weights.safetensors"))
    b = load_file(str(tmp_path / "part/checkpoints/step-00000030/weights.safetensors"))
    assert any(k.startswith("G_ema.") for k in a) and a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_sampling_uses_the_average_unless_told(tmp_path):
    train(tiny_cfg(steps=30, g_ema=0.9), tmp_path / "run", dataset=ring(), progress=False)
    w = load_file(str(tmp_path / "run/checkpoints/step-00000030/weights.safetensors"))
    G, _, _ = load_generator(tmp_path / "run")
    assert all(torch.equal(v, w[f"G_ema.{k}"]) for k, v in G.state_dict().items())
    G, _, _ = load_generator(tmp_path / "run", weights="raw")
    assert all(torch.equal(v, w[f"G.{k}"]) for k, v in G.state_dict().items())
    auto = sample_from_run(tmp_path / "run", 100)
    assert np.array_equal(auto, sample_from_run(tmp_path / "run", 100, weights="ema"))
    assert not np.array_equal(auto, sample_from_run(tmp_path / "run", 100, weights="raw"))
    train(tiny_cfg(steps=10, g_ema=0.0), tmp_path / "plain", dataset=ring(), progress=False)
    with pytest.raises(EbganError, match="kept no moving average"):
        sample_from_run(tmp_path / "plain", 10, weights="ema")


def test_bad_g_ema_is_refused():
    with pytest.raises(EbganError, match="g_ema must be in"):
        tiny_cfg(g_ema=1.0)
