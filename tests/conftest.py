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
