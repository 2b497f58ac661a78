"""Config: presets, typed --set overrides, validation, margin schedules, JSON round trip."""

from __future__ import annotations

import json

import pytest

from ebgan.config import (
    PRESETS,
    Config,
    apply_overrides,
    from_dict,
    from_preset,
    margin_at,
    resolve,
    to_dict,
)
from ebgan.errors import EbganError


def test_mnist_preset_is_the_papers_best_ebgan_pt():
    cfg = resolve(from_preset("mnist"))
    got = (
        cfg.g_layers,
        cfg.g_size,
        cfg.d_layers,
        cfg.d_size,
        cfg.d_dropout,
        cfg.lr_g,
        cfg.lr_d,
        cfg.margin,
        cfg.pt_weight,
        cfg.batch_size,
        cfg.optim_g,
        cfg.optim_d,
    )
    assert got == (5, 800, 2, 1024, 0.0, 1e-3, 1e-3, 10.0, 0.1, 64, "adam", "adam")


def test_all_presets_resolve():
    from ebgan.config import IMAGE_PRESET_DATA

    for name in PRESETS:
        cfg = from_preset(name)
        if cfg.data == IMAGE_PRESET_DATA:  # the image presets train on the user's folder (--data)
            cfg = apply_overrides(cfg, {"data": "some/folder"})
        resolve(cfg)


def test_set_parses_by_field_type():
    cfg = apply_overrides(Config(), None, ["margin=2.5", "steps=7", "batch_norm=false", "lr_g=none", "data=grid"])
    assert (cfg.margin, cfg.steps, cfg.batch_norm, cfg.lr_g, cfg.data) == (2.5, 7, False, None, "grid")
    assert isinstance(cfg.steps, int) and isinstance(cfg.margin, float)


@pytest.mark.parametrize(
    "item, msg",
    [
        ("steps=1.5", "expected int"),
        ("batch_norm=maybe", "expected bool"),
        ("marjin=3", "did you mean margin"),
        ("margin", "KEY=VALUE"),
    ],
)
def test_set_refuses_bad_items(item, msg):
    with pytest.raises(EbganError, match=msg):
        apply_overrides(Config(), None, [item])


@pytest.mark.parametrize(
    "key, value, msg",
    [
        ("margin", -1.0, "margin must be >= 0, got -1.0"),
        ("steps", 0, r"steps must be > 0 \(or pretrain_steps > 0 for an auto-encoder alone\)"),
        ("steps", -5, "steps must be >= 0, got -5"),
        ("energy", "l3", "energy must be one of"),
        ("d_dropout", 1.0, "d_dropout must be in"),
        ("g_layers", 1, "g_layers must be >= 2"),
        ("lr_d", 0.0, "lr_d must be > 0"),
        ("loss", "vae", "unknown loss 'vae'"),
    ],
)
def test_validation_names_the_offending_value(key, value, msg):
    with pytest.raises(EbganError, match=msg):
        resolve(apply_overrides(Config(), {key: value}))


def test_unknown_preset():
    with pytest.raises(
        EbganError,
        match="unknown preset 'nope'; valid presets: ring, grid, ring-mbd, grid-mbd, mnist, mnist-long, "
        "mnist-oneclass, mnist-conv",
    ):
        from_preset("nope")


def test_json_round_trip():
    cfg = resolve(from_preset("grid"))
    assert from_dict(json.loads(json.dumps(to_dict(cfg)))) == cfg


def test_from_dict_refuses_foreign_keys():
    with pytest.raises(EbganError, match="unknown config key 'foo'"):
        from_dict({**to_dict(Config()), "foo": 1})


def test_per_loss_defaults_and_override():
    wgan = resolve(apply_overrides(Config(), {"loss": "wgan"}))
    assert (wgan.optim_d, wgan.lr_d, wgan.d_steps) == ("rmsprop", 5e-5, 5)
    gp = resolve(apply_overrides(Config(), {"loss": "wgan-gp"}))
    assert (gp.optim_g, gp.lr_g, gp.beta1, gp.beta2, gp.d_steps) == ("adam", 1e-4, 0.0, 0.9, 5)
    mine = resolve(apply_overrides(Config(), {"loss": "wgan", "d_steps": 2, "optim_d": "adam"}))
    assert (mine.d_steps, mine.optim_d) == (2, "adam")


def test_margin_schedules():
    base = apply_overrides(Config(), {"margin": 10.0, "margin_final": 2.0, "steps": 100})
    const = base
    assert [margin_at(const, s) for s in (0, 50, 100)] == [10.0, 10.0, 10.0]
    lin = apply_overrides(base, {"margin_schedule": "linear"})
    assert [margin_at(lin, s) for s in (0, 25, 100, 150)] == [10.0, 8.0, 2.0, 2.0]
    exp = apply_overrides(base, {"margin_schedule": "exponential", "margin_decay_steps": 50})
    # m_final + (m - m_final) * 0.01 ** (25 / 50) = 2 + 8 * 0.1 = 2.8
    assert margin_at(exp, 0) == 10.0
    assert margin_at(exp, 25) == pytest.approx(2.8, abs=1e-12)
    assert margin_at(exp, 50) == 2.0


def test_margin_final_above_margin_refused():
    with pytest.raises(EbganError, match="margin_final"):
        resolve(apply_overrides(Config(), {"margin": 1.0, "margin_final": 2.0}))


def test_lr_schedules():
    from ebgan.config import lr_scale_at

    base = apply_overrides(Config(), {"steps": 100, "lr_decay_from": 0.6, "lr_final_scale": 0.1})
    assert [lr_scale_at(base, s) for s in (0, 80, 100)] == [1.0, 1.0, 1.0]  # constant ignores the decay fields
    lin = apply_overrides(base, {"lr_schedule": "linear"})
    assert [lr_scale_at(lin, s) for s in (0, 60, 80, 100, 120)] == pytest.approx([1.0, 1.0, 0.55, 0.1, 0.1])
    cos = apply_overrides(base, {"lr_schedule": "cosine", "lr_final_scale": 0.0})
    # halfway through the decay window the cosine is at (1 + cos(pi / 2)) / 2 = 0.5
    assert [lr_scale_at(cos, s) for s in (0, 60, 80, 100)] == pytest.approx([1.0, 1.0, 0.5, 0.0], abs=1e-12)


@pytest.mark.parametrize(
    "key, value, msg",
    [
        ("lr_schedule", "step", "lr_schedule must be one of"),
        ("lr_final_scale", 1.5, "lr_final_scale must be in"),
        ("lr_decay_from", 1.0, "lr_decay_from must be in"),
    ],
)
def test_lr_schedule_validation(key, value, msg):
    with pytest.raises(EbganError, match=msg):
        resolve(apply_overrides(Config(), {key: value}))
