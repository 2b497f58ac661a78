"""Tests for ebgan.images: grid layout, value mapping, atomic PNG writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ebgan.errors import EbganError, WriteFailed
from ebgan.images import image_grid, save_grid, save_image


def _numbered(n: int, c: int, h: int, w: int) -> torch.Tensor:
    """Image k is filled with the value 10 * (k + 1)."""
    v = (torch.arange(n, dtype=torch.uint8) + 1) * 10
    return v.view(n, 1, 1, 1).expand(n, c, h, w).contiguous()


def test_grid_size_and_placement_gray():
    imgs = _numbered(5, 1, 4, 6)
    g = image_grid(imgs)  # nrow = ceil(sqrt(5)) = 3 -> 3 columns, 2 rows
    assert g.mode == "L"
    assert g.size == (3 * (6 + 2) + 2, 2 * (4 + 2) + 2)  # (width, height) = (26, 14)
    a = np.asarray(g)
    for k in range(5):
        top, left = (k // 3) * 6 + 2, (k % 3) * 8 + 2
        assert (a[top : top + 4, left : left + 6] == 10 * (k + 1)).all()
    # Borders, gaps and the empty sixth cell are padding.
    assert (a[:2] == 0).all() and (a[:, :2] == 0).all() and (a[6:8] == 0).all()
    assert (a[8:12, 18:24] == 0).all()
    assert int(a.astype(np.int64).sum()) == 4 * 6 * sum(10 * (k + 1) for k in range(5))


def test_grid_known_pixel_rgb_nrow_and_pad_value():
    imgs = torch.zeros(4, 3, 2, 3, dtype=torch.uint8)
    imgs[2, 1, 1, 2] = 200  # image 2, green, row 1, column 2
    g = image_grid(imgs, nrow=2, padding=1, pad_value=7)
    assert g.mode == "RGB" and g.size == (2 * 4 + 1, 2 * 3 + 1)
    a = np.asarray(g)
    # Image 2 sits at grid row 1, column 0: top-left at (1 * 3 + 1, 0 * 4 + 1) = (4, 1).
    assert a[4 + 1, 1 + 2].tolist() == [0, 200, 0]
    assert a[0, 0].tolist() == [7, 7, 7]
    assert int((a > 0).sum()) == (a == 7).sum() + 1


def test_grid_float_input_maps_minus_one_one():
    x = torch.tensor([-1.0, 0.0, 1.0, 5.0]).view(4, 1, 1, 1)
    a = np.asarray(image_grid(x, nrow=4, padding=0))
    assert a.tolist() == [[0, 128, 255, 255]]  # round(127.5) = 128 (half to even); 5 is clamped


def test_grid_nrow_larger_than_n_and_single_image():
    g = image_grid(_numbered(2, 1, 3, 3), nrow=8, padding=0)
    assert g.size == (6, 3)
    single = image_grid(_numbered(1, 3, 5, 4)[0], padding=0)  # [C, H, W] accepted
    assert single.size == (4, 5) and np.asarray(single)[0, 0].tolist() == [10, 10, 10]


def test_grid_bad_input():
    with pytest.raises(EbganError, match="C in"):
        image_grid(torch.zeros(2, 2, 4, 4, dtype=torch.uint8))
    with pytest.raises(EbganError, match="N >= 1"):
        image_grid(torch.zeros(0, 1, 4, 4, dtype=torch.uint8))
    with pytest.raises(EbganError, match="dtype"):
        image_grid(torch.zeros(1, 1, 4, 4, dtype=torch.int32))
    with pytest.raises(EbganError, match="pad_value"):
        image_grid(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), pad_value=300)
    with pytest.raises(EbganError, match="nrow"):
        image_grid(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), nrow=0)


def test_save_grid_writes_png_atomically(tmp_path):
    imgs = _numbered(3, 3, 4, 4)
    out = tmp_path / "samples" / "grid.png"
    assert save_grid(imgs, out, nrow=3) == out
    with Image.open(out) as im:
        assert im.format == "PNG" and im.mode == "RGB"
        assert np.array_equal(np.asarray(im), np.asarray(image_grid(imgs, nrow=3)))
    # Overwrite in place; no temp files remain.
    save_grid(_numbered(1, 1, 4, 4), out)
    with Image.open(out) as im:
        assert im.size == (8, 8) and im.mode == "L"
    assert [p.name for p in out.parent.iterdir()] == ["grid.png"]


def test_save_image_failure_leaves_old_file_and_no_temp(tmp_path):
    out = tmp_path / "a.png"
    save_image(Image.new("L", (2, 2), 5), out)
    before = out.read_bytes()
    (tmp_path / "blocker").write_text("a file where a folder is needed")
    with pytest.raises(WriteFailed, match="a file stands where a folder is needed writing .*blocker/x.png"):
        save_image(Image.new("L", (2, 2)), tmp_path / "blocker" / "x.png")
    with pytest.raises(EbganError, match="unknown extension"):
        save_image(Image.new("L", (2, 2)), tmp_path / "a.xyz")
    with pytest.raises(EbganError, match="cannot write image"):
        save_image(Image.new("LA", (2, 2)), tmp_path / "a.jpg")  # JPEG cannot store LA: Pillow raises OSError
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "blocker"]
