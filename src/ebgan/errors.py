"""The exception types for what a user can act on.

The CLI prints an ``EbganError`` as a single line and exits with its ``exit_status``: 2 for a mistake the user
can fix (bad option, missing or corrupt input, not a run folder), 3 for :class:`WriteFailed` (a file could not
be written: full disk, I/O error, read-only or deleted folder). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno as _errno
import os


class EbganError(Exception):
    """A user-facing error: bad option, missing or corrupt data file, not a run folder, ..."""

    exit_status = 2


# What each common write failure is called in a message, and what to do about it (commands other than a
# training run, which says which checkpoint it can resume from instead).
_CAUSES: dict[int | None, tuple[str, str]] = {
    _errno.ENOSPC: ("no space left on device", "free space and run the command again"),
    _errno.EDQUOT: ("disk quota exceeded", "free space (or raise the quota) and run the command again"),
    _errno.EIO: (
        "input/output error",
        ("the disk reported an error (see `dmesg`); check it, then run the command again"),
    ),
    _errno.EROFS: (
        "read-only file system",
        ("the file system is mounted read-only (often after disk errors); remount it read-write or write elsewhere"),
    ),
    _errno.ENOENT: (
        "no such file or directory (its folder was deleted or moved)",
        "recreate the folder or choose another one, then run the command again",
    ),
    _errno.EFBIG: ("file too large", "write to a file system that allows larger files"),
    _errno.EACCES: ("permission denied", "choose a folder you may write to"),
    _errno.ENOTDIR: ("a file stands where a folder is needed", "choose another path"),
    _errno.EEXIST: ("a file stands where a folder is needed", "choose another path"),
    _errno.EISDIR: ("a folder stands where a file is to be written", "choose another path"),
}


class WriteFailed(EbganError):
    """Writing ``path`` failed with ``errno`` (ENOSPC, EIO, EROFS, a folder deleted under the writer, ...).

    The message is one line, ``<cause> writing <path>: <hint>``, where the hint says what to do (by default per
    errno; a training run names the checkpoint it resumes from). ``with_hint`` gives the same failure with
    another hint."""

    exit_status = 3

    def __init__(self, path: str | os.PathLike, errno: int | None, hint: str | None = None) -> None:
        self.path = str(path)
        self.errno = errno
        self.cause, default = _CAUSES.get(errno, (_strerror(errno), "fix the cause and run the command again"))
        self.hint = default if hint is None else hint
        super().__init__(f"{self.cause} writing {self.path}" + (f": {self.hint}" if self.hint else ""))

    @classmethod
    def from_oserror(cls, e: OSError, path: str | os.PathLike | None = None) -> WriteFailed:
        return cls(path if path is not None else (e.filename or "?"), e.errno)

    def with_hint(self, hint: str) -> WriteFailed:
        new = WriteFailed(self.path, self.errno, hint)
        new.__cause__ = self.__cause__
        return new

    @property
    def out_of_space(self) -> bool:
        return self.errno in (_errno.ENOSPC, _errno.EDQUOT)


def _strerror(errno: int | None) -> str:
    if errno is None:
        return "write error"
    text = os.strerror(errno)
    return text[:1].lower() + text[1:]
