"""Folders of image files (:func:`load_image_folder`) and the conversions that adapt ``uint8`` images to a
network's size and channel count (:func:`resize_images`, :func:`set_channels`, :func:`convert_images`)."""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor
from tqdm import tqdm

from ..errors import EbganError

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
