"""ebgan sweep: grids, sampling, the results file, resume after a kill, failures, the report, Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ebgan.cli import main
from ebgan.sweep import SweepFailed, load_results, run_sweep
from ebgan.sweep.backends import LocalPool
from ebgan.sweep.grid import Setting, config_for, expand, load_grid, sample
from ebgan.sweep.report import bootstrap_share, write_report
from ebgan.sweep.store import Results, read_rows

# A grid of tiny ring runs (a few seconds each): 2 methods x 2 settings.
TINY = {
    "preset": "ring",
    "steps": 20,
    "base": {"log_every": 10, "n_grid": 64},
    "grid": {"g_size": [16, 32]},
    "methods": {"gan": {}, "ebgan": {}},
}


def write_grid(tmp_path: Path, spec: dict, name: str = "grid.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(spec))
    return path


def cli(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ebgan.cli", *argv], capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------------------------------------- grids
def test_paper_grid_counts():
    _, spec = load_grid("paper-mnist")
    assert len(expand(spec, "ebgan")) == 512
    assert len(expand(spec, "ebgan-pt")) == 512
    assert len(expand(spec, "gan")) == 6144
    _, margin = load_grid("paper-margin")
    settings = expand(margin, "ebgan")
    assert [s.values["margin"] for s in settings] == [1.0, 2.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0]


def test_gan_grid_is_optimiser_pairs_times_learning_rates():
    _, spec = load_grid("paper-mnist")
    gan = expand(spec, "gan")
    combos = {(s.values["optim_d"], s.values["optim_g"], s.values["lr"]) for s in gan}
    assert len(combos) == 12
    arch = {
        (s.values["g_layers"], s.values["d_layers"], s.values["g_size"], s.values["d_size"], s.values["d_dropout"])
        for s in gan
    }
    assert len(arch) == 512


def test_sample_is_stable_nested_and_per_method():
    _, spec = load_grid("paper-mnist")
    settings = expand(spec, "gan")
    a = [s.setting_id for s in sample(settings, 64, seed=0)]
    assert a == [s.setting_id for s in sample(settings, 64, seed=0)]
    assert len(set(a)) == 64
    assert [s.setting_id for s in sample(settings, 10, seed=0)] == a[:10]  # nested
    assert a != [s.setting_id for s in sample(settings, 64, seed=1)]
    # The id is a hash of the method and its values: fixed across versions and machines.
    s = Setting(
        "ebgan",
        {
            "g_layers": 4,
            "d_layers": 3,
            "g_size": 400,
            "d_size": 512,
            "d_dropout": 0.0,
            "optim_g": "adam",
            "optim_d": "adam",
            "lr": 1e-3,
            "margin": 10.0,
        },
    )
    assert s.setting_id == "50c76240e8"
    assert sample(expand(spec, "ebgan"), 1, seed=0)[0].setting_id == "50c76240e8"


def test_config_for_a_setting():
    _, spec = load_grid("paper-mnist")
    s = Setting(
        "gan",
        {
            "g_layers": 2,
            "d_layers": 5,
            "g_size": 3200,
            "d_size": 128,
            "d_dropout": 0.5,
            "optim_g": "sgd",
            "optim_d": "adam",
            "lr": 1e-2,
        },
    )
    cfg = config_for(spec, s, steps=938, seed=3)
    assert (cfg.loss, cfg.g_layers, cfg.d_layers, cfg.g_size, cfg.d_size, cfg.d_dropout) == (
        "nsgan",
        2,
        5,
        3200,
        128,
        0.5,
    )
    assert (cfg.optim_g, cfg.optim_d, cfg.lr_g, cfg.lr_d, cfg.steps, cfg.seed) == ("sgd", "adam", 1e-2, 1e-2, 938, 3)
    assert cfg.batch_size == 64 and cfg.batch_norm  # the rest is the mnist preset
    e = config_for(spec, Setting("ebgan", {"margin": 10.0}), steps=5, seed=0)
    assert (e.loss, e.pt_weight, e.margin) == ("ebgan", 0.0, 10.0)
    assert config_for(spec, Setting("ebgan-pt", {}), steps=5, seed=0).pt_weight == 0.1


def test_grid_file_forms(tmp_path):
    bare = write_grid(tmp_path, {"g_size": [16, 32], "lr": 1e-3})
    _, spec = load_grid(str(bare))
    assert [s.values for s in expand(spec, "gan")] == [{"g_size": 16, "lr": 1e-3}, {"g_size": 32, "lr": 1e-3}]
    assert set(spec["methods"]) == {"gan", "ebgan", "ebgan-pt"}
    yaml = pytest.importorskip("yaml")
    y = tmp_path / "grid.yaml"
    y.write_text(yaml.safe_dump(TINY, sort_keys=False))
    _, spec_y = load_grid(str(y))
    assert spec_y == load_grid(TINY)[1]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["nope", "--out", "{d}/s"], "unknown grid 'nope'"),
        (["paper-mnist", "--out", "{d}/s", "--sample", "0"], "--sample must be at least 1"),
        (["{d}/bad.json", "--out", "{d}/s"], "unknown field 'g_layerz'"),
        (["{d}/empty.json", "--out", "{d}/s"], "is empty"),
        (["paper-mnist", "--out", "{d}/s", "--methods", "gan,vae"], "unknown method 'vae'"),
        (["paper-margin", "--out", "{d}/s", "--methods", "gan"], "no settings for method 'gan'"),
        (["paper-mnist", "--out", "{d}/other", "--sample", "1"], "not empty and holds no sweep"),
        (["paper-mnist"], "--out is required"),
    ],
)
def test_bad_input_one_error_line(tmp_path, capsys, argv, message):
    (tmp_path / "bad.json").write_text(json.dumps({"g_layerz": [1]}))
    (tmp_path / "empty.json").write_text(json.dumps({"g_layers": []}))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    code = main(["sweep", *[a.format(d=tmp_path) for a in argv]])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("ebgan: error:") and message in err[0], err
    assert not (tmp_path / "s").exists()


# ------------------------------------------------------------------------------------------ running
def test_sweep_end_to_end_and_rerun_skips(tmp_path):
    grid = write_grid(tmp_path, TINY)
    out = tmp_path / "sweep"
    p = cli("sweep", str(grid), "--out", str(out), "--workers", "2", "--no-progress")
    assert p.returncode == 0, p.stderr
    rows = read_rows(out)
    assert sorted((r["method"], r["g_size"]) for r in rows) == [("ebgan", 16), ("ebgan", 32), ("gan", 16), ("gan", 32)]
    assert all(r["status"] == "ok" and r["steps"] == 20 and "modes" in r for r in rows)
    for r in rows:
        run = out / "runs" / r["method"] / r["setting_id"]
        assert json.loads((run / "config.json").read_text())["g_size"] == r["g_size"]
        assert json.loads((run / "result.json").read_text()) == r
    report = (out / "report.md").read_text()
    assert "| gan | 2 | 2 | 0 | 0 |" in report and (out / "fig2_modes.png").is_file()
    # The same command again: nothing runs, nothing is added.
    before = (out / "results.jsonl").read_bytes()
    stamps = {p: p.stat().st_mtime_ns for p in [*out.glob("runs/*/*/result.json"), *out.glob("logs/*")]}
    p = cli("sweep", str(grid), "--out", str(out), "--workers", "2", "--no-progress")
    assert p.returncode == 0 and (out / "results.jsonl").read_bytes() == before
    # No worker started and no run rescored: every result file and worker log is untouched.
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps and len(stamps) == 4 + 2
    # Another budget in the same folder is refused.
    p = cli("sweep", str(grid), "--out", str(out), "--steps", "30")
    assert p.returncode == 2 and "another --steps" in p.stderr
    assert load_results(out, frame=False) == rows


def _children_of(pid: int) -> list[int]:
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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_at_any_moment_then_rerun_gives_one_row_per_setting(tmp_path):
    spec = {
        **TINY,
        "steps": 150,
        "base": {"log_every": 10, "n_grid": 64, "ckpt_every": 25},
        "grid": {"g_size": [16, 32, 64]},
    }
    grid = write_grid(tmp_path, spec)
    out = tmp_path / "sweep"
    argv = [sys.executable, "-m", "ebgan.cli", "sweep", str(grid), "--out", str(out), "--workers", "2", "--no-progress"]
    for wait_for in ("checkpoint", "row"):  # kill mid-run (a checkpoint written, no row), then after a row
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        n0 = len(read_rows(out))
        while time.time() < deadline:
            if wait_for == "checkpoint" and list(out.glob("runs/*/*/checkpoints/*")):
                break
            if wait_for == "row" and len(read_rows(out)) > n0:
                break
            time.sleep(0.05)
        kids = _children_of(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for _ in range(100):  # the workers die with the sweep (PR_SET_PDEATHSIG)
            if not any(Path(f"/proc/{k}").exists() and "zombie" not in _state(k) for k in kids):
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"worker processes {kids} outlived the killed sweep")
    with open(out / "results.jsonl", "ab") as f:  # a torn line, as a kill inside write() would leave
        f.write(b'{"method": "gan", "setting_id": "x')
    p = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    rows = read_rows(out)
    keys = [(r["method"], r["setting_id"]) for r in rows]
    assert len(keys) == 6 and len(set(keys)) == 6
    bad = [{k: r.get(k) for k in ("method", "setting_id", "status", "steps", "error")} for r in rows]
    assert all(r["status"] == "ok" and r["steps"] == 150 for r in rows), json.dumps(bad) + p.stderr[-2000:]
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 6  # the torn line was cut, nothing duplicated


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0]
    except (OSError, IndexError):
        return "zombie"


def test_sigint_checkpoints_running_runs_and_rerun_finishes(tmp_path):
    spec = {
        **TINY,
        "steps": 3000,
        "base": {"log_every": 100, "n_grid": 64, "ckpt_every": 3000},
        "grid": {"g_size": [16]},
        "methods": {"ebgan": {}},
    }
    grid = write_grid(tmp_path, spec)
    out = tmp_path / "sweep"
    argv = [sys.executable, "-m", "ebgan.cli", "sweep", str(grid), "--out", str(out), "--workers", "1", "--no-progress"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dirs = out / "runs" / "ebgan"
    deadline = time.time() + 120
    while time.time() < deadline and not list(run_dirs.glob("*/metrics.jsonl")):
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "re-run the same command to continue" in err
    ckpts = list(run_dirs.glob("*/checkpoints/*"))
    assert ckpts, "the running run did not checkpoint"  # ckpt_every is the whole run: this one is the signal's
    assert read_rows(out) == []
    p = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    (row,) = read_rows(out)
    assert row["status"] == "ok" and row["steps"] == 3000


def test_failed_and_diverged_runs_are_recorded_and_the_sweep_goes_on(tmp_path):
    spec = {
        "preset": "ring",
        "steps": 20,
        "base": {"log_every": 10, "n_grid": 64},
        "grid": {"data": ["ring", str(tmp_path / "missing-folder")], "lr": [1e-3, 1e9]},
        "methods": {"gan": {"optim_g": ["sgd"], "optim_d": ["sgd"]}},
    }
    out = tmp_path / "sweep"
    rows = run_sweep(spec, out, workers=2, progress=False)
    status = {(r["data"], r["lr"]): r["status"] for r in rows}
    assert status == {
        ("ring", 1e-3): "ok",
        ("ring", 1e9): "diverged",
        (str(tmp_path / "missing-folder"), 1e-3): "failed",
        (str(tmp_path / "missing-folder"), 1e9): "failed",
    }
    failed = [r for r in rows if r["status"] == "failed"]
    assert all("unknown data set" in r["error"] for r in failed)
    assert "NaN or infinite" in next(r for r in rows if r["status"] == "diverged")["error"]
    report = (out / "report.md").read_text()
    assert "## Failed runs (2)" in report
    # --retry-failed runs them again (they fail again here, and are recorded once each).
    (tmp_path / "missing-folder").mkdir()
    rows = run_sweep(spec, out, workers=2, retry_failed=True, progress=False)
    assert len(rows) == 4 and sum(r["status"] == "failed" for r in rows) == 2


# ------------------------------------------------------------------------------------------- results
def test_results_file_keeps_the_first_row_and_repairs_a_torn_line(tmp_path):
    (tmp_path / "results.jsonl").write_text(
        '{"method": "a", "setting_id": "1", "is": 2}\n{"method": "a", "setting_id": "1", "is": 3}\n{"method": "b"'
    )
    res = Results(tmp_path)
    assert res.rows == [{"method": "a", "setting_id": "1", "is": 2}]
    assert (tmp_path / "results.jsonl").read_text().endswith("}\n")
    assert res.append({"method": "a", "setting_id": "1", "is": 4}) is False
    assert res.append({"method": "b", "setting_id": "2", "is": 5}) is True
    assert [r["setting_id"] for r in read_rows(tmp_path)] == ["1", "2"]


def test_bootstrap_share_values():
    assert bootstrap_share(np.ones(20, bool)) == (1.0, 1.0, 1.0)
    assert bootstrap_share(np.zeros(20, bool)) == (0.0, 0.0, 0.0)
    p, lo, hi = bootstrap_share(np.array([True] * 30 + [False] * 70))
    assert p == 0.3
    # Binomial(100, 0.3) / 100: the 2.5 and 97.5 % quantiles are 0.21 and 0.39 (normal approx. 0.21-0.39).
    assert (round(lo, 2), round(hi, 2)) == (0.21, 0.39)


def test_report_from_rows(tmp_path):
    rows = []
    for i, v in enumerate([6.0, 7.0, 8.5, 2.0]):
        rows.append(
            {
                "method": "ebgan",
                "setting_id": f"e{i}",
                "g_layers": 2 + i,
                "d_layers": 2,
                "status": "ok",
                "is": v,
                "paper_score": v / 4,
            }
        )
    rows.append(
        {"method": "ebgan", "setting_id": "e9", "g_layers": 2, "d_layers": 2, "status": "failed", "error": "boom"}
    )
    for i, (v, od, lr) in enumerate([(1.0, "sgd", 0.01), (5.5, "adam", 0.001), (None, "adam", 0.01)]):
        r = {
            "method": "gan",
            "setting_id": f"g{i}",
            "g_layers": 3,
            "d_layers": 3,
            "optim_d": od,
            "optim_g": "adam",
            "lr": lr,
            "status": "ok" if v else "diverged",
        }
        if v:
            r.update({"is": v, "paper_score": v / 4})
        rows.append(r)
    (tmp_path / "sweep.json").write_text(
        json.dumps(
            {
                "grid": "test",
                "spec": {"preset": "mnist"},
                "steps": 10,
                "seed": 0,
                "methods": ["gan", "ebgan"],
                "sample": None,
            }
        )
    )
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = write_report(tmp_path).read_text()
    # ebgan: 4 scored (the failed run left out), 3 at IS >= 5, 1 at >= 8; gan: 3 scored (1 diverged), 1 >= 5.
    assert "| ebgan | 5 | 4 | 0 | 1 | 6.50" in text
    assert "| ebgan | 5 | 4 | 0 | 1 | 6.50 " in text and "| 75.0 [" in text and "| 25.0 [" in text
    assert "| gan | 3 | 2 | 1 | 0 | 3.25" in text and "| 33.3 [" in text
    assert "### nLayer <= 3" in text and "| ebgan | 2 | 2 | 0 | 1 |" not in text
    assert "| adam / adam | 0.001 | 1 | 5.50 | 100.0 [100.0, 100.0] |" in text
    assert "- ebgan e9: boom" in text
    for name in ("fig2_is.png", "fig2_paper_score.png", "fig3_gan.png"):
        assert (tmp_path / name).stat().st_size > 1000
    assert not (tmp_path / "fig9_margin.png").exists()


def test_report_margin_sweep(tmp_path):
    rows = [
        {"method": m, "setting_id": f"{m}{mg}", "margin": mg, "status": "ok", "is": v}
        for m, scores in (("ebgan", (2.0, 6.0, 5.0)), ("ebgan-pt", (3.0, 7.0, 4.0)))
        for mg, v in zip((1.0, 8.0, 32.0), scores)
    ]
    (tmp_path / "sweep.json").write_text(
        json.dumps(
            {
                "grid": "paper-margin",
                "spec": {"preset": "mnist"},
                "steps": 10,
                "seed": 0,
                "methods": ["ebgan", "ebgan-pt"],
            }
        )
    )
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = write_report(tmp_path).read_text()
    assert "| method | m=1 | m=8 | m=32 |" in text
    assert "| ebgan | 2.00 | 6.00 | 5.00 |" in text and "| ebgan-pt | 3.00 | 7.00 | 4.00 |" in text
    assert (tmp_path / "fig9_margin.png").stat().st_size > 1000


# ---------------------------------------------------------------------------------------------- Ray
def test_ray_backend_gives_the_local_results(tmp_path):
    pytest.importorskip("ray")
    grid = write_grid(tmp_path, TINY)
    local = run_sweep(str(grid), tmp_path / "local", workers=2, progress=False)
    ray_rows = run_sweep(str(grid), tmp_path / "ray", workers=2, backend="ray", progress=False)
    key = lambda r: (r["method"], r["setting_id"])  # noqa: E731
    drop = ("seconds", "train_seconds")
    strip = lambda rows: sorted(({k: v for k, v in r.items() if k not in drop} for r in rows), key=key)  # noqa: E731
    assert strip(ray_rows) == strip(local)  # same seeds, one thread each: the same numbers
    for r in ray_rows:
        assert (tmp_path / "ray" / "runs" / r["method"] / r["setting_id"] / "result.json").is_file()
    assert (tmp_path / "ray" / "report.md").is_file()
    assert os.environ.get("RAY_ADDRESS") is None


def test_a_killed_worker_is_retried_then_recorded_and_replaced(tmp_path, monkeypatch):
    # EBGAN_FAULT: each worker process SIGKILLs itself at its 3rd metrics row, i.e. inside its second run
    # (2 rows per run): the pool starts a new process, which resumes that run, and both settings finish.
    monkeypatch.setenv("EBGAN_FAULT", "log-row:3")
    spec = {**TINY, "grid": {"g_size": [16, 32]}, "methods": {"ebgan": {}}}
    rows = run_sweep(spec, tmp_path / "sweep", workers=1, progress=False)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    log = (tmp_path / "sweep" / "logs" / "worker-0.log").read_text()
    assert log.count("worker process killed by SIGKILL; retry 1 of 2 from the run's last checkpoint") == 1
    # A run killed in every attempt is recorded as failed with the cause once its retries are spent.
    monkeypatch.setenv("EBGAN_FAULT", "log-row:1")
    monkeypatch.setattr(LocalPool, "RETRIES", 1)
    with pytest.raises(SweepFailed, match="killed by SIGKILL in each of 2 attempts"):
        run_sweep({**spec, "grid": {"g_size": [16]}}, tmp_path / "again", workers=1, progress=False)
    (row,) = read_rows(tmp_path / "again")
    assert row["status"] == "failed"
    assert "worker process killed by SIGKILL in each of 2 attempts (the out-of-memory killer" in row["error"]
