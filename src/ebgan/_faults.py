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
