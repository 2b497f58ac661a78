"""A run survives whatever happens to it: real training processes are killed (SIGKILL at fault points,
SIGINT, SIGTERM) and ``--resume`` must reach exactly the uninterrupted result; a second process on the same
folder is refused; a killed process leaves no stuck lock.

"Exactly" means: the final weights byte for byte, every ``metrics.jsonl`` row (the wall-clock ``time`` aside),
the best checkpoint and the final sample grid.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SHARED_DATA
from safetensors.torch import load_file

from ebgan.checkpoint import recover_checkpoints
from ebgan.cli import main
from ebgan.rundir import RunLock

# A tiny MNIST run that exercises every writer: log rows every 4 steps and checkpoints every 15 (so a
# checkpoint falls between two log rows), sample grids, evaluation every 10 steps keeping the best IS (which
# improves, so the best checkpoint is re-saved), batch norm and dropout (the global RNG).
RUN = [
    "train",
    "--preset",
    "mnist",
    "--data-root",
    SHARED_DATA,
    "--steps",
    "40",
    "--set",
    "g_layers=2",
    "--set",
    "g_size=32",
    "--set",
    "d_size=32",
    "--set",
    "log_every=4",
    "--set",
    "ckpt_every=15",
    "--set",
    "sample_every=10",
    "--set",
    "eval_every=10",
    "--set",
    "eval_samples=200",
    "--set",
    "best_metric=is",
    "--set",
    "d_dropout=0.1",
    "--set",
    "n_grid=16",
    "--set",
    "keep_checkpoints=5",
]

pytestmark = pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(), reason="no ../shared/data/MNIST")


def ebgan(*args, env=None, **kw) -> subprocess.Popen:
    e = dict(os.environ)  # OMP_NUM_THREADS=1 from conftest: bit-exact comparisons need one thread count
    e.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "ebgan.cli", *map(str, args)],
        env=e,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def run_to_end(*args, env=None) -> subprocess.CompletedProcess:
    p = ebgan(*args, env=env)
    out, err = p.communicate(timeout=300)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def result(run: Path) -> dict:
    """What must not depend on interruptions: weights, logs without times, best checkpoint, sample grid."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("time", None)
    final = run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()
    best = run / "checkpoints" / "best"
    return {
        "rows": rows,
        "final": final.name,
        "weights": weights(final),
        "best": json.loads((run / "best.json").read_text()) if (run / "best.json").exists() else None,
        "best_weights": weights(best) if best.exists() else None,
        "samples": (run / "samples.png").read_bytes(),
    }


def weights(ckpt: Path) -> dict[str, bytes]:
    # Tensor bytes, not file bytes: safetensors writes its metadata map in no fixed order.
    return {k: v.numpy().tobytes() for k, v in load_file(str(ckpt / "weights.safetensors")).items()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    run = tmp_path_factory.mktemp("ref") / "run"
    done = run_to_end(*RUN, "--out", run, "--no-progress")
    assert done.returncode == 0, done.stderr
    return result(run)


@pytest.mark.parametrize(
    "fault",
    [
        "log-row:2",  # before the first checkpoint (step 8): --resume starts from step 0
        "eval:2",  # during the evaluation at step 20, after the checkpoint at 15
        "checkpoint-write:2",  # half-way through writing the checkpoint at step 30
        "checkpoint-pointer:1",  # checkpoint 15 in place, `latest` not yet pointing at it
        "checkpoint-replace:1",  # between the two renames of a re-saved best checkpoint
        "write.png:3",  # inside a sample grid write (an atomic temp file, not yet renamed)
        "write.png:6",  # inside the final plots, after the last checkpoint
    ],
)
def test_kill_at_any_point_then_resume_gives_the_uninterrupted_result(fault, reference, tmp_path):
    run = tmp_path / "run"
    killed = run_to_end(*RUN, "--out", run, "--no-progress", env={"EBGAN_FAULT": fault})
    assert killed.returncode == -signal.SIGKILL, f"the fault point {fault} was never reached: {killed.stderr}"
    resumed = run_to_end("train", "--out", run, "--resume", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert result(run) == reference
    assert not list(run.rglob("*.tmp")), "temporary files of the killed writes must be cleaned up"


def test_a_start_killed_before_its_config_is_saved_starts_again_with_resume(reference, tmp_path):
    # Killed inside the first write of all (config.json's temp file written, not yet renamed): nothing of the
    # run is saved, and `--resume` with the settings (what a sweep worker does) starts it afresh instead of
    # refusing the folder for the temp file the kill left.
    run = tmp_path / "run"
    killed = run_to_end(*RUN, "--out", run, "--no-progress", env={"EBGAN_FAULT": "write.json:1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (run / "config.json").exists() and [p.name[:13] for p in run.glob(".*.tmp")] == [".config.json."]
    resumed = run_to_end(*RUN, "--out", run, "--resume", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert result(run) == reference
    assert not list(run.rglob("*.tmp"))


def test_resume_still_refuses_a_folder_with_files_of_another_kind(tmp_path, capsys):
    # Only what a killed start leaves is cleared; a stray file of the user's stays and the start is refused.
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    (run / ".config.json.0123456789ab.tmp").write_text("{")
    (run / "notes.txt").write_text("mine")
    assert main([*map(str, RUN), "--out", str(run), "--resume", "--no-progress"]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert (run / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_checkpoints_the_current_step_and_resume_is_exact(sig, tmp_path):
    # Long enough to be signalled mid-run; no checkpoint is due before the end, log rows every 7 steps.
    args = [
        "train",
        "--preset",
        "ring",
        "--steps",
        "2000",
        "--set",
        "g_size=16",
        "--set",
        "d_size=16",
        "--set",
        "batch_size=32",
        "--set",
        "log_every=7",
        "--set",
        "ckpt_every=5000",
        "--set",
        "sample_every=5000",
        "--no-progress",
    ]
    ref = run_to_end(*args, "--out", tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr
    run = tmp_path / "run"
    p = ebgan(*args, "--out", run)
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and metrics.read_text().count("\n") >= 3):
        assert p.poll() is None and time.monotonic() < deadline, "training ended before it could be signalled"
        time.sleep(0.02)
    p.send_signal(sig)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 128 + sig, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"ebgan: stopped by {signal.Signals(sig).name} at step ") and "--resume" in last, err
    step = int(last.split(" at step ")[1].split(";")[0])
    assert 0 < step < 2000
    assert (run / "checkpoints" / "latest").read_text().strip() == f"step-{step:08d}"
    assert f"checkpoint {run / 'checkpoints' / f'step-{step:08d}'}" in last
    resumed = run_to_end("train", "--out", run, "--resume", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    a, b = result(tmp_path / "ref"), result(run)
    assert a["rows"] == b["rows"] and a["weights"] == b["weights"] and a["samples"] == b["samples"]


def test_second_process_is_refused_and_a_killed_one_leaves_no_lock(tmp_path, capsys):
    run = tmp_path / "run"
    p = ebgan(
        "train",
        "--preset",
        "ring",
        "--steps",
        "100000",
        "--set",
        "g_size=16",
        "--set",
        "d_size=16",
        "--set",
        "log_every=10",
        "--no-progress",
        "--out",
        run,
    )
    deadline = time.monotonic() + 120
    while not (run / "metrics.jsonl").exists():
        assert p.poll() is None and time.monotonic() < deadline, p.stderr.read() if p.poll() is not None else ""
        time.sleep(0.02)
    code = main(["train", "--out", str(run), "--resume", "--steps", "10", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0] == (
        f"ebgan: error: {run} is in use by another ebgan process (pid {p.pid}); wait for it to "
        f"finish or stop it, then run this again"
    )
    p.kill()
    p.communicate(timeout=60)
    # The kernel dropped the lock with the process: the run resumes (from step 0, as it had no checkpoint).
    code = main(["train", "--out", str(run), "--resume", "--steps", "10", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [10]


def test_run_lock_in_process(tmp_path):
    first = RunLock(tmp_path / "r").acquire()
    assert first.created and (tmp_path / "r" / ".lock").read_text() == f"{os.getpid()}\n"
    # flock locks belong to the open file description: a second open in the same process conflicts too.
    with pytest.raises(Exception, match="is in use by another ebgan process"):
        RunLock(tmp_path / "r").acquire()
    first.release(cleanup=True)
    assert not (tmp_path / "r").exists()  # created by the lock and nothing written: removed again
    with RunLock(tmp_path / "r"):
        pass
    assert (tmp_path / "r" / ".lock").exists()  # an ordinary release keeps the folder


def test_recover_checkpoints_puts_back_a_checkpoint_caught_between_renames(tmp_path):
    root = tmp_path / "checkpoints"
    (root / "step-00000010.old.tmp").mkdir(parents=True)
    (root / "step-00000010.old.tmp" / "weights.safetensors").write_text("w")
    (root / "step-00000010.abc123.tmp").mkdir()  # the half-written replacement
    (root / "step-00000020").mkdir()
    (root / "step-00000020.old.tmp").mkdir()  # replacement arrived: the old copy is only garbage
    recover_checkpoints(tmp_path)
    assert sorted(p.name for p in root.iterdir()) == ["step-00000010", "step-00000020"]
    assert (root / "step-00000010" / "weights.safetensors").read_text() == "w"


def test_stop_handler_acts_only_in_the_process_that_installed_it():
    """A child forked while the handler is installed (a data worker before its init ran) inherits it; there it
    must do nothing, or Ctrl-C to the process group would be reported once per such child."""
    from ebgan.stopping import StopSignals

    s = StopSignals(quiet=True)
    s._pid = -1  # as seen from a forked child: not the installing process
    s._handle(signal.SIGINT, None)
    assert s.signum is None
    s._pid = os.getpid()
    s._handle(signal.SIGINT, None)
    assert s.signum == signal.SIGINT
