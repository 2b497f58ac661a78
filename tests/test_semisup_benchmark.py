"""The semi-supervised benchmark's carry: how an unfinished run's checkpoint outlives a working copy."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from ebgan.checkpoint import find_checkpoint

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "semisup.py"


@pytest.fixture()
def bench(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(_PATH.parent))  # its sibling _report
    spec = importlib.util.spec_from_file_location("semisup_benchmark", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "OUT", tmp_path)
    monkeypatch.setattr(mod, "SELECT", tmp_path / "select")  # the margin-selection runs (none unless a test adds)
    return mod


def _checkpoint(run: Path, step: int, payload: bytes) -> Path:
    ckpt = run / "checkpoints" / f"step-{step:08d}"
    ckpt.mkdir(parents=True)
    for name in ("weights.safetensors", "state.pt", "config.json"):
        (ckpt / name).write_bytes(payload + name.encode())
    (run / "checkpoints" / "latest").write_text(ckpt.name + "\n")
    return ckpt


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_carry_keeps_the_newest_checkpoint_and_restores_it_where_resume_looks(bench, tmp_path):
    run = tmp_path / "ebgan-ln-100-s2"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "ebgan-ln"}))
    _checkpoint(run, 2000, b"old")
    (run / "checkpoints" / "latest").unlink()
    newest = _checkpoint(run, 3000, b"new")
    done = tmp_path / "ladder-100-s0"  # a finished run: its stale carry goes
    (done / "carry").mkdir(parents=True)
    (done / "carry" / "latest").write_text("step-00001000\n")
    (done / "result.json").write_text("{}")
    (tmp_path / "ladder-200-s0").mkdir()  # a run killed before its first checkpoint: nothing to carry
    sel = tmp_path / "select" / "ebgan-ln-100-s0-m20"  # a margin-selection run is carried as well
    sel.mkdir(parents=True)
    (sel / "config.json").write_text(json.dumps({"model": "ebgan-ln"}))
    _checkpoint(sel, 4000, b"sel")

    assert bench.carry_checkpoints() == ["ebgan-ln-100-s2: step-00003000", "ebgan-ln-100-s0-m20: step-00004000"]
    assert (sel / "carry" / "latest").read_text() == "step-00004000\n"
    assert not (done / "carry").exists()
    assert not (tmp_path / "ladder-200-s0" / "carry").exists()
    carried = _files(run / "carry")
    assert carried == {"latest": b"step-00003000\n", **{f"step-00003000/{k}": v for k, v in _files(newest).items()}}

    # A new working copy has the committed carry but no checkpoints/: restore puts it back for --resume.
    expected = _files(run / "checkpoints" / "step-00003000")
    shutil.rmtree(run / "checkpoints")
    bench.restore_carry(run)
    assert find_checkpoint(run) == run / "checkpoints" / "step-00003000"
    assert _files(run / "checkpoints" / "step-00003000") == expected

    # A run with checkpoints of its own (newer than the carry) keeps them.
    _checkpoint(run, 4000, b"newer")
    bench.restore_carry(run)
    assert find_checkpoint(run) == run / "checkpoints" / "step-00004000"

    # Carrying again replaces the carry by the newer checkpoint, nothing else left in it.
    assert bench.carry_checkpoints() == ["ebgan-ln-100-s2: step-00004000", "ebgan-ln-100-s0-m20: step-00004000"]
    assert sorted(_files(run / "carry")) == [
        "latest",
        "step-00004000/config.json",
        "step-00004000/state.pt",
        "step-00004000/weights.safetensors",
    ]
    assert not (run / "carry.tmp").exists()


def _run_folder(run: Path, cfg: dict, rows: list[dict]) -> None:
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(cfg))
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_search_report_sets_a_stopped_run_beside_the_default_run_and_the_ladder(bench, tmp_path, monkeypatch):
    search = tmp_path / "search"
    monkeypatch.setattr(bench, "SEARCH", search)
    cfg = {"model": "ebgan-ln", "labels": 1000, "seed": 0, "steps": 120000, "weights": [2000.0] + [0.0] * 6}
    _run_folder(
        search / "ebgan-ln-1000-s0-margin30",
        {**cfg, "margin": 30.0},
        [
            {"step": 10000, "eval/test_error": 4.23},
            {"step": 15000, "eval/test_error": 2.5},
            {"step": 20000, "eval/test_error": 2.15},
            {"step": 20100, "energy/real": 10.24, "energy/fake": 32.18, "margin": 24.97},
        ],
    )
    _run_folder(tmp_path / "ebgan-ln-1000-s0", {**cfg, "margin": 12.0}, [{"step": 10000, "eval/test_error": 1.5}])
    _run_folder(
        tmp_path / "ladder-1000-s0",
        {**cfg, "model": "ladder", "margin": 12.0},
        [{"step": 10000, "eval/test_error": 1.77}, {"step": 20000, "eval/test_error": 1.32}],
    )
    text = bench.search_body("cmd")
    assert (
        "`ebgan-ln-1000-s0-margin30`: ebgan-ln, 1000 labels, seed 0, margin 30, bottom weight 2000; stopped at "
        "step 20100 of 120000, where the energy of real images was 10.2 and of generated ones 32.2 (margin "
        "then 25.0)"
    ) in text
    table = text[text.index("| step |") :].strip().splitlines()
    assert table == [
        "| step | this run | default (ebgan-ln-1000-s0, margin 12) | ladder-1000-s0 |",
        "|---|---|---|---|",
        "| 10000 | 4.23 | 1.50 | 1.77 |",
        "| 20000 | 2.15 | - | 1.32 |",
    ]
