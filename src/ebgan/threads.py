"""How many CPU threads a run uses when ``num_threads=0`` (auto): the cores that are free right now.

PyTorch's default is one thread per core. That is the fastest choice on an idle machine (measured on a
2-core machine: the ``mnist`` preset 17% and the ``ring`` preset 22% faster with 2 threads than with 1), but
when another process keeps a core busy, every parallel region waits for the thread that shares a core with
it, and 2 threads ran the ``mnist`` preset 1.4x (one busy core) to 3x (both busy, mean step time) slower
than 1 thread (BENCHMARKS.md, section "threads"). So the auto choice counts the cores this process may use
(CPU affinity and a cgroup CPU quota) and subtracts the load that *other* processes put on them, measured
from ``/proc/stat`` over a short window.

The choice is made once, when a run starts, and kept for the whole run (and by ``--resume``): the thread
count changes the order of floating-point reductions, so a run whose thread count changed while training
would not be reproducible from its seed. Where ``/proc/stat`` is unavailable (macOS, Windows), auto is
PyTorch's default. An ``OMP_NUM_THREADS`` set in the environment is respected as an explicit choice.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota if one is set."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:  # containers limited with `--cpus`: "quota period" (or "max period" when unlimited)
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, int(float(quota) / float(period) + 0.5)))
    except (OSError, ValueError):
        pass
    return max(1, n)


def _cpu_ticks(cpus: set[int]) -> tuple[int, int] | None:
    """(busy, total) clock ticks summed over the listed CPUs, from /proc/stat."""
    busy = total = 0
    seen = 0
    try:
        with open("/proc/stat") as f:
            for line in f:
                if not line.startswith("cpu") or line.startswith("cpu "):
                    continue
                name, *vals = line.split()
                if int(name[3:]) not in cpus:
                    continue
                ticks = [int(v) for v in vals[:8]]  # user nice system idle iowait irq softirq steal
                total += sum(ticks)
                busy += sum(ticks) - ticks[3] - ticks[4]
                seen += 1
    except (OSError, ValueError):
        return None
    return (busy, total) if seen else None


def _self_ticks() -> int | None:
    """User + system clock ticks of this process (all its threads), from /proc/self/stat."""
    try:
        text = Path("/proc/self/stat").read_text()
        fields = text[text.rindex(")") + 2 :].split()  # the command name may contain spaces
        return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat(5))
    except (OSError, ValueError, IndexError):
        return None


def busy_cores_by_others(window: float = 0.3) -> float | None:
    """How many of this process's usable CPUs other processes kept busy over ``window`` seconds (None: unknown)."""
    try:
        cpus = set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
    a, s0 = _cpu_ticks(cpus), _self_ticks()
    time.sleep(window)
    b, s1 = _cpu_ticks(cpus), _self_ticks()
    if a is None or b is None or s0 is None or s1 is None or b[1] <= a[1]:
        return None
    busy = (b[0] - a[0]) - (s1 - s0)
    return max(0.0, busy / (b[1] - a[1]) * len(cpus))


def choose_threads(num_threads: int) -> tuple[int, str]:
    """The thread count of a run and why (``num_threads``, or 0 for :func:`auto_threads`), applied with
    ``torch.set_num_threads``."""
    if num_threads:
        n, reason = num_threads, "num_threads"
    else:
        n, why = auto_threads()
        reason = f"auto: {why}"
    torch.set_num_threads(n)
    return n, reason


def auto_threads(window: float = 0.3) -> tuple[int, str]:
    """The thread count for ``num_threads=0`` and a short reason for the run's log line.

    ``usable_cores() - busy_cores_by_others()``, rounded to the nearest whole core and at least 1.
    """
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads(), "OMP_NUM_THREADS is set"
    cores = usable_cores()
    others = busy_cores_by_others(window) if cores > 1 else 0.0
    if others is None:
        return cores, f"{cores} usable cores (their load is unknown here)"
    n = max(1, min(cores, int(cores - others + 0.5)))
    return n, f"{cores} usable cores, {others:.1f} busy with other processes"
