"""``evaluate`` and ``ebgan eval`` on real MNIST, exact mixture samples and bad input.

Real-data figures use subsets of the MNIST test set to keep the suite quick; the full-size reference values
are measured by ``benchmarks/eval_reference.py`` (BENCHMARKS.md). The real FID statistics are computed once
per session into a temporary ``$EBGAN_CACHE``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ebgan.cli import main
from ebgan.data import load_mnist, ring_centers, sample_mixture
from ebgan.errors import EbganError
from ebgan.evaluate import evaluate
from ebgan.metrics import stacked_mnist_modes
from ebgan.metrics.classifier import load_classifier
from ebgan.metrics.reference import stacked_mnist_triplets
from ebgan.metrics.training import _shift_batch

DATA_ROOT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
HAVE_MNIST = (DATA_ROOT / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").is_file()
needs_mnist = pytest.mark.skipif(not HAVE_MNIST, reason="../shared/data/MNIST/raw is not present")


@pytest.fixture(scope="module", autouse=True)
def _cache(tmp_path_factory):
    # A private cache: the tests neither read nor write the user's ~/.cache/ebgan.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EBGAN_CACHE", str(tmp_path_factory.mktemp("ebgan_cache")))
        yield


@pytest.fixture(scope="module")
def mnist_test():
    if not HAVE_MNIST:
        pytest.skip("../shared/data/MNIST/raw is not present")
    return load_mnist(DATA_ROOT, "test")


@pytest.fixture(scope="module")
def classifier():
    return load_classifier()


def _noise_mix(x: torch.Tensor, frac: float, seed: int = 0) -> np.ndarray:
    """Replace a random ``frac`` of the images by uniform uint8 noise."""
    g = torch.Generator().manual_seed(seed)
    x = x.clone()
    k = int(round(frac * x.shape[0]))
    idx = torch.randperm(x.shape[0], generator=g)[:k]
    x[idx] = torch.randint(0, 256, (k, 1, 28, 28), generator=g, dtype=torch.uint8)
    return x.numpy()


# ----------------------------------------------------------------------------------------------- real MNIST


@needs_mnist
def test_real_mnist_test_images_score_high(mnist_test, classifier):
    x, _ = mnist_test
    r = evaluate(x[:5000].numpy(), "mnist", data_root=DATA_ROOT, classifier=classifier)
    assert r["classifier_accuracy"] >= 0.99
    assert r["is"] >= 9.5
    assert 0 <= r["is_std"] < 0.3
    assert 0 <= r["fid"] < 1.0  # against the training set; the full test set gives about 0.13
    assert r["paper_score"] > 5.0
    assert r["n"] == 5000 and r["fid_split"] == "train"


@needs_mnist
def test_images_of_another_size_are_resized_to_the_classifiers_28(mnist_test, classifier):
    """A model trained on MNIST at 64 pixels is scored on its samples brought back to 28: real test images
    upsampled to 64 score as the originals resized back by the same function, and close to the originals."""
    from ebgan.data import resize_images
    from ebgan.evaluate import to_classifier_size

    x, _ = mnist_test
    x64 = resize_images(x[:2000], 64)
    back = resize_images(x64, 28)
    assert torch.equal(torch.from_numpy(to_classifier_size(x64.numpy())), back)
    a = evaluate(x64.numpy(), "mnist", data_root=DATA_ROOT, classifier=classifier)
    b = evaluate(back.numpy(), "mnist", data_root=DATA_ROOT, classifier=classifier)
    c = evaluate(x[:2000].numpy(), "mnist", data_root=DATA_ROOT, classifier=classifier)
    assert (a["is"], a["fid"]) == (b["is"], b["fid"])
    # The round trip 28 -> 64 -> 28 blurs the strokes a little (measured: IS 9.16 against 9.59 for these 2,000
    # originals), yet the classifier still reads them as the digits they are.
    assert a["is"] > 9.0 and c["is"] > a["is"]


@needs_mnist
def test_noise_lowers_is_and_raises_fid(mnist_test, classifier):
    x, _ = mnist_test
    results = [
        evaluate(_noise_mix(x[:2000], f), "mnist", data_root=DATA_ROOT, classifier=classifier) for f in (0, 0.5, 1)
    ]
    is_values = [r["is"] for r in results]
    fid_values = [r["fid"] for r in results]
    assert is_values[0] > is_values[1] > is_values[2]
    assert fid_values[0] < fid_values[1] < fid_values[2]
    assert is_values[2] < 2.0 and fid_values[2] > 100 * fid_values[0]


@needs_mnist
def test_real_statistics_computed_cached_and_equal_to_packaged(mnist_test, classifier):
    """Computing the test-split statistics from the MNIST files writes them to the cache under the classifier's
    hash, and they agree with the statistics shipped beside the weights."""
    import os

    from ebgan.metrics.reference import _packaged_stats, real_feature_stats

    mu, sigma = real_feature_stats(classifier, DATA_ROOT, "test", use_packaged=False)
    path = Path(os.environ["EBGAN_CACHE"]) / "fid_stats" / f"mnist-test-{classifier.sha256[:16]}.safetensors"
    assert path.is_file()
    packaged = _packaged_stats(classifier, "test")
    assert packaged is not None
    torch.testing.assert_close(mu, packaged[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(sigma, packaged[1], rtol=1e-6, atol=1e-6)
    mu2, _ = real_feature_stats(classifier, None, "test")  # now from the cache, no data needed
    assert torch.equal(mu, mu2)


@needs_mnist
def test_cached_statistics_need_no_data(mnist_test, classifier, tmp_path):
    """With the packaged (or cached) statistics FID needs no MNIST files: a data root that does not exist is
    never read, for either split."""
    x, _ = mnist_test
    for split in ("train", "test"):
        r = evaluate(x[:20].numpy(), "mnist", data_root=tmp_path / "nowhere", classifier=classifier, fid_split=split)
        assert math.isfinite(r["fid"])


@needs_mnist
def test_stacked_mnist_real_triplets_and_half_the_modes(mnist_test, classifier):
    """Real triplets scored through the classifier agree with their true labels: 3,000 triplets cover about
    1000 (1 - e^-3) = 950 modes with KL about 999 / 6000 = 0.17 from finite sampling alone. With channel 0
    restricted to 0-4 at most 500 modes are hit and the KL is log 2 plus the same kind of sampling term."""
    x, y = mnist_test
    for first, seed in ((None, 1), ((0, 1, 2, 3, 4), 2)):
        trip, true_modes = stacked_mnist_triplets(x, y, 3000, seed=seed, first_digits=first)
        truth = stacked_mnist_modes(true_modes)
        r = evaluate(trip.numpy(), "stacked-mnist", classifier=classifier)
        assert r["n"] == 3000
        # 0.5 % test error per digit: about 1.5 % of triplets misread, moving a few samples between modes
        assert abs(r["modes"] - truth["modes"]) <= 20
        assert abs(r["kl"] - truth["kl"]) < 0.03
        if first is None:
            assert r["modes"] >= 920 and r["kl"] < 0.25
        else:
            assert int(true_modes.max()) < 500 and truth["modes"] <= 500
            assert math.log(2) < r["kl"] < math.log(2) + 0.25


# ------------------------------------------------------------------------------------------- 2-D mixtures


@pytest.mark.parametrize("name,k", [("ring", 8), ("grid", 25)])
def test_exact_mixture_samples_through_evaluate(name, k):
    pts, _ = sample_mixture(name, 5000, torch.Generator().manual_seed(0))
    r = evaluate(pts.numpy(), name)
    assert r["n"] == 2500  # the protocol's sample count by default
    assert r["modes"] == k and r["hq_pct"] >= 95.0 and r["reverse_kl"] < 0.02


def test_collapsed_points_count_one_mode():
    pts = np.repeat(ring_centers()[:1].numpy(), 2500, axis=0) + np.float32(0.001)
    r = evaluate(pts, "ring")
    assert r["modes"] == 1 and r["hq_pct"] == 100.0
    assert abs(r["reverse_kl"] - math.log(8)) < 1e-9


# ---------------------------------------------------------------------------------------------------- CLI


def _last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_cli_ring_prints_json_last(tmp_path, capsys):
    f = tmp_path / "ring.npy"
    np.save(f, sample_mixture("ring", 2500, torch.Generator().manual_seed(1))[0].numpy())
    assert main(["eval", str(f), "--against", "ring"]) == 0
    out = capsys.readouterr().out
    assert "modes covered" in out and "reference: exact ring samples" in out
    res = _last_json(out)
    assert {"modes", "hq_pct", "reverse_kl"} <= set(res) and res["modes"] == 8


@needs_mnist
def test_cli_mnist_keys_and_reference_lines(tmp_path, capsys, mnist_test):
    f = tmp_path / "mnist.npy"
    np.save(f, mnist_test[0][:1000].numpy())
    assert main(["eval", str(f), "--against", "mnist", "--data-root", str(DATA_ROOT)]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "real test set" in out
    res = _last_json(out)
    assert {"is", "is_std", "paper_score", "fid", "classifier_accuracy"} <= set(res)
    assert res["classifier_accuracy"] >= 0.99


@needs_mnist
def test_class_shares_show_which_digits_the_samples_are(tmp_path, capsys, mnist_test):
    # 60 images of the digit 1 and 40 of the digit 7 (all classified correctly by the packaged classifier).
    x, y = mnist_test
    idx = torch.cat([(y == 1).nonzero()[:60, 0], (y == 7).nonzero()[:40, 0]])
    f = tmp_path / "ones-and-sevens.npy"
    np.save(f, x[idx].numpy())
    assert main(["eval", str(f), "--against", "mnist", "--data-root", str(DATA_ROOT)]) == 0
    out = capsys.readouterr().out
    expected = [0.0, 60.0, 0.0, 0.0, 0.0, 0.0, 0.0, 40.0, 0.0, 0.0]
    assert _last_json(out)["class_shares"] == expected
    assert "  digits (% of samples) 0:0.0  1:60.0  2:0.0  3:0.0  4:0.0  5:0.0  6:0.0  7:40.0  8:0.0  9:0.0" in out


def test_cli_lists_metrics(capsys):
    assert main(["eval", "--list-metrics"]) == 0
    out = capsys.readouterr().out
    assert "fid" in out and "paper_score" in out and "auroc" in out


def _bad(tmp_path, name, array=None, raw=None):
    f = tmp_path / name
    if raw is not None:
        f.write_bytes(raw)
    elif array is not None:
        np.save(f, array, allow_pickle=True)
    return str(f)


@pytest.mark.parametrize(
    "make,against,message",
    [
        (lambda p: _bad(p, "f.npy", np.zeros((4, 1, 28, 28), np.float32)), "mnist", "must be uint8"),
        (lambda p: _bad(p, "c.npy", np.zeros((4, 3, 28, 28), np.uint8)), "mnist", "use --against stacked-mnist"),
        (lambda p: _bad(p, "s.npy", np.zeros((4, 1, 32, 30), np.uint8)), "mnist", "[N, 1, 28, 28]"),
        (lambda p: _bad(p, "p.npy", np.zeros((4, 3), np.float32)), "ring", "points [N, 2]"),
        (lambda p: _bad(p, "i.npy", np.zeros((4, 2), np.int64)), "grid", "got dtype int64"),
        (lambda p: _bad(p, "n.npy", np.full((4, 2), np.nan, np.float32)), "ring", "NaN"),
        (lambda p: _bad(p, "z.npy", np.zeros((0, 2), np.float32)), "ring", "no samples"),
        (lambda p: _bad(p, "e.npy", raw=b""), "ring", "is empty"),
        (lambda p: _bad(p, "g.npy", raw=b"not a numpy file at all"), "ring", "is not a .npy array file"),
        (lambda p: _bad(p, "h.npy", raw=b"\x93NUMPY\x01\x00garbage"), "ring", "cannot read"),
        (lambda p: _bad(p, "o.npy", np.array([{"a": 1}], dtype=object)), "ring", "holds Python objects"),
        (lambda p: _bad(p, "t.txt", raw=b"1 2"), "ring", "must be .npy"),
        (lambda p: str(p / "missing.npy"), "ring", "no such file"),
        (lambda p: _bad(p, "u.npy", np.zeros((4, 2), np.float32)), "cifar", "valid choices: mnist, ring"),
        (lambda p: _bad(p, "a.npy", np.zeros((4, 2), np.float32)), None, "--against is required"),
    ],
)
def test_cli_bad_input_is_one_error_line(tmp_path, capsys, make, against, message):
    argv = ["eval", make(tmp_path)] + (["--against", against] if against else [])
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ebgan: error: ") and message in lines[0], captured.err
    assert captured.out == ""


def test_cli_n_out_of_range(tmp_path, capsys):
    f = _bad(tmp_path, "r.npy", np.zeros((4, 2), np.float32))
    assert main(["eval", f, "--against", "ring", "-n", "5"]) == 2
    assert "-n must be between 1 and the number of samples (4)" in capsys.readouterr().err


def test_evaluate_rejects_unknown_dataset_and_non_arrays():
    with pytest.raises(EbganError, match="valid choices"):
        evaluate(np.zeros((4, 2), np.float32), "moons")
    with pytest.raises(EbganError, match="numpy array"):
        evaluate([[0.0, 0.0]], "ring")


# --------------------------------------------------------------------------------------- classifier parts


def test_shift_augmentation_moves_whole_images():
    """Shifts of at most 2 px move a digit inside its 4-px empty border: pixel sums are unchanged, and the
    same generator seed gives the same shifts."""
    x = torch.zeros(16, 1, 28, 28, dtype=torch.uint8)
    x[:, :, 4:24, 4:24] = torch.randint(
        0, 256, (16, 1, 20, 20), generator=torch.Generator().manual_seed(0), dtype=torch.uint8
    )
    a = _shift_batch(x, 2, torch.Generator().manual_seed(5))
    b = _shift_batch(x, 2, torch.Generator().manual_seed(5))
    assert a.shape == x.shape and a.dtype == torch.uint8
    assert torch.equal(a, b)
    assert torch.equal(a.sum((1, 2, 3), dtype=torch.int64), x.sum((1, 2, 3), dtype=torch.int64))
    assert not torch.equal(a, x)
