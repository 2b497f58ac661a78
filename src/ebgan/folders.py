"""What kind of folder a command was given: every command that takes a folder names what it got and what it
expected in one line, instead of failing later on a key it does not know.

The kinds are told apart by the files each command writes first (and keeps):

* ``train``: a run of ``ebgan train`` (``config.json`` with a ``loss``);
* ``semisup``: a run of ``ebgan semisup`` (``config.json`` with ``labels`` and ``layers``);
* ``sweep``: a sweep of ``ebgan sweep`` (``sweep.json``);
* ``seq``: a run of ``ebgan seq train`` (``config.json`` with ``"kind": "seq"``).

This module depends on nothing else in the package, so every layer may use it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import EbganError

KINDS = {
    "train": "a run of `ebgan train`",
    "semisup": "a semi-supervised run of `ebgan semisup`",
    "sweep": "a sweep of `ebgan sweep`",
    "seq": "a sequence run of `ebgan seq train`",
}


def folder_kind(path: str | os.PathLike) -> str | None:
    """The kind of ``path`` (a key of :data:`KINDS`), or None for a folder none of the commands wrote (or
    one whose ``config.json`` cannot be read: its reader says why)."""
    p = Path(path)
    if not p.is_dir():
        return None
    if (p / "sweep.json").is_file():
        return "sweep"
    cfg = p / "config.json"
    if not cfg.is_file():
        return None
    try:
        d = json.loads(cfg.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(d, dict):
        return None
    if d.get("kind") == "seq":
        return "seq"
    if "labels" in d and "layers" in d:
        return "semisup"
    if "loss" in d:
        return "train"
    return None


def expect_kind(path: str | os.PathLike, expected: str, command: str) -> None:
    """Raise EbganError in one line when ``path`` is a folder of another kind than ``expected``.

    A missing folder, or one no command wrote, passes: the caller's own checks say what is missing.
    """
    kind = folder_kind(path)
    if kind is not None and kind != expected:
        raise EbganError(f"{path} is {KINDS[kind]}; `{command}` expects {KINDS[expected]}")
