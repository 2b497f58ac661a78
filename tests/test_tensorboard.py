"""TensorBoard logging (--set tensorboard=true): the scalars equal metrics.jsonl, grids become images."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from test_train import ring, tiny_cfg

from ebgan.errors import EbganError
from ebgan.train import train


def _events(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_scalars_and_images_mirror_the_run(tmp_path):
    pytest.importorskip("tensorboard")
    run = tmp_path / "run"
    train(tiny_cfg(steps=20, log_every=5, sample_every=10, tensorboard=True), run, dataset=ring(), progress=False)
    acc = _events(run)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for key in ("loss_d", "loss_g", "energy_real", "energy_fake", "pt", "margin"):
        events = acc.Scalars(key)
        assert [e.step for e in events] == [r["step"] for r in rows]
        torch.testing.assert_close(
            torch.tensor([e.value for e in events]), torch.tensor([r[key] for r in rows], dtype=torch.float32)
        )
    assert [e.step for e in acc.Images("samples")] == [10, 20]


def test_resume_purges_the_steps_it_redoes(tmp_path):
    pytest.importorskip("tensorboard")
    run = tmp_path / "run"
    cfg = tiny_cfg(steps=20, log_every=5, ckpt_every=10, tensorboard=True, lr_schedule="constant")
    train(cfg, run, dataset=ring(), progress=False)
    # Back to the step-10 checkpoint, as after a kill at step 10-19, then resumed.
    import shutil

    shutil.rmtree(run / "checkpoints" / "step-00000020")
    (run / "checkpoints" / "latest").write_text("step-00000010\n")
    train(cfg, run, dataset=ring(), progress=False, resume=True)
    steps = [e.step for e in _events(run).Scalars("loss_d")]
    assert steps == [5, 10, 15, 20]


def test_missing_tensorboard_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(EbganError, match=r"pip install 'ebgan\[tensorboard\]'"):
        train(tiny_cfg(steps=5, tensorboard=True), tmp_path / "run", dataset=ring(), progress=False)
