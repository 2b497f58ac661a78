"""Every reader of files and values from outside fed random and mutated inputs (Hypothesis).

Readers: IDX files (MNIST), ``.npy`` arrays (``ebgan score`` / ``eval`` inputs, known anomalies), image folders
and zips (Pillow), sweep grid files (JSON and YAML), ``--set`` values, a run folder's ``config.json``,
checkpoints (``weights.safetensors`` and ``state.pt``, loaded into a trainer) and the session files of
``ebgan seq``. Inputs: valid files mutated (truncated, bit-flipped, bytes inserted, deleted or overwritten,
garbage appended), random bytes, wrong sizes and types, huge headers, NaN and infinite values, decompression
bombs (gzip, PNG, zip), symlink loops.

The property, for every input: the reader returns a valid result or raises one ``EbganError`` whose message
is one line; never another exception, never a hang (an alarm stops any input after ``HANG_S`` seconds), and
the test process's peak resident memory grows by less than ``MEMORY_BOUND`` over all of a reader's inputs,
bombs included.

Profiles (tests/conftest.py): ``ci`` (default) runs 50 examples per test; ``long`` 1000
(``--hypothesis-profile=long``). ``EBGAN_FUZZ_REPORT=FILE`` writes the count of inputs per reader (valid,
refused) to FILE, which ``benchmarks/reliability.py`` reads.
"""

from __future__ import annotations

import collections
import contextlib
import gzip
import io
import json
import os
import resource
import signal
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebgan.config import Config, apply_overrides, resolve, to_dict, validate
from ebgan.data import _read_idx, check_like, load_dataset, load_image_folder, read_npy
from ebgan.errors import EbganError

HANG_S = 30
MEMORY_BOUND = 512 << 20  # bytes of peak resident memory a reader's inputs may add
COUNTS: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
NO_FIXTURE_CHECK = settings(
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ]
)


class Hang(BaseException):
    """An input that took longer than HANG_S (a BaseException, so that no reader's handler swallows it)."""


@contextlib.contextmanager
def time_limit(seconds: float):
    def alarm(signum, frame):
        raise Hang(f"no answer after {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def check(reader: str, fn):
    """``fn()`` under the property: its result, or None for an EbganError (counted per reader)."""
    COUNTS[reader]["inputs"] += 1
    with time_limit(HANG_S):
        try:
            out = fn()
        except EbganError as e:
            assert "\n" not in str(e), f"the error is not one line: {e!r}"
            COUNTS[reader]["refused"] += 1
            return None
    COUNTS[reader]["valid"] += 1
    return out


def refused(reader: str, fn) -> str:
    """``fn()`` under the property, where it must be refused: the EbganError's message."""
    COUNTS[reader]["inputs"] += 1
    with time_limit(HANG_S), pytest.raises(EbganError) as e:
        fn()
    assert "\n" not in str(e.value)
    COUNTS[reader]["refused"] += 1
    return str(e.value)


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes


@pytest.fixture(autouse=True)
def _memory_and_rng():
    before, rng = _peak_rss(), torch.get_rng_state()
    yield
    torch.set_rng_state(rng)
    grown = _peak_rss() - before
    assert grown < MEMORY_BOUND, f"peak resident memory grew by {grown >> 20} MiB"


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    path = os.environ.get("EBGAN_FUZZ_REPORT")
    if path:
        Path(path).write_text(json.dumps({k: dict(v) for k, v in sorted(COUNTS.items())}, indent=1) + "\n")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# ------------------------------------------------------------------------------------------------ mutations
@st.composite
def mutated(draw, valid: bytes, max_ops: int = 4) -> bytes:
    """``valid`` as is, or with a few mutations: truncated, bits flipped, bytes inserted, deleted or
    overwritten, garbage appended; or random bytes instead."""
    kind = draw(st.sampled_from(["same", "mutate", "mutate", "mutate", "random", "truncate"]))
    if kind == "same":
        return valid
    if kind == "random":
        return draw(st.binary(max_size=512))
    data = bytearray(valid)
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, max(0, len(data) - 1)))])
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(["flip", "flip", "insert", "delete", "overwrite", "append", "head"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "head" and data:  # headers matter most: mutate the first 64 bytes more often
            data[min(pos, 63, len(data) - 1)] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == "overwrite" and data:
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[pos : pos + len(chunk)] = chunk
        elif op == "append":
            data += draw(st.binary(min_size=1, max_size=64))
    return bytes(data)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    path.write_bytes(data)
    return path


def _deflate_zeros(n: int) -> bytes:
    """A raw deflate stream of ``n`` zero bytes (about n / 1000 bytes long)."""
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    chunk, out = bytes(1 << 20), []
    for _ in range(n >> 20):
        out.append(c.compress(chunk))
    return b"".join(out) + c.flush()


def _gzip_zeros(prefix: bytes, n: int) -> bytes:
    """A gzip file of ``prefix`` followed by ``n`` zero bytes."""
    c = zlib.compressobj(1, zlib.DEFLATED, 31)
    out = [c.compress(prefix)]
    chunk = bytes(1 << 20)
    for _ in range(n >> 20):
        out.append(c.compress(chunk))
    return b"".join(out) + c.flush()


# --------------------------------------------------------------------------------------------------- IDX
def idx_bytes(arr: np.ndarray) -> bytes:
    return bytes([0, 0, 8, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape) + arr.tobytes()


@st.composite
def idx_files(draw):
    ndim = draw(st.sampled_from([1, 3]))
    shape = tuple(draw(st.lists(st.integers(0, 6), min_size=ndim, max_size=ndim)))
    arr = np.frombuffer(draw(st.binary(min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))), np.uint8).reshape(
        shape
    )
    raw = draw(mutated(idx_bytes(arr)))
    gz = draw(st.booleans())
    if gz:
        raw = draw(mutated(gzip.compress(raw)))
    return raw, gz, draw(st.sampled_from([ndim, ndim, 1, 3]))


@NO_FIXTURE_CHECK
@given(idx_files())
def test_fuzz_idx(work, case):
    raw, gz, dims = case
    path = write(work / ("x-idx-ubyte.gz" if gz else "x-idx-ubyte"), raw)
    out = check("IDX files (MNIST)", lambda: _read_idx(path, dims))
    if out is not None:
        assert out.dtype == np.uint8 and out.ndim == dims


def test_idx_bombs_are_refused_without_inflating(work):
    # 1 GiB of zeros in 1 MB of gzip behind a header promising 2 x 28 x 28 bytes: read up to the promise only.
    bomb = write(work / "bomb-idx3-ubyte.gz", _gzip_zeros(idx_bytes(np.zeros((2, 28, 28), np.uint8)), 1 << 30))
    assert "more bytes, the header promises 1584" in refused("IDX files (MNIST)", lambda: _read_idx(bomb, 3))
    # Dimensions whose product overflows int64 next to a zero one: numpy cannot even shape an empty array so.
    zero = write(work / "zero-idx3-ubyte", bytes([0, 0, 8, 3]) + struct.pack(">III", 2382364672, 3875536896, 0))
    assert "more than the reader's limit" in refused("IDX files (MNIST)", lambda: _read_idx(zero, 3))
    # A header promising 2**96 bytes: refused before anything is read.
    huge = write(work / "huge-idx3-ubyte", bytes([0, 0, 8, 3]) + b"\xff\xff\xff\xff" * 3)
    assert "more than the reader's limit" in refused("IDX files (MNIST)", lambda: _read_idx(huge, 3))


# -------------------------------------------------------------------------------------------------- .npy
DTYPES = ["uint8", "float32", "float64", "int64", "bool", "complex64", "float16", ">f4"]


@st.composite
def npy_files(draw):
    kind = draw(st.sampled_from(["array", "array", "crafted"]))
    if kind == "array":
        dtype = np.dtype(draw(st.sampled_from(DTYPES)))
        shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=4)))
        n = int(np.prod(shape)) * dtype.itemsize
        arr = np.frombuffer(draw(st.binary(min_size=n, max_size=n)), dtype).reshape(shape).copy()
        if dtype.kind == "f" and arr.size and draw(st.booleans()):
            arr.flat[0] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        return draw(mutated(buf.getvalue()))
    # A header written by hand: any shape (huge ones too), dtype and order, with a little data.
    shape = draw(st.lists(st.integers(0, 2**62), max_size=4).map(tuple))
    descr = draw(st.sampled_from(["<f4", "|u1", "|O", "<U5", "|V8", "<M8[s]", "[('a', '<f4')]", "<f4x", "bogus"]))
    fortran = draw(st.sampled_from(["False", "True", "0", "'x'"]))
    header = (
        f"{{'descr': {descr if descr.startswith('[') else repr(descr)}, 'fortran_order': {fortran}, "
        f"'shape': {shape!r}, }}"
    )
    header = header.ljust(len(header) + (64 - (len(header) + 11) % 64)) + "\n"
    body = draw(st.binary(max_size=64))
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + body


LIKE_POINTS = load_dataset("ring", n_points=10)
LIKE_IMAGES = type(LIKE_POINTS)("images", "image", torch.zeros(0, 1, 4, 4, dtype=torch.uint8))


@NO_FIXTURE_CHECK
@given(npy_files())
def test_fuzz_npy(work, raw):
    path = write(work / "x.npy", raw)

    def read():
        x = read_npy(path, "INPUT")
        assert isinstance(x, np.ndarray)
        # What `ebgan score` and known_anomalies do next: the array against a run's samples.
        for like in (LIKE_POINTS, LIKE_IMAGES):
            with contextlib.suppress(EbganError):
                t = check_like(torch.from_numpy(np.ascontiguousarray(x)), like, "INPUT")
                assert like.kind == "image" or bool(torch.isfinite(t).all())
        return x

    check(".npy arrays", read)


def test_npy_header_bigger_than_the_file_is_refused(work):
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"
    header = header.ljust(118) + "\n"
    path = write(work / "big.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"0" * 8)
    assert "promises 8,000,000,000,000 bytes" in refused(".npy arrays", lambda: read_npy(path))


# ------------------------------------------------------------------------------------ image folders and zips
def image_bytes(draw) -> tuple[str, bytes]:
    fmt, ext = draw(st.sampled_from([("PNG", ".png"), ("JPEG", ".jpg"), ("BMP", ".bmp"), ("WEBP", ".webp")]))
    mode = draw(st.sampled_from(["L", "RGB", "RGBA", "P", "1", "I;16", "LA"]))
    w, h = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    from PIL import Image

    im = Image.frombytes("L", (w, h), draw(st.binary(min_size=w * h, max_size=w * h)))
    try:
        im = im.convert(mode)
        buf = io.BytesIO()
        im.save(buf, format=fmt)
    except (OSError, ValueError, KeyError):  # a mode the format cannot store: a PNG of the gray image then
        buf = io.BytesIO()
        Image.frombytes("L", (w, h), bytes(w * h)).save(buf, format="PNG")
        ext = ".png"
    return ext, draw(mutated(buf.getvalue()))


@st.composite
def image_sets(draw):
    files = [image_bytes(draw) for _ in range(draw(st.integers(1, 3)))]
    links = draw(st.lists(st.sampled_from(["loop-dir", "self", "dangling", "chain"]), max_size=2, unique=True))
    return files, links, draw(st.sampled_from([1, 3])), draw(st.sampled_from([4, 8]))


def _make_folder(folder: Path, files, links) -> None:
    import shutil

    if folder.exists():
        shutil.rmtree(folder)
    (folder / "sub").mkdir(parents=True)
    for i, (ext, data) in enumerate(files):
        (folder / ("sub" if i % 2 else "") / f"img{i}{ext}").write_bytes(data)
    for link in links:
        if link == "loop-dir":  # a folder symlink back to its parent: a loop for any walker that follows it
            (folder / "sub" / "loop").symlink_to("..", target_is_directory=True)
        elif link == "self":
            (folder / "self.png").symlink_to("self.png")
        elif link == "dangling":
            (folder / "gone.png").symlink_to("no-such-file.png")
        elif link == "chain":
            (folder / "a.png").symlink_to("b.png")
            (folder / "b.png").symlink_to("a.png")


@NO_FIXTURE_CHECK
@given(image_sets())
def test_fuzz_image_folder(work, case):
    files, links, channels, size = case
    folder = work / "images"
    _make_folder(folder, files, links)
    x = check("image folders", lambda: load_image_folder(folder, size, channels))
    if x is not None:
        assert x.dtype == torch.uint8 and tuple(x.shape[1:]) == (channels, size, size)


@st.composite
def zip_files(draw):
    members = [image_bytes(draw) for _ in range(draw(st.integers(1, 3)))]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))) as zf:
        for i, (ext, data) in enumerate(members):
            zf.writestr(f"d/img{i}{ext}", data)
    return draw(mutated(buf.getvalue(), max_ops=3)), draw(st.sampled_from([1, 3]))


@NO_FIXTURE_CHECK
@given(zip_files())
def test_fuzz_image_zip(work, case):
    from ebgan.stream import StreamedImages

    raw, channels = case
    path = write(work / "images.zip", raw)

    def read():
        ds = StreamedImages(path, 8, channels)
        return [ds[i] for i in range(len(ds))]

    out = check("image zips", read)
    for t in out or []:
        assert t.dtype == torch.uint8 and tuple(t.shape) == (channels, 8, 8)


def _png_header_only(w: int, h: int) -> bytes:
    """A PNG that claims ``w x h`` pixels and holds a few bytes of image data: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_image_bombs_are_refused_from_their_headers(work):
    from ebgan.stream import MAX_MEMBER_BYTES, StreamedImages

    for w, h in ((100_000, 100_000), (9_000, 9_000)):  # above Pillow's own limit, and above ours only
        folder = work / f"bomb-{w}"
        write(folder / "bomb.png", _png_header_only(w, h))
        msg = refused("image folders", lambda folder=folder: load_image_folder(folder, 8, 3))
        assert "pixels" in msg or "decompression bomb" in msg, msg
    # A zip member that inflates to 1 GiB (1 MB stored): refused from the zip's directory, never inflated.
    # Written by hand: local header, the deflate stream, central directory (the CRC is never reached).
    data = _deflate_zeros(1 << 30)
    name = b"d/zeros.png"
    crc, size, csize = 0, 1 << 30, len(data)
    local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, csize, size, len(name), 0) + name
    central = (
        struct.pack(
            "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, csize, size, len(name), 0, 0, 0, 0, 0, 0
        )
        + name
    )
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local) + csize, 0)
    path = write(work / "bomb.zip", local + data + central + end)
    before = _peak_rss()
    msg = refused("image zips", lambda: StreamedImages(path, 8, 3)[0])
    assert f"more than the limit of {MAX_MEMBER_BYTES:,}" in msg, msg
    assert 0 <= _peak_rss() - before < 64 << 20  # the bomb is refused before it is inflated


# ------------------------------------------------------------------------------------------- sweep grids
FIELDS = [f for f in to_dict(Config())] + ["lr"]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["adam", "sgd", "ring", "mnist", "ebgan", "nan"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=12,
)


@st.composite
def grid_specs(draw):
    fields = st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)), VALUES, max_size=4)
    spec = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "preset": st.one_of(st.sampled_from(["ring", "mnist", "nope"]), VALUES),
                "steps": st.one_of(st.integers(-2, 10**6), VALUES),
                "base": st.one_of(fields, VALUES),
                "grid": st.one_of(fields, VALUES),
                "methods": st.one_of(
                    st.dictionaries(
                        st.one_of(st.sampled_from(["gan", "ebgan", "ebgan-pt", "wgan"]), st.text(max_size=6)),
                        st.one_of(st.none(), fields),
                        max_size=3,
                    ),
                    VALUES,
                ),
                "default_methods": st.one_of(st.lists(st.sampled_from(["gan", "ebgan", "x"]), max_size=3), VALUES),
                "description": VALUES,
                "bogus": VALUES,
            },
        )
    )
    return spec


YAML_BOMB = (
    "description:\n  a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
    + "".join(
        f"  {chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    + "grid: {g_size: *i}\nmethods: {ebgan: {lr: *h}}\n"
)


@st.composite
def grid_files(draw):
    kind = draw(st.sampled_from(["json", "json", "yaml", "yaml", "text", "bomb", "deep"]))
    if kind == "json":
        return ".json", draw(mutated(json.dumps(draw(grid_specs())).encode(), max_ops=2))
    if kind == "yaml":
        import yaml

        return ".yaml", draw(mutated(yaml.safe_dump(draw(grid_specs())).encode(), max_ops=2))
    if kind == "bomb":  # the billion laughs: 9**9 list items by aliases
        return ".yaml", YAML_BOMB.encode()
    if kind == "deep":  # nesting deep enough to exhaust a recursive parser
        depth = draw(st.integers(900, 2000))
        return draw(st.sampled_from([".json", ".yaml"])), b"[" * depth + b"]" * depth
    return draw(st.sampled_from([".json", ".yaml", ".yml"])), draw(st.binary(max_size=256))


@NO_FIXTURE_CHECK
@given(grid_files())
def test_fuzz_grid_file(work, case):
    from ebgan.sweep.grid import config_for
    from ebgan.sweep.run import plan

    suffix, raw = case
    path = write(work / f"grid{suffix}", raw)

    def read():
        _, spec, methods, chosen = plan(str(path))
        for m in methods:  # what run_sweep does next: a validated config per setting
            for s in chosen[m][:3]:
                config_for(spec, s, spec["steps"] or 10, 0)
        return chosen

    check("sweep grid files", read)


# ----------------------------------------------------------------------------------------- --set values
TEXT_VALUES = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        ["nan", "inf", "-inf", "1e400", "none", "null", "true", "٣", "1_000", "0x10", " 7 ", "9" * 5000, ""]
    ),
    st.integers().map(str),
    st.floats().map(str),
)


@given(
    st.one_of(st.sampled_from(FIELDS + ["d-size", "lr"]), st.text(max_size=10)),
    TEXT_VALUES,
    st.sampled_from(["=", "", "=="]),
)
def test_fuzz_set_values(key, value, sep):
    def read():
        cfg = resolve(apply_overrides(Config(), None, [f"{key}{sep}{value}"]))
        validate(cfg)
        return cfg

    check("--set values", read)


# ------------------------------------------------------------------------------------ a run's config.json
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8,
)


@st.composite
def config_files(draw):
    kind = draw(st.sampled_from(["fields", "fields", "mutated", "json", "bytes"]))
    base = to_dict(resolve(Config()))
    if kind == "fields":  # the real fields, some given wrong values (types, NaN, huge), some dropped or added
        d = dict(base)
        for k in draw(st.lists(st.sampled_from(sorted(base)), max_size=4)):
            d[k] = draw(JSON_VALUES)
        for k in draw(st.lists(st.sampled_from(sorted(base)), max_size=2)):
            d.pop(k, None)
        if draw(st.booleans()):
            d[draw(st.text(max_size=8))] = draw(JSON_VALUES)
        return json.dumps(d).encode()
    if kind == "mutated":
        return draw(mutated(json.dumps(base).encode(), max_ops=3))
    if kind == "json":
        return json.dumps(draw(JSON_VALUES)).encode()
    return draw(st.binary(max_size=256))


@NO_FIXTURE_CHECK
@given(config_files())
def test_fuzz_run_config(work, raw):
    from ebgan.rundir import saved_config

    write(work / "run" / "config.json", raw)
    check("run config.json", lambda: resolve(saved_config(work / "run")))


# ---------------------------------------------------------------------------------------------- checkpoints
@pytest.fixture(scope="module")
def trainer_and_checkpoint(tmp_path_factory):
    from ebgan.train import Trainer

    cfg = resolve(
        apply_overrides(
            Config(), {"data": "ring", "g_size": 8, "d_size": 8, "steps": 4, "num_threads": 1, "batch_size": 8}
        )
    )
    trainer = Trainer(cfg, load_dataset("ring", n_points=64))
    trainer.train_step()
    out = tmp_path_factory.mktemp("ckpt")
    ckpt = trainer.save(out, {"sums": {"loss_d": torch.tensor(1.0)}, "count": 1})
    return trainer, (ckpt / "weights.safetensors").read_bytes(), (ckpt / "state.pt").read_bytes()


def _safetensors_crafted(draw, valid: bytes) -> bytes:
    """``valid`` with its JSON header rewritten: offsets, shapes or dtypes changed, or a header length that
    does not fit the file."""
    n = struct.unpack("<Q", valid[:8])[0]
    header = json.loads(valid[8 : 8 + n])
    key = draw(st.sampled_from(sorted(k for k in header if k != "__metadata__")))
    field = draw(st.sampled_from(["data_offsets", "shape", "dtype", "length", "drop"]))
    if field == "data_offsets":
        header[key]["data_offsets"] = [draw(st.integers(-5, 2**64 - 1)), draw(st.integers(-5, 2**64 - 1))]
    elif field == "shape":
        header[key]["shape"] = draw(st.lists(st.integers(-1, 2**40), max_size=3))
    elif field == "dtype":
        header[key]["dtype"] = draw(st.sampled_from(["F64", "I8", "BOOL", "X1", "F8_E4M3", ""]))
    elif field == "drop":
        del header[key]
    text = json.dumps(header).encode()
    length = len(text) if field != "length" else draw(st.sampled_from([0, 7, len(text) + 1, 2**40, 2**64 - 1]))
    return struct.pack("<Q", length) + text + valid[8 + n :]


def _state_crafted(draw) -> bytes:
    """A state.pt written by torch.save whose fields have wrong values: types, shapes, missing keys, NaN."""
    from ebgan.checkpoint import FORMAT_VERSION

    state = {
        "format_version": FORMAT_VERSION,
        "step": 1,
        "elapsed": 0.0,
        "pos": 0,
        "perm": torch.arange(64),
        "loop": {"sums": {}, "count": 0},
    }
    wrong = st.one_of(
        st.none(),
        st.integers(),
        st.floats(),
        st.text(max_size=5),
        st.just({}),
        st.just([1, 2]),
        st.just(torch.zeros(3)),
        st.just(torch.tensor(float("nan"))),
    )
    for k in draw(
        st.lists(
            st.sampled_from(
                [
                    "format_version",
                    "step",
                    "elapsed",
                    "opt_g",
                    "opt_d",
                    "scaler_g",
                    "gen_data",
                    "gen_noise",
                    "torch_rng",
                    "perm",
                    "pos",
                    "objective",
                    "threads",
                    "ema_updates",
                    "loop",
                ]
            ),
            max_size=4,
        )
    ):
        state[k] = draw(wrong)
    buf = io.BytesIO()
    torch.save(state if draw(st.integers(0, 9)) else draw(wrong), buf)
    return buf.getvalue()


@st.composite
def checkpoint_files(draw, weights: bytes, state: bytes):
    which = draw(st.sampled_from(["weights", "weights-header", "state", "state-fields", "both"]))
    w, s = weights, state
    if which in ("weights", "both"):
        w = draw(mutated(weights))
    if which == "weights-header":
        w = _safetensors_crafted(draw, weights)
    if which in ("state", "both"):
        s = draw(mutated(state))
    if which == "state-fields":
        s = _state_crafted(draw)
    return w, s


@pytest.fixture(scope="module")
def checkpoint_cases(trainer_and_checkpoint):
    return trainer_and_checkpoint


def test_fuzz_checkpoint(work, checkpoint_cases):
    trainer, weights, state = checkpoint_cases

    @NO_FIXTURE_CHECK
    @given(checkpoint_files(weights, state))
    def fuzz(case):
        w, s = case
        ckpt = work / "checkpoint"
        write(ckpt / "weights.safetensors", w)
        write(ckpt / "state.pt", s)
        check("checkpoints", lambda: trainer.load(ckpt))

    fuzz()
    # NaN weights are a damaged checkpoint, not a model.
    from safetensors.torch import load, save

    flat = load(weights)
    flat[sorted(flat)[0]] = torch.full_like(flat[sorted(flat)[0]], float("nan"))
    ckpt = work / "checkpoint"
    write(ckpt / "weights.safetensors", save(flat))
    write(ckpt / "state.pt", state)
    assert "NaN or infinite" in refused("checkpoints", lambda: trainer.load(ckpt))


# -------------------------------------------------------------------------------------- ebgan seq sessions
@st.composite
def session_files(draw):
    """Session files (one session of keys per line) and CSV files; keys beyond int64 and past Python's limit of
    4,300 digits on integer strings (leading zeros count against it too) among the odd ones."""
    kind = draw(st.sampled_from(["sessions", "csv", "text", "bytes"]))
    odd = ["-1", "x", "1.5", "٣", "\x00", "1e3", "0x1f", str(2**63 - 1), str(2**63), "9" * 4300, "9" * 5000]
    odd += ["0" * 5000 + "1"]
    keys = st.lists(st.one_of(st.integers(0, 300).map(str), st.sampled_from(odd)), max_size=6).map(" ".join)
    if kind == "sessions":
        return ".txt", draw(mutated("\n".join(draw(st.lists(keys, max_size=5))).encode(), max_ops=2))
    if kind == "csv":
        rows = draw(st.lists(st.tuples(st.text(max_size=4), keys, st.sampled_from(["0", "1", "2", ""])), max_size=4))
        text = "id,session,label\n" + "".join(f'{a},"{b}",{c}\n' for a, b, c in rows)
        return ".csv", draw(mutated(text.encode(), max_ops=2))
    if kind == "text":
        return draw(st.sampled_from([".txt", ".csv"])), draw(st.text(max_size=200)).encode()
    return draw(st.sampled_from([".txt", ".csv"])), draw(st.binary(max_size=200))


def _read_sessions(work: Path, case, labels: bool):
    seq = pytest.importorskip("ebgan.seq.data")
    suffix, raw = case
    path = write(work / f"sessions{suffix}", raw)
    label = "label" if labels and suffix == ".csv" else None
    s = check("ebgan seq session files", lambda: seq.read_sessions(path, label_column=label))
    if s is not None:
        assert len(s) > 0 and all(isinstance(k, int) and 0 <= k < 2**63 for sess in s.keys for k in sess)


@NO_FIXTURE_CHECK
@given(session_files(), st.booleans())
def test_fuzz_session_files(work, case, labels):
    """Session files and CSV files, valid and mutated."""
    _read_sessions(work, case, labels)


def test_a_session_key_longer_than_python_parses(work):
    """Found by the long profile: a key of over 4,300 digits made int() raise ValueError (Python's limit on
    integer strings); now refused in one line, as is any key beyond int64 (leading zeros are not digits)."""
    seq = pytest.importorskip("ebgan.seq.data")
    path = write(work / "sessions.txt", b"1 2\n1 2 " + b"9" * 5000 + b"\n")
    msg = refused("ebgan seq session files", lambda: seq.read_sessions(path))
    assert msg.startswith(f"{path}, line 2: log key 99999") and "(5,000 digits) is too large" in msg
    _read_sessions(work, (".csv", b"session\n1 " + b"0" * 5000 + b"1\n"), False)


# ------------------------------------------------------------------------------ what the long profile found
def test_inputs_the_fuzzer_found(work, trainer_and_checkpoint):
    """Inputs that broke a reader under the long profile, kept here so that the short profile checks them."""
    from ebgan.sweep.run import plan

    # PyYAML raises OverflowError for an escape beyond Unicode.
    path = write(work / "overflow.yaml", b'description: "\\U8004D59C"\ngrid: {g_size: [16]}\n')
    assert "is unreadable" in refused("sweep grid files", lambda: plan(str(path)))
    # A state.pt whose format_version is a tensor: comparing it raised "Boolean value of Tensor ... ambiguous".
    trainer, weights, _ = trainer_and_checkpoint
    buf = io.BytesIO()
    torch.save({"format_version": torch.zeros(3)}, buf)
    ckpt = work / "tensor-version"
    write(ckpt / "weights.safetensors", weights)
    write(ckpt / "state.pt", buf.getvalue())
    assert "checkpoint format Tensor is not 1" in refused("checkpoints", lambda: trainer.load(ckpt))
    # A big-endian .npy: torch.from_numpy refused it after read_npy had accepted it.
    buf = io.BytesIO()
    np.save(buf, np.arange(6, dtype=">f4").reshape(3, 2))
    x = check(".npy arrays", lambda: read_npy(write(work / "big-endian.npy", buf.getvalue())))
    assert x.dtype.isnative and torch.from_numpy(x).tolist() == [[0, 1], [2, 3], [4, 5]]
    # A --set value holding a line break made a two-line error.
    assert (
        refused("--set values", lambda: apply_overrides(Config(), None, ["image_size=\n"]))
        == "--set image_size='\\n': expected int"
    )
