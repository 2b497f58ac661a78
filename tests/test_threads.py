"""The auto thread count: the usable cores minus those other processes keep busy, kept for a run's life."""

from __future__ import annotations

import subprocess
import sys
import time

import torch

from ebgan import threads
from ebgan.config import apply_overrides, from_preset, resolve
from ebgan.data import Dataset, sample_mixture
from ebgan.train import Trainer


def test_omp_num_threads_in_the_environment_is_respected(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.auto_threads() == (torch.get_num_threads(), "OMP_NUM_THREADS is set")


def test_auto_subtracts_the_cores_other_processes_use(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 8)
    for busy, expected in [(0.0, 8), (0.4, 8), (0.6, 7), (3.2, 5), (7.9, 1), (12.0, 1)]:
        monkeypatch.setattr(threads, "busy_cores_by_others", lambda window=0.3, b=busy: b)
        assert threads.auto_threads() == (expected, f"8 usable cores, {busy:.1f} busy with other processes")
    monkeypatch.setattr(threads, "busy_cores_by_others", lambda window=0.3: None)  # no /proc/stat
    assert threads.auto_threads() == (8, "8 usable cores (their load is unknown here)")


def test_a_busy_process_is_seen_and_our_own_work_is_not():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        others = threads.busy_cores_by_others(0.5)
    finally:
        busy.kill()
        busy.wait()
    # One process spinning on one core; our own process sleeps during the window.
    assert others is not None and 0.7 <= others <= threads.usable_cores()


def test_trainer_keeps_the_run_s_thread_count_on_resume(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    x, y = sample_mixture("ring", 512, torch.Generator().manual_seed(0))
    cfg = resolve(apply_overrides(from_preset("ring"), {"g_size": 8, "d_size": 8, "num_threads": 0}))
    try:
        monkeypatch.setattr(threads, "auto_threads", lambda: (2, "2 usable cores, 0.0 busy"))
        t = Trainer(cfg, Dataset("ring", "points", x, y))
        assert (t.threads, t.threads_reason, torch.get_num_threads()) == (2, "auto: 2 usable cores, 0.0 busy", 2)
        state = t.state_dict()
        assert state["threads"] == 2
        monkeypatch.setattr(threads, "auto_threads", lambda: (1, "2 usable cores, 1.0 busy"))
        resumed = Trainer(cfg, Dataset("ring", "points", x, y))
        assert resumed.threads == 1
        resumed.load_state_dict(state)  # a resumed run computes with the count it started with
        assert (resumed.threads, resumed.threads_reason, torch.get_num_threads()) == (
            2,
            "auto, kept from the run's start",
            2,
        )
        fixed = Trainer(resolve(apply_overrides(cfg, {"num_threads": 1})), Dataset("ring", "points", x, y))
        fixed.load_state_dict(state)  # an explicit num_threads wins
        assert (fixed.threads, fixed.threads_reason, torch.get_num_threads()) == (1, "num_threads", 1)
    finally:
        torch.set_num_threads(before)
