"""Data sets held in memory as one tensor.

Images are stored as ``uint8 [N, C, H, W]`` (a quarter of the memory of float32) and mapped to ``[-1, 1]``
per batch by :meth:`Dataset.get`; 2-D points are ``float32 [N, 2]``. Indexing one tensor is far faster on a
CPU than a ``DataLoader`` of per-item transforms.

Sources: MNIST IDX files (:func:`load_mnist`, fetched and md5-checked by :func:`download_mnist`), Stacked MNIST
(:func:`make_stacked_mnist`), 2-D Gaussian mixtures (:func:`sample_mixture`) and folders of image files
(:func:`load_image_folder`). :func:`load_dataset` picks one by name (:data:`DATASETS`) or folder path;
:func:`resize_images` and :func:`set_channels` adapt images to a network's size and channel count.

The package is split by source: :mod:`.mnist` (IDX files, verified downloads, Stacked MNIST), :mod:`.mixtures`
(2-D Gaussian mixtures), :mod:`.folder` (image folders and conversions) and :mod:`.arrays` (``.npy`` files);
:mod:`.base` holds :class:`Dataset` and :func:`to_uint8`. This module keeps the registry, the anomaly-detection
subsets and :class:`TrainingData`, and re-exports every name, so ``from ebgan.data import X`` is unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..errors import EbganError
from .arrays import _read_npy_header as _read_npy_header
from .arrays import check_like, read_npy
from .base import Dataset, to_uint8
from .folder import _BICUBIC as _BICUBIC
from .folder import _CHUNK_ELEMENTS as _CHUNK_ELEMENTS
from .folder import _IMAGE_ERRORS as _IMAGE_ERRORS
from .folder import (
    IMAGE_EXTENSIONS,
    MAX_IMAGE_PIXELS,
    convert_images,
    list_images,
    load_image_folder,
    resize_images,
    set_channels,
)
from .folder import _check_channels as _check_channels
from .folder import _check_image_size as _check_image_size
from .folder import _check_uint8_images as _check_uint8_images
from .folder import _chunk_size as _chunk_size
from .folder import _load_image as _load_image
from .mixtures import MIXTURES, grid_centers, ring_centers, sample_mixture
from .mnist import (
    MAX_IDX_BYTES,
    MNIST_FILES,
    MNIST_MIRRORS,
    download_mnist,
    fetch_verified,
    load_mnist,
    make_stacked_mnist,
)
from .mnist import _download_mnist_files as _download_mnist_files
from .mnist import _FetchError as _FetchError
from .mnist import _find_mnist_file as _find_mnist_file
from .mnist import _gz_is_valid as _gz_is_valid
from .mnist import _gz_md5 as _gz_md5
from .mnist import _gz_md5_problem as _gz_md5_problem
from .mnist import _mnist_present as _mnist_present
from .mnist import _read_idx as _read_idx

# Re-exported names keep ``from ebgan.data import X`` working for every name the single module data.py had.
# A constant read by a function (MNIST_FILES, MNIST_MIRRORS, MAX_IDX_BYTES, MAX_IMAGE_PIXELS) is read from
# the submodule that defines it: patch it there (``ebgan.data.mnist.MNIST_MIRRORS``), not here.
__all__ = [
    "ANOMALY_SEED_OFFSET",
    "DATASETS",
    "FOLDER_CHANNELS",
    "FOLDER_IMAGE_SIZE",
    "HOLDOUT_SEED_OFFSET",
    "IMAGE_EXTENSIONS",
    "MAX_IDX_BYTES",
    "MAX_IMAGE_PIXELS",
    "MIXTURES",
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "Dataset",
    "TrainingData",
    "check_like",
    "convert_images",
    "default_data_root",
    "download_mnist",
    "draw_known_anomalies",
    "expected_sample_shape",
    "fetch_verified",
    "grid_centers",
    "list_images",
    "load_dataset",
    "load_image_folder",
    "load_known_anomalies",
    "load_mnist",
    "make_stacked_mnist",
    "n_known_anomalies",
    "read_npy",
    "resize_images",
    "resolve_data_root",
    "ring_centers",
    "sample_mixture",
    "select_classes",
    "set_channels",
    "split_holdout",
    "to_uint8",
    "training_data",
]


def default_data_root() -> str:
    """Where data sets live unless a command is told otherwise: ``$EBGAN_DATA_ROOT`` if set, else ``./data``."""
    return os.environ.get("EBGAN_DATA_ROOT") or "data"


# ---------------------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------------------

DATASETS = {
    "ring": "2-D points: 8 Gaussians on the unit circle, sigma 0.01 (PacGAN protocol); labels = component",
    "grid": "2-D points: 25 Gaussians at {-4,-2,0,2,4}^2, sigma 0.05 (PacGAN protocol); labels = component",
    "mnist": "MNIST train split: 60000 x 1 x 28 x 28 digits with labels",
    "mnist-test": "MNIST test split: 10000 x 1 x 28 x 28 digits with labels",
    "stacked-mnist": "Stacked MNIST: 60000 x 3 x 28 x 28, three random train digits as channels, 1000 modes",
}

# Defaults for an image folder when load_dataset is not given image_size / channels.
FOLDER_IMAGE_SIZE = 64
FOLDER_CHANNELS = 3


def expected_sample_shape(data: str, image_size: int | None = None, channels: int | None = None) -> tuple[int, ...]:
    """The shape of one sample of ``data`` after conversion, without loading it (for ``--dry-run``)."""
    if data in ("ring", "grid"):
        return (2,)
    c, s = {"mnist": (1, 28), "mnist-test": (1, 28), "stacked-mnist": (3, 28)}.get(
        data, (FOLDER_CHANNELS, FOLDER_IMAGE_SIZE)
    )
    s = image_size or s
    return (channels or c, s, s)


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path:
    """``data_root`` if given, else ``$EBGAN_DATA_ROOT`` if set and non-empty, else ``./data``."""
    return Path(data_root if data_root is not None else default_data_root())


def load_dataset(
    name: str,
    data_root: str | os.PathLike | None = None,
    *,
    image_size: int | None = None,
    channels: int | None = None,
    n_points: int = 100_000,
    seed: int = 0,
    download: bool = False,
) -> Dataset:
    """A registered data set (see :data:`DATASETS`) or, for any other ``name``, a folder of images.

    - ``"ring"``, ``"grid"``: ``n_points`` samples of :func:`sample_mixture` drawn with
      ``torch.Generator().manual_seed(seed)``; kind ``"points"``, ``float32 [n_points, 2]``. ``image_size``
      and ``channels`` must be ``None``.
    - ``"mnist"`` / ``"mnist-test"``: the train / test split from ``data_root`` (see :func:`load_mnist`).
    - ``"stacked-mnist"``: :func:`make_stacked_mnist` of 60000 samples from the train split, indices drawn with
      ``torch.Generator().manual_seed(seed)``.
    - otherwise ``name`` is a folder for :func:`load_image_folder` (``image_size`` default
      :data:`FOLDER_IMAGE_SIZE`, ``channels`` default :data:`FOLDER_CHANNELS`, centre crop, no labels).
      Registered names take precedence over a folder of the same name (pass ``./ring`` for the folder).

    For image data, ``image_size`` / ``channels`` convert via :func:`convert_images`. ``data_root`` is resolved
    by :func:`resolve_data_root`; with ``download=True`` missing MNIST files are fetched by
    :func:`download_mnist` first.
    """
    if image_size is not None:
        _check_image_size(image_size)
    if channels is not None:
        _check_channels(channels)
    if name in ("ring", "grid"):
        if image_size is not None or channels is not None:
            raise EbganError(
                f"{name!r} is a 2-D point data set; image_size and channels apply only to images, leave them unset"
            )
        if isinstance(n_points, bool) or not isinstance(n_points, int) or n_points < 1:
            raise EbganError(f"n_points must be a positive integer, got {n_points!r}")
        x, y = sample_mixture(name, n_points, torch.Generator().manual_seed(seed))
        return Dataset(name, "points", x, y)
    if name in ("mnist", "mnist-test", "stacked-mnist"):
        root = resolve_data_root(data_root)
        if download and not _mnist_present(root):
            download_mnist(root)
        x, y = load_mnist(root, "test" if name == "mnist-test" else "train")
        if name == "stacked-mnist":
            x, y = make_stacked_mnist(x, y, 60_000, torch.Generator().manual_seed(seed))
        return Dataset(name, "image", convert_images(x, image_size, channels), y)
    folder = Path(name)
    if folder.is_dir():
        x = load_image_folder(
            folder,
            FOLDER_IMAGE_SIZE if image_size is None else image_size,
            FOLDER_CHANNELS if channels is None else channels,
        )
        return Dataset(str(folder), "image", x, None)
    valid = ", ".join(DATASETS)
    if folder.exists():
        raise EbganError(f"data set {name!r} is a file, not a folder of images; pass a folder or one of: {valid}")
    raise EbganError(f"unknown data set {name!r}: not an existing folder nor one of: {valid}")


# ---------------------------------------------------------------------------------------------------------
# Subsets for anomaly detection: the normal classes, a held-out share, known anomalies
# ---------------------------------------------------------------------------------------------------------

# Seed offsets keeping the held-out split and the draw of known anomalies apart from the batch order, which is
# seeded with the run's seed itself.
HOLDOUT_SEED_OFFSET = 400_009
ANOMALY_SEED_OFFSET = 500_009


def select_classes(ds: Dataset, labels: list[int]) -> Dataset:
    """The samples of ``ds`` whose label is in ``labels`` (order kept); an error names a label that ``ds`` lacks."""
    if ds.labels is None:
        raise EbganError(f"classes needs a labelled data set; {ds.name!r} has no labels")
    present = set(torch.unique(ds.labels).tolist())
    missing = [k for k in labels if k not in present]
    if missing:
        raise EbganError(
            f"classes names label(s) {missing} that {ds.name!r} does not have; its labels are "
            f"{min(present)}..{max(present)}"
        )
    keep = torch.isin(ds.labels, torch.tensor(labels, dtype=ds.labels.dtype))
    return Dataset(ds.name, ds.kind, ds.data[keep], ds.labels[keep])


def split_holdout(ds: Dataset, share: float, seed: int) -> tuple[Dataset, Tensor | None]:
    """``(kept, held_out)``: a seeded random ``share`` of ``ds`` taken out (``round(share * N)`` samples, at
    least one when ``share > 0``); the rest keeps its order. ``share = 0`` returns ``(ds, None)``."""
    if share <= 0:
        return ds, None
    n = len(ds)
    k = max(1, round(share * n))
    if k >= n:
        raise EbganError(f"holdout={share} leaves no training data out of {n} samples")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + HOLDOUT_SEED_OFFSET))
    out = torch.zeros(n, dtype=torch.bool)
    out[perm[:k]] = True
    labels = ds.labels[~out] if ds.labels is not None else None
    return Dataset(ds.name, ds.kind, ds.data[~out], labels), ds.data[out]


def n_known_anomalies(share: float, n_normal: int) -> int:
    """Deep SAD's count of labelled anomalies: ``gamma = m / (n + m)``, so ``m = round(gamma n / (1 - gamma))``."""
    return max(1, round(share * n_normal / (1.0 - share)))


def draw_known_anomalies(ds: Dataset, labels: list[int], m: int, seed: int) -> Tensor:
    """``m`` samples of ``ds`` with a label in ``labels``, drawn without replacement by ``seed``."""
    pool = select_classes(ds, labels).data
    if m > len(pool):
        raise EbganError(f"{m} known anomalies asked for, but classes {labels} have {len(pool)} samples")
    perm = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed + ANOMALY_SEED_OFFSET))
    return pool[perm[:m].sort().values]


def load_known_anomalies(path: str | os.PathLike, like: Dataset) -> Tensor:
    """Known anomalies from an ``.npy`` file or an image folder, checked against (or, for a folder, converted
    to) the shape and type of ``like``'s samples."""
    p = Path(path)
    shape = like.sample_shape
    if p.is_dir():
        if like.kind != "image":
            raise EbganError(f"known_anomalies {p} is an image folder but the data are {like.kind}")
        return load_image_folder(p, shape[1], shape[0])
    x = read_npy(p, "known_anomalies")
    return check_like(torch.from_numpy(x), like, f"known_anomalies {p}")


@dataclass
class TrainingData:
    """What a run trains on: ``train`` (the kept classes minus the held-out share), ``holdout`` (samples never
    trained on, for calibrating an anomaly threshold) and ``anomalies`` (known anomalies to unlearn)."""

    train: Dataset
    holdout: Tensor | None = None
    anomalies: Tensor | None = None

    def describe(self) -> dict:
        return {
            "n_train": len(self.train),
            "n_holdout": 0 if self.holdout is None else len(self.holdout),
            "n_anomalies": 0 if self.anomalies is None else len(self.anomalies),
        }


def training_data(cfg, ds: Dataset, anomalies: Tensor | None = None) -> TrainingData:
    """Apply ``cfg.classes``, ``cfg.holdout`` and ``cfg.known_anomalies`` to the loaded data set ``ds``.

    Known anomalies named as ``classes:K`` are drawn from ``ds`` (before the normal classes are kept) in
    Deep SAD's proportion (:func:`n_known_anomalies` of the normal training samples, ``cfg.anomaly_share``);
    a path is read by :func:`load_known_anomalies`. ``anomalies`` given by the caller (the Python API) take
    the place of ``cfg.known_anomalies``.
    """
    from ..config import parse_classes

    full = ds
    if cfg.classes is not None:
        ds = select_classes(ds, parse_classes(cfg.classes))
    train, holdout = split_holdout(ds, cfg.holdout, cfg.seed)
    if anomalies is not None:
        anomalies = check_like(anomalies, ds, "known anomalies")
    elif cfg.known_anomalies is not None:
        spec = cfg.known_anomalies
        if spec.startswith("classes:"):
            labels = parse_classes(spec[len("classes:") :], "known_anomalies=classes:")
            anomalies = draw_known_anomalies(full, labels, n_known_anomalies(cfg.anomaly_share, len(train)), cfg.seed)
        else:
            anomalies = load_known_anomalies(spec, ds)
    return TrainingData(train, holdout, anomalies)
