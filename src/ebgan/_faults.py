"""Fault injection for the kill and write-failure tests.

``EBGAN_FAULT=POINT[:K]`` makes the process SIGKILL itself the K-th time (default: the first) it reaches
``point(POINT)``. The points sit where a real kill does the most harm: half-way through a checkpoint, between
the renames of a re-saved checkpoint, inside an image or plot write, during evaluation.
``tests/test_interrupt.py`` kills real training processes there and checks that ``--resume`` reaches exactly
the uninterrupted result.

``EBGAN_FAULT_OSERROR=GLOB:ERRNO[:K]`` makes the K-th write (default: the first) of a file whose path matches
``GLOB`` (``fnmatch``, where ``*`` also matches ``/``) raise ``OSError(ERRNO)``, as a full disk (``ENOSPC``), a
failing one (``EIO``), a file system remounted read-only (``EROFS``) or a deleted folder (``ENOENT``) would.
``ERRNO`` is a name or a number. Every place the project writes a file calls :func:`io_point` with that
file's path just before its data reaches the disk (``tests/test_faults.py``, ``benchmarks/reliability.py``).

Unset, a point costs one dictionary lookup.
"""

from __future__ import annotations

import errno as _errno
import fnmatch
import os
import signal

_reached: dict[str, int] = {}
_io_reached: dict[str, int] = {}


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


def parse_oserror_spec(spec: str) -> tuple[str, int, int]:
    """``GLOB:ERRNO[:K]`` -> ``(glob, errno, k)``."""
    parts = spec.rsplit(":", 2)
    k = 1
    if len(parts) == 3 and parts[2].isdigit():
        k = int(parts[2])
        parts = parts[:2]
    elif len(parts) == 3:
        parts = [parts[0] + ":" + parts[1], parts[2]]
    if len(parts) != 2:
        raise ValueError(f"EBGAN_FAULT_OSERROR must be GLOB:ERRNO[:K], got {spec!r}")
    glob, name = parts
    code = int(name) if name.isdigit() else getattr(_errno, name, None)
    if code is None:
        raise ValueError(f"EBGAN_FAULT_OSERROR: unknown errno {name!r}")
    return glob, code, k


def io_point(path: str | os.PathLike) -> None:
    """Raise the injected ``OSError`` if ``EBGAN_FAULT_OSERROR`` names this write (see the module docstring)."""
    spec = os.environ.get("EBGAN_FAULT_OSERROR")
    if not spec:
        return
    glob, code, k = parse_oserror_spec(spec)
    p = os.fspath(path)
    if not fnmatch.fnmatch(p, glob):
        return
    _io_reached[spec] = _io_reached.get(spec, 0) + 1
    if _io_reached[spec] == k:
        raise OSError(code, os.strerror(code), p)


def reset() -> None:
    """Forget how often each point was reached (in-process tests that inject several faults in turn)."""
    _reached.clear()
    _io_reached.clear()


# ---------------------------------------------------------------------------------------------------- probes
# The runs that meet every write point, shared by tests/test_faults.py (which fails each point in turn) and
# benchmarks/reliability.py (which fails every point with every kind of fault).

# A tiny ring run that reaches every write point of a training run: the lock, config.json and data.json, a
# metrics row every 4 steps, TensorBoard events, checkpoints every 8 steps (weights, state, config, the
# `latest` pointer), evaluation every 12 steps keeping the best checkpoint (best/ and best.json), sample grids,
# and at the end samples.png, energy.png, eval.png, landscape.png and threshold.json (a held-out share).
PROBE_RUN = [
    "train",
    "--preset",
    "ring",
    "--steps",
    "24",
    "--set",
    "g_size=16",
    "--set",
    "d_size=16",
    "--set",
    "log_every=4",
    "--set",
    "ckpt_every=8",
    "--set",
    "sample_every=12",
    "--set",
    "eval_every=12",
    "--set",
    "eval_samples=200",
    "--set",
    "best_metric=hq_pct",
    "--set",
    "n_grid=16",
    "--set",
    "keep_checkpoints=5",
    "--set",
    "tensorboard=true",
    "--set",
    "holdout=0.05",
    "--no-progress",
]

# Every write point of PROBE_RUN in the order the run reaches it: (name, glob under the run folder, K: which
# occurrence fails). K > 1 puts the fault mid-run, after a checkpoint.
TRAIN_WRITE_POINTS = [
    ("lock file `.lock`", "{run}/.lock", 1),
    ("`config.json`", "{run}/config.json", 1),
    ("`data.json`", "{run}/data.json", 1),
    ("`metrics.jsonl` row", "{run}/metrics.jsonl", 3),
    ("TensorBoard events", "{run}/tensorboard/events.out.tfevents.*", 3),
    ("checkpoint `weights.safetensors`", "{run}/checkpoints/step-*/weights.safetensors", 2),
    ("checkpoint `state.pt`", "{run}/checkpoints/step-*/state.pt", 2),
    ("checkpoint `config.json`", "{run}/checkpoints/step-*/config.json", 2),
    ("`checkpoints/latest`", "{run}/checkpoints/latest", 2),
    ("sample grid `samples/step-N.png`", "{run}/samples/step-*.png", 2),
    ("best checkpoint `checkpoints/best/`", "{run}/checkpoints/best/state.pt", 1),
    ("`best.json`", "{run}/best.json", 1),
    ("`samples.png`", "{run}/samples.png", 1),
    ("`energy.png`", "{run}/energy.png", 1),
    ("`eval.png`", "{run}/eval.png", 1),
    ("`landscape.png`", "{run}/landscape.png", 1),
    ("`threshold.json`", "{run}/threshold.json", 1),
]

# The line's wording of each kind of fault (os.strerror's)
CAUSES = {
    _errno.ENOSPC: "no space left on device",
    _errno.EIO: "input/output error",
    _errno.EROFS: "read-only file system",
    _errno.ENOENT: "no such file or directory",
}

# A two-setting sweep of tiny ring runs, and its write points (in the parent and in the workers)
PROBE_SWEEP = {
    "preset": "ring",
    "steps": 20,
    "base": {"log_every": 10, "ckpt_every": 10, "n_grid": 16},
    "grid": {"g_size": [16, 32]},
    "methods": {"ebgan": {}},
}

SWEEP_WRITE_POINTS = [
    ("`sweep.json`", "{out}/sweep.json", 1),
    ("`results.jsonl` append", "{out}/results.jsonl", 1),
    ("task file `tasks/*.json`", "{out}/tasks/*", 2),
    ("a run's checkpoint (in a worker)", "{out}/runs/*/checkpoints/step-*/state.pt", 1),
    ("a run's `metrics.jsonl` (in a worker)", "{out}/runs/*/metrics.jsonl", 2),
    ("a run's `result.json` (in a worker)", "{out}/runs/*/result.json", 1),
    ("`report.md`", "{out}/report.md", 1),
]
