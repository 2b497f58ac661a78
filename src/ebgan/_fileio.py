"""File writes that survive kills and report machine faults in one line.

- :func:`atomic_write` (and ``atomic_write_bytes`` / ``atomic_write_text``): a temp file beside the target,
  fsynced, renamed into place, and the folder fsynced, so that after a kill or a power cut a reader finds the
  old file or the complete new one.
- :func:`writing`: turns an ``OSError`` from a write (ENOSPC, EIO, EROFS, a deleted folder, ...) into
  :class:`~ebgan.errors.WriteFailed` naming the file, which the CLI prints as one line and exits with status 3.
- :func:`write_all`: ``os.write`` until every byte is written (a write may be short).
- :class:`AppendLog`: a log of whole lines (``metrics.jsonl``), each appended with :func:`write_all`.
"""

from __future__ import annotations

import errno as _errno
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from . import _faults
from .errors import WriteFailed


@contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Turn an ``OSError`` raised inside the block into :class:`WriteFailed` naming ``path``.

    Only errors that carry an errno (the kernel's answer to a write) are converted; an ``OSError`` without one
    (Pillow's "cannot write mode LA as JPEG") is not a machine fault and passes unchanged."""
    try:
        yield
    except OSError as e:
        if e.errno is None:
            raise
        raise WriteFailed.from_oserror(e, path) from e


def fsync_dir(folder: str | os.PathLike) -> None:
    """fsync a folder, so that the renames and creations in it are on disk (a no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as e:
        if e.errno in (_errno.EACCES, _errno.EPERM):  # cannot open it for reading: nothing to do
            return
        raise
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (_errno.EINVAL, _errno.ENOTSUP, _errno.EBADF):  # file systems without a folder fsync
            raise
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes | memoryview) -> None:
    """``os.write`` until all of ``data`` is written: a write to a file may write fewer bytes than asked
    (a signal, a nearly full disk), and the rest must follow, or the file holds a torn record."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:  # pragma: no cover - a regular file never returns 0 for a non-empty write
            raise OSError(_errno.EIO, "write returned 0")
        view = view[n:]


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temp file beside ``path`` for binary writing; on a clean exit fsync it, ``os.replace`` it onto
    ``path`` and fsync the folder.

    The temp file is in the same folder so that the rename stays on one filesystem and is atomic: readers see
    the old file or the complete new one, never a partial write, also after a power cut (the fsync before the
    rename; the folder's fsync after it makes the rename itself durable). If the body raises, the temp file is
    deleted and ``path`` is untouched. A failed write (full disk, I/O error, read-only or deleted folder)
    raises :class:`WriteFailed` naming ``path``. The temp file is created with ``open(..., "xb")`` (not
    ``mkstemp``) so that it gets the usual ``0666 & ~umask`` permissions instead of ``0600``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with writing(path):
            with open(tmp, "xb") as f:
                yield f
                _faults.io_point(path)
                f.flush()
                os.fsync(f.fileno())
            _faults.point("write" + path.suffix)  # e.g. write.png, write.json
            os.replace(tmp, path)
            fsync_dir(path.parent)
    finally:
        try:
            tmp.unlink(missing_ok=True)  # no-op after a successful os.replace
        except OSError:
            pass  # the folder is gone or read-only: the error that matters is already on its way


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, creating missing parent folders."""
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, creating missing parent folders."""
    atomic_write_bytes(path, text.encode())


class AppendLog:
    """A file of whole lines, appended one line per :meth:`write` with :func:`write_all` (no buffering).

    A failed write raises :class:`WriteFailed`; the file is then cut back to its last whole line where the
    kernel allows it, so that a later reader finds whole lines only (a kill mid-line still leaves a torn last
    line, which the readers of such files drop)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        with writing(self.path):
            self.fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, line: str) -> None:
        fd = self.fd
        if fd is None:
            raise ValueError(f"{self.path}: write to a closed log")
        data = line.encode()
        size = None
        try:
            with writing(self.path):
                _faults.io_point(self.path)
                size = os.fstat(fd).st_size
                write_all(fd, data)
        except WriteFailed:
            if size is not None:
                try:
                    os.ftruncate(fd, size)
                except OSError:
                    pass
            raise

    def flush(self) -> None:
        """Nothing is buffered; kept for callers written against a file object."""

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)
