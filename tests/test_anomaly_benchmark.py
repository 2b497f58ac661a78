"""The anomaly benchmark's run configurations and report logic (no training: synthetic results)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
bench = pytest.importorskip("anomaly")

from ebgan.config import apply_overrides, from_preset, resolve  # noqa: E402


def _cfg(spec):
    return resolve(apply_overrides(bench.base_config(spec), bench.run_overrides(spec)))


def test_models_share_the_auto_encoder_and_budget():
    preset = from_preset(bench.PRESET)
    spec = {"digit": 3, "seed": 1, "anomaly": None, "share": None}
    eb, ae, pt = (_cfg({**spec, "model": m}) for m in ("ebgan", "ae", "ae-pt"))
    assert (eb.classes, eb.seed, eb.num_threads, eb.steps, eb.pretrain_steps) == (
        "3",
        1,
        1,
        preset.steps,
        preset.pretrain_steps,
    )
    # ae: as many discriminator updates as the whole ebgan run, with no generator; ae-pt: the pre-training alone
    assert (ae.steps, ae.pretrain_steps) == (0, preset.pretrain_steps + preset.steps)
    assert (pt.steps, pt.pretrain_steps) == (0, preset.pretrain_steps)
    for c in (ae, pt):
        assert (c.d_size, c.d_code, c.d_layers, c.lr_d, c.holdout) == (
            eb.d_size,
            eb.d_code,
            eb.d_layers,
            eb.lr_d,
            eb.holdout,
        )
    un = _cfg({**spec, "model": "ebgan", "anomaly": 4, "share": 0.05})
    assert (un.known_anomalies, un.anomaly_share) == ("classes:4", 0.05)


def test_search_variants_apply_and_key_runs_apart():
    spec = {"model": "ae", "digit": 2, "seed": 0, "anomaly": None, "share": None, "set": ["steps=100", "d_code=8"]}
    c = _cfg(spec)
    assert (c.d_code, c.steps, c.pretrain_steps) == (8, 0, from_preset(bench.PRESET).pretrain_steps + 100)
    plain = {**spec, "set": []}
    assert bench.key(spec) != bench.key(plain)
    assert bench.key(plain) == bench.key({k: v for k, v in plain.items() if k != "set"})  # no variant: no key field
    assert bench.key({**spec, "set": ["d_code=8", "steps=100"]}) == bench.key(spec)  # order does not matter


def test_report_means_and_unlearning_rows():
    rows = {}
    for d in range(10):
        for m, auc in (("ebgan", 90.0 + d), ("ae", 80.0 + d), ("ae-pt", 70.0 + d)):
            r = {
                "model": m,
                "digit": d,
                "seed": 0,
                "anomaly": None,
                "share": None,
                "status": "ok",
                "auroc": auc,
                "auroc_ink": auc,
                "auroc_energy": auc - 10,
                "train_seconds": 10.0,
            }
            rows[bench.key(r)] = r
        r = {
            "model": "ebgan",
            "digit": d,
            "seed": 0,
            "anomaly": (d + 1) % 10,
            "share": 0.01,
            "status": "ok",
            "auroc": 95.0 + d,
            "auroc_unseen": 94.0 + d,
            "train_seconds": 10.0,
        }
        rows[bench.key(r)] = r

    class Args:
        pairs = 1

    text = bench.report(rows, Args, None)
    assert "| `ebgan` | energy/ink | 90.0 | 91.0 |" in text and "**94.5**" in text  # mean of 90..99
    assert "| `ebgan` | energy | 80.0 | 81.0 |" in text  # the raw energy's row
    assert "**84.5**" in text and "**74.5**" in text and "**64.5**" in text
    assert "| 0.01 | 10 | 94.5 | **99.5** | 98.5 | 92.8 -> 96.4 |" in text
    assert "OCGAN (published) | | 99.8" in text


def test_report_on_several_seeds_gives_mean_and_std_over_seeds_and_the_goal():
    rows = {}
    for seed, shift in ((1, 0.0), (2, 1.0), (3, 2.0)):
        for d in range(10):
            r = {
                "model": "ebgan",
                "digit": d,
                "seed": seed,
                "anomaly": None,
                "share": None,
                "status": "ok",
                "auroc": 95.0 + shift,
                "auroc_ink": 95.0 + shift,
                "auroc_energy": 90.0,
                "val_auroc_ink": 97.0,
                "val_auroc_energy": 93.0 + shift,
                "train_seconds": 10.0,
            }
            rows[bench.key(r)] = r

    class Args:
        pairs = 0
        title = "One-class MNIST on fresh seeds"
        digits = "0,1,2,3,4,5,6,7,8,9"
        seeds = "1,2,3"

    text = bench.report(rows, Args, None)
    assert text.startswith("## One-class MNIST on fresh seeds\n")
    assert "| `ebgan` | energy/ink | 96.0 +- 1.0 |" in text  # per digit: mean +- std over the seeds
    assert "| test, `energy/ink` (the preset's score) | 95.0 | 96.0 | 97.0 | **96.0 +- 1.0** |" in text
    assert "| test, `energy` | 90.0 | 90.0 | 90.0 | 90.0 +- 0.0 |" in text
    assert "| validation, `energy/ink` | 97.0 | 97.0 | 97.0 | 97.0 +- 0.0 |" in text
    assert "| validation, `energy` | 93.0 | 94.0 | 95.0 | 94.0 +- 1.0 |" in text
    assert f"mean >= {bench.GOAL}" in text and "**not met** (96.0)" in text
    assert all(f"{k} {v}" in text for k, v in bench.MEAN_ANCHORS.items())
    # a seed not yet complete is shown as missing, and named in the goal line
    del rows[bench.key({**rows[next(iter(rows))], "seed": 3, "digit": 9})]
    text = bench.report(rows, Args, None)
    assert "| 95.0 | 96.0 | (97.0 over 9 digits) | **95.5 +- 0.7** |" in text and "2 of 3 seeds complete" in text
    # a digit asked for but never run: "-" in its column and no mean over the digits
    rows = {k: r for k, r in rows.items() if r["digit"] != 9}
    text = bench.report(rows, Args, None)
    assert "| `ebgan` | energy/ink | 96.0 +- 1.0 |" in text and "| - | - | 10 |" in text
    assert "Goal" not in text
