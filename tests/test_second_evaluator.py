"""The second evaluator: a fully connected MNIST classifier of its own seed, whose features give a second FID
and IS beside the ConvNet's; and `ebgan train-classifier` itself, for both architectures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from ebgan.data import load_mnist
from ebgan.errors import EbganError
from ebgan.evaluate import evaluate
from ebgan.metrics.classifier import (
    SECOND_WEIGHTS,
    MnistClassifier,
    MnistMLP,
    accuracy,
    build_classifier,
    load_classifier,
    sidecar_path,
)
from ebgan.metrics.training import train_classifier


def test_architectures_and_their_feature_sizes():
    x = torch.zeros(3, 1, 28, 28, dtype=torch.uint8)
    conv, mlp = build_classifier("conv").eval(), build_classifier("mlp").eval()
    assert isinstance(conv, MnistClassifier) and isinstance(mlp, MnistMLP)
    assert conv.features(x).shape == (3, 128) and mlp.features(x).shape == (3, 256)
    assert mlp(x).shape == (3, 10)
    assert sum(p.numel() for p in mlp.parameters()) == 784 * 512 + 512 * 256 + 2 * (512 + 256) + 256 * 10 + 10
    with pytest.raises(EbganError, match="unknown classifier architecture 'rnn'"):
        build_classifier("rnn")


def test_train_classifier_runs_and_its_sidecar_matches_the_weights(tmp_path, data_root):
    """`ebgan train-classifier` trains (a regression: its grad-free decorator once made it fail at the first
    step) and records the architecture, the exact test accuracy and the real-data FID it was scored with."""
    out = tmp_path / "mlp.safetensors"
    info = train_classifier(data_root, out, seed=3, epochs=1, arch="mlp", progress=False)
    clf = load_classifier(out)
    assert isinstance(clf.model, MnistMLP) and info["arch"] == "MnistMLP-v1" == clf.info["arch"]
    x, y = load_mnist(data_root, "test")
    assert accuracy(clf.model, x, y) == info["test_accuracy"]
    res = evaluate(x.numpy(), "mnist", data_root=data_root, classifier=out, second_classifier=out)
    assert_close(res["fid_mlp"], info["reference"]["fid_test_vs_train"], rtol=1e-6, atol=1e-6)
    assert_close(res["fid"], res["fid_mlp"])  # the same classifier in both slots: the same figure
    assert_close(res["is_mlp"], info["reference"]["is"], rtol=1e-9, atol=1e-9)


def test_packaged_second_evaluator(data_root):
    if not SECOND_WEIGHTS.is_file():
        pytest.skip("the packaged second evaluator is not built")
    info = json.loads(sidecar_path(SECOND_WEIGHTS).read_text())
    clf = load_classifier(SECOND_WEIGHTS)
    assert isinstance(clf.model, MnistMLP) and info["seed"] == 1 and clf.sha256 == info["sha256"]
    x, _ = load_mnist(data_root, "test")
    res = evaluate(x[:2000].numpy(), "mnist", data_root=data_root)
    assert {"is_mlp", "fid_mlp", "mlp_accuracy", "class_shares_mlp"} <= set(res)
    assert res["mlp_accuracy"] == info["test_accuracy"]
    off = evaluate(x[:2000].numpy(), "mnist", data_root=data_root, second_classifier=None)
    assert "fid_mlp" not in off and off["fid"] == res["fid"]
    assert np.isclose(sum(res["class_shares_mlp"]), 100.0, atol=0.05)
