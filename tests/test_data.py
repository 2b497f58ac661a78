"""Tests for ebgan.data. No network: MNIST comes from ../shared/data, downloads from a local http.server."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from ebgan import data
from ebgan.data import (
    DATASETS,
    MIXTURES,
    MNIST_FILES,
    Dataset,
    _gz_md5,
    _read_idx,
    download_mnist,
    grid_centers,
    load_dataset,
    load_image_folder,
    load_mnist,
    make_stacked_mnist,
    resize_images,
    ring_centers,
    sample_mixture,
    set_channels,
    to_uint8,
)
from ebgan.data import mnist as data_mnist
from ebgan.errors import EbganError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MNIST_RAW = SHARED / "MNIST" / "raw"
needs_mnist = pytest.mark.skipif(
    not all((MNIST_RAW / f"{stem}.gz").is_file() for stem in MNIST_FILES), reason=f"MNIST not found in {MNIST_RAW}"
)


@pytest.fixture(scope="module")
def mnist_test():
    if not all((MNIST_RAW / f"{stem}.gz").is_file() for stem in MNIST_FILES):
        pytest.skip(f"MNIST not found in {MNIST_RAW}")
    return load_mnist(SHARED, "test")


# --------------------------------------------------------------------------------------------- MNIST


@needs_mnist
def test_load_dataset_mnist_train_shapes_labels_and_counts():
    ds = load_dataset("mnist", SHARED)
    assert ds.kind == "image" and ds.name == "mnist"
    assert ds.data.shape == (60000, 1, 28, 28) and ds.data.dtype == torch.uint8
    assert ds.labels.dtype == torch.int64
    assert ds.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert torch.bincount(ds.labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert ds.sample_shape == (1, 28, 28)


def test_mnist_test_split(mnist_test):
    x, y = mnist_test
    assert x.shape == (10000, 1, 28, 28) and x.dtype == torch.uint8
    assert y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert int(x.min()) == 0 and int(x.max()) == 255


@needs_mnist
def test_shared_files_match_md5():
    for stem, md5 in MNIST_FILES.items():
        assert _gz_md5(MNIST_RAW / f"{stem}.gz") == md5


def test_load_mnist_bad_split():
    with pytest.raises(EbganError, match="'val'"):
        load_mnist("/nonexistent", "val")


def test_load_mnist_missing_files(tmp_path):
    with pytest.raises(EbganError, match="not found under"):
        load_mnist(tmp_path, "train")


def _idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def test_read_idx_roundtrip(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    p = tmp_path / "x-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(_idx_bytes(arr)))
    np.testing.assert_array_equal(_read_idx(p, 3), arr)
    raw = tmp_path / "x-idx3-ubyte"
    raw.write_bytes(_idx_bytes(arr))  # uncompressed files are read too
    np.testing.assert_array_equal(_read_idx(raw, 3), arr)


def test_read_idx_truncated_gzip(tmp_path):
    good = gzip.compress(_idx_bytes(np.zeros((100, 28, 28), np.uint8)))
    p = tmp_path / "t-idx3-ubyte.gz"
    p.write_bytes(good[: len(good) // 2])
    with pytest.raises(EbganError, match="truncated or corrupt"):
        _read_idx(p, 3)


def test_read_idx_bad_magic(tmp_path):
    p = tmp_path / "m-idx1-ubyte.gz"
    p.write_bytes(gzip.compress(b"\x01\x02\x03\x04" + b"\x00" * 16))
    with pytest.raises(EbganError, match="bad magic"):
        _read_idx(p, 1)


def test_read_idx_size_mismatch_and_wrong_ndim(tmp_path):
    p = tmp_path / "s-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(_idx_bytes(np.zeros((5, 4, 4), np.uint8))[:-3]))
    with pytest.raises(EbganError, match="header promises"):
        _read_idx(p, 3)
    with pytest.raises(EbganError, match="expected 1"):
        _read_idx(p, 1)


def test_load_mnist_truncated_file_in_raw_folder(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    blob = gzip.compress(_idx_bytes(np.zeros((10, 28, 28), np.uint8)))
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(blob[:-20])
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(np.zeros(10, np.uint8))))
    with pytest.raises(EbganError, match="t10k-images-idx3-ubyte.gz"):
        load_mnist(tmp_path, "test")


# ----------------------------------------------------------------------------------- Dataset, to_uint8


def test_dataset_get_maps_to_minus_one_one():
    ds = Dataset("t", "image", torch.tensor([0, 255, 51], dtype=torch.uint8).view(3, 1, 1, 1))
    assert_close(ds.get(torch.tensor([0, 1, 2])).flatten(), torch.tensor([-1.0, 1.0, 51 / 127.5 - 1]))
    assert len(ds) == 3


def test_to_uint8_roundtrip_exact():
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    ds = Dataset("t", "image", x)
    assert torch.equal(to_uint8(ds.get(torch.tensor([0]))), x)
    assert to_uint8(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]  # clamped


def test_points_get_is_identity():
    x = torch.randn(4, 2)
    assert torch.equal(Dataset("p", "points", x).get(torch.tensor([2, 0])), x[[2, 0]])


# ------------------------------------------------------------------------------------------- mixtures


def test_ring_centers():
    c = ring_centers()
    assert c.shape == (8, 2)
    assert_close(c.norm(dim=1), torch.ones(8))
    assert torch.unique(c.round(decimals=4), dim=0).shape[0] == 8
    assert_close(c[0], torch.tensor([1.0, 0.0]))
    assert_close(c[2], torch.tensor([0.0, 1.0]))


def test_grid_centers():
    c = grid_centers()
    assert c.shape == (25, 2)
    expected = {(float(a), float(b)) for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)}
    assert {tuple(r) for r in c.tolist()} == expected


@pytest.mark.parametrize("name", ["ring", "grid"])
def test_mixture_samples_near_their_component(name):
    centers_fn, sigma = MIXTURES[name]
    x, comp = sample_mixture(name, 20000, torch.Generator().manual_seed(1))
    assert x.shape == (20000, 2) and x.dtype == torch.float32 and comp.dtype == torch.int64
    dist = (x - centers_fn()[comp]).norm(dim=1)
    # 2-D Gaussian: P(|noise| > 6 sigma) = exp(-18) ~ 1.5e-8 per sample.
    assert float(dist.max()) < 6 * sigma
    assert_close(dist.pow(2).mean() / 2, torch.tensor(sigma**2), rtol=0.05, atol=0)
    assert set(comp.tolist()) == set(range(len(centers_fn())))


def test_load_dataset_points_seeded():
    a = load_dataset("ring", n_points=500, seed=3)
    b = load_dataset("ring", n_points=500, seed=3)
    c = load_dataset("ring", n_points=500, seed=4)
    assert a.kind == "points" and a.data.shape == (500, 2) and a.labels.shape == (500,)
    assert torch.equal(a.data, b.data) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.data, c.data)
    x, comp = sample_mixture("ring", 500, torch.Generator().manual_seed(3))
    assert torch.equal(a.data, x) and torch.equal(a.labels, comp)
    g = load_dataset("grid", n_points=10)
    assert g.data.shape == (10, 2) and int(g.labels.max()) < 25


def test_load_dataset_points_reject_image_options():
    with pytest.raises(EbganError, match="image_size and channels"):
        load_dataset("grid", image_size=32)
    with pytest.raises(EbganError, match="image_size and channels"):
        load_dataset("ring", channels=3)
    with pytest.raises(EbganError, match="n_points"):
        load_dataset("ring", n_points=0)


def test_load_dataset_unknown_name_lists_valid_names(tmp_path):
    with pytest.raises(EbganError) as e:
        load_dataset(str(tmp_path / "nope"))
    msg = str(e.value)
    assert "nope" in msg and all(name in msg for name in DATASETS) and "\n" not in msg
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(EbganError, match="not a folder of images"):
        load_dataset(str(f))


def test_load_dataset_bad_image_options():
    with pytest.raises(EbganError, match="image_size"):
        load_dataset("mnist", image_size=0)
    with pytest.raises(EbganError, match="channels"):
        load_dataset("mnist", channels=2)


def test_data_root_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("EBGAN_DATA_ROOT", str(tmp_path / "envroot"))
    assert data.resolve_data_root() == tmp_path / "envroot"
    assert data.resolve_data_root(tmp_path) == tmp_path
    with pytest.raises(EbganError, match="envroot"):
        load_dataset("mnist-test")
    monkeypatch.delenv("EBGAN_DATA_ROOT")
    assert data.resolve_data_root() == Path("data")


def test_load_dataset_mnist_test_converted(mnist_test, monkeypatch):
    monkeypatch.setenv("EBGAN_DATA_ROOT", str(SHARED))
    ds = load_dataset("mnist-test", image_size=32, channels=3)
    x, y = mnist_test
    assert ds.data.shape == (10000, 3, 32, 32) and ds.data.dtype == torch.uint8
    assert torch.equal(ds.labels, y)
    assert torch.equal(ds.data[:500], set_channels(resize_images(x[:500], 32), 3))  # resize, then repeat
    assert torch.equal(ds.data[:, 0], ds.data[:, 2])


# -------------------------------------------------------------------------------------- Stacked MNIST


def test_make_stacked_mnist_label_formula():
    n_src = 200
    # Source image i is filled with the value i, so each stacked channel reveals which image it came from.
    images = torch.arange(n_src, dtype=torch.uint8).view(n_src, 1, 1, 1).expand(n_src, 1, 5, 5).contiguous()
    labels = torch.randint(10, (n_src,), generator=torch.Generator().manual_seed(0))
    x, y = make_stacked_mnist(images, labels, 3000, torch.Generator().manual_seed(7))
    assert x.shape == (3000, 3, 5, 5) and x.dtype == torch.uint8 and y.dtype == torch.int64
    idx = x[:, :, 0, 0].long()  # [n, 3] source indices
    assert torch.equal(x, images[:, 0][idx])
    assert torch.equal(y, 100 * labels[idx[:, 0]] + 10 * labels[idx[:, 1]] + labels[idx[:, 2]])
    # Channels are drawn independently: they differ somewhere, and every source image gets used.
    assert not torch.equal(idx[:, 0], idx[:, 1])
    assert set(idx.flatten().tolist()) == set(range(n_src))
    x2, y2 = make_stacked_mnist(images, labels, 3000, torch.Generator().manual_seed(7))
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_make_stacked_mnist_rejects_rgb():
    with pytest.raises(EbganError, match=r"\[N, 1, H, W\]"):
        make_stacked_mnist(torch.zeros(4, 3, 2, 2, dtype=torch.uint8), torch.zeros(4, dtype=torch.long), 2)


@needs_mnist
def test_load_dataset_stacked_mnist():
    ds = load_dataset("stacked-mnist", SHARED, seed=0)
    assert ds.data.shape == (60000, 3, 28, 28) and ds.labels.shape == (60000,)
    assert int(ds.labels.min()) >= 0 and int(ds.labels.max()) <= 999
    # ~60 samples per mode on average: all 1000 modes are present.
    assert bool((torch.bincount(ds.labels, minlength=1000) > 0).all())


# ---------------------------------------------------------------------------------- resize / channels


def test_resize_images_constant_shape_identity():
    x = torch.full((3, 2, 28, 28), 77, dtype=torch.uint8)
    for size in (14, 32, 64, (20, 40)):
        y = resize_images(x, size)
        hw = (size, size) if isinstance(size, int) else size
        assert y.shape == (3, 2, *hw) and y.dtype == torch.uint8
        assert torch.equal(y, torch.full_like(y, 77))
    assert resize_images(x, 28) is x


def test_resize_images_antialiased_matches_pillow(mnist_test):
    # Pillow's bilinear resize filters over the whole footprint; without antialias torch differs by up to ~75.
    x = mnist_test[0][:50]
    for size in (14, 64):
        ours = resize_images(x, size)
        pil = [np.array(Image.fromarray(im[0].numpy()).resize((size, size), Image.BILINEAR)) for im in x]
        pil = torch.from_numpy(np.stack(pil)).unsqueeze(1)
        assert int((ours.int() - pil.int()).abs().max()) <= 1


def test_resize_images_bad_input():
    with pytest.raises(EbganError, match="uint8"):
        resize_images(torch.zeros(1, 1, 4, 4), 8)
    with pytest.raises(EbganError, match="size"):
        resize_images(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), -1)


def test_set_channels():
    gray = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    rgb = set_channels(gray, 3)
    assert rgb.shape == (1, 3, 16, 16)
    assert all(torch.equal(rgb[:, c], gray[:, 0]) for c in range(3))
    assert torch.equal(set_channels(rgb, 1), gray)  # 299 + 587 + 114 = 1000: gray is a fixed point
    assert set_channels(gray, 1) is gray
    primaries = torch.tensor([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]], dtype=torch.uint8).view(4, 3, 1, 1)
    # round(0.299*255)=76, round(0.587*255)=150, round(0.114*255)=29, (2990+11740+3420)/1000=18.15 -> 18
    assert set_channels(primaries, 1).flatten().tolist() == [76, 150, 29, 18]
    with pytest.raises(EbganError, match="channels"):
        set_channels(gray, 2)


# ------------------------------------------------------------------------------------------ image folder


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_load_image_folder_sorted_converted(tmp_path):
    solid = lambda rgb, h=8, w=8: np.tile(np.array(rgb, np.uint8), (h, w, 1))  # noqa: E731
    _png(tmp_path / "b.png", solid((0, 255, 0)))
    _png(tmp_path / "a.png", solid((255, 0, 0), 16, 12))
    _png(tmp_path / "sub" / "c.bmp", solid((0, 0, 255), 4, 4))
    Image.fromarray(solid((9, 9, 9))).save(tmp_path / "sub" / "d.JPG", quality=100)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "._a.png").write_bytes(b"macOS resource fork")  # hidden: skipped, not an error

    x = load_image_folder(tmp_path, 8, 3, progress=False)
    assert x.shape == (4, 3, 8, 8) and x.dtype == torch.uint8
    # Order a.png, b.png, sub/c.bmp, sub/d.JPG; solid colours survive resizing exactly.
    assert x[:3, :, 0, 0].tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 255]]
    assert torch.equal(x[:3], x[:3, :, :1, :1].expand(3, 3, 8, 8))
    assert int((x[3].int() - 9).abs().max()) <= 1  # JPEG
    g = load_image_folder(tmp_path, 6, 1, progress=False)
    assert g.shape == (4, 1, 6, 6)
    assert g[:3, 0, 0, 0].tolist() == [76, 150, 29]  # Pillow's "L" (ITU-R 601 luma), as set_channels


def test_load_image_folder_center_crop(tmp_path):
    # 30 wide, 20 high, pixel value = column: with image_size 20 no resize happens, the crop keeps columns 5..24.
    arr = np.tile(np.arange(30, dtype=np.uint8) * 8, (20, 1))
    _png(tmp_path / "wide.png", arr)
    x = load_image_folder(tmp_path, 20, 1, progress=False)
    assert x.shape == (1, 1, 20, 20)
    assert torch.equal(x[0, 0], torch.from_numpy(arr[:, 5:25]))
    # Tall image: rows are cropped.
    _png(tmp_path / "wide.png", arr.T.copy())
    assert torch.equal(load_image_folder(tmp_path, 20, 1)[0, 0], torch.from_numpy(arr.T[5:25, :]))


def test_load_image_folder_random_crop_seeded(tmp_path):
    arr = np.tile(np.arange(30, dtype=np.uint8) * 8, (20, 1))
    _png(tmp_path / "wide.png", arr)
    lefts = set()
    for seed in range(8):
        c = load_image_folder(tmp_path, 20, 1, crop="random", generator=torch.Generator().manual_seed(seed))[0, 0]
        left = int(c[0, 0]) // 8
        assert torch.equal(c, torch.from_numpy(arr[:, left : left + 20]))  # a valid 20 x 20 window
        lefts.add(left)
    assert len(lefts) > 1
    a = load_image_folder(tmp_path, 20, 1, crop="random")
    assert torch.equal(a, load_image_folder(tmp_path, 20, 1, crop="random"))  # default generator is seeded


def test_load_image_folder_errors(tmp_path):
    with pytest.raises(EbganError, match="does not exist"):
        load_image_folder(tmp_path / "missing", 8, 3)
    f = tmp_path / "f.png"
    _png(f, np.zeros((4, 4), np.uint8))
    with pytest.raises(EbganError, match="not a folder"):
        load_image_folder(f, 8, 3)
    empty = tmp_path / "empty"
    (empty / "deeper").mkdir(parents=True)
    (empty / "readme.txt").write_text("x")
    with pytest.raises(EbganError, match="no image files"):
        load_image_folder(empty, 8, 3)
    bad = tmp_path / "bad"
    _png(bad / "ok.png", np.zeros((4, 4), np.uint8))
    (bad / "zz_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    with pytest.raises(EbganError, match="zz_corrupt.png"):
        load_image_folder(bad, 8, 3)
    with pytest.raises(EbganError, match="channels"):
        load_image_folder(tmp_path, 8, 4)
    with pytest.raises(EbganError, match="crop"):
        load_image_folder(tmp_path, 8, 3, crop="left")


def test_load_dataset_folder(tmp_path):
    _png(tmp_path / "imgs" / "x.png", np.full((10, 10, 3), 200, np.uint8))
    ds = load_dataset(str(tmp_path / "imgs"), image_size=4, channels=1)
    assert ds.kind == "image" and ds.labels is None and ds.name == str(tmp_path / "imgs")
    assert torch.equal(ds.data, torch.full((1, 1, 4, 4), 200, dtype=torch.uint8))
    size = data.FOLDER_IMAGE_SIZE
    assert load_dataset(str(tmp_path / "imgs")).data.shape == (1, data.FOLDER_CHANNELS, size, size)


# ------------------------------------------------------------------------------------------- download


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def serve(monkeypatch):
    """serve(folder) -> base URL of an http.server on 127.0.0.1 serving that folder; records request paths."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")  # a user's proxy must not intercept 127.0.0.1
    servers, requests = [], []

    def start(folder: Path) -> str:
        class H(_Handler):
            def do_GET(self):
                requests.append((folder.name, self.path))
                super().do_GET()

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(H, directory=str(folder)))
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}/mnist"

    start.requests = requests
    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def _mirror(tmp_path: Path, name: str) -> Path:
    """A mirror folder holding copies of the real MNIST gz files under mnist/."""
    folder = tmp_path / name / "mnist"
    folder.mkdir(parents=True)
    for stem in MNIST_FILES:
        shutil.copyfile(MNIST_RAW / f"{stem}.gz", folder / f"{stem}.gz")
    return folder.parent


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """A mirror folder of tiny valid IDX files (3 samples per split), with MNIST_FILES patched to their md5s.

    Exercises the mirror logic on kilobytes instead of decompressing 55 MB several times.
    """
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28)),
        "train-labels-idx1-ubyte": np.array([5, 0, 4]),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28)),
        "t10k-labels-idx1-ubyte": np.array([7, 2, 1]),
    }
    folder = tmp_path / "good" / "mnist"
    folder.mkdir(parents=True)
    md5s = {}
    for stem, arr in arrays.items():
        raw = _idx_bytes(arr)
        (folder / f"{stem}.gz").write_bytes(gzip.compress(raw))
        md5s[stem] = hashlib.md5(raw).hexdigest()
    # Patched where download_mnist reads it (ebgan.data only re-exports the name).
    monkeypatch.setattr(data_mnist, "MNIST_FILES", md5s)
    return folder.parent


def test_download_mnist_corrupt_mirror_then_good_then_skip(tmp_path, serve, fake_mnist):
    corrupt = tmp_path / "corrupt"
    shutil.copytree(fake_mnist, corrupt)
    # Valid gzip, wrong content: only the md5 of the decompressed bytes can catch it.
    (corrupt / "mnist" / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(np.array([5, 0, 9]))))
    corrupt_url, good_url = serve(corrupt), serve(fake_mnist)
    root = tmp_path / "root"
    raw = download_mnist(root, mirrors=[corrupt_url, good_url + "/"], progress=False)
    assert raw == root / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(f"{s}.gz" for s in data_mnist.MNIST_FILES)  # no temp files
    for stem, md5 in data_mnist.MNIST_FILES.items():
        assert _gz_md5(raw / f"{stem}.gz") == md5
    assert ("good", "/mnist/train-labels-idx1-ubyte.gz") in serve.requests
    assert ("good", "/mnist/train-images-idx3-ubyte.gz") not in serve.requests  # the corrupt mirror served it fine
    x, y = load_mnist(root, "train")
    assert x.shape == (3, 1, 28, 28) and y.tolist() == [5, 0, 4]

    # Present and valid: nothing is requested again.
    n_requests = len(serve.requests)
    download_mnist(root, mirrors=[corrupt_url], progress=False)
    assert len(serve.requests) == n_requests

    # A corrupt file already in place is replaced.
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    download_mnist(root, mirrors=[good_url], progress=False)
    assert load_mnist(root, "test")[1].tolist() == [7, 2, 1]
    assert serve.requests[n_requests:] == [("good", "/mnist/t10k-labels-idx1-ubyte.gz")]


def test_download_mnist_all_mirrors_fail(tmp_path, serve):
    bad = tmp_path / "bad" / "mnist"
    bad.mkdir(parents=True)
    (bad / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    bad_url = serve(tmp_path / "bad")
    empty = tmp_path / "empty" / "mnist"
    empty.mkdir(parents=True)
    empty_url = serve(tmp_path / "empty")
    root = tmp_path / "root"
    with pytest.raises(EbganError) as e:
        download_mnist(root, mirrors=[bad_url, empty_url], progress=False)
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg and "\n" not in msg
    assert f"{bad_url}/train-images-idx3-ubyte.gz: not a valid gzip file" in msg
    assert f"{empty_url}/train-images-idx3-ubyte.gz: HTTP Error 404" in msg
    assert str(root / "MNIST" / "raw") in msg
    assert not root.exists()  # temp files and the folders the download created removed


def test_download_mnist_unreachable_and_malformed_mirrors(tmp_path, serve):
    # serve() only clears proxy variables here; port 1 on 127.0.0.1 refuses connections.
    with pytest.raises(EbganError) as e:
        download_mnist(tmp_path / "root", mirrors=["http://127.0.0.1:1/mnist", "notaurl://x"], progress=False)
    msg = str(e.value)
    assert "http://127.0.0.1:1/mnist/train-images-idx3-ubyte.gz: <urlopen error" in msg
    assert "notaurl://x/train-images-idx3-ubyte.gz: <urlopen error unknown url type" in msg
    with pytest.raises(EbganError, match="at least one mirror"):
        download_mnist(tmp_path / "root", mirrors=[])


@needs_mnist
def test_load_dataset_download_uses_mirrors(tmp_path, serve, monkeypatch):
    monkeypatch.setattr(data_mnist, "MNIST_MIRRORS", (serve(_mirror(tmp_path, "good")),))
    ds = load_dataset("mnist-test", tmp_path / "root", download=True)
    assert ds.data.shape == (10000, 1, 28, 28)
    assert (tmp_path / "root" / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").is_file()


def test_cli_download_mirror_option(tmp_path, serve, fake_mnist, capsys):
    from ebgan.cli import main

    url = serve(fake_mnist)
    assert (
        main(
            [
                "download",
                "mnist",
                "--data-root",
                str(tmp_path / "root"),
                "--mirror",
                "http://127.0.0.1:1/x",
                "--mirror",
                url,
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == f"MNIST is in {tmp_path / 'root' / 'MNIST' / 'raw'}\n"
    assert load_mnist(tmp_path / "root", "test")[1].tolist() == [7, 2, 1]
    assert main(["download", "mnist", "--data-root", str(tmp_path / "r2"), "--mirror", "http://127.0.0.1:1/x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "name another mirror with --mirror URL" in err


def test_a_failed_download_leaves_no_empty_folders(tmp_path, serve):
    empty = tmp_path / "empty" / "mnist"
    empty.mkdir(parents=True)
    url = serve(tmp_path / "empty")
    root = tmp_path / "data"
    with pytest.raises(EbganError, match="could not download"):
        download_mnist(root, mirrors=[url], progress=False)
    assert not root.exists()
    (tmp_path / "mine").mkdir()
    with pytest.raises(EbganError):
        download_mnist(tmp_path / "mine", mirrors=[url], progress=False)
    assert (tmp_path / "mine").is_dir() and not (tmp_path / "mine" / "MNIST").exists()  # only what it created
