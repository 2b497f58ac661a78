"""MNIST from its IDX files (:func:`load_mnist`), fetched from mirrors and md5-checked (:func:`download_mnist`,
:func:`fetch_verified`), and Stacked MNIST built from it (:func:`make_stacked_mnist`)."""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import urllib.request
import zlib
from http.client import HTTPException
from pathlib import Path

import numpy as np
import torch
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
