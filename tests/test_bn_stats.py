"""Batch-norm running statistics of the discriminator come from real training data alone (issue 33, item 4).

The passes of D over generated samples (the D step's fake pass, the G step), known anomalies (unlearning) and
gradient-penalty inputs run inside ``frozen_bn_stats``: they still normalise each batch with its own statistics,
so training is bit for bit what it was, but they leave D's running mean, variance and batch counter alone.
"""

from __future__ import annotations

import contextlib
import copy
import shutil

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from ebgan import objectives
from ebgan.config import apply_overrides, from_preset, resolve
from ebgan.data import Dataset
from ebgan.dist import GlobalBatchNorm
from ebgan.nets import frozen_bn_stats
from ebgan.train import Trainer, train

BN = nn.modules.batchnorm._BatchNorm


def _bn_layers(net: nn.Module) -> list[BN]:
    return [m for m in net.modules() if isinstance(m, BN)]


def _stats(net: nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for m in _bn_layers(net) for t in (m.running_mean, m.running_var, m.num_batches_tracked)]


def _images(n: int, seed: int, size: int = 28) -> torch.Tensor:
    """Synthetic uint8 images with some structure (a bright blob at a random place on a noisy background)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 60, (n, 1, size, size), generator=g).float()
    ar = torch.arange(size).float()
    cy, cx = torch.randint(6, size - 6, (2, n), generator=g).float()
    blob = 200 * torch.exp(
        -((ar[None, :, None] - cy[:, None, None]) ** 2 + (ar[None, None, :] - cx[:, None, None]) ** 2) / 18.0
    )
    return (x + blob[:, None]).clamp(0, 255).to(torch.uint8)


def _cfg(case: str, **kw):
    """A tiny run whose D has batch norm: an MLP auto-encoder (d_layers > 2) with pre-training, the conv
    auto-encoder (BEGAN) and a conv scalar discriminator (non-saturating GAN, two D steps per G step)."""
    if case == "ebgan-mlp":
        sets = dict(d_layers=4, d_size=32, g_size=32, z_dim=8, d_code=8, pretrain_steps=3, steps=6)
        base = "mnist-oneclass"
    elif case == "began-conv":
        sets = dict(loss="began", g_channels=8, d_channels=8, z_dim=16, steps=6)
        base = "mnist-conv"
    else:
        sets = dict(loss="nsgan", g_channels=8, d_channels=8, z_dim=16, steps=4, d_steps=2)
        base = "mnist-conv"
    sets.update(
        batch_size=16,
        d_dropout=0.0,
        holdout=0.0,
        amp="none",
        sample_every=1000,
        ckpt_every=1000,
        log_every=1,
        n_grid=16,
    )
    sets.update(kw)
    return resolve(apply_overrides(from_preset(base), sets))


CASES = ["ebgan-mlp", "began-conv", "nsgan-conv"]


def _trainer(case: str, **kw) -> Trainer:
    if case.endswith("-bf16"):  # bf16 autocast (emulated on CPUs without native bf16: slow, but these are tiny)
        case, kw = case[: -len("-bf16")], {"amp": "bf16", **kw}
    anomalies = _images(40, seed=2) if case == "ebgan-mlp" else None  # unlearning: EBGAN's energy only
    t = Trainer(_cfg(case, **kw), Dataset("mnist", "image", _images(160, seed=1), None), anomalies=anomalies)
    assert _bn_layers(t.D), "the test needs a discriminator with batch norm"
    return t


# -- the context manager ---------------------------------------------------------------------------------------


def _net(momentum):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3),
        nn.BatchNorm2d(4, momentum=momentum),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 5),
        nn.BatchNorm1d(5, momentum=momentum),
    )


@pytest.mark.parametrize("amp", [False, True], ids=["fp32", "bf16-autocast"])
@pytest.mark.parametrize("momentum", [0.1, None], ids=["momentum", "cumulative-average"])
def test_frozen_bn_stats_restores_the_statistics_and_changes_nothing_else(momentum, amp):
    a, b = _net(momentum), _net(momentum)
    x = torch.randn(8, 2, 8, 8)
    a(torch.randn(8, 2, 8, 8))  # statistics that are not the initial ones
    b.load_state_dict(a.state_dict())
    before = _stats(a)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if amp else contextlib.nullcontext()
    with ctx:
        with frozen_bn_stats(a):
            ya = a(x)
        yb = b(x)  # the same pass, updating the statistics
    assert torch.equal(ya, yb)
    ya.float().square().sum().backward()  # after the statistics were put back: autograd does not object
    yb.float().square().sum().backward()
    assert all(torch.equal(p.grad, q.grad) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert all(torch.equal(s, t) for s, t in zip(_stats(a), before, strict=True))
    assert not all(torch.equal(s, t) for s, t in zip(_stats(b), before, strict=True))
    # The next pass outside the context updates them from where they were, as if the frozen pass never ran.
    c = _net(momentum)
    c.load_state_dict(b.state_dict())
    for m, s in zip(_bn_layers(c), [before[i : i + 3] for i in range(0, len(before), 3)], strict=True):
        m.running_mean.copy_(s[0])
        m.running_var.copy_(s[1])
        m.num_batches_tracked.copy_(s[2])
    x2 = torch.randn(8, 2, 8, 8)
    with torch.no_grad():
        a(x2)
        c(x2)
    assert all(torch.equal(s, t) for s, t in zip(_stats(a), _stats(c), strict=True))


def test_frozen_bn_stats_is_a_no_op_in_eval_mode_and_without_batch_norm():
    net = _net(0.1).eval()
    with frozen_bn_stats(net) as ctx:
        assert ctx.saved == []
    with frozen_bn_stats(nn.Linear(2, 2)) as ctx:
        assert ctx.saved == []


def test_frozen_bn_stats_covers_the_cpu_global_batch_norm():
    bn = GlobalBatchNorm(3)
    before = _stats(bn)
    with frozen_bn_stats(bn):
        bn(torch.randn(6, 3))
    assert all(torch.equal(s, t) for s, t in zip(_stats(bn), before, strict=True))


# -- training --------------------------------------------------------------------------------------------------


def _train_recording(t: Trainer) -> list[tuple[torch.Tensor, dict]]:
    """Train ``t`` to its end; returns every real batch it drew (pre-training and every D step) with a copy of
    D's state at that moment: D's weights then are those of its real pass on the batch (the D step's update
    comes after it)."""
    drawn: list[tuple[torch.Tensor, dict]] = []
    next_batch = t.next_batch

    def recording_next_batch():
        x = next_batch()
        drawn.append((x.clone(), copy.deepcopy(t.D.state_dict())))
        return x

    t.next_batch = recording_next_batch
    for _ in range(t.total_steps):
        t.train_step()
    assert len(drawn) == t.cfg.pretrain_steps + t.cfg.steps * t.cfg.d_steps
    return drawn


def _check_real_statistics(t: Trainer, net0: nn.Module, drawn: list[tuple[torch.Tensor, dict]]) -> None:
    """Replay the real batches, each through an eager copy of D with the weights D had when it saw it, and
    apply batch norm's update rule by hand (in float64): D's running mean, variance and batch counter must be
    exactly those."""
    replay = copy.deepcopy(net0).train()
    layers = _bn_layers(replay)
    inputs: dict[int, torch.Tensor] = {}
    for i, m in enumerate(layers):
        m.register_forward_pre_hook(lambda mod, args, i=i: inputs.__setitem__(i, args[0].detach().double()))
    mean = [m.running_mean.double().clone() for m in layers]
    var = [m.running_var.double().clone() for m in layers]
    for x, state in drawn:
        replay.load_state_dict(state)
        with torch.no_grad(), t.autocast():  # the trainer's autocast (bf16 or none)
            replay(x)
        for i, m in enumerate(layers):
            h = inputs[i].transpose(0, 1).flatten(1)  # [C, N * H * W]
            f = m.momentum
            mean[i] = (1 - f) * mean[i] + f * h.mean(1)
            var[i] = (1 - f) * var[i] + f * h.var(1, unbiased=True)
    for i, m in enumerate(_bn_layers(t.D)):
        assert int(m.num_batches_tracked) == len(drawn)
        torch.testing.assert_close(m.running_mean, mean[i].float())
        torch.testing.assert_close(m.running_var, var[i].float())


@pytest.mark.parametrize("case", CASES + ["ebgan-mlp-bf16"])
def test_running_statistics_are_those_of_the_real_batches_alone(case):
    """Replay the exact real batches the trainer drew: D's running statistics are theirs alone."""
    t = _trainer(case)
    net0 = copy.deepcopy(t.D)
    _check_real_statistics(t, net0, _train_recording(t))


def _old_behaviour(monkeypatch):
    """Every pass updates the running statistics, as before issue 33 (the context manager does nothing)."""
    monkeypatch.setattr(objectives, "frozen_bn_stats", lambda D: contextlib.nullcontext())


@pytest.mark.parametrize("case", CASES + ["ebgan-mlp-bf16"])
def test_training_is_bit_for_bit_unchanged(case, monkeypatch):
    """The same run with every pass updating the statistics (the old behaviour) and with real passes only:
    the same losses and weights bit for bit, D's running statistics alone differ."""
    runs = []
    for old in (True, False):
        with monkeypatch.context() as mp:
            if old:
                _old_behaviour(mp)
            t = _trainer(case)
            logged = [t.train_step() for _ in range(t.total_steps)]
        runs.append((t, logged))
    (old, old_log), (new, new_log) = runs
    assert [sorted(r) for r in old_log] == [sorted(r) for r in new_log]
    for a, b in zip(old_log, new_log, strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a), (a, b)
    for net in ("G", "D"):
        pa, pb = getattr(old, net).parameters(), getattr(new, net).parameters()
        assert all(torch.equal(p, q) for p, q in zip(pa, pb, strict=True))
    assert all(torch.equal(p, q) for p, q in zip(old.G.buffers(), new.G.buffers(), strict=True))
    n_real = new.cfg.pretrain_steps + new.cfg.steps * new.cfg.d_steps
    for m_old, m_new in zip(_bn_layers(old.D), _bn_layers(new.D), strict=True):
        assert int(m_new.num_batches_tracked) == n_real
        assert int(m_old.num_batches_tracked) > n_real  # fakes, G steps and anomalies counted too
        assert not torch.equal(m_old.running_mean, m_new.running_mean)


def test_resume_with_a_batch_norm_discriminator_is_exact(tmp_path):
    """Killed after the step-4 checkpoint (of pre-training and the game, with known anomalies) and resumed: the
    final weights and buffers (running statistics included) are byte for byte the uninterrupted run's."""
    cfg = _cfg("ebgan-mlp", ckpt_every=4, steps=8, keep_checkpoints=5)
    data, anomalies = Dataset("mnist", "image", _images(160, seed=1), None), _images(40, seed=2)
    train(cfg, tmp_path / "full", dataset=data, anomalies=anomalies, progress=False)
    part = tmp_path / "part"
    shutil.copytree(tmp_path / "full", part)
    ck = part / "checkpoints"
    for p in ck.glob("step-*"):
        if p.name != "step-00000004":
            shutil.rmtree(p)
    (ck / "latest").write_text("step-00000004\n")
    train(cfg, part, dataset=data, anomalies=anomalies, progress=False, resume=True)
    a = load_file(str(tmp_path / "full/checkpoints/step-00000011/weights.safetensors"))
    b = load_file(str(ck / "step-00000011/weights.safetensors"))
    assert any(k.startswith("D.") and k.endswith("running_mean") for k in a)  # the buffers are checkpointed
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    n_real = cfg.pretrain_steps + cfg.steps
    assert all(int(v) == n_real for k, v in a.items() if k.startswith("D.") and k.endswith("num_batches_tracked"))


@pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("clang++") is None,
    reason="torch.compile needs a C++ compiler on a CPU",
)
def test_compiled_discriminator_keeps_real_statistics_only():
    """``compile=true`` runs D through torch.compile: the statistics are restored around the compiled passes
    too (the same replay of the real batches, through an eager copy of D)."""
    t = _trainer("ebgan-mlp", steps=2, compile=True)
    assert t.D_run is not t.D  # the compiled module runs the passes
    net0 = copy.deepcopy(t.D)
    _check_real_statistics(t, net0, _train_recording(t))
