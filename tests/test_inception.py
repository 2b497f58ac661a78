"""FID and IS on the FID Inception network (optional extra ebgan[inception], torch-fidelity).

The published weights cannot be fetched here (no internet): these tests use a weights file with the same keys
and shapes and random values, written from the network's own state dict, and check the loading path, the
checksum guard, the input handling and the scores' plumbing; the weights' identity is checked by SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import sys
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image

from ebgan.cli import main
from ebgan.errors import EbganError
from ebgan.metrics import inception as I
from ebgan.metrics.scores import frechet_distance, inception_score


def _extractor():
    try:
        return I._extractor_class()
    except EbganError:
        pytest.skip("torch-fidelity is not installed (pip install 'ebgan[inception]')")


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """A weights file shaped like the published one, with random values that keep activations alive through
    the 94 layers (He-normal convolutions, BN statistics left at 0 / 1)."""
    cls = _extractor()
    with (
        mock.patch.object(cls, "load_state_dict", lambda self, sd, *a, **k: None),
        mock.patch("torch.load", lambda *a, **k: {}),
    ):
        m = cls("x", ["2048", "logits_unbiased"], feature_extractor_weights_path="unused")
    g = torch.Generator().manual_seed(0)
    sd = {}
    for k, v in m.state_dict().items():
        if k.endswith("conv.weight"):
            fan_in = v[0].numel()
            v = torch.randn(v.shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif k == "fc.weight":
            v = torch.randn(v.shape, generator=g) * 0.05
        sd[k] = v.clone()
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(sd, path)
    return path


@pytest.fixture(scope="module")
def inc(weights_file):
    return I.load_inception(weights_file, verify=False)


def _images(n, c=3, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, size, size), generator=g, dtype=torch.uint8)


def test_weights_are_loaded_from_the_file(weights_file, inc):
    saved = torch.load(weights_file)
    got = inc.model.state_dict()
    assert set(got) == set(saved)
    for k in saved:
        torch.testing.assert_close(got[k], saved[k], rtol=0, atol=0)
    assert inc.sha256 == hashlib.sha256(weights_file.read_bytes()).hexdigest()
    assert inc.path == weights_file


def test_other_weights_refused_unless_allowed(weights_file):
    with pytest.raises(EbganError, match="not the FID Inception weights"):
        I.load_inception(weights_file)


def test_missing_weights_name_the_download_command(tmp_path, monkeypatch):
    _extractor()
    monkeypatch.setenv("EBGAN_CACHE", str(tmp_path))
    monkeypatch.delenv("EBGAN_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(EbganError, match="ebgan download inception"):
        I.load_inception()
    with pytest.raises(EbganError, match="does not exist"):
        I.load_inception(tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(EbganError, match="cannot load Inception weights"):
        I.load_inception(bad, verify=False)


def test_environment_variable_names_the_weights(weights_file, monkeypatch):
    monkeypatch.setenv("EBGAN_INCEPTION_WEIGHTS", str(weights_file))
    assert I.load_inception(verify=False).path == weights_file


def test_missing_torch_fidelity_is_one_clear_error(monkeypatch):
    real = I.importlib.util.find_spec
    monkeypatch.setattr(
        I.importlib.util, "find_spec", lambda name, *a: None if name == "torch_fidelity" else real(name, *a)
    )
    with pytest.raises(EbganError, match=r"pip install 'ebgan\[inception\]'"):
        I._extractor_class()


def test_outputs_are_the_networks_and_grey_is_repeated_rgb(inc):
    rgb = _images(6, 3)
    probs, mu, sigma = I.inception_outputs(inc, rgb, batch_size=4)
    with torch.inference_mode():
        pool, logits = inc.model(rgb)
    torch.testing.assert_close(probs, torch.softmax(logits.double(), 1))
    torch.testing.assert_close(mu, pool.double().mean(0))
    torch.testing.assert_close(sigma, torch.cov(pool.double().T))
    assert probs.shape == (6, I.CLASSES) and mu.shape == (I.FEATURES,) and pool.std(0).max() > 0
    grey = rgb[:, :1]
    p1, mu1, _ = I.inception_outputs(inc, grey, batch_size=6)
    p3, mu3, _ = I.inception_outputs(inc, grey.repeat(1, 3, 1, 1), batch_size=6)
    torch.testing.assert_close(p1, p3, rtol=0, atol=0)
    torch.testing.assert_close(mu1, mu3, rtol=0, atol=0)


def test_bad_inputs(inc):
    for bad, match in [
        (torch.zeros(2, 3, 8, 8), "uint8"),
        (_images(2, 2), "1- or 3-channel"),
        (torch.zeros(3, 8, 8, dtype=torch.uint8), "uint8 images"),
    ]:
        with pytest.raises(EbganError, match=match):
            I.inception_outputs(inc, bad)
    with pytest.raises(EbganError, match="between 10"):
        I.inception_scores(_images(5), _images(5), inc)


def test_scores_against_a_folder(tmp_path, inc):
    real = _images(12, 3, 16, seed=1)
    folder = tmp_path / "real"
    folder.mkdir()
    for i, im in enumerate(real):
        Image.fromarray(im.permute(1, 2, 0).numpy()).save(folder / f"{i:02d}.png")
    fake = _images(10, 3, 16, seed=2)
    res = I.inception_scores(fake.numpy(), folder, inc, batch_size=8)
    probs, mu, sigma = I.inception_outputs(inc, fake, batch_size=8)
    _, mu_r, sigma_r = I.inception_outputs(inc, real, batch_size=8)
    assert res["n"] == 10 and res["n_reference"] == 12 and res["inception_sha256"] == inc.sha256
    assert res["is"] == pytest.approx(inception_score(probs, 10)[0], rel=1e-9)
    assert res["fid"] == pytest.approx(frechet_distance(mu, sigma, mu_r, sigma_r), rel=1e-9)


def test_references(tmp_path):
    from ebgan.data import load_image_folder, resize_images

    real = _images(12, 3, 32, seed=3)
    np.save(tmp_path / "real.npy", real.numpy())
    torch.testing.assert_close(I.load_reference(tmp_path / "real.npy", 16, 3), resize_images(real, 16), rtol=0, atol=0)
    torch.testing.assert_close(I.load_reference(tmp_path / "real.npy", 32, 3), real, rtol=0, atol=0)
    (tmp_path / "f").mkdir()
    Image.fromarray(real[0].permute(1, 2, 0).numpy()).save(tmp_path / "f" / "a.png")
    torch.testing.assert_close(
        I.load_reference(tmp_path / "f", 16, 1), load_image_folder(tmp_path / "f", 16, 1), rtol=0, atol=0
    )
    np.save(tmp_path / "float.npy", real.numpy().astype(np.float32))
    for ref, match in [(tmp_path / "float.npy", "uint8 images"), (tmp_path / "none", "does not exist")]:
        with pytest.raises(EbganError, match=match):
            I.load_reference(ref, 16, 3)


def test_download_checks_the_sha256(tmp_path, monkeypatch, weights_file):
    good = hashlib.sha256(weights_file.read_bytes()).hexdigest()
    dest = tmp_path / "cache" / I.WEIGHTS_FILE
    with pytest.raises(EbganError, match="SHA-256"):
        I.download_inception_weights(dest, url=weights_file.as_uri(), progress=False)
    assert not dest.exists() and not any(dest.parent.iterdir())
    monkeypatch.setattr(I, "WEIGHTS_SHA256", good)
    assert I.download_inception_weights(dest, url=weights_file.as_uri(), progress=False) == dest
    assert dest.read_bytes() == weights_file.read_bytes()
    # Present and good: kept, the (now unreachable) URL is not used.
    assert I.download_inception_weights(dest, url=(tmp_path / "gone").as_uri(), progress=False) == dest
    # The default location is the cache, where load_inception looks.
    monkeypatch.setenv("EBGAN_CACHE", str(tmp_path / "c2"))
    monkeypatch.delenv("EBGAN_INCEPTION_WEIGHTS", raising=False)
    code = main(["download", "inception", "--mirror", weights_file.as_uri()])
    assert code == 0 and I.load_inception().sha256 == good


def test_cli_eval_inception(tmp_path, capsys, weights_file):
    real = _images(12, 1, 16, seed=4)
    np.save(tmp_path / "real.npy", real.numpy())
    np.save(tmp_path / "fake.npy", _images(10, 1, 16, seed=5).numpy())
    argv = [
        "eval",
        tmp_path / "fake.npy",
        "--inception",
        "--reference",
        tmp_path / "real.npy",
        "--inception-weights",
        weights_file,
        "--batch-size",
        5,
    ]
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 2 and "not the FID Inception weights" in err and len(err.strip().splitlines()) == 1
    code = main([str(a) for a in argv + ["--allow-other-weights"]])
    out, _ = capsys.readouterr()
    assert code == 0
    res = json.loads(out.strip().splitlines()[-1])
    assert res["n"] == 10 and res["n_reference"] == 12 and "FID" in out
    for extra, match in [(["--against", "mnist"], "no --against"), ([], "--reference")]:
        a = [str(x) for x in ["eval", tmp_path / "fake.npy", "--inception", *extra]]
        code = main(a)
        _, err = capsys.readouterr()
        assert code == 2 and match in err
    code = main(["eval", str(tmp_path / "fake.npy"), "--reference", str(tmp_path / "real.npy")])
    _, err = capsys.readouterr()
    assert code == 2 and "add --inception" in err


def test_extractor_loads_without_torchvision(monkeypatch):
    """Where torchvision is missing, torch-fidelity's package __init__ fails; the extractor module alone loads."""
    _extractor()
    for name in [m for m in sys.modules if m.startswith("torch_fidelity")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torchvision", None)  # "import torchvision" raises ImportError
    cls = I._extractor_class()
    assert cls.__name__ == "FeatureExtractorInceptionV3"
    assert cls.get_default_feature_layer_for_metric("fid") == "2048"


def test_cli_eval_inception_of_a_run_uses_its_image_folder(tmp_path, capsys, weights_file):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(folder / f"im{i:02d}.png")
    run = tmp_path / "run"
    code = main(
        [
            "train",
            "--preset",
            "celeba-64",
            "--data",
            str(folder),
            "--out",
            str(run),
            "--steps",
            "1",
            "--no-progress",
            "--set",
            "image_size=32",
            "--set",
            "batch_size=4",
            "--set",
            "g_channels=4",
            "--set",
            "d_channels=4",
            "--set",
            "n_grid=4",
        ]
    )
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    code = main(
        ["eval", str(run), "--inception", "-n", "10", "--inception-weights", str(weights_file), "--allow-other-weights"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    res = json.loads(out.strip().splitlines()[-1])
    assert res["n"] == 10 and res["n_reference"] == 12 and str(folder) in out
    # A run trained on a built-in data set has no folder to compare with: --reference is asked for.
    ring_run = tmp_path / "ring"
    assert main(["train", "--preset", "ring", "--steps", "1", "--out", str(ring_run), "--no-progress"]) == 0
    capsys.readouterr()
    code = main(
        ["eval", str(ring_run), "--inception", "--inception-weights", str(weights_file), "--allow-other-weights"]
    )
    _, err = capsys.readouterr()
    assert code == 2 and "pass --reference" in err
