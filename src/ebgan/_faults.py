"""Fault injection for the kill tests: ``EBGAN_FAULT=POINT[:K]`` makes the process SIGKILL itself the K-th
time (default: the first) it reaches ``point(POINT)``.

The points sit where a real kill does the most harm: half-way through a checkpoint, between the renames of a
re-saved checkpoint, inside an image or plot write, during evaluation. ``tests/test_interrupt.py`` kills
real training processes there and checks that ``--resume`` reaches exactly the uninterrupted result. Unset,
a point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

_reached: dict[str, int] = {}


def point(name: str) -> None:
    spec = os.environ.get("EBGAN_FAULT")
    if not spec:
        return
    target, _, k = spec.partition(":")
    if target != name:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] == int(k or 1):
        os.kill(os.getpid(), signal.SIGKILL)
