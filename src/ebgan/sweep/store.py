"""A sweep folder: ``sweep.json`` (what the sweep is), ``results.jsonl`` (one row per finished setting),
``runs/<method>/<setting-id>/`` (ordinary run folders) and a lock held by the one process driving it.

``results.jsonl`` is written by the driving process alone, one whole line per append (``os.write`` until
every byte is written) followed by ``fsync``. A kill can at worst leave a torn last line (no newline):
:func:`read_rows` drops it, and the setting it described is finished again (its run folder holds the final
checkpoint or ``result.json``), so after any kill and a re-run every setting has exactly one row. A failed
append (full disk) cuts its partial line and raises :class:`~ebgan.errors.WriteFailed`. Any other line that
is not a row stops the sweep with its line number until the user repairs or deletes it.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

from .. import _faults
from .._fileio import atomic_write_text, write_all, writing
from ..errors import EbganError
from ..folders import expect_kind
from ..rundir import RunLock

SWEEP_JSON = "sweep.json"
RESULTS = "results.jsonl"
# Fields of sweep.json that must match to continue a sweep (sample and methods may grow: samples are nested).
IDENTITY = ("spec", "steps", "seed")


def run_dir(out: Path, method: str, setting_id: str) -> Path:
    return out / "runs" / method / setting_id


def check_out_dir(out: Path, meta: dict[str, Any]) -> None:
    """Refuse an ``--out`` that holds something other than this sweep (another sweep, or other files)."""
    if out.exists() and not out.is_dir():
        raise EbganError(f"--out {out} exists and is not a folder")
    expect_kind(out, "sweep", "ebgan sweep --out")
    path = out / SWEEP_JSON
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise EbganError(f"{path} is unreadable: {e}") from None
        for key in IDENTITY:
            if old.get(key) != meta.get(key):
                what = {"spec": "grid", "steps": "--steps", "seed": "--seed"}[key]
                raise EbganError(
                    f"{out} holds a sweep with another {what} ({_short(old.get(key))} here, "
                    f"{_short(meta.get(key))} asked); re-run it with its own options or choose "
                    f"another --out"
                )
        return
    if out.exists() and any(p.name not in (".lock",) for p in out.iterdir()):
        raise EbganError(f"--out {out} is not empty and holds no sweep; choose a new or empty folder")


def _short(v: Any) -> str:
    text = json.dumps(v, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def write_meta(out: Path, meta: dict[str, Any]) -> None:
    path = out / SWEEP_JSON
    old = json.loads(path.read_text()) if path.is_file() else {}
    # Remember every method and the largest sample ever asked for (the rows of both are in results.jsonl).
    methods = list(dict.fromkeys(list(old.get("methods", [])) + list(meta["methods"])))
    samples = [s for s in (old.get("sample"), meta.get("sample")) if s is not None]
    merged = {
        **meta,
        "methods": methods,
        "sample": None if (old and old.get("sample") is None) or meta.get("sample") is None else max(samples),
    }
    atomic_write_text(path, json.dumps(merged, indent=2, sort_keys=True) + "\n")


def read_meta(out: Path) -> dict[str, Any]:
    path = Path(out) / SWEEP_JSON
    expect_kind(out, "sweep", "ebgan sweep")
    if not path.is_file():
        raise EbganError(f"{out} holds no sweep ({SWEEP_JSON} is missing)")
    return json.loads(path.read_text())


def read_rows(out: Path, repair: bool = False) -> list[dict[str, Any]]:
    """The rows of ``results.jsonl``, the first per (method, setting_id).

    A torn last line (no newline: a kill inside the append) is dropped, and cut from the file with ``repair``,
    which only the process holding the sweep's lock may ask for. Any other line that is not a row (a line
    damaged on disk, or written by something else) is an EbganError naming its line number and how to repair
    it: the sweep never skips it silently, since the setting it held would then run again or go missing from
    the report."""
    path = Path(out) / RESULTS
    if not path.is_file():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    rows, seen = [], set()
    for i, line in enumerate(data[:end].split(b"\n")[:-1] if end else [], start=1):
        if not line.strip():
            continue
        row = _parse_row(line)
        if row is None:
            n = data[:end].count(b"\n")
            raise EbganError(
                f"{path}, line {i} of {n}, is not a results row ({_short_bytes(line)}): the file was damaged or "
                f"written to by something else, and the sweep will not guess which setting it held. Repair the "
                f"line, or delete it (sed -i '{i}d' {shlex.quote(str(path))}; its setting then runs again), and run "
                f"the command again"
            )
        key = (row["method"], row["setting_id"])
        if key not in seen:
            seen.add(key)
            rows.append(row)
    if end < len(data) and repair:
        with writing(path), open(path, "r+b") as f:
            f.truncate(end)
            f.flush()
            os.fsync(f.fileno())
    return rows


def _parse_row(line: bytes) -> dict[str, Any] | None:
    try:
        row = json.loads(line.decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    if (
        not isinstance(row, dict)
        or not isinstance(row.get("method"), str)
        or not isinstance(row.get("setting_id"), str)
    ):
        return None
    return row


def _short_bytes(line: bytes) -> str:
    text = line.decode(errors="replace")
    return repr(text if len(text) <= 60 else text[:57] + "...")


class Results:
    """The appending side of ``results.jsonl`` (one writer: the process holding the sweep's lock)."""

    def __init__(self, out: Path) -> None:
        self.path = Path(out) / RESULTS
        self.rows = read_rows(out, repair=True)
        self.keys = {(r["method"], r["setting_id"]) for r in self.rows}

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self.keys

    def status(self, key: tuple[str, str]) -> str | None:
        """The recorded status of a setting (``ok``, ``diverged``, ``failed``), or None without a row."""
        return next((r.get("status") for r in self.rows if (r["method"], r["setting_id"]) == key), None)

    def append(self, row: dict[str, Any]) -> bool:
        """Append ``row`` unless its setting already has one; returns whether it was written."""
        key = (row["method"], row["setting_id"])
        if key in self.keys:
            return False
        line = (json.dumps(row) + "\n").encode()
        with writing(self.path):
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            size = os.fstat(fd).st_size
            try:
                _faults.io_point(self.path)
                write_all(fd, line)  # a short write is completed, never left as a torn line
                os.fsync(fd)
            except OSError:
                try:  # cut a partly written line, so that the file holds whole rows only
                    os.ftruncate(fd, size)
                except OSError:
                    pass  # the next start of the sweep cuts it (a torn last line)
                raise
            finally:
                os.close(fd)
        self.keys.add(key)
        self.rows.append(row)
        return True

    def drop(self, status: str) -> int:
        """Remove every row of ``status`` (``--retry-failed``); returns how many were removed."""
        keep = [r for r in self.rows if r.get("status") != status]
        n = len(self.rows) - len(keep)
        if n:
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in keep))
            self.rows = keep
            self.keys = {(r["method"], r["setting_id"]) for r in keep}
        return n


def lock(out: Path) -> RunLock:
    """The sweep folder's lock: a second process driving the same sweep is refused with the holder's pid."""
    return RunLock(out)
