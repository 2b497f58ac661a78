"""Faults that real machines have: a full disk, I/O errors, a read-only or deleted folder, killed sweep workers.

A write that fails anywhere (injected as ``OSError`` at each write point through ``EBGAN_FAULT_OSERROR``, or
real: a tmpfs that fills up, a file system remounted read-only, a folder deleted under the run) must end the
command with one line naming the file and the cause and exit status 3, leave the previous complete checkpoint
intact, and ``--resume`` (a sweep: the same command again) must then reach exactly the uninterrupted result.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ebgan import _faults
from ebgan._faults import CAUSES as CAUSE
from ebgan._faults import PROBE_RUN as RUN
from ebgan._faults import PROBE_SWEEP as SWEEP
from ebgan._faults import TRAIN_WRITE_POINTS
from ebgan._fileio import AppendLog, atomic_write, atomic_write_text, write_all
from ebgan.checkpoint import load_state, save_checkpoint, write_checkpoint_dir
from ebgan.cli import main
from ebgan.errors import EbganError, WriteFailed
from ebgan.sweep import run_sweep
from ebgan.sweep.backends import LocalPool
from ebgan.sweep.store import Results, read_rows


@pytest.fixture(autouse=True)
def _no_faults(monkeypatch):
    monkeypatch.delenv("EBGAN_FAULT_OSERROR", raising=False)
    monkeypatch.delenv("EBGAN_FAULT", raising=False)
    _faults.reset()
    yield
    _faults.reset()


def ebgan(argv, capsys, fault: str | None = None, monkeypatch=None) -> tuple[int, list[str]]:
    """``ebgan ARGV`` in this process (``fault``: an EBGAN_FAULT_OSERROR spec): exit status, stderr lines."""
    capsys.readouterr()
    _faults.reset()
    if fault:
        monkeypatch.setenv("EBGAN_FAULT_OSERROR", fault)
    try:
        code = main([str(a) for a in argv])
    finally:
        if fault:
            monkeypatch.delenv("EBGAN_FAULT_OSERROR")
    return code, capsys.readouterr().err.strip().splitlines()


def result(run: Path) -> dict:
    """What must not depend on faults: weights, log rows without times, best checkpoint, threshold, samples."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("time", None)
    final = run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()
    threshold = json.loads((run / "threshold.json").read_text())
    return {
        "rows": rows,
        "final": final.name,
        "weights": weights(final),
        "best": json.loads((run / "best.json").read_text()),
        "best_weights": weights(run / "checkpoints" / "best"),
        "threshold": threshold,
        "samples": (run / "samples.png").read_bytes(),
    }


def weights(ckpt: Path) -> dict[str, bytes]:
    return {k: v.numpy().tobytes() for k, v in load_file(str(ckpt / "weights.safetensors")).items()}


def checkpoint_state(run: Path) -> tuple[str | None, str | None]:
    """The checkpoint ``latest`` names and a digest of its files (None, None without one)."""
    pointer = run / "checkpoints" / "latest"
    if not pointer.is_file():
        return None, None
    ckpt = run / "checkpoints" / pointer.read_text().strip()
    h = hashlib.sha256()
    for name in ("weights.safetensors", "state.pt", "config.json"):
        h.update((ckpt / name).read_bytes())
    return ckpt.name, h.hexdigest()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    run = tmp_path_factory.mktemp("ref") / "run"
    assert main([*RUN, "--out", str(run)]) == 0
    return {"run": run, "result": result(run)}


# ------------------------------------------------------------------------------------------------ training
# Every write point of a training run in the order the run reaches it, each failing in turn with one of the
# four kinds of fault; after each, the command the error line names continues the run. The errnos rotate so
# that every point and every kind is met; benchmarks/reliability.py runs every kind at every point.
CHAIN = [
    ("{run}/.lock", errno.ENOSPC),
    ("{run}/config.json", errno.EIO),
    ("{run}/data.json", errno.EROFS),
    ("{run}/metrics.jsonl", errno.ENOSPC),
    ("{run}/tensorboard/events.out.tfevents.*", errno.EIO),
    ("{run}/checkpoints/step-*/weights.safetensors", errno.EROFS),
    ("{run}/checkpoints/step-*/state.pt", errno.ENOSPC),
    ("{run}/checkpoints/step-*/config.json", errno.EIO),
    ("{run}/checkpoints/latest", errno.ENOENT),
    ("{run}/samples/step-*.png", errno.ENOSPC),
    ("{run}/checkpoints/best/state.pt", errno.EIO),
    ("{run}/best.json", errno.EROFS),
    ("{run}/samples.png", errno.ENOENT),
    ("{run}/energy.png", errno.ENOSPC),
    ("{run}/eval.png", errno.EIO),
    ("{run}/landscape.png", errno.EROFS),
    ("{run}/threshold.json", errno.ENOSPC),
]


def test_the_chain_covers_every_listed_write_point():
    """CHAIN fails the write points that ``benchmarks/reliability.py`` measures, in the same order."""
    assert [glob for glob, _ in CHAIN] == [glob for _, glob, _ in TRAIN_WRITE_POINTS]


# The faults the chain above leaves out so that every write point also meets both a full disk (ENOSPC) and a
# failing one (EIO) in the suite: the other of the two where the chain has one, both where it has EROFS or ENOENT
# (two faults in a row at the same point: the second on the command the first one's line names).
BOTH = [(glob, other) for glob, code in CHAIN for other in (errno.ENOSPC, errno.EIO) if other != code]


@pytest.mark.parametrize("chain", [CHAIN, BOTH], ids=["every-kind", "enospc-and-eio"])
def test_a_failed_write_at_every_point_is_one_line_and_resume_is_exact(chain, reference, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    seen = []
    for glob, code in chain:
        glob = glob.format(run=run)
        before = checkpoint_state(run)
        # The command the previous error line named: the same command before the run wrote anything, else --resume.
        argv = (
            ["train", "--out", run, "--resume", "--no-progress"]
            if (run / "config.json").exists()
            else [*RUN, "--out", run]
        )
        status, err = ebgan(argv, capsys, f"{glob}:{errno.errorcode[code]}", monkeypatch)
        assert status == 3, (glob, err)
        assert len(err) == 1, err
        line = err[0]
        prefix = f"ebgan: error: {CAUSE[code]}"
        assert line.startswith(prefix) and " writing " in line, line
        path = line.split(" writing ", 1)[1].split(": ", 1)[0]
        assert fnmatch.fnmatch(path, glob), (path, glob)
        name, digest = checkpoint_state(run)
        if name is not None:  # the checkpoint the line names is complete and was not touched by the failure
            step = int(name.split("-")[1])
            assert f"the last complete checkpoint is step {step};" in line, line
            assert before[0] != name or before[1] == digest
            load_state(run / "checkpoints" / name)
        assert line.endswith("--resume)") or line.endswith("run the same command again"), line
        assert not [p for p in run.rglob("*.tmp")], "a failed write must leave no temporary file"
        seen.append(glob)
    status, err = ebgan(["train", "--out", run, "--resume", "--no-progress"], capsys)
    assert status == 0, err
    assert result(run) == reference["result"]
    assert len(seen) == len(chain)


def test_a_run_folder_deleted_under_the_run(tmp_path, capsys, monkeypatch, reference):
    """Real deletions: the samples folder (the run recreates it on --resume), then the whole run folder."""
    run = tmp_path / "run"
    real = _faults.io_point

    def delete_samples(path):
        if fnmatch.fnmatch(str(path), f"{run}/samples/step-*.png"):
            shutil.rmtree(run / "samples")
        real(path)

    monkeypatch.setattr(_faults, "io_point", delete_samples)
    status, err = ebgan([*RUN, "--out", run], capsys)
    assert status == 3 and len(err) == 1, err
    assert err[0].startswith(
        f"ebgan: error: no such file or directory (its folder was deleted or moved) writing "
        f"{run}/samples/step-00000012.png: the last complete checkpoint is step 8;"
    ), err
    monkeypatch.setattr(_faults, "io_point", real)
    status, err = ebgan(["train", "--out", run, "--resume", "--no-progress"], capsys)
    assert status == 0, err
    assert result(run) == reference["result"]

    gone = tmp_path / "gone"

    def delete_run(path):
        if fnmatch.fnmatch(str(path), f"{gone}/checkpoints/step-*/state.pt"):
            shutil.rmtree(gone)
        real(path)

    monkeypatch.setattr(_faults, "io_point", delete_run)
    status, err = ebgan([*RUN, "--out", gone], capsys)
    assert status == 3 and len(err) == 1, err
    assert f"the run folder {gone} is gone (deleted or moved while the run wrote to it)" in err[0], err


# ------------------------------------------------------------------------------------- real file systems
@pytest.fixture
def tmpfs(tmp_path):
    """An 8 MiB tmpfs mounted for the test (root and a kernel that allows it), else the test is skipped."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root on Linux")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({p.stderr.strip() or p.returncode}): the injected faults above "
            f"cover the same write points"
        )
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(fs: Path, leave: int) -> Path:
    """A file that takes all of ``fs``'s free space but ``leave`` bytes."""
    st = os.statvfs(fs)
    filler = fs / "filler"
    filler.write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))
    return filler


def test_a_full_file_system_then_resume_is_exact(tmpfs, capsys, reference):
    """A real ENOSPC: the run fills a tmpfs; once space is freed, --resume reaches the uninterrupted result."""
    run = tmpfs / "run"
    # Leave about 1.2 MB: the lock, the run's json files, a few rows and the first checkpoint (its state.pt
    # holds the 95,000-point data permutation, 0.76 MB) fit, the next checkpoint does not.
    filler = fill(tmpfs, 1_200_000)
    status, err = ebgan([*RUN, "--out", run], capsys)
    assert status == 3 and len(err) == 1, err
    assert err[0].startswith("ebgan: error: no space left on device writing "), err
    assert "free space and run again with --resume" in err[0]
    name, _ = checkpoint_state(run)
    if name is not None:
        load_state(run / "checkpoints" / name)
    assert not list(run.rglob("*.tmp"))
    filler.unlink()
    status, err = ebgan(["train", "--out", run, "--resume", "--no-progress"], capsys)
    assert status == 0, err
    assert result(run) == reference["result"]


def test_a_read_only_file_system(tmpfs, capsys):
    """A real EROFS. (A file system cannot be remounted read-only while a run holds files open for writing,
    so mid-run EROFS is injected in the chain above.)"""
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    try:
        status, err = ebgan([*RUN, "--out", tmpfs / "run"], capsys)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(tmpfs)], check=True)
    assert status == 3 and len(err) == 1, err
    assert err[0].startswith(f"ebgan: error: read-only file system writing {tmpfs}/run/.lock: "), err
    assert err[0].endswith("run the same command again"), err


def test_a_checkpoint_that_does_not_fit_keeps_the_previous_one(tmpfs):
    """torch's serializer reports a full disk as ``RuntimeError: unexpected pos``; the checkpoint writer keeps
    the errno, removes its temporary folder, and a re-save that fails puts the old copy back."""
    small, big = torch.nn.Linear(4, 4), torch.nn.Linear(600, 600)  # 1.4 MB of weights
    fill(tmpfs, 2_000_000)
    save_checkpoint(tmpfs / "run", 1, {"G": small}, {"x": torch.zeros(2)}, {"a": 1})
    with pytest.raises(WriteFailed) as e:
        save_checkpoint(tmpfs / "run", 2, {"G": small}, {"x": torch.zeros(600_000)}, {"a": 1})
    assert e.value.errno == errno.ENOSPC and e.value.path.endswith("checkpoints/step-00000002/state.pt")
    assert str(e.value).startswith("no space left on device writing ")
    with pytest.raises(WriteFailed):
        save_checkpoint(tmpfs / "run", 2, {"G": big, "D": big}, {}, {"a": 1})
    with pytest.raises(WriteFailed):  # a failed re-save of the same folder leaves the old one
        write_checkpoint_dir(tmpfs / "run" / "checkpoints" / "step-00000001", 1, {"G": big, "D": big}, {}, {})
    ckpts = tmpfs / "run" / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["latest", "step-00000001"]
    assert (ckpts / "latest").read_text() == "step-00000001\n"
    assert load_state(ckpts / "step-00000001")["x"].shape == (2,)


# ------------------------------------------------------------------------------------------ the file layer
def test_write_failed_names_the_path_and_the_cause():
    e = WriteFailed("run/x.png", errno.ENOSPC)
    assert str(e) == "no space left on device writing run/x.png: free space and run the command again"
    assert e.exit_status == 3 and isinstance(e, EbganError) and e.out_of_space
    assert str(e.with_hint("do this")) == "no space left on device writing run/x.png: do this"
    assert str(WriteFailed("f", errno.EIO)).startswith("input/output error writing f: the disk reported an error")
    assert str(WriteFailed("f", errno.EROFS)).startswith("read-only file system writing f")
    assert str(WriteFailed("f", errno.EPIPE)).startswith("broken pipe writing f")


def test_atomic_write_fsyncs_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", "dir" if os.path.isdir(os.readlink(f"/proc/self/fd/{fd}")) else "file"))
        real_fsync(fd)

    def replace(a, b):
        events.append(("replace", Path(b).name))
        real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic_write_text(tmp_path / "a.json", "{}")
    assert events == [("fsync", "file"), ("replace", "a.json"), ("fsync", "dir")]
    events.clear()
    save_checkpoint(tmp_path / "run", 3, {"G": torch.nn.Linear(2, 2)}, {}, {})
    # weights, state, config fsynced, the folder, the rename, the checkpoints folder; then `latest` likewise.
    assert events == [("fsync", "file")] * 3 + [
        ("fsync", "dir"),
        ("replace", "step-00000003"),
        ("fsync", "dir"),
        ("fsync", "file"),
        ("replace", "latest"),
        ("fsync", "dir"),
    ]


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    atomic_write_text(tmp_path / "a.txt", "old")
    monkeypatch.setenv("EBGAN_FAULT_OSERROR", "*a.txt:EIO")
    with pytest.raises(WriteFailed, match=f"input/output error writing {tmp_path}/a.txt"):
        atomic_write_text(tmp_path / "a.txt", "new")
    assert (tmp_path / "a.txt").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    with pytest.raises(OSError, match="cannot write"):  # an OSError without errno is not a machine fault
        with atomic_write(tmp_path / "b.txt"):
            raise OSError("cannot write mode LA as JPEG")


def test_short_writes_are_completed(tmp_path, monkeypatch):
    real_write = os.write
    calls = []

    def short(fd, data):  # at most 5 bytes per call, as a write interrupted by signals could return
        calls.append(len(data))
        return real_write(fd, bytes(data[:5]))

    monkeypatch.setattr(os, "write", short)
    log = AppendLog(tmp_path / "m.jsonl")
    log.write('{"step": 1}\n')
    log.close()
    fd = os.open(tmp_path / "w", os.O_WRONLY | os.O_CREAT)
    write_all(fd, b"0123456789" * 3)
    os.close(fd)
    monkeypatch.setattr(os, "write", real_write)
    assert (tmp_path / "m.jsonl").read_text() == '{"step": 1}\n' and len(calls) > 6
    assert (tmp_path / "w").read_bytes() == b"0123456789" * 3


# ---------------------------------------------------------------------------------------------- ebgan score
def test_score_reports_a_failed_write_and_keeps_no_partial_file(reference, tmp_path, capsys, monkeypatch):
    x = tmp_path / "points.npy"
    np.save(x, np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32))
    csv = tmp_path / "out" / "scores.csv"
    for code in ("ENOSPC", "EIO"):
        status, err = ebgan(["score", reference["run"], x, "-o", csv], capsys, f"*scores.csv:{code}", monkeypatch)
        assert status == 3 and len(err) == 1, err
        assert err[0].startswith(f"ebgan: error: {CAUSE[getattr(errno, code)]} writing {csv}: "), err
        assert not csv.exists() and list(csv.parent.iterdir()) == []
    status, err = ebgan(["score", reference["run"], x, "-o", csv], capsys)
    assert status == 0, err
    assert csv.read_text().count("\n") == 51


def test_a_write_no_writer_wraps_is_still_one_line(reference, tmp_path, capsys, monkeypatch):
    """`ebgan sample -o` saves with numpy: an OSError that only a write can raise (ENOSPC, EDQUOT, EROFS, EFBIG)
    reaching the CLI is one line and status 3 too."""

    def full(path, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(np, "save", full)
    out = tmp_path / "x.npy"
    status, err = ebgan(["sample", reference["run"], "-n", "10", "-o", out], capsys)
    assert status == 3 and err == [
        f"ebgan: error: no space left on device writing {out}.tmp.npy: free space and run the command again"
    ], err


# --------------------------------------------------------------------------------------------------- sweeps
def test_a_short_write_to_results_is_completed(tmp_path, monkeypatch):
    real_write = os.write
    calls = []

    def short(fd, data):
        calls.append(len(data))
        return real_write(fd, bytes(data[:5]))

    monkeypatch.setattr(os, "write", short)
    res = Results(tmp_path)
    row = {"method": "ebgan", "setting_id": "abc", "is": 1.5, "status": "ok"}
    assert res.append(row)
    monkeypatch.setattr(os, "write", real_write)
    assert read_rows(tmp_path) == [row] and len(calls) > 10


def test_a_failed_append_cuts_its_partial_line(tmp_path, monkeypatch):
    res = Results(tmp_path)
    res.append({"method": "a", "setting_id": "1"})
    real_write = os.write

    def half_then_full(fd, data):  # half the line reaches the disk, then it is full
        if len(data) > 10:
            real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(WriteFailed, match="no space left on device writing .*results.jsonl"):
        res.append({"method": "a", "setting_id": "2", "pad": "x" * 50})
    monkeypatch.setattr(os, "write", real_write)
    assert (tmp_path / "results.jsonl").read_text() == '{"method": "a", "setting_id": "1"}\n'


def test_a_damaged_line_inside_results_stops_the_sweep_until_repaired(tmp_path, capsys):
    """Only a torn LAST line is a kill's trace (cut and redone); any other unparsable line is named by number."""
    rows = [{"method": "a", "setting_id": str(i), "status": "ok"} for i in range(3)]
    text = [json.dumps(r) for r in rows]
    (tmp_path / "results.jsonl").write_text(text[0] + "\n" + text[1][:15] + "\x00garbage\n" + text[2] + "\n")
    with pytest.raises(EbganError) as e:
        read_rows(tmp_path)
    msg = str(e.value)
    assert f"{tmp_path / 'results.jsonl'}, line 2 of 3, is not a results row" in msg
    assert f"sed -i '2d' {tmp_path / 'results.jsonl'}" in msg and "run the command again" in msg
    with pytest.raises(EbganError, match="line 2 of 3"):
        Results(tmp_path)  # the driver refuses as well, and repairs nothing
    assert (tmp_path / "results.jsonl").read_text().count("\n") == 3
    # A line that parses but is no row (no method / setting_id) is damage too.
    (tmp_path / "results.jsonl").write_text(text[0] + "\n[1, 2]\n")
    with pytest.raises(EbganError, match="line 2 of 2"):
        read_rows(tmp_path)
    # Removed as the message says: the sweep reads on; a torn last line is still cut.
    (tmp_path / "results.jsonl").write_text(text[0] + "\n" + text[2] + "\n" + text[1][:20])
    assert [r["setting_id"] for r in Results(tmp_path).rows] == ["0", "2"]
    assert (tmp_path / "results.jsonl").read_text().endswith(text[2] + "\n")


def uninterrupted_rows(spec: dict, root: Path) -> dict:
    """The rows an uninterrupted sweep records: each setting trained and scored in this process, by the code
    a worker runs (same configs, one thread), keyed by setting; wall-clock fields dropped."""
    from ebgan.config import to_dict
    from ebgan.data import resolve_data_root
    from ebgan.sweep.grid import config_for
    from ebgan.sweep.run import interleave, plan
    from ebgan.sweep.worker import run_setting

    _, grid, _, chosen = plan(spec)
    rows = {}
    for s in interleave(chosen):
        cfg = {**to_dict(config_for(grid, s, grid["steps"], 0)), "num_threads": 1}
        task = {
            "method": s.method,
            "setting_id": s.setting_id,
            "values": s.values,
            "config": cfg,
            "run_dir": str(root / s.method / s.setting_id),
            "data_root": str(resolve_data_root(None).resolve()),
            "eval_samples": 0,
            "prune": False,
        }
        rows[(s.method, s.setting_id)] = timeless(run_setting(task))
    return rows


def timeless(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("seconds", "train_seconds")}


def test_a_sweep_stops_on_a_failed_write_and_the_same_command_finishes_it(tmp_path, capsys, monkeypatch):
    """Faults in the driver (a task file, results.jsonl, report.md) and inside a worker's run (a checkpoint,
    result.json): each ends the sweep with one line and status 3; the same command then continues, and the
    rows are those of an uninterrupted sweep."""
    spec = {**SWEEP, "grid": {"g_size": [16]}}
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps(spec))
    out = tmp_path / "sweep"
    argv = ["sweep", grid, "--out", out, "--workers", "1", "--no-progress"]
    chain = [  # in the order a sweep reaches them, so that each command gets as far as its fault
        (f"{out}/tasks/*:EIO", f"input/output error writing {out}/tasks/ebgan-"),
        (f"{out}/runs/*/checkpoints/step-*/state.pt:ENOSPC", f"no space left on device writing {out}/runs/ebgan/"),
        (f"{out}/runs/*/result.json:EROFS", f"read-only file system writing {out}/runs/ebgan/"),
        (
            f"{out}/results.jsonl:ENOSPC",
            f"no space left on device writing {out}/results.jsonl: the sweep stopped, 0 of 1 runs recorded",
        ),
        (
            f"{out}/report.md:ENOSPC",
            f"no space left on device writing {out}/report.md: free space and run the command again",
        ),
    ]
    for fault, start in chain:
        status, err = ebgan(argv, capsys, fault, monkeypatch)
        assert status == 3 and len(err) == 1, (fault, err)
        assert err[0].startswith(f"ebgan: error: {start}"), (fault, err)
        assert "run the same command again to continue" in err[0] or fault.startswith(f"{out}/report.md"), err
        read_rows(out)  # whole rows only
    status, err = ebgan(argv, capsys)
    assert status == 0, err
    rows = {(r["method"], r["setting_id"]): timeless(r) for r in read_rows(out)}
    assert rows == uninterrupted_rows(spec, tmp_path / "reference")
    assert (out / "report.md").is_file() and not list(out.glob("tasks/*"))


def test_every_sweep_write_point_survives_a_full_disk_and_an_io_error(tmp_path, capsys, monkeypatch):
    """The faults the chain above leaves out, so that every write point of a sweep (sweep.json, a task file, a
    run's checkpoint, metrics.jsonl and result.json inside a worker, results.jsonl, report.md) meets both ENOSPC
    and EIO in the suite: each ends the sweep with one line naming the file and the cause and status 3, leaves
    whole rows, and the same command then records the rows of an uninterrupted sweep."""
    spec = {**SWEEP, "grid": {"g_size": [16]}}
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps(spec))
    out = tmp_path / "sweep"
    argv = ["sweep", grid, "--out", out, "--workers", "1", "--no-progress"]
    chain = [  # in the order a sweep reaches them; two in a row at one point: the second on the next command
        ("sweep.json", "ENOSPC"),
        ("sweep.json", "EIO"),
        ("tasks/*", "ENOSPC"),
        ("runs/*/checkpoints/step-*/state.pt", "EIO"),
        ("runs/*/metrics.jsonl", "ENOSPC"),
        ("runs/*/metrics.jsonl", "EIO"),
        ("runs/*/result.json", "ENOSPC"),
        ("runs/*/result.json", "EIO"),
        ("results.jsonl", "EIO"),
        ("report.md", "EIO"),
    ]
    for point, kind in chain:
        glob = f"{out}/{point}"
        status, err = ebgan(argv, capsys, f"{glob}:{kind}", monkeypatch)
        assert status == 3 and len(err) == 1, (point, kind, err)
        assert err[0].startswith(f"ebgan: error: {CAUSE[getattr(errno, kind)]} writing "), (point, kind, err)
        path = err[0].split(" writing ", 1)[1].split(": ", 1)[0]
        assert fnmatch.fnmatch(path, glob), (path, glob)
        assert "run the same command again" in err[0] or "run the command again" in err[0], err
        read_rows(out)  # whole rows only
    status, err = ebgan(argv, capsys)
    assert status == 0, err
    rows = {(r["method"], r["setting_id"]): timeless(r) for r in read_rows(out)}
    assert rows == uninterrupted_rows(spec, tmp_path / "reference")
    assert (out / "report.md").is_file() and not list(out.glob("tasks/*"))


def test_a_worker_that_cannot_start_never_drops_a_setting_silently(tmp_path, capsys, monkeypatch):
    def cannot_start(self, log_path, stop):
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(LocalPool, "_start", cannot_start)
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps(SWEEP))
    status, err = ebgan(["sweep", grid, "--out", tmp_path / "sweep", "--workers", "1", "--no-progress"], capsys)
    assert status == 4 and len(err) == 1, err
    assert err[0].startswith("ebgan: error: the sweep could not run 2 setting(s) (ebgan "), err
    assert (
        "a worker failed with BlockingIOError: [Errno 11] Resource temporarily unavailable; 0 of 2 runs recorded; fix "
        "the cause and run the same command again to run them" in err[0]
    )
    assert not (tmp_path / "sweep" / "report.md").exists() and read_rows(tmp_path / "sweep") == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_killed_from_outside_resumes_its_run_from_the_checkpoint(tmp_path):
    """SIGKILL to a running worker (as the out-of-memory killer sends): its run is retried in a new process from
    its last checkpoint, and the row is that of an uninterrupted run."""
    import threading

    spec = {**SWEEP, "steps": 300, "base": {"log_every": 50, "ckpt_every": 50, "n_grid": 16}, "grid": {"g_size": [16]}}
    out = tmp_path / "sweep"
    killed = {}

    def kill_after_the_first_checkpoint():
        deadline = time.time() + 240
        while time.time() < deadline and not killed:
            ckpts = sorted(out.glob("runs/ebgan/*/checkpoints/step-*"))
            if ckpts and (ckpts[0].parent / "latest").exists():
                for pid in _children(os.getpid()):
                    if b"ebgan.sweep.child" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        killed["inode"] = (ckpts[0], ckpts[0].stat().st_ino)
                        os.kill(pid, 9)
                        killed["pid"] = pid
                        return
            time.sleep(0.01)

    watcher = threading.Thread(target=kill_after_the_first_checkpoint, daemon=True)
    watcher.start()
    (row,) = run_sweep(spec, out, workers=1, progress=False)
    watcher.join()
    assert killed, "the worker was never caught mid-run"
    assert row["status"] == "ok" and row["steps"] == 300
    log = (out / "logs" / "worker-0.log").read_text()
    assert "worker process killed by SIGKILL; retry 1 of 2 from the run's last checkpoint" in log
    ckpt, inode = killed["inode"]
    if ckpt.exists():  # kept (keep_checkpoints): the retry resumed after it instead of rewriting it
        assert ckpt.stat().st_ino == inode
    assert {(row["method"], row["setting_id"]): timeless(row)} == uninterrupted_rows(spec, tmp_path / "reference")


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(d.name))
    return out


# -------------------------------------------------------------------------------- ebgan seq train, semisup
def _tensors(path: Path) -> dict[str, bytes]:
    return {k: v.numpy().tobytes() for k, v in load_file(str(path)).items()}


def test_seq_train_after_a_failed_write_says_resume_and_resume_is_exact(tmp_path, capsys, monkeypatch):
    """The same command again would be refused once the run folder holds its configuration: the line names the
    --resume command, which reaches the uninterrupted run's weights and threshold."""
    data = tmp_path / "sessions.txt"
    data.write_text("1 2 3 4 5\n" * 12 + "1 2 3 3 4 5\n" * 6 + "1 2 4 5\n" * 4)
    argv = ["seq", "train", "--data", data, "--epochs", "4", "--window", "3", "--hidden", "8", "--no-progress"]
    ref = tmp_path / "ref"
    assert ebgan([*argv, "--out", ref], capsys)[0] == 0
    for point, kind, k in [
        ("checkpoints/step-00000002/state.pt", "ENOSPC", 1),
        ("threshold.json", "EIO", 1),
        ("metrics.jsonl", "EIO", 3),  # the third epoch's row, after the checkpoint of epoch 2
    ]:
        run = tmp_path / f"run-{kind}-{k}"
        status, err = ebgan([*argv, "--out", run], capsys, f"{run}/{point}:{kind}:{k}", monkeypatch)
        assert status == 3 and len(err) == 1, err
        assert err[0].startswith(f"ebgan: error: {CAUSE[getattr(errno, kind)]} writing {run}/{point}: "), err
        assert err[0].endswith(f"run again with --resume (ebgan seq train --out {run} --resume)"), err
        assert ebgan([*argv, "--out", run], capsys)[0] == 2  # what "run the command again" would have met
        status, err = ebgan(["seq", "train", "--out", run, "--resume", "--no-progress"], capsys)
        assert status == 0, err
        final = (run / "checkpoints" / "latest").read_text().strip()
        assert final == (ref / "checkpoints" / "latest").read_text().strip()
        assert _tensors(run / "checkpoints" / final / "weights.safetensors") == _tensors(
            ref / "checkpoints" / final / "weights.safetensors"
        )
        assert json.loads((run / "threshold.json").read_text()) == json.loads((ref / "threshold.json").read_text())


@pytest.mark.parametrize(
    "point, kind, k",
    [("checkpoints/step-00000020/state.pt", "ENOSPC", 1), ("metrics.jsonl", "EIO", 4)],  # the 4th row: after step 10
)
def test_semisup_after_a_failed_write_says_resume_and_resume_is_exact(tmp_path, capsys, monkeypatch, point, kind, k):
    """`ebgan semisup` on small synthetic data (the real command, its data and networks swapped for tiny ones)."""
    from dataclasses import replace

    import ebgan.semisup as semi
    from ebgan.semisup.recipe import SemisupData

    g = torch.Generator().manual_seed(0)
    y = torch.arange(300) % 10
    x = 0.2 * torch.rand(300, 784, generator=g)
    for c in range(10):  # each class lights its own block of pixels
        x[y == c, c * 78 : (c + 1) * 78] += 0.6
    data = SemisupData(x[:200], y[:200], x[200:], y[200:], semi.labelled_subset(y[:200], 100, 0))
    real = semi.semisup

    def tiny(cfg, out, **kw):
        kw.pop("data_root", None)
        return real(replace(cfg, layers=[784, 32, 16, 10], batch=20, log_every=5), out, data=data, **kw)

    monkeypatch.setattr(semi, "semisup", tiny)
    argv = ["semisup", "--steps", "20", "--ckpt-every", "10", "--eval-every", "10", "--threads", "1", "--no-progress"]
    ref, run = tmp_path / "ref", tmp_path / "run"
    assert ebgan([*argv, "--out", ref], capsys)[0] == 0
    status, err = ebgan([*argv, "--out", run], capsys, f"{run}/{point}:{kind}:{k}", monkeypatch)
    assert status == 3 and len(err) == 1, err
    assert err[0].startswith(f"ebgan: error: {CAUSE[getattr(errno, kind)]} writing {run}/{point}: "), err
    assert err[0].endswith(f"run again with --resume (ebgan semisup --out {run} --resume)"), err
    assert (run / "checkpoints" / "latest").read_text().strip() == "step-00000010"
    status, err = ebgan(["semisup", "--out", run, "--resume", "--no-progress"], capsys)
    assert status == 0, err
    for name in ("weights.safetensors",):
        assert _tensors(run / "checkpoints" / "step-00000020" / name) == _tensors(
            ref / "checkpoints" / "step-00000020" / name
        )
    assert (
        json.loads((run / "result.json").read_text())["test_error"]
        == json.loads((ref / "result.json").read_text())["test_error"]
    )
