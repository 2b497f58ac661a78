"""Atomic file writes shared by the data downloader and the image writers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from . import _faults


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temp file beside ``path`` for binary writing; on a clean exit ``os.replace`` it onto ``path``.

    The temp file is in the same folder so that the rename stays on one filesystem and is atomic: readers see
    the old file or the complete new one, never a partial write. If the body raises, the temp file is deleted
    and ``path`` is untouched. The temp file is created with ``open(..., "xb")`` (not ``mkstemp``) so that it
    gets the usual ``0666 & ~umask`` permissions instead of ``0600``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as f:
            yield f
        _faults.point("write" + path.suffix)  # e.g. write.png, write.json
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # no-op after a successful os.replace


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, creating missing parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, creating missing parent folders."""
    atomic_write_bytes(path, text.encode())
