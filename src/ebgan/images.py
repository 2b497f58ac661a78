"""Image grids and atomic image files (torch, numpy and Pillow; matplotlib only for a titled grid).

The grid layout matches ``torchvision.utils.make_grid``: images fill rows of ``nrow`` left to right, each
surrounded by ``padding`` pixels of ``pad_value``, so a grid of ``N`` images of ``H x W`` with ``nrow`` columns
is ``rows * (H + padding) + padding`` pixels high, ``rows = ceil(N / nrow)``.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ._fileio import atomic_write, writing
from .errors import EbganError


def _to_uint8(images: Tensor) -> Tensor:
    """``uint8`` as is; floats are taken to lie in ``[-1, 1]`` and mapped by ``round((x + 1) * 127.5)``."""
    if images.dtype == torch.uint8:
        return images
    if not images.is_floating_point():
        raise EbganError(f"images must be uint8 in [0, 255] or float in [-1, 1], got dtype {images.dtype}")
    # Same mapping as ebgan.data.to_uint8; out-of-range generator outputs are clamped, not wrapped.
    return ((images.detach().cpu().float() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)


def image_grid(
    images: Tensor | np.ndarray, nrow: int | None = None, padding: int = 2, pad_value: int = 0
) -> Image.Image:
    """Tile ``images`` into one Pillow image ("L" for ``C = 1``, "RGB" for ``C = 3``).

    Args:
        images: ``uint8 [N, C, H, W]`` or float ``[N, C, H, W]`` in ``[-1, 1]`` (tensor or numpy array);
            ``C`` is 1 or 3. A single ``[C, H, W]`` image is accepted too.
        nrow: images per row; default ``ceil(sqrt(N))``. With ``N < nrow`` the grid is ``N`` images wide.
        padding: pixels between images and around the border.
        pad_value: gray level ``0..255`` of the padding (and of empty cells in the last row).

    Image ``k`` (row ``r = k // nrow``, column ``c = k % nrow``) has its top-left pixel at
    ``(y, x) = (r * (H + padding) + padding, c * (W + padding) + padding)``.
    """
    if isinstance(images, np.ndarray):  # e.g. the output of `ebgan sample`
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, Tensor):
        raise EbganError(f"image_grid needs a tensor or numpy array, got {type(images).__name__}")
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[1] not in (1, 3) or images.shape[0] == 0:
        raise EbganError(
            f"image_grid needs images [N, C, H, W] with N >= 1 and C in (1, 3), got shape {tuple(images.shape)}"
        )
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise EbganError(f"padding must be a non-negative integer, got {padding!r}")
    if isinstance(pad_value, bool) or not isinstance(pad_value, int) or not 0 <= pad_value <= 255:
        raise EbganError(f"pad_value must be an integer gray level in 0..255, got {pad_value!r}")
    n, c, h, w = images.shape
    if nrow is None:
        nrow = math.ceil(math.sqrt(n))
    if isinstance(nrow, bool) or not isinstance(nrow, int) or nrow < 1:
        raise EbganError(f"nrow must be a positive integer, got {nrow!r}")
    x = _to_uint8(images).cpu().numpy()
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    canvas = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding, c), pad_value, dtype=np.uint8)
    for k in range(n):
        top = (k // cols) * (h + padding) + padding
        left = (k % cols) * (w + padding) + padding
        canvas[top : top + h, left : left + w] = x[k].transpose(1, 2, 0)
    # uint8 [H, W] becomes mode "L", uint8 [H, W, 3] mode "RGB" (fromarray's mode= argument is deprecated).
    return Image.fromarray(canvas[:, :, 0] if c == 1 else canvas)


def save_image(image: Image.Image, path: str | os.PathLike) -> Path:
    """Write a Pillow image to ``path`` atomically; the format comes from the extension (``.png``, ...).

    The image is written to a temp file in the same folder and moved over ``path`` with ``os.replace``, so a
    reader (or a crash mid-write) never sees a half-written file. Missing parent folders are created.
    """
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise EbganError(f"cannot save image {path}: unknown extension {path.suffix!r}; use .png")
    with writing(path):  # a failed write (full disk, I/O error, ...) is WriteFailed, exit status 3
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_write(path) as f:
            image.save(f, format=fmt)
    except OSError as e:  # Pillow's own refusals (a mode the format cannot store) carry no errno
        raise EbganError(f"cannot write image {path}: {e}") from None
    return path


# A titled grid is drawn at least this many pixels wide: an integer nearest-neighbour upscaling, so that a
# grid of small images (MNIST: 242 pixels for 8 x 8) and its title are readable.
TITLED_MIN_WIDTH = 480
TITLE_BAND = 30  # pixels above the grid for the title
TITLE_FONTSIZE = 11.0


def titled(image: Image.Image, title: str) -> Image.Image:
    """``image`` upscaled by an integer factor to at least :data:`TITLED_MIN_WIDTH` pixels wide (nearest
    neighbour: every pixel becomes a square block) under a white band with ``title`` in black, centred and
    shrunk to fit the width. Same mode as ``image`` ("L" or "RGB"). Only the band is drawn by matplotlib
    (Agg); the grid's pixels are pasted below it unchanged."""
    from .plots import _plt

    plt = _plt()
    dpi = 100
    scale = max(1, math.ceil(TITLED_MIN_WIDTH / image.width))
    w, h = image.width * scale, image.height * scale
    fig = plt.figure(figsize=(w / dpi, TITLE_BAND / dpi), dpi=dpi, facecolor="white")
    try:
        text = fig.text(0.5, 0.5, title, ha="center", va="center", fontsize=TITLE_FONTSIZE, color="black")
        renderer = fig.canvas.get_renderer()
        while text.get_window_extent(renderer).width > w - 6 and text.get_fontsize() > 5:
            text.set_fontsize(text.get_fontsize() - 0.5)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    finally:
        plt.close(fig)
    buf.seek(0)
    out = Image.new(image.mode, (w, h + TITLE_BAND), "white")
    with Image.open(buf) as band:
        out.paste(band.convert(image.mode), (0, 0))  # Agg may round the band's size a pixel off either way
    out.paste(image.resize((w, h), Image.Resampling.NEAREST), (0, TITLE_BAND))  # (the grid covers any excess)
    return out


def save_grid(
    images: Tensor | np.ndarray,
    path: str | os.PathLike,
    nrow: int | None = None,
    padding: int = 2,
    pad_value: int = 0,
    title: str | None = None,
) -> Path:
    """:func:`image_grid` of ``images`` saved atomically to ``path`` (normally a ``.png``) by :func:`save_image`.

    With a ``title`` (e.g. ``"ebgan on mnist, step 1000"``) the grid is drawn by :func:`titled`: upscaled
    to a readable size under the title. Without one the file holds the grid's pixels exactly.
    """
    grid = image_grid(images, nrow=nrow, padding=padding, pad_value=pad_value)
    return save_image(titled(grid, title) if title else grid, path)
