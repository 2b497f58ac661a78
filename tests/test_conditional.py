"""Class-conditional G and D (conditional=true): one-hot routing by hand, every loss, sampling a class."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_train import ring, tiny_cfg
from torch import nn

from ebgan.cli import main
from ebgan.config import apply_overrides, from_preset, resolve
from ebgan.data import Dataset
from ebgan.errors import EbganError
from ebgan.losses import LOSSES
from ebgan.nets import Conditioned, build_networks, set_labels
from ebgan.sampling import sample_from_run
from ebgan.train import Trainer, train


def test_one_hot_concatenation_by_hand():
    c = Conditioned(nn.Identity(), 3)
    set_labels(c, torch.tensor([2, 0]))
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    torch.testing.assert_close(c(x), torch.tensor([[1.0, 2.0, 0, 0, 1], [3.0, 4.0, 1, 0, 0]]))
    # Two stacked batches (real and fake at once) repeat the labels.
    torch.testing.assert_close(c(torch.cat([x, x]))[2:, 2:], torch.tensor([[0.0, 0, 1], [1, 0, 0]]))
    planes = Conditioned(nn.Identity(), 2, planes=True)
    set_labels(planes, torch.tensor([1]))
    out = planes(torch.zeros(1, 1, 2, 2))
    assert out.shape == (1, 3, 2, 2)
    torch.testing.assert_close(out[0, 1], torch.zeros(2, 2))
    torch.testing.assert_close(out[0, 2], torch.ones(2, 2))
    with pytest.raises(EbganError, match="3 inputs for 2 labels"):
        set_labels(c, torch.tensor([0, 1]))
        c(torch.zeros(3, 2))


@pytest.mark.parametrize(
    "arch, shape", [("mlp", (2,)), ("mlp", (1, 28, 28)), ("conv", (1, 28, 28)), ("conv", (3, 32, 32))]
)
@pytest.mark.parametrize("head", ["ae", "logit"])
def test_label_routing_through_g_and_d(arch, shape, head):
    cfg = resolve(
        apply_overrides(
            from_preset("mnist"),
            dict(arch=arch, conditional=True, g_size=32, d_size=32, g_channels=8, d_channels=8, batch_norm=False),
        )
    )
    G, D = build_networks(cfg, shape, head, n_classes=10)
    G.eval(), D.eval()  # no batch statistics: each row depends on its own label only
    z = torch.randn(4, cfg.z_dim)
    set_labels(G, torch.tensor([0, 1, 2, 3]))
    x0 = G(z)
    assert x0.shape == (4, *shape)
    set_labels(G, torch.tensor([5, 1, 2, 3]))
    x1 = G(z)
    assert not torch.equal(x0[0], x1[0]) and torch.equal(x0[1:], x1[1:])  # only the relabelled row moves
    set_labels(D, torch.tensor([0, 1, 2, 3]))
    v0, _ = D(x0)
    set_labels(D, torch.tensor([0, 1, 2, 9]))
    v1, _ = D(x0)
    assert v0.shape == (4,) and torch.equal(v0[:3], v1[:3]) and not torch.equal(v0[3], v1[3])


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_every_loss_trains_conditionally(loss):
    t = Trainer(tiny_cfg(conditional=True, loss=loss), ring())
    assert t.n_classes == 8
    for _ in range(3):
        stats = t.train_step()
    assert all(torch.isfinite(v).all() for v in stats.values())
    assert t.sample(16, seed=0).shape == (16, 2)


def test_conditional_conv_images_train_and_sample_a_class(tmp_path):
    g = torch.Generator().manual_seed(0)
    data = Dataset(
        "toy", "image", torch.randint(0, 256, (256, 1, 28, 28), generator=g, dtype=torch.uint8), torch.arange(256) % 4
    )
    cfg = resolve(
        apply_overrides(
            from_preset("mnist-conv"),
            dict(
                conditional=True,
                g_channels=8,
                d_channels=8,
                batch_size=16,
                steps=4,
                sample_every=4,
                ckpt_every=4,
                num_threads=1,
            ),
        )
    )
    train(cfg, tmp_path / "run", dataset=data, progress=False)
    assert json.loads((tmp_path / "run" / "data.json").read_text())["n_classes"] == 4
    x = sample_from_run(tmp_path / "run", 10, label=3)
    assert x.shape == (10, 1, 28, 28) and x.dtype == np.uint8
    with pytest.raises(EbganError, match=r"--class must be in 0..3"):
        sample_from_run(tmp_path / "run", 10, label=4)


def test_resume_equals_uninterrupted(tmp_path):
    cfg = tiny_cfg(conditional=True, steps=30, ckpt_every=10, lr_schedule="constant")
    train(cfg, tmp_path / "full", dataset=ring(), progress=False)
    train(cfg.__class__(**{**cfg.__dict__, "steps": 20}), tmp_path / "part", dataset=ring(), progress=False)
    train(cfg, tmp_path / "part", dataset=ring(), progress=False, resume=True)
    a = load_file(str(tmp_path / "full/checkpoints/step-00000030/weights.safetensors"))
    b = load_file(str(tmp_path / "part/checkpoints/step-00000030/weights.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_sample_cli_class_and_refusals(tmp_path, capsys):
    train(tiny_cfg(conditional=True, steps=5), tmp_path / "c", dataset=ring(), progress=False)
    assert main(["sample", str(tmp_path / "c"), "-n", "8", "-o", str(tmp_path / "s.npy"), "--class", "2"]) == 0
    assert np.load(tmp_path / "s.npy").shape == (8, 2)
    train(tiny_cfg(steps=5), tmp_path / "plain", dataset=ring(), progress=False)
    code = main(["sample", str(tmp_path / "plain"), "-n", "8", "-o", str(tmp_path / "p.npy"), "--class", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "is not conditional" in err[0]
    unlabelled = Dataset("toy", "points", torch.randn(64, 2))
    with pytest.raises(EbganError, match="needs a labelled data set"):
        Trainer(tiny_cfg(conditional=True), unlabelled)
    with pytest.raises(EbganError, match="does not combine with known_anomalies or holdout"):
        tiny_cfg(conditional=True, holdout=0.1)
