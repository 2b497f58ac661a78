"""The loss-comparison benchmark's configs and report logic (no training: synthetic results)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
compare = pytest.importorskip("compare_losses")


def test_own_optimiser_defaults_per_loss():
    ebgan, _ = compare.run_config("ring", "ebgan", 0, 100)
    assert (ebgan.optim_g, ebgan.lr_g, ebgan.lr_d, ebgan.beta1, ebgan.beta2, ebgan.d_steps) == (
        "adam",
        1e-3,
        1e-3,
        0.5,
        0.9,
        1,
    )  # the ring preset's (EBGAN's tuned) values
    gan, _ = compare.run_config("ring", "gan", 0, 100)
    assert (gan.optim_g, gan.lr_g, gan.beta1, gan.beta2, gan.d_steps) == ("adam", 2e-4, 0.5, 0.999, 1)
    wgan, _ = compare.run_config("ring", "wgan", 0, 100)
    assert (wgan.optim_g, wgan.optim_d, wgan.lr_d, wgan.d_steps) == ("rmsprop", "rmsprop", 5e-5, 5)
    # the networks, batch, schedule and budget are the preset's for every loss
    for cfg in (ebgan, gan, wgan):
        assert (cfg.arch, cfg.g_size, cfg.d_size, cfg.batch_size, cfg.steps, cfg.lr_schedule, cfg.seed) == (
            "mlp",
            128,
            128,
            256,
            100,
            "cosine",
            0,
        )
    assert {ebgan.loss, gan.loss, wgan.loss} == {"ebgan", "gan", "wgan"}


def test_preset_optimiser_control_keeps_each_loss_d_steps():
    for loss in ("gan", "began", "wgan", "wgan-gp"):
        cfg, _ = compare.run_config("grid", loss, 1, 100, optim="preset")
        assert (cfg.optim_g, cfg.optim_d, cfg.lr_g, cfg.lr_d, cfg.beta1, cfg.beta2) == (
            "adam",
            "adam",
            1e-3,
            1e-3,
            0.5,
            0.9,
        )
        assert cfg.d_steps == (5 if loss.startswith("wgan") else 1)
    # EBGAN is the same run under both settings, so its results are shared
    own, _ = compare.run_config("grid", "ebgan", 0, 100)
    ctrl, _ = compare.run_config("grid", "ebgan", 0, 100, optim="preset")
    assert compare.config_key(own) == compare.config_key(ctrl)


def test_config_key_ignores_the_machine_but_not_the_run():
    import dataclasses

    cfg, _ = compare.run_config("ring", "lsgan", 0, 100)
    assert compare.config_key(dataclasses.replace(cfg, num_threads=2, device="cuda")) == compare.config_key(cfg)
    assert compare.config_key(dataclasses.replace(cfg, seed=1)) != compare.config_key(cfg)
    assert compare.config_key(dataclasses.replace(cfg, lr_g=1e-3)) != compare.config_key(cfg)


def test_wgan_gp_drops_batch_norm_only_where_the_preset_has_it():
    cfg, note = compare.run_config("mnist", "wgan-gp", 0, 100)
    assert note is None and cfg.d_layers == 2
    cfg, note = compare.run_config("ring", "wgan-gp", 0, 100)
    assert note is None and not cfg.batch_norm


def _run(status="ok", **metrics):
    r = {"status": status, "seed": 0, "train_seconds": 10.0}
    if status == "ok":
        r["metrics"] = metrics
    else:
        r["error"] = "loss is NaN"
    return r


def test_table_median_spread_and_undefined_kl():
    rows = {
        "ebgan": [_run(modes=8.0, hq_pct=90.0, reverse_kl=0.01), _run(modes=7.0, hq_pct=80.0, reverse_kl=0.03)],
        "gan": [_run(modes=0.0, hq_pct=0.0, reverse_kl=None), _run("diverged")],
    }
    lines = compare.table("ring", ["ebgan", "gan"], rows).splitlines()
    assert lines[2] == "| `ebgan` | 7.5 (7-8) | 85.0 (80.0-90.0) | 0.020 (0.010-0.030) | 10 | 0/2 | 0/2 |"
    assert lines[3] == "| `gan` | 0 | 0.0 | undefined | 10 | 1/2 | 0/2 |"


def test_verdict_orders_by_modes_then_kl():
    rows = {
        "ebgan": [_run(modes=8.0, hq_pct=90.0, reverse_kl=0.05)],
        "gan": [_run(modes=8.0, hq_pct=95.0, reverse_kl=0.01)],
        "wgan": [_run(modes=6.0, hq_pct=20.0, reverse_kl=0.3)],
        "lsgan": [_run("diverged")],
    }
    s = compare.verdict("ring", ["ebgan", "gan", "wgan", "lsgan"], rows)
    assert s.startswith(
        "**ring**: by median modes covered, then reverse KL, EBGAN (8 modes, KL 0.050) is behind "
        "1 of 2: gan (8 modes, KL 0.010); ahead of wgan; no scored run at all: lsgan."
    )
    assert "1 of 2 score higher: gan 95.0%" in s
    assert "Diverged or failed seeds elsewhere: lsgan (1)" in s
    rows["ebgan"] = [_run(modes=8.0, hq_pct=90.0, reverse_kl=0.001)]
    assert "is ahead of all 2 other losses" in compare.verdict("ring", ["ebgan", "gan", "wgan", "lsgan"], rows)


def test_verdict_mnist_by_fid():
    rows = {"ebgan": [_run(**{"is": 7.5, "fid": 14.0})], "nsgan": [_run(**{"is": 4.3, "fid": 44.6})]}
    s = compare.verdict("mnist", ["ebgan", "nsgan"], rows)
    assert s == (
        "**mnist**: by median FID, EBGAN (FID 14.0, IS 7.50) is ahead of all 1 other losses. By IS "
        "(EBGAN 7.50), 0 of 1 score higher."
    )


def test_tuning_budget_gives_every_loss_its_defaults_and_the_presets_settings():
    assert compare.TUNING == ("defaults", "preset")
    ebgan, _ = compare.run_config("ring", "ebgan", 0, 100, optim="defaults")
    assert (ebgan.lr_g, ebgan.beta1, ebgan.beta2) == (1e-3, 0.9, 0.999)  # EBGAN's paper values, not the preset's
    for loss in ("gan", "wgan", "began"):  # for the other losses "defaults" is the main comparison's "own" run
        own, _ = compare.run_config("grid", loss, 0, 100)
        defaults, _ = compare.run_config("grid", loss, 0, 100, optim="defaults")
        assert compare.config_key(own) == compare.config_key(defaults)


def test_config_key_is_stable_when_an_option_is_added_at_its_default():
    """Keys hash the fields of the first stored runs plus any later field away from its default, so the stored
    runs of losses whose training did not change stay valid; BEGAN and loss-sensitive runs hash every field."""
    import dataclasses

    cfg, _ = compare.run_config("ring", "nsgan", 0, 100)
    assert "g_ema" not in compare.KEY_FIELDS_V1 and cfg.g_ema == 0.0
    assert compare.config_key(dataclasses.replace(cfg, g_ema=0.999)) != compare.config_key(cfg)
    assert compare.config_key(dataclasses.replace(cfg, ls_gp=5.0)) != compare.config_key(cfg)
    # the key as it was computed for the stored runs: a hash of the v1 fields (and the run-only ones dropped)
    import hashlib
    import json

    d = {k: v for k, v in compare.to_dict(cfg).items() if k in compare.KEY_FIELDS_V1}
    assert compare.config_key(cfg) == hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]
    ls, _ = compare.run_config("ring", "loss-sensitive", 0, 100)
    assert compare.config_key(dataclasses.replace(ls, ls_gp=2.0)) != compare.config_key(ls)


def test_selection_key_prefers_modes_then_kl_and_fid():
    a = [_run(modes=8.0, hq_pct=50.0, reverse_kl=0.2)]
    b = [_run(modes=7.0, hq_pct=99.0, reverse_kl=0.01)]
    assert compare.selection_key("ring", a) < compare.selection_key("ring", b)
    assert compare.selection_key("ring", b) < compare.selection_key("ring", [_run("diverged")])
    assert compare.selection_key("ring", [_run(modes=0.0, hq_pct=0.0, reverse_kl=None)]) < compare.selection_key(
        "ring", []
    )
    assert compare.selection_key("mnist", [_run(**{"is": 5.0, "fid": 10.0})]) < compare.selection_key(
        "mnist", [_run(**{"is": 9.0, "fid": 12.0})]
    )
