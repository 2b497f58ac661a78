"""The CLI end to end on tiny runs, and one clear error line (exit 2, no traceback) for each bad input."""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from ebgan.cli import main

TINY = ["--set", "g_size=32", "--set", "d_size=32", "--set", "log_every=5", "--no-progress"]


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, match):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ebgan: error: "), err
    assert "Traceback" not in err
    assert match in lines[0], lines[0]


def test_train_then_sample_points(tmp_path, capsys):
    run = tmp_path / "ring"
    code, out, _ = run_cli(capsys, "train", "--preset", "ring", "--steps", 10, "--out", run, *TINY)
    assert code == 0 and "trained 10 steps" in out
    code, out, _ = run_cli(
        capsys, "sample", run, "-n", 7, "-o", tmp_path / "s.npy", "--seed", 3, "--png", tmp_path / "s.png"
    )
    assert code == 0
    x = np.load(tmp_path / "s.npy")
    assert x.dtype == np.float32 and x.shape == (7, 2)
    y = np.load(tmp_path / "s.npy")
    run_cli(capsys, "sample", run, "-n", 7, "-o", tmp_path / "t.npy", "--seed", 3)
    np.testing.assert_array_equal(np.load(tmp_path / "t.npy"), y)  # same seed, same samples
    assert (tmp_path / "s.png").is_file()


def test_train_then_sample_mnist_images(tmp_path, capsys, data_root):
    run = tmp_path / "mnist"
    code, out, err = run_cli(
        capsys,
        "train",
        "--preset",
        "mnist",
        "--data-root",
        data_root,
        "--steps",
        3,
        "--out",
        run,
        *TINY,
        "--set",
        "g_layers=2",
    )
    assert code == 0, err
    code, _, _ = run_cli(capsys, "sample", run, "-n", 5, "-o", tmp_path / "m.npy", "--png", tmp_path / "m.png")
    x = np.load(tmp_path / "m.npy")
    with Image.open(tmp_path / "m.png") as im:
        assert im.size == (3 * 30 + 2, 2 * 30 + 2)  # 5 samples: 3 per row, 2 rows
    assert code == 0 and x.dtype == np.uint8 and x.shape == (5, 1, 28, 28)
    with Image.open(run / "samples.png") as im:
        # 64 samples, 8x8 grid with 2-px padding, enlarged twice under a 30-px title band
        assert im.size == (2 * (8 * 30 + 2), 2 * (8 * 30 + 2) + 30)


def test_resume_extends_a_run(tmp_path, capsys):
    run = tmp_path / "ring"
    run_cli(capsys, "train", "--preset", "ring", "--steps", 10, "--out", run, *TINY)
    code, out, _ = run_cli(capsys, "train", "--out", run, "--resume", "--steps", 20, "--no-progress")
    assert code == 0 and "trained 20 steps" in out
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 15, 20]


def test_dry_run_prints_resolved_config(tmp_path, capsys):
    code, out, _ = run_cli(capsys, "train", "--preset", "mnist", "--loss", "wgan", "--dry-run", "--out", tmp_path / "x")
    cfg = json.loads(out)
    assert code == 0 and cfg["optim_d"] == "rmsprop" and cfg["d_steps"] == 5 and cfg["g_size"] == 800
    assert not (tmp_path / "x").exists()


def test_list(capsys):
    code, out, _ = run_cli(capsys, "list")
    presets = "presets:  ring, grid, ring-mbd, grid-mbd, mnist, mnist-long, mnist-oneclass, mnist-conv"
    assert code == 0 and presets in out and "wgan-gp" in out


@pytest.mark.parametrize(
    "argv, match",
    [
        (["train", "--preset", "nope"], "unknown preset 'nope'"),
        (["train", "--set", "bogus=1"], "unknown config key 'bogus'"),
        (["train", "--set", "margin=-1"], "margin must be >= 0, got -1.0"),
        (["train", "--steps", "-3"], "steps must be >= 0, got -3"),
        (["train", "--set", "steps=ten"], "expected int"),
        (["train", "--data", "no/such/folder", "--set", "arch=conv"], "no/such/folder"),
    ],
)
def test_bad_train_input(argv, match, capsys, tmp_path):
    code, _, err = run_cli(capsys, *argv, "--out", tmp_path / "r", "--no-progress")
    assert_one_line_error(code, err, match)
    assert not (tmp_path / "r" / "config.json").exists()


def test_missing_and_truncated_mnist(tmp_path, capsys, data_root):
    code, _, err = run_cli(
        capsys,
        "train",
        "--preset",
        "mnist",
        "--data-root",
        tmp_path / "none",
        "--out",
        tmp_path / "r1",
        "--no-progress",
    )
    assert_one_line_error(code, err, "not found")
    raw = tmp_path / "broken" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (data_root / "MNIST" / "raw").iterdir():
        shutil.copy(f, raw / f.name)
    blob = (raw / "train-images-idx3-ubyte.gz").read_bytes()
    (raw / "train-images-idx3-ubyte.gz").write_bytes(blob[: len(blob) // 2])
    code, _, err = run_cli(
        capsys,
        "train",
        "--preset",
        "mnist",
        "--data-root",
        tmp_path / "broken",
        "--out",
        tmp_path / "r2",
        "--no-progress",
    )
    assert_one_line_error(code, err, "train-images-idx3-ubyte")
    short = gzip.compress(gzip.decompress((data_root / "MNIST/raw/t10k-labels-idx1-ubyte.gz").read_bytes())[:-10])
    (raw / "train-images-idx3-ubyte.gz").write_bytes(blob)
    (raw / "train-labels-idx1-ubyte.gz").write_bytes(short)
    code, _, err = run_cli(
        capsys,
        "train",
        "--preset",
        "mnist",
        "--data-root",
        tmp_path / "broken",
        "--out",
        tmp_path / "r3",
        "--no-progress",
    )
    assert_one_line_error(code, err, "truncated or corrupt")


def test_empty_and_corrupt_image_folders(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(
        capsys, "train", "--data", tmp_path / "empty", "--set", "arch=conv", "--out", tmp_path / "r1", "--no-progress"
    )
    assert_one_line_error(code, err, "no image files")
    bad = tmp_path / "bad"
    bad.mkdir()
    Image.new("RGB", (40, 40), (255, 0, 0)).save(bad / "ok.png")
    (bad / "broken.png").write_bytes(b"not a png at all")
    code, _, err = run_cli(
        capsys, "train", "--data", bad, "--set", "arch=conv", "--out", tmp_path / "r2", "--no-progress"
    )
    assert_one_line_error(code, err, "broken.png")


def test_image_folder_trains_with_conv_nets(tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    code, out, err = run_cli(
        capsys,
        "train",
        "--data",
        folder,
        "--set",
        "arch=conv",
        "--set",
        "image_size=32",
        "--set",
        "g_channels=8",
        "--set",
        "d_channels=8",
        "--set",
        "batch_size=8",
        "--steps",
        2,
        "--out",
        tmp_path / "run",
        "--no-progress",
    )
    assert code == 0, err
    code, _, _ = run_cli(capsys, "sample", tmp_path / "run", "-n", 3, "-o", tmp_path / "c.npy")
    x = np.load(tmp_path / "c.npy")
    assert x.dtype == np.uint8 and x.shape == (3, 3, 32, 32)


@pytest.mark.parametrize("make", ["missing", "plain-folder", "no-checkpoint"])
def test_sample_refuses_non_runs(make, tmp_path, capsys):
    target = tmp_path / "x"
    if make != "missing":
        target.mkdir()
    if make == "no-checkpoint":
        (target / "config.json").write_text("{}")
    code, _, err = run_cli(capsys, "sample", target, "-n", 2, "-o", tmp_path / "o.npy")
    assert_one_line_error(code, err, str(target))


@pytest.mark.parametrize("make", ["missing", "plain-folder"])
def test_resume_without_a_config_says_there_is_nothing_to_resume(make, tmp_path, capsys):
    target = tmp_path / "x"
    if make != "missing":
        target.mkdir()
    code, _, err = run_cli(capsys, "train", "--out", target, "--resume", "--no-progress")
    assert_one_line_error(code, err, f"nothing to resume in {target}")


def test_resume_with_a_config_starts_an_empty_folder(tmp_path, capsys):
    # --resume with a configuration is "continue if there is anything, else start": handy in scripts.
    code, out, err = run_cli(
        capsys, "train", "--preset", "ring", "--steps", 10, "--out", tmp_path / "new", "--resume", *TINY
    )
    assert code == 0 and "trained 10 steps" in out, err


def test_second_train_into_a_run_is_refused_and_harmless(tmp_path, capsys):
    run = tmp_path / "ring"
    run_cli(capsys, "train", "--preset", "ring", "--steps", 5, "--out", run, *TINY)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    code, _, err = run_cli(capsys, "train", "--preset", "grid", "--steps", 5, "--out", run, *TINY)
    assert_one_line_error(code, err, "already holds a run")
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_sample_requires_npy(tmp_path, capsys):
    code, _, err = run_cli(capsys, "sample", tmp_path, "-n", 2, "-o", tmp_path / "o.txt")
    assert_one_line_error(code, err, ".npy")


def test_eval_a_run_folder_and_its_samples(tmp_path, capsys):
    run = tmp_path / "ring"
    run_cli(capsys, "train", "--preset", "ring", "--steps", 5, "--out", run, *TINY)
    code, out, err = run_cli(capsys, "eval", run, "--against", "ring", "-n", 500)
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert set(result) >= {"modes", "hq_pct", "reverse_kl"} and result["n"] == 500
    assert 0 <= result["modes"] <= 8
    run_cli(capsys, "sample", run, "-n", 500, "-o", tmp_path / "s.npy")
    code, out, _ = run_cli(capsys, "eval", tmp_path / "s.npy", "--against", "ring")
    assert json.loads(out.strip().splitlines()[-1])["modes"] == result["modes"]  # same seed-0 samples
    code, _, err = run_cli(capsys, "eval", run, "--against", "mnist")
    assert_one_line_error(code, err, "ring")


def test_periodic_evaluation_keeps_the_best_checkpoint(tmp_path, capsys):
    run = tmp_path / "ring"
    code, _, err = run_cli(
        capsys,
        "train",
        "--preset",
        "ring",
        "--steps",
        20,
        "--out",
        run,
        *TINY,
        "--set",
        "eval_every=10",
        "--set",
        "best_metric=hq_pct",
        "--set",
        "eval_samples=500",
    )
    assert code == 0, err
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval/modes" in r]
    assert [r["step"] for r in evals] == [10, 20]
    best = json.loads((run / "best.json").read_text())
    top = max(evals, key=lambda r: r["eval/hq_pct"])  # first of equal values is kept (strict improvement)
    assert (best["metric"], best["value"], best["step"]) == ("hq_pct", top["eval/hq_pct"], top["step"])
    assert (run / "eval.png").is_file() and (run / "checkpoints/best/weights.safetensors").is_file()
    code, _, _ = run_cli(capsys, "sample", run, "-n", 3, "-o", tmp_path / "b.npy", "--checkpoint", "best")
    assert code == 0 and np.load(tmp_path / "b.npy").shape == (3, 2)


def _all_parsers():
    import argparse

    from ebgan.cli import make_parser

    root = make_parser()
    sub = next(a for a in root._actions if isinstance(a, argparse._SubParsersAction))
    return root, sub.choices


def test_every_option_has_help_and_states_its_default():
    _, commands = _all_parsers()
    assert set(commands) == {
        "train",
        "sample",
        "eval",
        "score",
        "train-classifier",
        "download",
        "list",
        "sweep",
        "semisup",
        "seq",
    }
    commands = dict(commands)
    for action in commands.pop("seq")._actions:  # `ebgan seq` holds commands of its own
        if isinstance(action, argparse._SubParsersAction):
            assert set(action.choices) == {"parse", "train", "score", "update"}
            commands.update({f"seq {k}": v for k, v in action.choices.items()})
    for name, parser in commands.items():
        for action in parser._actions:
            if action.dest == "help" or isinstance(action, argparse._SubParsersAction):
                continue
            where = f"ebgan {name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help, f"{where} has no help text"
            has_default = action.default not in (None, False, [], "==SUPPRESS==") and action.option_strings
            if has_default:
                assert "default" in action.help, f"{where} does not state its default {action.default!r}"


def test_version_and_bare_command(capsys):
    from ebgan import __version__

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out == f"ebgan {__version__}\n"
    code, out, err = run_cli(capsys)
    # bare `ebgan` is a usage error: the help goes to standard error and the status is 2
    assert code == 2 and out == "" and err.startswith("usage: ebgan") and "train" in err and "sample" in err


def test_sample_names_every_file_it_wrote(tmp_path, capsys):
    run = tmp_path / "ring"
    run_cli(capsys, "train", "--preset", "ring", "--steps", 5, "--out", run, *TINY)
    code, out, _ = run_cli(capsys, "sample", run, "-n", 3000, "-o", tmp_path / "s.npy", "--png", tmp_path / "s.png")
    assert code == 0
    assert out.splitlines() == [
        f"wrote {tmp_path / 's.npy'}: float32 [3000, 2]",
        f"wrote {tmp_path / 's.png'}: a scatter plot of the first 2500 points",
    ]
    code, _, err = run_cli(capsys, "sample", run, "-n", 3, "-o", tmp_path / "t.npy", "--png", tmp_path / "t.jpg")
    assert_one_line_error(code, err, "--png must name a .png file")


def test_logged_floats_are_rounded_and_a_constant_margin_logs_exactly(tmp_path, capsys):
    run = tmp_path / "ring"
    run_cli(capsys, "train", "--preset", "ring", "--steps", 10, "--out", run, *TINY)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["margin"] for r in rows] == [0.3, 0.3]  # not the float32 average 0.3000001311
    for r in rows:
        for k, v in r.items():
            if isinstance(v, float) and k != "time":
                assert v == float(f"{v:.6g}"), (k, v)


def test_train_states_threads_and_files(tmp_path, capsys):
    code, out, err = run_cli(capsys, "train", "--preset", "ring", "--steps", 5, "--out", tmp_path / "r", *TINY)
    assert code == 0
    assert "on 1 thread (auto: OMP_NUM_THREADS is set)" in out  # conftest sets OMP_NUM_THREADS=1
    assert (
        f"run folder: {tmp_path / 'r'} (config.json, data.json, metrics.jsonl, samples.png, samples/, energy.png, "
        "landscape.png, checkpoints/)"
    ) in out


def test_train_without_preset_says_which_defaults_it_uses(tmp_path, capsys):
    code, out, err = run_cli(capsys, "train", "--dry-run", "--out", tmp_path / "x")
    assert code == 0 and json.loads(out)["steps"] == 6000
    assert "no --preset given: using the Config defaults" in err and "--preset mnist" in err


def test_progress_lines_in_a_log_file(tmp_path):
    # Not a terminal: whole lines, the run's settings first (threads included), no carriage returns.
    import subprocess
    import sys

    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "ebgan.cli",
            "train",
            "--preset",
            "ring",
            "--steps",
            "30",
            "--set",
            "g_size=16",
            "--set",
            "d_size=16",
            "--set",
            "log_every=10",
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    lines = p.stderr.splitlines()
    assert "\r" not in p.stderr
    assert lines[0] == (
        f"ebgan: training ebgan on ring in {tmp_path / 'r'} from step 0 to step 30; cpu, 1 thread "
        "(auto: OMP_NUM_THREADS is set)"
    )
    assert lines[-1].startswith("ebgan ring 30/30 100% ") and " loss_d " in lines[-1]


def test_list_and_config_reference(capsys):
    from pathlib import Path

    from ebgan.config import Config, config_reference

    code, out, _ = run_cli(capsys, "list", "--config")
    assert code == 0 and out == config_reference()
    for f in dataclasses.fields(Config):  # every field documented, with its default
        row = next(line for line in out.splitlines() if line.startswith(f"| `{f.name}` |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 4 and cells[3], f"{f.name} has no description"
    # The committed reference is the generated one (regenerate: ebgan list --config > docs/config.md).
    assert (Path(__file__).parents[1] / "docs" / "config.md").read_text() == out
