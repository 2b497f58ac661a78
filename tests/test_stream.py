"""Streamed image data (stream=true): the same batches as the in-memory path, from a folder or a zip, with
worker processes, resuming mid-epoch exactly; unreadable files stop the run with one line naming them."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from ebgan.cli import main
from ebgan.config import apply_overrides, from_preset, resolve
from ebgan.data import load_dataset
from ebgan.errors import EbganError
from ebgan.stream import StreamedImages
from ebgan.train import Trainer


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(10):
        where = root / "sub" if i % 3 == 0 else root
        Image.fromarray(rng.integers(0, 256, (40 + i, 36 + 2 * i, 3), dtype=np.uint8)).save(where / f"im{i:02d}.png")
    return root


def _cfg(data, **kw):
    base = {
        "data": str(data),
        "image_size": 32,
        "channels": 3,
        "batch_size": 4,
        "num_threads": 1,
        "g_channels": 4,
        "d_channels": 4,
    }
    return resolve(apply_overrides(from_preset("mnist-conv"), {**base, **kw}))


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_batches_equal_the_in_memory_ones(folder, workers):
    mem = Trainer(_cfg(folder, crop_size=28, flip=True), load_dataset(str(folder), image_size=32, channels=3))
    st = Trainer(
        _cfg(folder, crop_size=28, flip=True, stream=True, data_workers=workers), StreamedImages(folder, 32, 3)
    )
    for _ in range(7):  # three epochs of two batches (10 images, the remainder dropped) and one more
        assert torch.equal(mem.next_batch(), st.next_batch())


def test_zip_equals_folder(folder, tmp_path):
    zpath = tmp_path / "imgs.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in sorted(folder.rglob("*.png")):
            zf.write(p, p.relative_to(folder).as_posix())
        zf.writestr("__MACOSX/._im00.png", b"not an image")
    a, b = StreamedImages(folder, 32, 3), StreamedImages(zpath, 32, 3)
    assert len(a) == len(b) == 10
    for i in range(10):
        assert torch.equal(a[i], b[i])


def test_resume_mid_epoch_reads_on_exactly(folder):
    cfg = _cfg(folder, stream=True, data_workers=2)
    first = Trainer(cfg, StreamedImages(folder, 32, 3))
    first.next_batch()
    state = first.state_dict()
    rest = [first.next_batch() for _ in range(3)]
    resumed = Trainer(cfg, StreamedImages(folder, 32, 3))
    resumed.load_state_dict(state)
    assert all(torch.equal(x, resumed.next_batch()) for x in rest)


def test_cli_trains_streamed_and_names_an_unreadable_file(folder, tmp_path, capsys):
    out = tmp_path / "run"
    args = [
        "train",
        "--preset",
        "mnist-conv",
        "--data",
        str(folder),
        "--steps",
        "2",
        "--no-progress",
        "--set",
        "stream=true",
        "--set",
        "image_size=32",
        "--set",
        "channels=3",
        "--set",
        "batch_size=4",
        "--set",
        "g_channels=4",
        "--set",
        "d_channels=4",
        "--set",
        "n_grid=4",
    ]
    assert main(args + ["--out", str(out)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    (folder / "broken.png").write_bytes(b"\x89PNG but not really")
    assert main(args + ["--steps", "6", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ebgan: error: cannot read image ") and "broken.png" in err[0]
    # The failed run's workers are stopped with it, not left to the interpreter's exit: they ignore SIGTERM,
    # which is how the exit ends leftover children, so the process would wait for them forever.
    import multiprocessing

    assert multiprocessing.active_children() == []


def test_stream_refuses_data_held_in_memory_and_labels():
    with pytest.raises(EbganError, match="stream=true reads an image folder"):
        resolve(apply_overrides(from_preset("mnist"), {"stream": True}))
    with pytest.raises(EbganError, match="does not combine with holdout"):
        resolve(apply_overrides(from_preset("mnist-conv"), {"stream": True, "data": "x", "holdout": 0.1}))
    with pytest.raises(EbganError, match="neither a folder nor a zip"):
        StreamedImages("/nonexistent/imgs", 32, 3)


def test_ctrl_c_to_the_process_group_checkpoints_once_and_leaves_no_worker(folder, tmp_path):
    """A terminal's Ctrl-C reaches the training process and its data workers: the workers ignore it, the
    trainer checkpoints and exits with 130, saying so once."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[1] / "src")
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ebgan.cli",
            "train",
            "--preset",
            "mnist-conv",
            "--data",
            str(folder),
            "--steps",
            "1000000",
            "--no-progress",
            "--out",
            str(out),
            "--set",
            "stream=true",
            "--set",
            "image_size=32",
            "--set",
            "channels=3",
            "--set",
            "batch_size=4",
            "--set",
            "g_channels=4",
            "--set",
            "d_channels=4",
            "--set",
            "log_every=1",
        ],
        env=dict(os.environ, PYTHONPATH=src, OMP_NUM_THREADS="1"),
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while not ((out / "metrics.jsonl").is_file() and (out / "metrics.jsonl").read_text().count("\n") >= 3):
        assert time.time() < deadline and proc.poll() is None, "the run did not start"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130
    assert err.count("SIGINT received") == 1 and "stopped by SIGINT" in err
    assert (out / "checkpoints" / "latest").is_file()
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # nothing of the group is left
