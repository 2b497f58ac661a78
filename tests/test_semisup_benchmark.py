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


def test_ablation_pairs_the_ladder_with_each_ebgan_ln_margin_on_common_seeds(bench):
    """The same-recipe Ladder is paired with the EBGAN-LN runs of today's default margin and with those of the
    former one (``ebgan-ln-m30``), each on the seeds both have; the t interval appears from two pairs."""
    runs = [
        ("ebgan-ln-m30", 0, 0.95),
        ("ebgan-ln-m30", 1, 0.89),
        ("ebgan-ln", 1, 0.80),
        ("ebgan-ln", 3, 0.70),
        ("ladder-lnrecipe", 0, 0.91),
        ("ladder-lnrecipe", 1, 1.10),
    ]
    by: dict = {}
    for name, seed, err in runs:
        by.setdefault((name, 100), []).append({"seed": seed, "test_error": err})
    text = "\n".join(bench.ablation_lines(by))
    default = bench.default_margin(100)
    assert f"EBGAN-LN at margin {default:g} (the default)" in text and "EBGAN-LN at margin 30, paired" in text
    assert "| 1 | 0.80 | 1.10 | -0.30 |" in text  # today's default: seed 1 only (seed 3 has no Ladder run)
    assert "| 0 | 0.95 | 0.91 | +0.04 |\n| 1 | 0.89 | 1.10 | -0.21 |" in text
    # two pairs: mean -0.085, sample std 0.17678, t(1) 12.71 -> half width 1.589
    assert "| mean | 0.92 | 1.01 | -0.09 [95% t interval -1.67, +1.50] |" in text
    assert text.count("t interval") == 1


def test_select_report_applies_its_rule_against_the_incumbent_margin(bench, tmp_path):
    """The margin selection's rule keeps the default it was set up against (30 at 100 labels) only within
    SELECT_TIE of the best mean validation error over the last three evaluations."""
    sel = tmp_path / "select"
    for margin, errs in ((10.0, [1.63, 1.57, 1.50]), (30.0, [1.88, 1.84, 1.73])):
        run = sel / f"ebgan-ln-100-s0-m{margin:g}"
        _run_folder(
            run, {"margin": margin}, [{"step": 2000 * (i + 1), "eval/val_error": e} for i, e in enumerate(errs)]
        )
        (run / "result.json").write_text("{}")
    text = bench.select_body("cmd", 100, [10.0, 30.0], 6000)
    assert "keeps the current default (30)" in text and "| 30 (default) |" in text
    assert "| 10 | 1.63 | 1.57 | 1.50 | 1.567 |" in text
    assert text.rstrip().endswith("Choice: margin 10 (the default 30 is not)")
