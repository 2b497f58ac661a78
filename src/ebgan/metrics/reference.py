"""Classifier outputs in batches, cached real-data statistics, Stacked MNIST triplets and reference scores.

The FID statistics of the real MNIST splits cost a pass of the classifier over 60,000 images. They are looked
up, in order: in the cache ``$EBGAN_CACHE/fid_stats/`` (default ``~/.cache/ebgan``); beside the classifier's
weights (``*.fid_stats.safetensors``, written by ``train-classifier`` and shipped with the packaged
classifier); else computed from the MNIST files and written to the cache. Both are keyed by the classifier's
SHA-256, so another classifier can never read stale statistics. Cache files are written atomically
(temporary file, then ``os.replace``) so that two concurrent evaluations never see half a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor

from .._fileio import atomic_write_bytes
from ..errors import EbganError
from .classifier import LoadedClassifier, stats_path
from .scores import (
    GaussianStats,
    frechet_distance,
    inception_score,
    paper_inception_score,
    stacked_mnist_modes,
)

STACKED_MNIST_SAMPLES = 26_000  # VEEGAN / PacGAN protocol


def cache_dir() -> Path:
    """``$EBGAN_CACHE`` if set, else ``~/.cache/ebgan``."""
    env = os.environ.get("EBGAN_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "ebgan"


def _progress(iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="batch", leave=False)


def image_outputs(
    clf: LoadedClassifier, images: Tensor, batch_size: int = 500, progress: bool = False, desc: str = "classify"
) -> tuple[Tensor, Tensor, Tensor]:
    """Class probabilities and FID statistics of ``uint8 [N, 1, 28, 28]`` images, in batches.

    Memory is one batch of activations plus ``[N, 10]`` probabilities and a ``[128, 128]`` covariance: the
    features are folded into :class:`GaussianStats` batch by batch and never stored.

    Returns:
        ``(probs float64 [N, 10], mu float64 [128], sigma float64 [128, 128])``.
    """
    n = images.shape[0]
    probs = torch.empty(n, 10, dtype=torch.float64)
    stats = GaussianStats(getattr(clf.model, "feature_dim", 128))
    starts = range(0, n, batch_size)
    with torch.inference_mode():
        for i in _progress(starts, len(starts), desc, progress):
            f = clf.model.features(images[i : i + batch_size])  # [B, 128]
            probs[i : i + f.shape[0]] = torch.softmax(clf.model.head(f).double(), dim=1)
            stats.update(f)
    mu, sigma = stats.result()
    return probs, mu, sigma


def classify_channels(clf: LoadedClassifier, images: Tensor, batch_size: int = 500, progress: bool = False) -> Tensor:
    """Arg-max digit of every channel of ``uint8 [N, C, 28, 28]`` images: ``int64 [N, C]``."""
    n, c = images.shape[:2]
    out = torch.empty(n, c, dtype=torch.int64)
    per = max(1, batch_size // c)  # batch_size single-channel images per forward pass
    starts = range(0, n, per)
    with torch.inference_mode():
        for i in _progress(starts, len(starts), "classify channels", progress):
            chunk = images[i : i + per]
            flat = chunk.reshape(-1, 1, *chunk.shape[2:])  # [B*C, 1, 28, 28], channel-major within a sample
            out[i : i + chunk.shape[0]] = clf.model(flat).argmax(1).view(chunk.shape[0], c)
    return out


def _packaged_stats(clf: LoadedClassifier, split: str) -> tuple[Tensor, Tensor] | None:
    from safetensors import safe_open

    path = stats_path(clf.path)
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            if (f.metadata() or {}).get("classifier_sha256") != clf.sha256:
                return None  # statistics of other weights: never used
            return f.get_tensor(f"{split}_mu"), f.get_tensor(f"{split}_sigma")
    except Exception:  # unreadable or incomplete: fall back to computing them
        return None


def real_feature_stats(
    clf: LoadedClassifier,
    data_root: str | os.PathLike | None,
    split: str = "train",
    batch_size: int = 500,
    progress: bool = False,
    use_packaged: bool = True,
) -> tuple[Tensor, Tensor]:
    """FID statistics ``(mu float64 [128], sigma float64 [128, 128])`` of a real MNIST split.

    From the cache file ``<cache_dir>/fid_stats/mnist-<split>-<sha256[:16]>.safetensors``, else (with
    ``use_packaged``) from the statistics shipped beside the classifier, else computed from the MNIST files
    under ``data_root`` and cached. ``data_root`` is only read in the last case.
    """
    from safetensors.torch import load_file, save

    if split not in ("train", "test"):
        raise EbganError(f"the FID reference split must be 'train' or 'test', got {split!r}")
    path = cache_dir() / "fid_stats" / f"mnist-{split}-{clf.sha256[:16]}.safetensors"
    if path.is_file():
        try:
            st = load_file(str(path))
            return st["mu"], st["sigma"]
        except Exception:  # a corrupt cache entry is recomputed, never trusted
            pass
    if use_packaged and (packaged := _packaged_stats(clf, split)) is not None:
        return packaged
    if data_root is None:
        raise EbganError(f"real MNIST {split} statistics are not cached yet; pass --data-root DIR (holding MNIST/raw/)")
    from ..data import load_mnist

    images, _ = load_mnist(data_root, split)
    _, mu, sigma = image_outputs(clf, images, batch_size, progress, desc=f"real {split} features")
    atomic_write_bytes(path, save({"mu": mu, "sigma": sigma}, metadata={"classifier_sha256": clf.sha256}))
    return mu, sigma


def stacked_mnist_triplets(
    images: Tensor, labels: Tensor, n: int, seed: int = 0, first_digits: tuple[int, ...] | None = None
) -> tuple[Tensor, Tensor]:
    """``n`` Stacked MNIST samples: three MNIST digits drawn independently as the three channels.

    Used for reference values only (the training data set is built in :mod:`ebgan.data`); channel indices
    are drawn independently and uniformly from the pool. The mode of a sample is
    ``100 a + 10 b + c`` for the digits ``(a, b, c)`` in channels 0, 1, 2. ``first_digits`` restricts channel 0
    to those digits (``(0, 1, 2, 3, 4)`` hits half the modes: KL to uniform ``log 2``).

    Returns:
        ``(uint8 [n, 3, 28, 28], int64 [n] modes)``; draws from a ``torch.Generator`` seeded with ``seed``.
    """
    gen = torch.Generator().manual_seed(seed)
    pools = [torch.arange(images.shape[0])] * 3
    if first_digits is not None:
        pools[0] = torch.nonzero(torch.isin(labels, torch.tensor(first_digits)), as_tuple=True)[0]
    idx = [pool[torch.randint(len(pool), (n,), generator=gen)] for pool in pools]
    x = torch.cat([images[i] for i in idx], dim=1)  # [n, 3, 28, 28]
    modes = labels[idx[0]] * 100 + labels[idx[1]] * 10 + labels[idx[2]]
    return x, modes


def real_data_reference(
    clf: LoadedClassifier, data_root: str | os.PathLike, batch_size: int = 500, progress: bool = False
) -> tuple[dict, dict]:
    """The real-data scores of a classifier, stored in its sidecar and printed beside every result, and the
    real FID statistics ``{"train": (mu, sigma), "test": (mu, sigma)}`` they were computed from.

    Everything is computed from the MNIST files (no cache, no packaged statistics):

    * ``is``, ``is_std``, ``paper_score``: the 10,000 MNIST test images;
    * ``fid_test_vs_train``: FID of the test set against the training set;
    * ``stacked_modes``, ``stacked_kl``: 26,000 real Stacked MNIST triplets from the training set (seed 0),
      each channel labelled by the classifier.
    """
    from ..data import load_mnist

    x_test, _ = load_mnist(data_root, "test")
    probs, mu_test, sigma_test = image_outputs(clf, x_test, batch_size, progress, desc="real test")
    is_mean, is_std = inception_score(probs)
    x_train, y_train = load_mnist(data_root, "train")
    _, mu_train, sigma_train = image_outputs(clf, x_train, batch_size, progress, desc="real train")
    triplets, _ = stacked_mnist_triplets(x_train, y_train, STACKED_MNIST_SAMPLES, seed=0)
    digits = classify_channels(clf, triplets, batch_size, progress)
    stacked = stacked_mnist_modes(digits)
    ref = {
        "is": is_mean,
        "is_std": is_std,
        "paper_score": paper_inception_score(probs),
        "fid_test_vs_train": frechet_distance(mu_test, sigma_test, mu_train, sigma_train),
        "stacked_modes": stacked["modes"],
        "stacked_kl": stacked["kl"],
        "stacked_samples": STACKED_MNIST_SAMPLES,
    }
    return ref, {"train": (mu_train, sigma_train), "test": (mu_test, sigma_test)}
