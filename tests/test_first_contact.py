"""What a new user meets first: resume under the run's own configuration, hints that work as printed, folders
of the wrong kind named in one line, and the small traps (shorthands, infinite values, pipes, temporary
folders)."""

from __future__ import annotations

import gc
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ebgan.cli import main

TINY = ["--set", "g_size=16", "--set", "d_size=16", "--set", "log_every=5", "--no-progress"]
SRC = str(Path(__file__).resolve().parents[1] / "src")


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(code, err) -> str:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("ebgan: error: "), err
    return lines[0]


def shell(command: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a printed command as a user would paste it (``ebgan`` is ``python -m ebgan.cli``)."""
    argv = shlex.split(command)
    assert argv[0] == "ebgan", command
    env = dict(os.environ, PYTHONPATH=SRC, OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "ebgan.cli", *argv[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def ring_run(tmp_path, capsys):
    run = tmp_path / "ring"
    code, _, err = run_cli(
        capsys, "train", "--preset", "ring", "--steps", 10, "--out", run, *TINY, "--set", "ckpt_every=5"
    )
    assert code == 0, err
    return run


# ------------------------------------------------------------------------------------------------ resume


def test_resume_starts_from_the_runs_own_config(ring_run, capsys):
    # Overrides apply to the run's configuration, not to the Config defaults: a ring run stays a ring run.
    code, out, err = run_cli(
        capsys,
        "train",
        "--resume",
        "--out",
        ring_run,
        "--set",
        "log_every=2",
        "--set",
        "sample_every=4",
        "--steps",
        14,
        "--no-progress",
    )
    assert code == 0, err
    cfg = json.loads((ring_run / "config.json").read_text())
    assert (cfg["data"], cfg["margin"], cfg["log_every"], cfg["sample_every"], cfg["steps"]) == ("ring", 0.3, 2, 4, 14)
    steps = [json.loads(line)["step"] for line in (ring_run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 12, 14]
    # The same seed and loss as the run's are no change at all.
    code, _, err = run_cli(
        capsys, "train", "--resume", "--out", ring_run, "--seed", 0, "--loss", "ebgan", "--no-progress"
    )
    assert code == 0, err


def test_resume_refuses_naming_only_what_the_user_changed(ring_run, capsys):
    code, _, err = run_cli(capsys, "train", "--resume", "--out", ring_run, "--seed", 3, "--set", "margin=0.5")
    line = one_error_line(code, err)
    assert "different hyper-parameters (margin: 0.3 -> 0.5, seed: 0 -> 3):" in line
    assert "only ckpt_every" in line and "steps" in line


def test_semisup_resume_can_extend_the_run(tmp_path):
    from test_semisup import synthetic_data, tiny_cfg

    from ebgan.semisup import semisup

    data = synthetic_data()
    semisup(tiny_cfg(steps=10), tmp_path / "r", data=data, progress=False)
    res = semisup(tiny_cfg(steps=15), tmp_path / "r", data=data, progress=False, resume=True)
    assert res["steps"] == 15
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "eval/test_error" not in r] == [5, 10, 15]


def test_semisup_resume_reads_the_runs_data_root(tmp_path, data_root):
    """The printed resume hint has no --data-root: the run's own is used (here ./data does not exist)."""
    common = [
        "--labels",
        "100",
        "--steps",
        "4",
        "--eval-every",
        "4",
        "--threads",
        "1",
        "--ckpt-every",
        "2",
        "--no-progress",
    ]
    first = shell(f"ebgan semisup {' '.join(common)} --steps 2 --data-root {data_root} --out run", tmp_path)
    assert first.returncode == 0, first.stderr
    assert json.loads((tmp_path / "run" / "data.json").read_text())["data_root"] == str(Path(data_root).resolve())
    again = shell("ebgan semisup --out run --resume --steps 4 --no-progress", tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "run" / "result.json").read_text())["steps"] == 4


# --------------------------------------------------------------------------------------- restart and hints


def test_a_run_that_diverged_at_once_can_be_started_again(tmp_path):
    bad = f"ebgan train --preset ring --steps 20 --out run {' '.join(TINY)} --set lr=1e9"
    failed = shell(bad, tmp_path)
    assert failed.returncode == 2 and "no checkpoint was written" in failed.stderr
    assert "run the same command again with --restart" in failed.stderr
    fixed = bad.replace("lr=1e9", "lr=1e-3")
    refused = shell(fixed, tmp_path)
    assert refused.returncode == 2 and "add --restart" in refused.stderr
    ok = shell(fixed + " --restart", tmp_path)
    assert ok.returncode == 0, ok.stderr
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["lr_g"] == cfg["lr_d"] == 1e-3
    # A folder with checkpoints is never cleared.
    again = shell(fixed + " --restart", tmp_path)
    assert again.returncode == 2 and "never deletes" in again.stderr and (tmp_path / "run" / "checkpoints").is_dir()


def test_restart_and_resume_exclude_each_other(ring_run, capsys):
    code, _, err = run_cli(capsys, "train", "--out", ring_run, "--resume", "--restart", "--preset", "ring")
    assert "give one" in one_error_line(code, err)


def test_interrupt_hint_works_as_printed(tmp_path):
    """SIGINT prints `continue with: ...`; that exact command finishes the run."""
    import signal
    import time

    env = dict(os.environ, PYTHONPATH=SRC, OMP_NUM_THREADS="1")
    p = subprocess.Popen(
        [sys.executable, "-m", "ebgan.cli", "train", "--preset", "ring", "--steps", "3000", "--out", "run", *TINY],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and metrics.read_text().count("\n") >= 2):
        assert p.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    hint = err.strip().splitlines()[-1].split("continue with: ")[1]
    assert hint == "ebgan train --out run --resume"
    done = shell(hint + " --no-progress", tmp_path)
    assert done.returncode == 0 and "trained 3000 steps" in done.stdout, done.stderr


# --------------------------------------------------------------------------------------------------- sweeps


def test_a_sweep_whose_runs_all_fail_exits_non_zero_and_says_how_to_retry(tmp_path, data_root):
    spec = {
        "preset": "mnist",
        "steps": 5,
        "base": {"g_size": 16, "d_size": 16, "log_every": 5},
        "grid": {"g_layers": [2, 3]},
        "methods": {"ebgan": {}},
    }
    (tmp_path / "grid.json").write_text(json.dumps(spec))
    first = shell("ebgan sweep grid.json --out sw --workers 1 --no-progress --data-root nowhere", tmp_path)
    assert first.returncode == 2, first.stderr
    last = first.stderr.strip().splitlines()[-1]
    assert last.startswith("ebgan: error: every run of the sweep failed (2 of 2)")
    assert "not found under" in last  # the first error in full
    retry = last.split("then run them again: ")[1]
    assert retry == "ebgan sweep grid.json --out sw --data-root nowhere --retry-failed"
    # A re-run without --retry-failed says what it skipped and how to retry.
    rerun = shell("ebgan sweep grid.json --out sw --workers 1 --data-root nowhere", tmp_path)
    assert "2 setting(s) recorded as failed are skipped; to run them again: " + retry in rerun.stderr
    # The cause fixed (the data appears where the command points), the printed command works as printed.
    (tmp_path / "nowhere").symlink_to(data_root, target_is_directory=True)
    fixed = shell(retry, tmp_path)
    assert fixed.returncode == 0, fixed.stderr
    assert "ebgan: 2 runs (2 ok, 0 diverged, 0 failed)" in fixed.stdout


def test_sweep_progress_shows_the_whole_error(tmp_path):
    spec = {
        "preset": "ring",
        "steps": 5,
        "base": {"log_every": 5, "n_grid": 16},
        "grid": {"data": ["ring", str(tmp_path / ("no-such-folder-with-a-long-name" * 3))]},
        "methods": {"ebgan": {}},
    }
    (tmp_path / "grid.json").write_text(json.dumps(spec))
    res = shell("ebgan sweep grid.json --out sw --workers 1", tmp_path)
    assert res.returncode == 0, res.stderr
    assert str(tmp_path / ("no-such-folder-with-a-long-name" * 3)) in res.stderr


# --------------------------------------------------------------------------------------------- folder kinds


def _semisup_folder(tmp_path: Path) -> Path:
    d = tmp_path / "ln"
    d.mkdir()
    from ebgan.semisup.recipe import SemisupConfig, to_semisup_dict

    (d / "config.json").write_text(json.dumps(to_semisup_dict(SemisupConfig())))
    return d


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--resume", "--out", "{d}"],
        ["train", "--resume", "--out", "{d}", "--set", "log_every=3"],
        ["sample", "{d}", "-n", "2", "-o", "{t}/x.npy"],
        ["eval", "{d}"],
        ["score", "{d}", "{t}/x.npy", "-o", "{t}/s.csv"],
    ],
)
def test_commands_on_a_semisup_folder_name_its_kind(tmp_path, capsys, argv):
    d = _semisup_folder(tmp_path)
    (tmp_path / "x.npy").write_bytes(b"")
    code, _, err = run_cli(capsys, *[a.format(d=d, t=tmp_path) for a in argv])
    line = one_error_line(code, err)
    assert f"{d} is a semi-supervised run of `ebgan semisup`; `ebgan " in line
    assert line.endswith("expects a run of `ebgan train`")


def test_semisup_resume_on_an_image_run_names_its_kind(ring_run, capsys):
    code, _, err = run_cli(capsys, "semisup", "--out", ring_run, "--resume")
    assert one_error_line(code, err) == (
        f"ebgan: error: {ring_run} is a run of `ebgan train`; `ebgan semisup` "
        f"expects a semi-supervised run of `ebgan semisup`"
    )


def test_eval_and_train_on_a_sweep_folder(tmp_path, capsys):
    sw = tmp_path / "sw"
    sw.mkdir()
    (sw / "sweep.json").write_text("{}")
    code, _, err = run_cli(capsys, "eval", sw)
    assert "is a sweep of `ebgan sweep`; `ebgan eval` expects a run of `ebgan train`" in one_error_line(code, err)
    ln = _semisup_folder(tmp_path)
    code, _, err = run_cli(capsys, "sweep", "paper-margin", "--out", ln, "--no-progress")
    assert "is a semi-supervised run of `ebgan semisup`; `ebgan sweep --out` expects a sweep" in one_error_line(
        code, err
    )


def test_sample_before_the_first_checkpoint_says_so(tmp_path, capsys):
    d = tmp_path / "young"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"loss": "ebgan", "ckpt_every": 500}))
    code, _, err = run_cli(capsys, "sample", d, "-n", 2, "-o", tmp_path / "x.npy")
    assert "has no checkpoint yet" in one_error_line(code, err) and "(every 500 steps)" in err


# --------------------------------------------------------------------------------------------------- traps


def test_oneclass_preset_needs_classes(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--preset", "mnist-oneclass", "--out", tmp_path / "r")
    assert "--preset mnist-oneclass needs classes" in one_error_line(code, err)
    assert not (tmp_path / "r").exists()


def test_lr_shorthand_and_non_finite_values(tmp_path, capsys):
    code, out, _ = run_cli(
        capsys, "train", "--preset", "ring", "--set", "lr=3e-4", "--dry-run", "--out", tmp_path / "r"
    )
    cfg = json.loads(out)
    assert code == 0 and cfg["lr_g"] == cfg["lr_d"] == 3e-4
    for bad in ("margin=inf", "lr=nan", "pt_weight=-inf"):
        code, _, err = run_cli(capsys, "train", "--preset", "ring", "--set", bad, "--dry-run")
        assert f"{bad.split('=')[0].replace('lr', 'lr_g')} must be a finite number" in one_error_line(code, err)


def test_dry_run_of_an_image_preset_needs_no_data(capsys):
    code, out, err = run_cli(capsys, "train", "--preset", "celeba-64", "--dry-run")
    assert code == 0 and json.loads(out)["image_size"] == 64
    assert "pass --data FOLDER" in err and "G 3.58 M parameters" in err


def test_pretraining_is_named_in_the_start_line(tmp_path, capsys, data_root):
    code, _, err = run_cli(
        capsys,
        "train",
        "--preset",
        "mnist-oneclass",
        "--set",
        "classes=3",
        "--steps",
        2,
        "--set",
        "pretrain_steps=2",
        "--set",
        "holdout=0",
        "--data-root",
        data_root,
        "--out",
        tmp_path / "r",
        "--set",
        "g_size=16",
        "--set",
        "d_size=16",
    )
    assert code == 0, err
    assert "to step 4 (2 pre-training + 2 adversarial)" in err


def test_bare_ebgan_is_a_usage_error(capsys):
    code, out, err = run_cli(capsys)
    assert code == 2 and out == "" and err.startswith("usage: ebgan")


def test_a_closed_pipe_ends_quietly(tmp_path):
    cmd = (
        f"{shlex.quote(sys.executable)} -m ebgan.cli train --preset ring --steps 5 --out run "
        f"{' '.join(TINY)} | head -n 0"
    )
    res = subprocess.run(
        ["bash", "-o", "pipefail", "-c", cmd],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=SRC, OMP_NUM_THREADS="1"),
        timeout=300,
    )
    assert "Traceback" not in res.stderr and "BrokenPipeError" not in res.stderr, res.stderr
    assert res.returncode == 141


def test_energy_detector_removes_its_temporary_run(tmp_path):
    from ebgan.anomaly import EnergyDetector

    x = np.random.default_rng(0).normal(size=(300, 2)).astype(np.float32)
    det = EnergyDetector("ring", steps=3, overrides={"g_size": 8, "d_size": 8}).fit(x)
    folder = det.run_dir_
    assert folder.is_dir() and (folder / "checkpoints").is_dir()
    assert det.decision_function(x[:4]).shape == (4,)
    del det
    gc.collect()
    assert not folder.exists()
    kept = EnergyDetector("ring", steps=3, overrides={"g_size": 8, "d_size": 8}, run_dir=tmp_path / "k").fit(x)
    del kept
    gc.collect()
    assert (tmp_path / "k" / "checkpoints").is_dir()  # a folder the user named is theirs


def test_a_second_ctrl_c_still_says_how_to_continue(ring_run, tmp_path, capsys):
    from ebgan.cli import _resume_hint_on_abort

    with pytest.raises(KeyboardInterrupt), _resume_hint_on_abort(str(ring_run), "ebgan train"):
        raise KeyboardInterrupt
    hint = capsys.readouterr().err.strip().splitlines()[-1].split("continue from the last one with: ")[1]
    assert hint == f"ebgan train --out {ring_run} --resume"
    with pytest.raises(KeyboardInterrupt), _resume_hint_on_abort(str(tmp_path / "none"), "ebgan train"):
        raise KeyboardInterrupt  # nothing written yet: nothing to resume, no hint
    assert capsys.readouterr().err == ""
