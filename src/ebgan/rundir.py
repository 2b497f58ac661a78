"""Run folders: the saved configuration, the rules for starting or resuming, and the one-process lock.

A run folder is written by one ``train`` process at a time. :class:`RunLock` holds an exclusive ``flock`` on
``RUN_DIR/.lock`` for the whole run; the kernel drops it when the process ends in any way (``kill -9``
included), so a killed run never leaves a stuck lock, and a second process on the same folder is refused
with the first one's process id.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection
from pathlib import Path
from types import ModuleType

from . import _faults
from ._fileio import atomic_write_text, write_all, writing
from .config import Config, from_dict, to_dict
from .errors import EbganError
from .folders import expect_kind

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # Windows: no advisory locks; two processes on one folder are not detected there
    fcntl = None

LOCK_NAME = ".lock"

# Fields that may differ when a run is resumed: the run length, the cadences, logging and where it runs.
RESUMABLE_CHANGES = {
    "steps",
    "log_every",
    "sample_every",
    "ckpt_every",
    "keep_checkpoints",
    "device",
    "num_threads",
    "tensorboard",
    "grad_overlap",
}


def saved_config(run_dir: str | os.PathLike) -> Config:
    """The resolved configuration a run folder was started with (``config.json``)."""
    path = Path(run_dir) / "config.json"
    expect_kind(run_dir, "train", "ebgan train/sample/eval/score")
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise EbganError(f"{path} is unreadable: {str(e)[:200] or type(e).__name__}") from None
    if not isinstance(d, dict):
        raise EbganError(f"{path} is not a run's configuration (a JSON object of fields), got {type(d).__name__}")
    return from_dict(d)


def _comparable(cfg: Config) -> dict:
    """``cfg`` as a dict in which spellings of the same networks compare equal: ``d_code`` None (the loss's
    default) is 0 (no bottleneck) for every loss but BEGAN, the value runs saved before None was the default."""
    d = to_dict(cfg)
    if d.get("d_code") is None and cfg.loss != "began":
        d["d_code"] = 0
    return d


def check_resume_config(saved: Config, cfg: Config) -> None:
    """Refuse to resume under different hyper-parameters (only the run length and cadences may change)."""
    refuse_changes(_comparable(saved), _comparable(cfg), RESUMABLE_CHANGES, "hyper-parameters")


def refuse_changes(saved: dict, new: dict, allowed: set[str], what: str) -> None:
    """Raise EbganError naming the fields (up to 5) where ``new`` differs from ``saved``, except ``allowed``,
    and saying which fields may change on resume."""
    diff = [k for k in saved if saved[k] != new.get(k) and k not in allowed]
    if diff:
        detail = ", ".join(f"{k}: {saved[k]!r} -> {new.get(k)!r}" for k in diff[:5])
        more = f" and {len(diff) - 5} more" if len(diff) > 5 else ""
        raise EbganError(
            f"refusing to resume under different {what} ({detail}{more}): a resumed run keeps its "
            f"own; only {', '.join(sorted(allowed))} may change (start another run with another "
            f"--out for other settings)"
        )


def holds_run(out: Path) -> bool:
    return (out / "config.json").exists() or (out / "checkpoints").exists()


def has_checkpoint(out: Path) -> bool:
    """Whether a run folder holds any complete checkpoint (the newest, an older one, or the best)."""
    ckpts = out / "checkpoints"
    return ckpts.is_dir() and any(
        (d / "weights.safetensors").is_file() and (d / "state.pt").is_file() for d in ckpts.iterdir() if d.is_dir()
    )


# What ``ebgan train`` and ``ebgan semisup`` write into a run folder: what ``--restart`` may delete.
RUN_FILES = (
    "config.json",
    "data.json",
    "metrics.jsonl",
    "samples",
    "samples.png",
    "energy.png",
    "landscape.png",
    "eval.png",
    "best.json",
    "threshold.json",
    "checkpoints",
    "tensorboard",
    "labelled.json",
    "result.json",
)


def clear_for_restart(out: Path) -> list[str]:
    """``--restart``: empty a run folder that holds no complete checkpoint (a run that failed or was stopped
    before its first one), so that it can start again under other settings. Call it holding the folder's
    :class:`RunLock`. A folder with a checkpoint is refused, never deleted. Returns the names removed."""
    import shutil

    if not out.is_dir():
        return []
    if has_checkpoint(out):
        raise EbganError(
            f"{out} holds checkpoints, which --restart never deletes: continue the run with --resume, "
            f"or delete the folder yourself to start it again"
        )
    removed = []
    for name in RUN_FILES:
        p = out / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
        else:
            continue
        removed.append(name)
    return removed


def check_new_run_dir(out: Path, ignore: Collection[str] = ()) -> None:
    """A new run needs a missing or empty folder (a lock file left by a killed start counts as empty, and so do
    the names in ``ignore``)."""
    if out.exists() and not out.is_dir():
        raise EbganError(f"--out {out} exists and is not a folder")
    if holds_run(out):
        if not has_checkpoint(out):
            raise EbganError(
                f"{out} holds a run that stopped before its first checkpoint; add --restart to start "
                f"it again with these settings, --resume to continue it with its own, or choose "
                f"another --out"
            )
        raise EbganError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if out.exists() and any(p.name != LOCK_NAME and p.name not in ignore for p in out.iterdir()):
        raise EbganError(f"--out {out} exists and is not empty; choose another folder")


def check_fresh_start(out: Path, *, clean: bool = True) -> None:
    """``--resume`` on a folder without ``config.json``: nothing of a run was saved, so the run starts afresh
    under the rules of a new run (:func:`check_new_run_dir`). What a start killed before its ``config.json``
    was in place leaves behind is not in the way: the temporary file of that first atomic write (a kill between
    its fsync and its rename) and an empty ``samples/`` folder, deleted when ``clean`` (the main rank; the
    other ranks of a distributed run only check). Anything else in the folder is refused as for a new run: it
    is not ours to delete."""
    leftovers = []
    if out.is_dir() and not holds_run(out):
        leftovers = [p for p in out.glob(".*.tmp") if p.is_file()]
        samples = out / "samples"
        if samples.is_dir() and not samples.is_symlink() and not any(samples.iterdir()):
            leftovers.append(samples)
    if clean:
        for p in leftovers:
            p.rmdir() if p.is_dir() else p.unlink(missing_ok=True)
    check_new_run_dir(out, ignore={p.name for p in leftovers})


def truncate_metrics(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from (the killed run got further)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            break  # a line cut by the kill ends the readable log
    atomic_write_text(path, "".join(k + "\n" for k in keep))


def remove_stale_temp_files(out: Path) -> None:
    """Delete the temporary files of atomic writes that a kill interrupted (``.NAME.XXXX.tmp``)."""
    for folder in (out, out / "samples"):
        if folder.is_dir():
            for p in folder.glob(".*.tmp"):
                if p.is_file():
                    p.unlink(missing_ok=True)


class RunLock:
    """An exclusive lock on a run folder for one process (``with RunLock(out): ...``).

    Creates the folder if needed. ``acquire`` raises EbganError naming the holder's process id when another
    process holds the lock. ``created`` says whether this lock created the folder, so a start that fails
    before writing anything can remove it again (:meth:`release` with ``cleanup=True``).
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.dir = Path(run_dir)
        self.path = self.dir / LOCK_NAME
        self.created = False
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        if self.dir.exists() and not self.dir.is_dir():
            raise EbganError(f"--out {self.dir} exists and is not a folder")
        self.created = not self.dir.exists()
        with writing(self.path):
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                try:
                    holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
                finally:
                    os.close(fd)
                raise EbganError(
                    f"{self.dir} is in use by another ebgan process (pid {holder}); wait for it to "
                    f"finish or stop it, then run this again"
                ) from None
        try:
            with writing(self.path):
                _faults.io_point(self.path)
                os.ftruncate(fd, 0)
                write_all(fd, f"{os.getpid()}\n".encode())
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self, cleanup: bool = False) -> None:
        """Drop the lock; with ``cleanup``, remove a folder this lock created if nothing else was written."""
        if self._fd is None:
            return
        os.close(self._fd)  # closing the descriptor releases the flock
        self._fd = None
        try:
            if cleanup and self.created and all(p.name == LOCK_NAME for p in self.dir.iterdir()):
                self.path.unlink(missing_ok=True)
                self.dir.rmdir()
        except OSError:
            pass  # the folder was deleted under the run, or is read-only now: nothing to clean up

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
