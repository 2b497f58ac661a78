"""Trainer: one network untouched by the other's step, exact resume, divergence stop, run folder contents."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from ebgan.config import apply_overrides, from_preset, resolve
from ebgan.data import Dataset, sample_mixture
from ebgan.errors import EbganError
from ebgan.train import Trainer, TrainingDiverged, train

TINY = dict(
    g_size=32,
    d_size=32,
    g_layers=3,
    d_layers=3,
    batch_size=32,
    log_every=5,
    sample_every=1000,
    ckpt_every=1000,
    n_grid=64,
)


def ring(n=4096) -> Dataset:
    x, y = sample_mixture("ring", n, torch.Generator().manual_seed(0))
    return Dataset("ring", "points", x, y)


def tiny_cfg(**kw):
    return resolve(apply_overrides(from_preset("ring"), {**TINY, **kw}))


def params(m):
    return [p.detach().clone() for p in m.parameters()]


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_d_phase_leaves_g_and_g_phase_leaves_d_untouched():
    t = Trainer(tiny_cfg(), ring())
    g0, d0 = params(t.G), params(t.D)
    fake, _, _ = t.d_phase(0)
    assert same(params(t.G), g0)
    assert not same(params(t.D), d0)
    d1 = params(t.D)
    t.g_phase(fake, 0)
    assert same(params(t.D), d1)
    assert not same(params(t.G), g0)
    assert all(p.requires_grad for p in t.D.parameters())  # unfrozen again after the G step


def test_pretraining_touches_only_d():
    t = Trainer(tiny_cfg(pretrain_steps=3), ring())
    g0 = params(t.G)
    for _ in range(3):
        stats = t.train_step()
        assert set(stats) == {"pretrain/energy_real"}
    assert same(params(t.G), g0)
    assert "loss_g" in t.train_step()


def test_lr_schedule_sets_both_optimisers_and_is_logged():
    cfg = tiny_cfg(
        steps=10, lr_g=1e-3, lr_d=2e-3, lr_schedule="linear", lr_decay_from=0.5, lr_final_scale=0.0, pretrain_steps=2
    )
    t = Trainer(cfg, ring())
    seen = []
    for _ in range(cfg.pretrain_steps + cfg.steps):
        stats = t.train_step()
        seen.append((t.opt_g.param_groups[0]["lr"], t.opt_d.param_groups[0]["lr"], float(stats.get("lr_scale", 1))))
    assert seen[:2] == [(1e-3, 2e-3, 1.0)] * 2  # pre-training runs at the full rate
    game = seen[2:]  # game steps 0..9: full rate up to step 5, then 1 - (s - 5) / 5
    assert [g[2] for g in game] == pytest.approx([1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2])
    assert all(g == pytest.approx(1e-3 * f) and d == pytest.approx(2e-3 * f) for g, d, f in game)


def test_state_dict_round_trip_is_bit_exact():
    cfg = tiny_cfg(d_dropout=0.2)
    a = Trainer(cfg, ring())
    for _ in range(12):
        a.train_step()
    b1 = Trainer(cfg, ring())
    for _ in range(5):
        b1.train_step()
    import copy

    # Snapshot before building b2: the global RNG (dropout) is process-wide and b2's constructor reseeds it.
    snap = copy.deepcopy((b1.G.state_dict(), b1.D.state_dict(), b1.state_dict()))
    b2 = Trainer(cfg, ring())
    b2.G.load_state_dict(snap[0])
    b2.D.load_state_dict(snap[1])
    b2.load_state_dict(snap[2])
    for _ in range(7):
        b2.train_step()
    assert same(params(a.G), params(b2.G)) and same(params(a.D), params(b2.D))


def test_train_writes_a_complete_run_folder(tmp_path):
    cfg = tiny_cfg(steps=20, ckpt_every=10, sample_every=10)
    summary = train(cfg, tmp_path / "run", dataset=ring(), progress=False)
    run = tmp_path / "run"
    for name in (
        "config.json",
        "data.json",
        "metrics.jsonl",
        "samples.png",
        "energy.png",
        "landscape.png",
        "samples/step-00000010.png",
        "checkpoints/latest",
        "checkpoints/step-00000020/weights.safetensors",
        "checkpoints/step-00000020/state.pt",
    ):
        assert (run / name).is_file(), name
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [5, 10, 15, 20]
    assert {"loss_d", "loss_g", "energy_real", "energy_fake", "pt", "margin"} <= set(rows[0])
    assert summary["steps"] == 20
    weights = load_file(str(run / "checkpoints/step-00000020/weights.safetensors"))
    assert any(k.startswith("G.") for k in weights) and any(k.startswith("D.") for k in weights)
    assert json.loads((run / "config.json").read_text())["steps"] == 20


def test_refuses_to_overwrite_a_run(tmp_path):
    cfg = tiny_cfg(steps=5)
    train(cfg, tmp_path / "run", dataset=ring(), progress=False)
    before = (tmp_path / "run" / "config.json").read_text()
    with pytest.raises(EbganError, match="already holds a run"):
        train(tiny_cfg(steps=5, margin=3.0), tmp_path / "run", dataset=ring(), progress=False)
    assert (tmp_path / "run" / "config.json").read_text() == before


def test_resume_refuses_other_hyperparameters(tmp_path):
    train(tiny_cfg(steps=5), tmp_path / "run", dataset=ring(), progress=False)
    with pytest.raises(EbganError, match="refusing to resume under different hyper-parameters.*margin"):
        train(tiny_cfg(steps=10, margin=3.0), tmp_path / "run", dataset=ring(), progress=False, resume=True)


def test_resume_accepts_the_same_networks_spelt_by_an_older_default(tmp_path):
    # Runs saved when d_code defaulted to 0 resume under today's default None (no bottleneck but for BEGAN).
    train(tiny_cfg(steps=5, d_code=0), tmp_path / "run", dataset=ring(), progress=False)
    train(tiny_cfg(steps=10, d_code=None), tmp_path / "run", dataset=ring(), progress=False, resume=True)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 10
    with pytest.raises(EbganError, match="d_code: 0 -> 3"):
        train(tiny_cfg(steps=15, d_code=3), tmp_path / "run", dataset=ring(), progress=False, resume=True)
    # For BEGAN, None means a 1-unit code on points: not the same networks as d_code=0.
    train(tiny_cfg(steps=5, loss="began", d_code=0), tmp_path / "began", dataset=ring(), progress=False)
    with pytest.raises(EbganError, match="d_code: 0 -> None"):
        train(
            tiny_cfg(steps=10, loss="began", d_code=None),
            tmp_path / "began",
            dataset=ring(),
            progress=False,
            resume=True,
        )


def test_resume_equals_uninterrupted(tmp_path):
    full = train(tiny_cfg(steps=30, ckpt_every=10), tmp_path / "full", dataset=ring(), progress=False)
    train(tiny_cfg(steps=30, ckpt_every=10), tmp_path / "part", dataset=ring(), progress=False)
    # Roll "part" back to its step-10 state: as if the process had been killed at step 10..19.
    part = tmp_path / "part"
    import shutil

    ck = part / "checkpoints"
    shutil.rmtree(ck)
    shutil.copytree(tmp_path / "full" / "checkpoints", ck)
    for p in ck.glob("step-*"):
        if p.name != "step-00000020":
            shutil.rmtree(p)
    (ck / "latest").write_text("step-00000020\n")
    resumed = train(tiny_cfg(steps=30, ckpt_every=10), part, dataset=ring(), progress=False, resume=True)
    a = load_file(str(tmp_path / "full/checkpoints/step-00000030/weights.safetensors"))
    b = load_file(str(part / "checkpoints/step-00000030/weights.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["final"]["step"] == full["final"]["step"] == 30
    steps = [json.loads(line)["step"] for line in (part / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))  # no duplicated log lines after the resume


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    cfg = tiny_cfg(steps=30, ckpt_every=10)
    calls = {"n": 0}
    from ebgan import objectives

    real_g_loss = objectives.EBGANObjective.g_loss

    def poisoned(self, D, fake, step):
        loss, stats = real_g_loss(self, D, fake, step)
        calls["n"] += 1
        return (loss * float("nan") if step >= 14 else loss), stats

    monkeypatch.setattr(objectives.EBGANObjective, "g_loss", poisoned)
    with pytest.raises(TrainingDiverged, match=r"NaN or infinite at step 15.*step-00000010"):
        train(cfg, tmp_path / "run", dataset=ring(), progress=False)
    assert (tmp_path / "run/checkpoints/latest").read_text().strip() == "step-00000010"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_killed_cli_run_resumes_to_the_uninterrupted_result(tmp_path):
    """A real SIGKILL in the middle of a run, then `--resume` with the same command line."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [
        sys.executable,
        "-m",
        "ebgan.cli",
        "train",
        "--preset",
        "ring",
        "--steps",
        "400",
        "--no-progress",
        "--set",
        "g_size=32",
        "--set",
        "d_size=32",
        "--set",
        "ckpt_every=25",
        "--set",
        "sample_every=1000",
    ]
    subprocess.run(args + ["--out", str(tmp_path / "full")], check=True, env=env, capture_output=True)
    proc = subprocess.Popen(
        args + ["--out", str(tmp_path / "killed")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    latest = tmp_path / "killed/checkpoints/latest"
    deadline = time.time() + 120
    while time.time() < deadline and not (latest.exists() and latest.read_text().strip() >= "step-00000050"):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert latest.read_text().strip() != "step-00000400", "the run finished before it could be killed"
    subprocess.run(args + ["--out", str(tmp_path / "killed"), "--resume"], check=True, env=env, capture_output=True)
    a = load_file(str(tmp_path / "full/checkpoints/step-00000400/weights.safetensors"))
    b = load_file(str(tmp_path / "killed/checkpoints/step-00000400/weights.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bf16_autocast_trains_and_fp16_needs_cuda():
    t = Trainer(tiny_cfg(amp="bf16"), ring())
    for _ in range(3):
        stats = t.train_step()
    assert all(bool(torch.isfinite(v)) for v in stats.values())
    assert all(p.dtype == torch.float32 for p in t.G.parameters())  # master weights stay fp32
    if not torch.cuda.is_available():
        with pytest.raises(EbganError, match="amp=fp16 needs a CUDA device"):
            Trainer(tiny_cfg(amp="fp16"), ring())


def test_margin_schedule_reaches_the_logs(tmp_path):
    cfg = tiny_cfg(steps=20, margin=2.0, margin_final=0.0, margin_schedule="linear")
    train(cfg, tmp_path / "run", dataset=ring(), progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    # logged margin = mean over the 5 steps of each interval of 2 - 2 * s / 20
    expected = [sum(2.0 - 2.0 * s / 20 for s in range(i, i + 5)) / 5 for i in (0, 5, 10, 15)]
    assert [r["margin"] for r in rows] == pytest.approx(expected, abs=1e-6)


def test_amp_auto_follows_native_bf16_support(monkeypatch):
    import builtins
    import io

    from ebgan.train import native_bf16, resolve_amp

    real_open = builtins.open

    def fake_cpuinfo(flags):
        def opener(path, *a, **kw):
            if str(path) == "/proc/cpuinfo":
                return io.StringIO(f"processor\t: 0\nflags\t\t: {flags}\n")
            return real_open(path, *a, **kw)

        return opener

    cpu = torch.device("cpu")
    monkeypatch.setattr(builtins, "open", fake_cpuinfo("fpu sse avx2 avx512f avx512_bf16"))
    assert native_bf16(cpu) and resolve_amp("auto", cpu) == "bf16"
    monkeypatch.setattr(builtins, "open", fake_cpuinfo("fpu sse avx2 avx512f"))
    assert not native_bf16(cpu) and resolve_amp("auto", cpu) == "none"
    assert resolve_amp("bf16", cpu) == "bf16" and resolve_amp("none", cpu) == "none"


def test_channels_last_trains_to_the_same_weights(tmp_path):
    from ebgan.data import Dataset
    from ebgan.train import Trainer

    x = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    params = []
    for cl in (False, True):
        cfg = resolve(
            apply_overrides(
                from_preset("mnist-conv"), {"g_channels": 8, "d_channels": 8, "batch_size": 8, "channels_last": cl}
            )
        )
        t = Trainer(cfg, Dataset("mnist", "image", x, None))
        for _ in range(3):
            t.train_step()
        if cl:
            w = next(m.weight for m in t.D.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
            assert w.is_contiguous(memory_format=torch.channels_last)
        params.append(torch.cat([p.detach().flatten() for p in t.nets()["G"].parameters()]))
    torch.testing.assert_close(params[1], params[0], rtol=1e-4, atol=1e-5)  # the same sums in another order


def test_compiled_training_saves_plain_weights(tmp_path):
    cfg = tiny_cfg(steps=2, ckpt_every=2, compile=True)
    train(cfg, tmp_path / "run", dataset=ring(), progress=False)
    keys = load_file(str(tmp_path / "run/checkpoints/step-00000002/weights.safetensors")).keys()
    assert keys and not any("_orig_mod" in k for k in keys)
    assert {k.split(".")[0] for k in keys} == {"G", "D", "G_ema"}  # the ring preset keeps G's moving average
