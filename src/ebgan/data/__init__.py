"""Data sets held in memory as one tensor.

Images are stored as ``uint8 [N, C, H, W]`` (a quarter of the memory of float32) and mapped to ``[-1, 1]``
per batch by :meth:`Dataset.get`; 2-D points are ``float32 [N, 2]``. Indexing one tensor is far faster on a
CPU than a ``DataLoader`` of per-item transforms.

Sources: MNIST IDX files (:func:`load_mnist`, fetched and md5-checked by :func:`download_mnist`), Stacked MNIST
(:func:`make_stacked_mnist`), 2-D Gaussian mixtures (:func:`sample_mixture`) and folders of image files
(:func:`load_image_folder`). :func:`load_dataset` picks one by name (:data:`DATASETS`) or folder path;
:func:`resize_images` and :func:`set_channels` adapt images to a network's size and channel count.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import math
import os
import struct
import sys
import urllib.request
import zlib
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor
from tqdm import tqdm

from .._fileio import atomic_write
from ..errors import EbganError

# Decompressed MD5 sums of the canonical MNIST files (the files LeCun et al. publish).
MNIST_FILES = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}

# Base URLs tried in order by download_mnist; each must serve ``<stem>.gz`` for every stem in MNIST_FILES.
# yann.lecun.com often refuses or rate-limits downloads, hence the S3 copy first.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


def default_data_root() -> str:
    """Where data sets live unless a command is told otherwise: ``$EBGAN_DATA_ROOT`` if set, else ``./data``."""
    return os.environ.get("EBGAN_DATA_ROOT") or "data"


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


# The largest IDX file the reader accepts (decompressed): MNIST's training images are 47 MB. A header promising
# more is refused before anything is read, so that a corrupt or hostile file (a gzip "bomb" that inflates to
# many gigabytes) costs at most this much memory.
MAX_IDX_BYTES = 1 << 30


def _read_idx(path: Path, expect_dims: int) -> np.ndarray:
    """Read a gzip-compressed (or raw) IDX file, checking its header against its size.

    The header is read first; the body is then read up to the size the header promises (at most
    :data:`MAX_IDX_BYTES`) and one byte more, so that memory never exceeds the promise whatever the file holds.
    """

    def bad(what: str) -> EbganError:
        return EbganError(f"{path} is truncated or corrupt: {what} (delete it and download it again)")

    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] != 0x08:
                raise EbganError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
            ndim = head[3]
            if ndim != expect_dims:
                raise EbganError(f"{path} has {ndim} dimensions, expected {expect_dims}")
            dims_raw = f.read(4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise bad(f"{len(head) + len(dims_raw)} bytes, shorter than its header")
            dims = [int.from_bytes(dims_raw[4 * i : 4 * i + 4], "big") for i in range(ndim)]
            size = math.prod(dims)
            header = 4 + 4 * ndim
            if math.prod(d for d in dims if d) > MAX_IDX_BYTES:  # a zero dimension cannot excuse a huge other one
                raise EbganError(
                    f"{path}: its header promises {header + size:,} bytes ({' x '.join(map(str, dims))}), "
                    f"more than the reader's limit of {MAX_IDX_BYTES:,}; the file is corrupt or not "
                    f"an image set"
                )
            body = f.read(size + 1)
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise EbganError(
            f"cannot read {path}: {e} (the file is truncated or corrupt; delete it and download again)"
        ) from None
    if len(body) != size:
        got = f"{header + len(body)} bytes" if len(body) < size else "more bytes"
        raise bad(f"{got}, the header promises {header + size}")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def _find_mnist_file(root: Path, stem: str) -> Path:
    for folder in (root / "MNIST" / "raw", root / "raw", root):
        for name in (stem + ".gz", stem):
            if (folder / name).is_file():
                return folder / name
    raise EbganError(
        f"MNIST file {stem}(.gz) not found under {root / 'MNIST' / 'raw'}; "
        "pass --data-root DIR (the folder holding MNIST/raw/) or download it with "
        "`ebgan download mnist --data-root DIR`"
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


def _gz_md5(path: Path) -> str:
    """MD5 hex digest of the *decompressed* content of a gzip file.

    Raises ``OSError`` / ``EOFError`` / ``zlib.error`` if the file is not valid gzip or is truncated.
    """
    h = hashlib.md5()
    with gzip.open(path, "rb") as f:
        # Streamed in 1 MiB chunks so the 47 MB training images never sit in memory twice.
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _gz_md5_problem(md5: str):
    """A :func:`fetch_verified` check: the file is gzip and its decompressed md5 is ``md5``."""

    def check(path: Path) -> str | None:
        try:
            got = _gz_md5(path)
        except (OSError, EOFError, zlib.error) as e:
            return f"not a valid gzip file ({e})"
        return None if got == md5 else f"md5 of the decompressed file is {got}, expected {md5}"

    return check


def _gz_is_valid(path: Path, md5: str) -> bool:
    return _gz_md5_problem(md5)(path) is None


class _FetchError(Exception):
    """One mirror failed for one file; download_mnist collects these and moves on to the next mirror."""


def fetch_verified(url: str, dest: Path, check, progress: bool, timeout: float) -> None:
    """Download ``url`` to a temp file beside ``dest``, ``check`` it, then rename it onto ``dest``.

    ``check(path)`` returns ``None`` for a good file, else why it is not (a checksum mismatch); a bad file or a
    network error raises :class:`_FetchError` with that reason.

    Atomic (see :func:`ebgan._fileio.atomic_write`): a failed check, a network error or Ctrl-C deletes the
    temp file, so a later run never finds a half-written ``dest`` to parse.
    """
    try:
        with atomic_write(dest) as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    length = resp.headers.get("Content-Length")
                    total = int(length) if length and length.isdigit() else None
                    bar = tqdm(
                        total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress, leave=False
                    )
                    with bar:
                        while chunk := resp.read(1 << 16):
                            out.write(chunk)
                            bar.update(len(chunk))
            # URLError, HTTPError and timeouts are OSErrors; a malformed URL can raise ValueError.
            except (OSError, HTTPException, ValueError) as e:
                raise _FetchError(str(e) or type(e).__name__) from e
            out.flush()
            if (problem := check(Path(out.name))) is not None:
                raise _FetchError(problem)
    except OSError as e:  # creating or renaming the temp file: a local problem, not the mirror's
        raise EbganError(f"cannot write {dest}: {e}; choose a writable folder (--data-root)") from e


def download_mnist(
    root: str | os.PathLike,
    mirrors: list[str] | tuple[str, ...] | None = None,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Download the four MNIST gz files into ``root/MNIST/raw/`` and return that folder.

    For each file in :data:`MNIST_FILES`, a ``<stem>.gz`` already there whose decompressed md5 matches is kept
    as is. Otherwise the mirrors (default :data:`MNIST_MIRRORS`) are tried in order at ``<mirror>/<stem>.gz``;
    a download goes to a temp file, its decompressed md5 is checked, and only then is it renamed into place.
    A failed or mismatching download is deleted and the next mirror is tried; if every mirror fails for a
    file, :class:`EbganError` lists each URL and why it failed.
    """
    raw = Path(root) / "MNIST" / "raw"
    mirrors = list(MNIST_MIRRORS if mirrors is None else mirrors)
    if not mirrors:
        raise EbganError("download_mnist needs at least one mirror URL; pass mirrors=None for the defaults")
    created = [d for d in (raw, raw.parent, raw.parent.parent) if not d.exists()]
    try:
        raw.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EbganError(f"cannot create {raw}: {e}; pass a writable --data-root") from e
    try:
        _download_mnist_files(raw, mirrors, progress, timeout)
    except BaseException:
        for d in created:  # leave no empty folders behind a failed download (innermost first)
            try:
                d.rmdir()
            except OSError:
                break
        raise
    return raw


def _download_mnist_files(raw: Path, mirrors: list[str], progress: bool, timeout: float) -> None:
    for stem, md5 in MNIST_FILES.items():
        dest = raw / f"{stem}.gz"
        if dest.is_file() and _gz_is_valid(dest, md5):
            continue
        failures = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + dest.name
            try:
                fetch_verified(url, dest, _gz_md5_problem(md5), progress, timeout)
                break
            except _FetchError as e:
                failures.append(f"{url}: {e}")
        else:
            raise EbganError(
                f"could not download {dest.name} from any mirror ({'; '.join(failures)}); "
                f"copy the four MNIST .gz files into {raw} by hand or name another mirror with --mirror URL"
            )


def _mnist_present(root: Path) -> bool:
    try:
        for stem in MNIST_FILES:
            _find_mnist_file(root, stem)
    except EbganError:
        return False
    return True


def make_stacked_mnist(
    images: Tensor, labels: Tensor, n: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Stacked MNIST (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018): ``n`` samples, 1000 modes.

    Sample ``k`` draws three indices ``i, j, l`` independently and uniformly (with replacement) from
    ``range(N)`` and stacks the digits as channels: ``x[k] = [images[i, 0], images[j, 0], images[l, 0]]``,
    ``y[k] = 100 * labels[i] + 10 * labels[j] + labels[l]``.

    Args:
        images: ``uint8 [N, 1, H, W]`` single-channel digits.
        labels: ``int [N]`` digit labels in ``0..9``.
        n: number of stacked samples.
        generator: source of the indices (seed it for a reproducible data set).

    Returns:
        ``(uint8 [n, 3, H, W], int64 [n])``.
    """
    if images.dim() != 4 or images.shape[1] != 1:
        raise EbganError(
            f"make_stacked_mnist needs single-channel images [N, 1, H, W], got shape {tuple(images.shape)}"
        )
    if labels.shape != (images.shape[0],):
        raise EbganError(
            f"make_stacked_mnist: labels shape {tuple(labels.shape)} does not match {images.shape[0]} images"
        )
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise EbganError(f"make_stacked_mnist: n must be a non-negative integer, got {n!r}")
    idx = torch.randint(images.shape[0], (n, 3), generator=generator)
    x = images[:, 0][idx]  # [n, 3, H, W]: advanced indexing copies, so the result owns its memory
    digits = labels.long()[idx]
    y = 100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2]
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


# ---------------------------------------------------------------------------------------------------------
# Image folders and conversions
# ---------------------------------------------------------------------------------------------------------

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")

# Image.Resampling appeared in Pillow 9.1; pyproject allows 9.0.
_BICUBIC = getattr(Image, "Resampling", Image).BICUBIC

# Elements per chunk in resize_images / set_channels: bounds the float/int32 temporaries to 64 MB where
# converting 60000 x 3 x 64 x 64 images at once would need about 3 GB. Much smaller chunks are slower (on a
# 2-core test machine, 1M-element chunks took 3x as long as 16M-element ones for MNIST 28 -> 32).
_CHUNK_ELEMENTS = 1 << 24


def _chunk_size(per_image_elements: int) -> int:
    return max(1, _CHUNK_ELEMENTS // max(1, per_image_elements))


def _check_image_size(image_size: object, what: str = "image_size") -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise EbganError(f"{what} must be a positive integer number of pixels, got {image_size!r}")
    return image_size


def _check_channels(channels: object) -> int:
    if channels not in (1, 3) or isinstance(channels, bool):
        raise EbganError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    return channels


def _check_uint8_images(x: Tensor, fn: str) -> None:
    if not isinstance(x, Tensor) or x.dtype != torch.uint8 or x.dim() != 4:
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
        raise EbganError(f"{fn} needs uint8 images [N, C, H, W], got {got}")


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive), sorted by their relative POSIX path for a stable order.

    Hidden files and folders (a path part starting with ".") are skipped: they are editor/OS debris such as
    macOS ``._photo.jpg`` resource forks, which carry an image extension but are not images.
    """
    files = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder)
        if p.suffix.lower() in IMAGE_EXTENSIONS and not any(part.startswith(".") for part in rel.parts) and p.is_file():
            files.append((rel.as_posix(), p))
    return [p for _, p in sorted(files)]


# The largest image the loaders decode: 2**26 pixels (67 megapixels, 201 MB as RGB), under Pillow's own
# decompression-bomb limit. A file whose header claims more is refused before its pixels are decoded, so that
# a hostile or corrupt file (a PNG of 100,000 x 100,000 pixels in a few kilobytes) cannot exhaust memory.
MAX_IMAGE_PIXELS = 1 << 26

# What Pillow may raise on a damaged or hostile file (its own fuzzing tolerates the same set).
_IMAGE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    TypeError,
    IndexError,
    KeyError,
    struct.error,
    ZeroDivisionError,
    Image.DecompressionBombError,
    MemoryError,
    RecursionError,
)


def _load_image(file: Path, image_size: int, mode: str, crop: str, generator: torch.Generator | None) -> np.ndarray:
    """One image as ``uint8 [H, W]`` ("L") or ``[H, W, 3]`` ("RGB"), short side resized, then cropped square.

    Images above :data:`MAX_IMAGE_PIXELS` are refused from their header, before decoding."""
    try:
        with Image.open(file) as im:
            if im.width * im.height > MAX_IMAGE_PIXELS:
                raise EbganError(
                    f"cannot read image {file}: {im.width} x {im.height} pixels, more than the limit of "
                    f"{MAX_IMAGE_PIXELS:,} (a decompression bomb, or too large to train on; fix or "
                    f"remove the file)"
                )
            # Apply the EXIF orientation so that camera photos are not loaded sideways.
            im = ImageOps.exif_transpose(im).convert(mode)  # convert() forces the full decode inside the try
            w, h = im.size
            scale = image_size / min(w, h)
            # max(): rounding must never make the long side shorter than the crop.
            nw, nh = max(image_size, round(w * scale)), max(image_size, round(h * scale))
            if (nw, nh) != (w, h):
                im = im.resize((nw, nh), _BICUBIC)  # Pillow's resize filters (antialiases) when shrinking
    except _IMAGE_ERRORS as e:
        raise EbganError(
            f"cannot read image {file}: {str(e)[:200] or type(e).__name__} (fix or remove the file)"
        ) from e
    if crop == "center":
        left, top = (nw - image_size) // 2, (nh - image_size) // 2
    else:
        left = int(torch.randint(nw - image_size + 1, (1,), generator=generator))
        top = int(torch.randint(nh - image_size + 1, (1,), generator=generator))
    return np.asarray(im.crop((left, top, left + image_size, top + image_size)))


def load_image_folder(
    path: str | os.PathLike,
    image_size: int,
    channels: int,
    crop: str = "center",
    *,
    generator: torch.Generator | None = None,
    progress: bool | None = None,
) -> Tensor:
    """All images under ``path`` as ``uint8 [N, C, S, S]`` with ``S = image_size``, ``C = channels``.

    Files with an extension in :data:`IMAGE_EXTENSIONS` are found recursively (hidden ones skipped) and loaded
    in order of their relative path. Each is converted to Pillow mode "L" (``channels=1``; Pillow's ITU-R 601
    luma) or "RGB" (``channels=3``; alpha dropped), resized (bicubic) so that its short side is ``S``, then
    cropped to ``S x S``: the centre crop (``crop="center"``) or, with ``crop="random"``, a crop at an offset
    drawn uniformly from ``generator`` (default: a generator seeded with 0, so the result is reproducible).
    The crop happens once, at load time: a random crop here is a fixed sample of the image, not augmentation.

    Args:
        progress: show a tqdm bar; ``None`` means only for more than 1000 images and when stderr is a TTY.

    Raises:
        EbganError: ``path`` missing or not a folder, no image files in it, or a file Pillow cannot read
            (the message names the file).
    """
    folder = Path(path)
    image_size = _check_image_size(image_size)
    channels = _check_channels(channels)
    if crop not in ("center", "random"):
        raise EbganError(f"crop must be 'center' or 'random', got {crop!r}")
    if not folder.exists():
        raise EbganError(f"image folder {folder} does not exist")
    if not folder.is_dir():
        raise EbganError(f"{folder} is not a folder; pass a folder that holds images")
    files = list_images(folder)
    if not files:
        raise EbganError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) found under {folder}")
    if crop == "random" and generator is None:
        generator = torch.Generator().manual_seed(0)
    if progress is None:
        progress = len(files) > 1000 and sys.stderr.isatty()
    mode = "L" if channels == 1 else "RGB"
    out = torch.empty(len(files), channels, image_size, image_size, dtype=torch.uint8)
    for i, file in enumerate(tqdm(files, desc=f"loading {folder.name or folder}", unit="img", disable=not progress)):
        arr = _load_image(file, image_size, mode, crop, generator)
        t = torch.from_numpy(arr.copy())
        out[i] = t.unsqueeze(0) if channels == 1 else t.permute(2, 0, 1)
    return out


def resize_images(x: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Bilinearly resize ``uint8 [N, C, H, W]`` to ``uint8 [N, C, h, w]`` (``size`` is ``s`` or ``(h, w)``).

    Uses ``F.interpolate(mode="bilinear", align_corners=False)``, with ``antialias=True`` when either side
    shrinks (then each output pixel averages its whole footprint, as Pillow does, instead of sampling two
    input pixels and aliasing thin strokes); values are rounded and clamped to ``[0, 255]``. Returns ``x``
    itself when the size is unchanged.
    """
    _check_uint8_images(x, "resize_images")
    if isinstance(size, (tuple, list)) and len(size) == 2:
        h, w = (_check_image_size(s, "size") for s in size)
    else:
        h = w = _check_image_size(size, "size")
    n, c, in_h, in_w = x.shape
    if (in_h, in_w) == (h, w):
        return x
    antialias = h < in_h or w < in_w
    out = torch.empty(n, c, h, w, dtype=torch.uint8)
    step = _chunk_size(c * max(in_h * in_w, h * w))
    for s in range(0, n, step):
        chunk = x[s : s + step].float()
        y = F.interpolate(chunk, size=(h, w), mode="bilinear", align_corners=False, antialias=antialias)
        out[s : s + step] = y.round_().clamp_(0, 255).to(torch.uint8)
    return out


def set_channels(x: Tensor, channels: int) -> Tensor:
    """Convert ``uint8 [N, C, H, W]`` between 1 and 3 channels.

    1 -> 3 repeats the gray channel; 3 -> 1 is ITU-R 601 luma ``Y = (299 R + 587 G + 114 B) / 1000`` rounded
    half up, computed in integers so that it is exact (gray ``(v, v, v)`` gives ``v``; Pillow's "L"
    conversion uses a 16-bit fixed-point version and can differ by 1). Returns ``x`` itself when ``C`` is
    already ``channels``.
    """
    _check_uint8_images(x, "set_channels")
    channels = _check_channels(channels)
    n, c, h, w = x.shape
    if c not in (1, 3):
        raise EbganError(f"set_channels needs images with 1 or 3 channels, got {c}")
    if c == channels:
        return x
    if channels == 3:
        return x.expand(n, 3, h, w).contiguous()
    out = torch.empty(n, 1, h, w, dtype=torch.uint8)
    step = _chunk_size(3 * h * w)
    for s in range(0, n, step):
        v = x[s : s + step]
        # In-place on one int32 buffer: 4x faster here than the out-of-place expression (fewer temporaries).
        y = v[:, 0].to(torch.int32).mul_(299)
        y.add_(v[:, 1], alpha=587).add_(v[:, 2], alpha=114).add_(500)
        out[s : s + step, 0] = y.div_(1000, rounding_mode="floor")
    return out


def convert_images(x: Tensor, image_size: int | None = None, channels: int | None = None) -> Tensor:
    """:func:`resize_images` to ``image_size`` and :func:`set_channels` to ``channels`` (``None``: keep)."""
    if channels is not None and channels < x.shape[1]:
        x = set_channels(x, channels)  # 3 -> 1 first: the resize then touches a third of the data
    if image_size is not None:
        x = resize_images(x, image_size)
    if channels is not None:
        x = set_channels(x, channels)  # 1 -> 3 last, for the same reason
    return x


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


def check_like(x: Tensor, like: Dataset, what: str) -> Tensor:
    """``x`` if it is shaped and typed like the samples of ``like`` (uint8 images or float points), else a clear
    error; float points are returned as float32."""
    shape = like.sample_shape
    if like.kind == "image":
        if x.dtype != torch.uint8:
            hint = " (map floats in [-1, 1] with ebgan.data.to_uint8)" if x.dtype.is_floating_point else ""
            raise EbganError(f"{what} must be uint8 images [N, {', '.join(map(str, shape))}], got {x.dtype}{hint}")
        if tuple(x.shape[1:]) != shape or x.dim() != 4:
            raise EbganError(
                f"{what} must be uint8 images [N, {', '.join(map(str, shape))}], got shape {list(x.shape)}"
            )
    else:
        if not x.dtype.is_floating_point:
            raise EbganError(f"{what} must be float points [N, {shape[0]}], got {x.dtype}")
        if x.dim() != 2 or tuple(x.shape[1:]) != shape:
            raise EbganError(f"{what} must be float points [N, {shape[0]}], got shape {list(x.shape)}")
        x = x.float()
        if not torch.isfinite(x).all():
            raise EbganError(f"{what} holds NaN or infinite values")
    if len(x) == 0:
        raise EbganError(f"{what} holds no samples")
    return x


def _read_npy_header(f, version):
    """numpy's own header parser for every .npy version (1.0, 2.0 and 3.0: its private helper)."""
    try:
        fmt = importlib.import_module("numpy.lib._format_impl")  # numpy >= 2
    except ImportError:  # numpy 1.x
        fmt = importlib.import_module("numpy.lib.format")
    return fmt._read_array_header(f, version)  # private: not in numpy's type stubs, hence the module lookup


def read_npy(path: str | os.PathLike, what: str = "input") -> np.ndarray:
    """Read a ``.npy`` array without unpickling; any problem (missing, empty, not .npy, Python objects, a header
    that does not match the file's size) is one EbganError line.

    The header is checked before the data is read: an array of numbers (bool, integer, float or complex) whose
    shape and type add up to no more bytes than the file holds. Memory is therefore bounded by the file's size,
    whatever its header claims."""
    p = Path(path)
    if not p.exists():
        raise EbganError(f"{what}: no such file: {p}")
    if p.suffix != ".npy":
        raise EbganError(f"{what} must be a .npy array file, got {p.name}")
    if not p.is_file():
        raise EbganError(f"{what} {p} is not a file")
    size = p.stat().st_size
    if size == 0:
        raise EbganError(f"{p} is empty")
    try:
        with open(p, "rb") as f:
            if f.read(6) != b"\x93NUMPY":  # numpy would call any other file "pickled data", which misleads
                raise EbganError(
                    f"{p} is not a .npy array file (it does not start with the .npy header); write "
                    f"arrays with numpy.save"
                )
            f.seek(0)
            version = np.lib.format.read_magic(f)
            shape, fortran, dtype = _read_npy_header(f, version)
            offset = f.tell()
    except EbganError:
        raise
    except Exception as e:  # noqa: BLE001 - numpy parses the header as a Python literal: any error means damaged
        raise EbganError(
            f"cannot read {p} as a .npy array: its header is damaged "
            f"({str(e).splitlines()[0][:200] if str(e) else type(e).__name__})"
        ) from None
    if dtype.hasobject:  # never unpickled: a file from elsewhere could run code
        raise EbganError(f"{p} holds Python objects (dtype object), not numbers")
    if dtype.kind not in "biufc" or dtype.fields is not None or dtype.subdtype is not None:
        raise EbganError(f"{p} holds {dtype}, not numbers")
    need = math.prod(shape) * dtype.itemsize
    if need > size - offset:
        raise EbganError(
            f"{p} is truncated or corrupt: its header promises {need:,} bytes of data "
            f"({' x '.join(map(str, shape)) or 'scalar'} {dtype}), the file holds {size - offset:,}"
        )
    try:
        x = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise EbganError(
            f"cannot read {p} as a .npy array: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from None
    if not isinstance(x, np.ndarray):
        raise EbganError(f"{p} does not hold a single array")
    if not x.dtype.isnative:  # a big-endian file: torch takes native byte order only
        x = x.astype(x.dtype.newbyteorder("="))
    return x


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
