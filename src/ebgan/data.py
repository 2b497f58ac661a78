"""Data sets held in memory as one tensor.

Images are stored as ``uint8 [N, C, H, W]`` (a quarter of the memory of float32) and mapped to ``[-1, 1]``
per batch by :meth:`Dataset.get`; 2-D points are ``float32 [N, 2]``. Indexing one tensor is far faster on a
CPU than a ``DataLoader`` of per-item transforms.
"""

from __future__ import annotations

import gzip
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .errors import EbganError

# Decompressed MD5 sums of the canonical MNIST files (see ../shared/data/README.md).
MNIST_FILES = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


@dataclass
class Dataset:
    """An in-memory data set.

    Attributes:
        name: registry name or folder path.
        kind: ``"image"`` or ``"points"``.
        data: ``uint8 [N, C, H, W]`` for images, ``float32 [N, 2]`` for points.
        labels: ``int64 [N]`` where known, else ``None``.
    """

    name: str
    kind: str
    data: Tensor
    labels: Tensor | None = None

    def __len__(self) -> int:
        return self.data.shape[0]

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample: ``(C, H, W)`` or ``(2,)``."""
        return tuple(self.data.shape[1:])

    def get(self, idx: Tensor) -> Tensor:
        """The float32 batch at ``idx``; images mapped from ``[0, 255]`` to ``[-1, 1]``."""
        x = self.data[idx]
        if self.kind == "image":
            return x.float().div_(127.5).sub_(1.0)
        return x


def to_uint8(x: Tensor) -> Tensor:
    """Map float images in ``[-1, 1]`` back to ``uint8 [0, 255]`` (rounded, clamped)."""
    return ((x.detach().float() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)


def _read_idx(path: Path, expect_dims: int) -> np.ndarray:
    """Read a gzip-compressed (or raw) IDX file, checking its header against its size."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise EbganError(f"cannot read {path}: {e} (the file is truncated or corrupt; delete it and download again)")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise EbganError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = raw[3]
    if ndim != expect_dims:
        raise EbganError(f"{path} has {ndim} dimensions, expected {expect_dims}")
    header = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + math.prod(dims)
    if len(raw) != expected:
        raise EbganError(f"{path} is truncated or corrupt: {len(raw)} bytes, the header promises {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find_mnist_file(root: Path, stem: str) -> Path:
    for folder in (root / "MNIST" / "raw", root / "raw", root):
        for name in (stem + ".gz", stem):
            if (folder / name).is_file():
                return folder / name
    raise EbganError(
        f"MNIST file {stem}(.gz) not found under {root / 'MNIST' / 'raw'}; "
        f"pass --data-root DIR (the folder holding MNIST/raw/) or download it with `ebgan download mnist --data-root DIR`"
    )


def load_mnist(root: str | os.PathLike, split: str = "train") -> tuple[Tensor, Tensor]:
    """MNIST from the IDX files under ``root/MNIST/raw``: ``(uint8 [N, 1, 28, 28], int64 [N])``."""
    if split not in ("train", "test"):
        raise EbganError(f"MNIST split must be 'train' or 'test', got {split!r}")
    root = Path(root)
    prefix = "train" if split == "train" else "t10k"
    images = _read_idx(_find_mnist_file(root, f"{prefix}-images-idx3-ubyte"), 3)
    labels = _read_idx(_find_mnist_file(root, f"{prefix}-labels-idx1-ubyte"), 1)
    if images.shape[0] != labels.shape[0]:
        raise EbganError(f"MNIST {split}: {images.shape[0]} images but {labels.shape[0]} labels")
    x = torch.from_numpy(images.copy()).unsqueeze(1)  # [N, 1, 28, 28]
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


# 2-D mixtures, PacGAN protocol (Lin et al. 2018): ring = 8 Gaussians on the unit circle, sigma 0.01;
# grid = 25 Gaussians at {-4, -2, 0, 2, 4}^2, sigma 0.05.
def ring_centers() -> Tensor:
    """``[8, 2]`` centres on the unit circle."""
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return torch.stack([angles.cos(), angles.sin()], dim=1).float()


def grid_centers() -> Tensor:
    """``[25, 2]`` centres at ``{-4, -2, 0, 2, 4}^2``."""
    v = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    return torch.cartesian_prod(v, v)


MIXTURES = {"ring": (ring_centers, 0.01), "grid": (grid_centers, 0.05)}


def sample_mixture(name: str, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """``n`` points from an equal-weight Gaussian mixture: ``(float32 [n, 2], int64 [n] component)``."""
    centers_fn, sigma = MIXTURES[name]
    centers = centers_fn()
    comp = torch.randint(len(centers), (n,), generator=generator)
    noise = torch.randn(n, 2, generator=generator) * sigma
    return centers[comp] + noise, comp
