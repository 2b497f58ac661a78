"""Shared fixtures. Tests never touch the network: MNIST comes from ../shared/data beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Tests compare runs bit for bit, and the thread count changes floating-point reduction order: pin it for
# this process and every process a test starts (the auto choice reads the machine's load, which varies).
os.environ["OMP_NUM_THREADS"] = "1"

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# Hypothesis (tests/test_fuzz.py): "ci", the default, runs a bounded number of examples per reader (the fuzz
# tests together take well under a minute); "long" is the benchmark's (benchmarks/reliability.py):
# `python -m pytest tests/test_fuzz.py --hypothesis-profile=long` or HYPOTHESIS_PROFILE=long.
try:
    from hypothesis import HealthCheck, settings
except ImportError:  # the test extra is not installed: only the fuzz tests need it
    pass
else:
    _slow = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
    settings.register_profile(
        "ci",
        max_examples=50,
        deadline=None,
        suppress_health_check=_slow,
        print_blob=True,
        derandomize=True,
        database=None,
    )
    settings.register_profile("long", max_examples=1000, deadline=None, suppress_health_check=_slow, print_blob=True)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _single_thread():
    # The suite's nets are tiny: one thread avoids oversubscription on shared 2-core machines.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def data_root() -> Path:
    if not (SHARED_DATA / "MNIST" / "raw").is_dir():
        pytest.skip("../shared/data/MNIST/raw is not present")
    return SHARED_DATA


def pytest_xdist_auto_num_workers(config) -> int:
    """``pytest -n auto`` (pytest-xdist): one worker per usable core (CPU affinity and cgroup quota, as
    ``ebgan.threads.usable_cores`` counts them, not the host's core count), at most 4: several tests start
    processes of their own (sweep workers, two-rank runs) that need cores too."""
    from ebgan.threads import usable_cores

    return max(1, min(4, usable_cores()))
