"""Semi-supervised MNIST: the Ladder Network's parts by hand, the labelled subset, the batch streams, the
schedules, a short real run, exact resume after a kill, and the CLI's answers to bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch.testing import assert_close

from ebgan.cli import main
from ebgan.errors import EbganError
from ebgan.semisup import (
    Ladder,
    SemisupConfig,
    combinator,
    labelled_subset,
    resolve_semisup,
    semisup,
)
from ebgan.semisup.ladder import _bn_segments
from ebgan.semisup.recipe import (
    BatchStream,
    SemisupData,
    energy,
    ladder_costs,
    lr_at,
    margin_at,
    semisup_from_dict,
)

TINY = [784, 32, 16, 10]


def synthetic_data(n=600, n_test=200, seed=0, labels=100) -> SemisupData:
    """Ten separable classes of 784-d points in [0, 1]: each class lights its own block of pixels."""
    g = torch.Generator().manual_seed(seed)

    def make(m):
        y = torch.arange(m) % 10
        x = 0.2 * torch.rand(m, 784, generator=g)
        for c in range(10):
            x[y == c, c * 78 : (c + 1) * 78] += 0.6
        return x.clamp(0, 1), y

    xs, ys = make(n)
    xt, yt = make(n_test)
    return SemisupData(xs, ys, xt, yt, labelled_subset(ys, labels, seed))


def tiny_cfg(**kw) -> SemisupConfig:
    base = dict(labels=100, layers=TINY, steps=20, batch=20, eval_every=10, log_every=5, ckpt_every=10, num_threads=1)
    return SemisupConfig(**{**base, **kw})


# ------------------------------------------------------------------------------------------------- the parts


def test_combinator_by_hand():
    a = torch.tensor([2.0, 0.0, 0.0, 1.0, 0.5, 4.0, 0.0, 0.0, 0.5, 1.0])[:, None]
    # mu = 2 * sigmoid(0) + 1 * 2 + 0.5 = 3.5; v = 4 * sigmoid(0) + 0.5 * 2 + 1 = 4; (1.5 - 3.5) * 4 + 3.5
    assert_close(combinator(a, torch.tensor([[1.5]]), torch.tensor([[2.0]])), torch.tensor([[-4.5]]))
    # a2 = 1, a3 = ln 3: sigmoid(u + ln 3) at u = 0 is 3/4; mu = 0.75, v = 0; z^ = mu whatever z~ is.
    b = torch.zeros(10, 1)
    b[0], b[1], b[2] = 1.0, 1.0, float(torch.log(torch.tensor(3.0)))
    assert_close(combinator(b, torch.tensor([[7.0]]), torch.tensor([[0.0]])), torch.tensor([[0.75]]))


def test_reference_initialisation_reconstructs_zero():
    """a2 = a7 = 1, the rest 0: mu = v = 0, so z^ = 0 and the bottom cost of a sample is ||x||^2 / 784."""
    torch.manual_seed(0)
    ladder = Ladder(TINY)
    for a in ladder.comb:
        assert_close(a[:, 0], torch.tensor([0.0, 1.0, 0, 0, 0, 0, 1.0, 0, 0, 0]))
    x = torch.rand(8, 784)
    corrupted = ladder.encode(x, [8], ladder.draw_noise(8, 0.3, torch.Generator().manual_seed(1)))
    clean = ladder.encode(x, [8])
    costs = ladder.decode(corrupted, 0, [8], [1.0, 1.0, 0.0, 1.0], clean)
    assert_close(costs[0], x.pow(2).sum(1) / 784)
    assert costs[2] is None
    # Layer 1: z^ = 0 is normalised with the clean batch statistics of that layer.
    pre = clean.z[1]  # already normalised: its batch mean is 0 and variance 1 ...
    m, v = clean.stats[1][0]
    expect = ((0 - m) / torch.sqrt(v + 1e-10) - pre).pow(2).sum(1) / 32
    assert_close(costs[1], expect)
    # ... which the clean pass's own numbers confirm.
    assert_close(pre.mean(0), torch.zeros(32), atol=1e-5, rtol=0)
    assert_close(pre.var(0, unbiased=False), torch.ones(32), atol=1e-3, rtol=0)


def test_noise_off_makes_the_corrupted_path_the_clean_one():
    torch.manual_seed(0)
    ladder = Ladder(TINY)
    x_lab, x_unl = torch.rand(10, 784), torch.rand(20, 784)
    corrupted = ladder.encode(torch.cat([x_lab, x_unl]), [10, 20], ladder.draw_noise(30, 0.0))
    assert ladder.draw_noise(30, 0.0) is None
    clean_l, clean_u = ladder.encode(x_lab, [10]), ladder.encode(x_unl, [20])
    assert_close(corrupted.logits[:10], clean_l.logits)
    for l in range(4):  # each segment is normalised with its own statistics, as if it were alone
        assert_close(corrupted.z[l][10:], clean_u.z[l])
    noises = ladder.draw_noise(30, 0.3, torch.Generator().manual_seed(0))
    assert [tuple(n.shape) for n in noises] == [(30, 784), (30, 32), (30, 16), (30, 10)]
    noisy = ladder.encode(torch.cat([x_lab, x_unl]), [10, 20], noises)
    assert not torch.allclose(noisy.logits, corrupted.logits)
    # The noise is added to the input and to every normalised pre-activation, before the bias.
    assert_close(noisy.z[0], torch.cat([x_lab, x_unl]) + noises[0])
    h1 = torch.relu(noisy.z[1] + ladder.beta[0])
    z2, _ = _bn_segments(ladder.W[1](h1), [10, 20])
    assert_close(noisy.z[2], z2 + noises[2])


def test_zero_weights_remove_a_layers_cost():
    torch.manual_seed(0)
    ladder = Ladder(TINY)
    x_lab, y_lab, x_unl = torch.rand(10, 784), torch.arange(10), torch.rand(20, 784)

    def denoise(weights):
        return ladder_costs(ladder, x_lab, y_lab, x_unl, weights, 0.3, torch.Generator().manual_seed(5))[1]

    both = denoise([1.0, 0.0, 3.0, 0.0])
    assert_close(both, denoise([1.0, 0.0, 0.0, 0.0]) + 3 * denoise([0.0, 0.0, 1.0, 0.0]))
    assert denoise([0.0, 0.0, 0.0, 0.0]) == 0
    costs = ladder.decode(
        ladder.encode(torch.cat([x_lab, x_unl]), [10, 20]), 1, [10, 20], [0, 0, 1.0, 0], ladder.encode(x_unl, [20])
    )
    assert [c is None for c in costs] == [True, True, False, True]


def test_energy_is_the_weighted_bottom_cost_of_its_own_segment():
    torch.manual_seed(0)
    ladder = Ladder(TINY)
    x_lab, y_lab, x_unl, x_fake = torch.rand(10, 784), torch.arange(10), torch.rand(20, 784), torch.rand(20, 784)
    *_, fake_cost = ladder_costs(ladder, x_lab, y_lab, x_unl, [5.0, 0, 0, 0], 0.0, None, x_fake)
    assert_close(5.0 * fake_cost, energy(ladder, x_fake, 5.0, 0.0, None))


def test_population_statistics_are_the_clean_pass_statistics():
    torch.manual_seed(0)
    ladder = Ladder(TINY)
    x = torch.rand(300, 784)
    ladder.set_population_stats(x, chunk=70)
    clean = ladder.encode(x, [300])  # batch statistics of the whole set, layer by layer
    for l in range(1, 4):
        m, v = clean.stats[l][0]
        assert_close(getattr(ladder, f"pop_mean_{l}"), m, atol=1e-5, rtol=1e-4)
        assert_close(getattr(ladder, f"pop_var_{l}"), v, atol=1e-5, rtol=1e-4)
    assert_close(ladder(x), clean.logits, atol=1e-4, rtol=1e-4)


# --------------------------------------------------------------------------------------------- data, schedules


def test_labelled_subset_is_balanced_and_seed_stable():
    y = torch.arange(5000) % 10
    a = labelled_subset(y, 100, seed=3)
    assert len(a) == 100 and len(set(a.tolist())) == 100
    assert torch.bincount(y[a], minlength=10).tolist() == [10] * 10
    assert torch.equal(a, labelled_subset(y, 100, seed=3))
    assert not torch.equal(a, labelled_subset(y, 100, seed=4))
    assert torch.equal(a, torch.sort(a).values)


def test_batch_stream_covers_each_epoch_once_and_is_a_function_of_the_step():
    s = BatchStream(50, 20, seed=1, name="u")
    seq = torch.cat([s.at(k) for k in range(5)])  # 100 indices: two whole epochs
    assert sorted(seq[:50].tolist()) == list(range(50)) and sorted(seq[50:].tolist()) == list(range(50))
    other = BatchStream(50, 20, seed=1, name="u")
    assert torch.equal(other.at(3), s.at(3)) and torch.equal(other.at(0), seq[:20])  # any order, same batch
    assert not torch.equal(BatchStream(50, 20, seed=2, name="u").at(0), seq[:20])


def test_learning_rate_and_margin_schedules():
    cfg = resolve_semisup(SemisupConfig(steps=90000, margin=10.0))
    assert [lr_at(cfg, s) for s in (0, 60000, 75000, 90000)] == [0.002, 0.002, 0.001, 0.0]
    assert [margin_at(cfg, s) for s in (0, 45000, 90000)] == [10.0, 5.0, 0.0]


def test_default_margin_follows_the_bottom_weight():
    # 10 at the bottom weight 5000 (below 1000 labels; chosen on validation data), 12 at 2000 (1000 labels),
    # scaled for custom weights by the label count's margin per unit of weight; an explicit margin is kept as
    # given, 0 included.
    def margin(**kw):
        return resolve_semisup(SemisupConfig(model="ebgan-ln", **kw)).margin

    assert [margin(labels=n) for n in (100, 200, 1000, 5000)] == [10.0, 10.0, 12.0, 12.0]
    assert margin(labels=100, weights=[1000.0, 10, 0.1, 0.1, 0.1, 0.1, 0.1]) == 2.0
    assert margin(labels=1000, weights=[5000.0, 0, 0, 0, 0, 0, 0]) == 30.0
    assert margin(labels=100, variant="full") == 2.0 and margin(labels=1000, variant="full") == 12.0
    assert margin(labels=1000, margin=30.0) == 30.0 and margin(labels=100, margin=0.0) == 0.0
    with pytest.raises(EbganError, match="margin must be >= 0"):
        margin(labels=100, margin=-1.0)


def test_defaults_follow_the_reference_recipes():
    lad = resolve_semisup(SemisupConfig(labels=100))
    assert (lad.steps, lad.beta1, lad.weights) == (90000, 0.9, [5000.0, 0, 0, 0, 0, 0, 0])
    full = resolve_semisup(SemisupConfig(labels=1000, variant="full", model="ebgan-ln"))
    assert (full.steps, full.beta1, full.weights) == (120000, 0.5, [2000.0, 20.0, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert resolve_semisup(SemisupConfig(labels=200, variant="full")).weights[:2] == [1000.0, 10.0]


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(labels=7), "multiple of 10"),
        (dict(labels=0), "multiple of 10"),
        (dict(labels=60010), "more than the 60000"),
        (dict(variant="middle"), "unknown variant 'middle'"),
        (dict(model="gan"), "unknown model 'gan'"),
        (dict(weights=[1.0, 2.0]), "weights needs 7"),
        (dict(model="ebgan-ln", weights=[0.0, 1, 1, 1, 1, 1, 1]), "first"),
        (dict(steps=0), "--steps"),
    ],
)
def test_bad_settings_are_named(kw, message):
    with pytest.raises(EbganError, match=message):
        resolve_semisup(SemisupConfig(**kw))


# -------------------------------------------------------------------------------------------------------- runs


@pytest.mark.parametrize("model", ["ladder", "ebgan-ln"])
def test_short_run_reduces_the_error(tmp_path, model):
    data = synthetic_data()
    result = semisup(
        tiny_cfg(model=model, steps=60, eval_every=60, lr=0.01), tmp_path / model, data=data, progress=False
    )
    from ebgan.semisup.recipe import build_models, test_error

    untrained = test_error(build_models(resolve_semisup(tiny_cfg(model=model)))[0], data)
    assert untrained > 50.0 and result["test_error"] < 10.0
    assert set(result) >= {"test_error", "labels", "model", "seed", "steps"} and result["steps"] == 60
    saved = json.loads((tmp_path / model / "result.json").read_text())
    assert saved == result
    rows = [json.loads(line) for line in (tmp_path / model / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "eval/test_error" in r] == [60]
    assert (tmp_path / model / "samples.png").is_file() == (model == "ebgan-ln")
    if model == "ebgan-ln":
        assert {"energy/fake", "loss/hinge", "margin", "loss/g"} <= set(rows[0])


def test_a_ladder_with_every_weight_zero_trains_on_the_cross_entropy_alone(tmp_path):
    # No layer's denoising cost weighted: the denoising term is a zero tensor (it was the int 0 of an empty
    # sum, and logging it failed with "'int' object has no attribute 'item'").
    cfg = tiny_cfg(steps=4, eval_every=4, log_every=2, ckpt_every=4, weights=[0.0] * len(TINY))
    result = semisup(cfg, tmp_path / "run", data=synthetic_data(), progress=False)
    assert result["steps"] == 4
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in rows if "loss/denoise" in r]
    assert logged and all(r["loss/denoise"] == 0.0 and r["energy/real"] == 0.0 for r in logged)


def test_resume_equals_uninterrupted(tmp_path):
    data = synthetic_data()
    cfg = tiny_cfg(model="ebgan-ln", steps=30, variant="full")
    full = semisup(cfg, tmp_path / "full", data=data, progress=False)
    semisup(cfg, tmp_path / "part", data=data, progress=False)
    import shutil

    ck = tmp_path / "part" / "checkpoints"  # roll back to step 20, as if killed between 20 and 29
    shutil.rmtree(ck)
    shutil.copytree(tmp_path / "full" / "checkpoints", ck)
    for p in ck.glob("step-*"):
        if p.name != "step-00000020":
            shutil.rmtree(p)
    (ck / "latest").write_text("step-00000020\n")
    resumed = semisup(cfg, tmp_path / "part", data=data, progress=False, resume=True)
    a = load_file(str(tmp_path / "full/checkpoints/step-00000030/weights.safetensors"))
    b = load_file(str(tmp_path / "part/checkpoints/step-00000030/weights.safetensors"))
    assert a.keys() == b.keys() and any(k.startswith("G.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["test_error"] == full["test_error"]
    full_rows = (tmp_path / "full/metrics.jsonl").read_text().splitlines()
    part_rows = (tmp_path / "part/metrics.jsonl").read_text().splitlines()
    strip = lambda rows: [{k: v for k, v in json.loads(r).items() if k != "time"} for r in rows]  # noqa: E731
    assert strip(part_rows) == strip(full_rows)


def test_compiled_run_matches_eager_and_resumes_exactly(tmp_path):
    """torch.compile traces the Ladder's passes whole (the noise is drawn outside them): from the same state
    a compiled step agrees with an eager one to float32 rounding, and a compiled run killed at step 10
    resumes to the bits of the uninterrupted compiled run."""
    import shutil

    from ebgan.semisup.recipe import corrupted_costs

    torch.manual_seed(0)
    ladder = Ladder(TINY)
    x_lab, y_lab, x_unl, x_fake = torch.rand(10, 784), torch.arange(10), torch.rand(20, 784), torch.rand(20, 784)
    noises = ladder.draw_noise(50, 0.3, torch.Generator().manual_seed(3))
    compiled = torch.compile(corrupted_costs, fullgraph=True, dynamic=False)
    results = []
    for fn in (corrupted_costs, compiled):
        ladder.zero_grad()
        ce, denoise, real, fake = fn(ladder, x_lab, y_lab, x_unl, [5.0, 1.0, 0.1, 0.1], noises, x_fake)
        (ce + denoise + fake.mean()).backward()
        results.append([ce, denoise, real, fake] + [p.grad.clone() for p in ladder.parameters()])
    for e, c in zip(*results):
        assert_close(c, e, atol=1e-5, rtol=1e-4)

    data = synthetic_data()
    cfg = resolve_semisup(tiny_cfg(model="ebgan-ln", steps=20, eval_every=20))
    full = semisup(replace(cfg, compile=True), tmp_path / "full", data=data, progress=False)
    ck = tmp_path / "part" / "checkpoints"
    shutil.copytree(tmp_path / "full", tmp_path / "part")
    shutil.rmtree(ck / "step-00000020")
    (ck / "latest").write_text("step-00000010\n")
    (tmp_path / "part" / "result.json").unlink()
    part = semisup(replace(cfg, compile=True), tmp_path / "part", data=data, progress=False, resume=True)
    b = load_file(str(tmp_path / "full/checkpoints/step-00000020/weights.safetensors"))
    c = load_file(str(tmp_path / "part/checkpoints/step-00000020/weights.safetensors"))
    assert b.keys() == c.keys() and all(torch.equal(b[k], c[k]) for k in b)
    assert part["test_error"] == full["test_error"]
    with pytest.raises(EbganError, match="refusing to resume.*compile"):
        semisup(cfg, tmp_path / "part", data=data, progress=False, resume=True)


def test_resume_refuses_other_settings(tmp_path):
    data = synthetic_data()
    semisup(tiny_cfg(steps=10), tmp_path / "r", data=data, progress=False)
    with pytest.raises(EbganError, match="refusing to resume.*margin"):
        semisup(tiny_cfg(steps=10, margin=5.0), tmp_path / "r", data=data, progress=False, resume=True)
    with pytest.raises(EbganError, match="already holds a run"):
        semisup(tiny_cfg(steps=10), tmp_path / "r", data=data, progress=False)


# ---------------------------------------------------------------------------------------------------------- CLI


def _cli(*args, env=None):
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = dict(os.environ, PYTHONPATH=src, OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "ebgan.cli", "semisup", *args], capture_output=True, text=True, env=env
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--labels", "7"], "--labels must be a positive multiple of 10"),
        (["--labels", "70000"], "more than the 60000 MNIST training images"),
        (["--variant", "middle"], "unknown variant 'middle'"),
        (["--model", "ladr"], "unknown model 'ladr'"),
        (["--weights", "a,b"], "--weights must be comma-separated numbers"),
        (["--no-test"], "--no-test needs --validation N"),
    ],
)
def test_cli_bad_input_is_one_error_line(tmp_path, capsys, args, message):
    code = main(["semisup", "--out", str(tmp_path / "r"), "--data-root", str(tmp_path), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("ebgan: error: ") and message in err[0]
    assert not (tmp_path / "r").exists()


def test_cli_needs_out(capsys):
    assert main(["semisup"]) == 2
    assert "--out is required" in capsys.readouterr().err


def test_cli_on_mnist_killed_and_resumed_matches_uninterrupted(tmp_path, data_root):
    """The real command on MNIST (full-size Ladder, a few steps): SIGKILL while the step-20 checkpoint is being
    published, resume from step 10, and compare with an uninterrupted run: same weights, same test error."""
    common = [
        "--labels",
        "100",
        "--model",
        "ebgan-ln",
        "--steps",
        "20",
        "--eval-every",
        "20",
        "--threads",
        "1",
        "--ckpt-every",
        "10",
        "--data-root",
        str(data_root),
        "--no-progress",
    ]
    full = _cli(*common, "--out", str(tmp_path / "full"))
    assert full.returncode == 0, full.stderr
    result = json.loads((tmp_path / "full" / "result.json").read_text())
    assert result["labels"] == 100 and result["steps"] == 20 and result["model"] == "ebgan-ln"
    assert 0 <= result["test_error"] <= 100 and f"test error {result['test_error']:.2f}%" in full.stdout
    lab = json.loads((tmp_path / "full" / "labelled.json").read_text())
    assert lab["per_class"] == [10] * 10 and len(lab["indices"]) == 100

    killed = _cli(*common, "--out", str(tmp_path / "part"), env={"EBGAN_FAULT": "checkpoint-pointer:2"})
    assert killed.returncode == -9  # killed before ``latest`` pointed at step 20
    assert (tmp_path / "part/checkpoints/latest").read_text().strip() == "step-00000010"
    resumed = _cli("--out", str(tmp_path / "part"), "--resume", "--no-progress", "--data-root", str(data_root))
    assert resumed.returncode == 0, resumed.stderr
    a = load_file(str(tmp_path / "full/checkpoints/step-00000020/weights.safetensors"))
    b = load_file(str(tmp_path / "part/checkpoints/step-00000020/weights.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "part" / "result.json").read_text())["test_error"] == result["test_error"]


# --------------------------------------------------------------------------------------------- validation


def test_validation_split_is_fixed_disjoint_and_the_same_for_every_seed():
    from ebgan.semisup.recipe import validation_split

    kept, held = validation_split(60000, 10000)
    assert len(kept) == 50000 and len(held) == 10000
    assert torch.equal(torch.sort(torch.cat([kept, held])).values, torch.arange(60000))
    again_kept, again_held = validation_split(60000, 10000)
    assert torch.equal(held, again_held) and torch.equal(kept, again_kept)


def test_validation_run_watches_validation_and_scores_test_once(tmp_path):
    full = synthetic_data()
    val = synthetic_data(n=100, seed=7)
    data = replace(full, x_val=val.x_train, y_val=val.y_train, val_index=torch.arange(100))
    res = semisup(tiny_cfg(steps=10, validation=100), tmp_path / "v", data=data, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "v" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if any(k.startswith("eval/") for k in r)]
    assert [sorted(r) for r in evals] == [["eval/val_error", "step"]]  # eval_every 10 = the end: one row
    assert res["validation"] == 100 and res["val_error"] == evals[-1]["eval/val_error"]
    trainer_free = semisup_from_dict(json.loads((tmp_path / "v" / "config.json").read_text()))
    assert trainer_free.validation == 100
    assert json.loads((tmp_path / "v" / "labelled.json").read_text())["validation_indices"] == list(range(100))
    # The test figure is the test images' error of the final weights.
    assert 0 <= res["test_error"] <= 100
    with pytest.raises(EbganError, match="needs data with x_val"):
        semisup(tiny_cfg(steps=10, validation=100), tmp_path / "w", data=full, progress=False)
    with pytest.raises(EbganError, match="--validation must be"):
        semisup(tiny_cfg(validation=59950), tmp_path / "x", data=full, progress=False)


def test_no_test_run_never_scores_the_test_images(tmp_path, monkeypatch):
    import ebgan.semisup.run as run_mod

    full = synthetic_data()
    val = synthetic_data(n=100, seed=7)
    data = replace(full, x_val=val.x_train, y_val=val.y_train, val_index=torch.arange(100))
    splits = []
    real = run_mod.test_error

    def spy(ladder, d, split="test"):
        splits.append(split)
        return real(ladder, d, split)

    monkeypatch.setattr(run_mod, "test_error", spy)
    res = semisup(
        tiny_cfg(steps=10, eval_every=5, validation=100, score_test=False), tmp_path / "v", data=data, progress=False
    )
    assert splits == ["val", "val"] and res["test_error"] is None
    rows = [json.loads(line) for line in (tmp_path / "v" / "metrics.jsonl").read_text().splitlines()]
    assert res["val_error"] == [r for r in rows if "eval/val_error" in r][-1]["eval/val_error"]
    assert json.loads((tmp_path / "v" / "result.json").read_text())["test_error"] is None
    with pytest.raises(EbganError, match="--no-test needs --validation"):
        semisup(tiny_cfg(steps=10, score_test=False), tmp_path / "w", data=full, progress=False)


def test_validation_images_are_never_trained_on(data_root):
    from ebgan.semisup.recipe import load_semisup_data

    d = load_semisup_data(data_root, 100, 0, validation=10000)
    assert d.x_train.shape == (50000, 784) and d.x_val.shape == (10000, 784)
    from ebgan.data import load_mnist

    xs, ys = load_mnist(data_root, "train")
    assert_close(d.x_val, xs[d.val_index].reshape(10000, -1).float() / 255.0)
    assert torch.equal(d.y_val, ys[d.val_index])
    kept = torch.tensor(sorted(set(range(60000)) - set(d.val_index.tolist())))
    assert torch.equal(d.y_train, ys[kept]) and len(d.labelled) == 100
