"""Event sequences: session files, CSV files, the key vocabulary, the windows a next-key predictor learns from,
and raw logs turned into sessions with a template miner.

A **session** is the ordered log keys (event templates, non-negative integers) of one block, process or user.
Two file formats hold sessions:

* a session file (DeepLog's HDFS files): one session per line, its keys separated by spaces; a blank line is a
  session without events;
* a CSV file (``.csv``) with a header: a column (default ``session``) holding each session's keys separated by
  spaces, and optionally a label column of 0 (normal) / 1 (anomalous).

Every mistake in a file is one :class:`~ebgan.errors.EbganError` naming the file, the line and what is wrong.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import torch

from ..errors import EbganError

Session = tuple[int, ...]

KEYS_HELP = "keys are non-negative integers separated by spaces"


@dataclass
class Sessions:
    """Sessions read from a file: ``keys`` in file order, ``labels`` (0/1 per session) when the file has a
    label column, ``ids`` when a CSV has an ``id`` column."""

    keys: list[Session]
    labels: list[int] | None = None
    ids: list[str] | None = None
    source: str = ""

    def __len__(self) -> int:
        return len(self.keys)


KEY_MAX = 2**63 - 1  # a key is an int64 everywhere it is stored (vocab.json, tensors, numpy arrays)


def _parse_keys(text: str, where: str) -> Session:
    """The keys of one session's text; anything else is one EbganError line naming ``where`` (file and line)."""
    out = []
    for tok in text.split():
        if not tok.isdigit() or not tok.isascii():
            raise EbganError(f"{where}: {tok[:40]!r} is not a log key ({KEYS_HELP})")
        # Checked on the digits before int(): Python refuses to convert a string of over 4,300 digits.
        digits = tok.lstrip("0") or "0"  # int() counts leading zeros against its limit too
        if len(digits) > len(str(KEY_MAX)) or int(digits) > KEY_MAX:
            shown = tok if len(tok) <= 40 else f"{tok[:20]}...{tok[-10:]} ({len(tok):,} digits)"
            raise EbganError(f"{where}: log key {shown} is too large (keys are at most 2**63 - 1 = {KEY_MAX})")
        out.append(int(digits))
    return tuple(out)


def read_sessions(path: str | os.PathLike, column: str = "session", label_column: str | None = None) -> Sessions:
    """The sessions of a session file, or of a CSV file (by its ``.csv`` suffix) from ``column``, with labels
    from ``label_column`` when given (0 normal, 1 anomalous)."""
    path = Path(path)
    if not path.is_file():
        raise EbganError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise EbganError(f"cannot read {path}: {e}") from None
    if path.suffix.lower() == ".csv":
        s = _read_csv(text, path, column, label_column)
    else:
        if label_column is not None:
            raise EbganError(
                f"{path} is a session file (one session per line), which has no label column; labels need a .csv file"
            )
        lines = text.splitlines()
        s = Sessions([_parse_keys(line, f"{path}, line {i + 1}") for i, line in enumerate(lines)], source=str(path))
        while s.keys and not s.keys[-1] and not lines[len(s.keys) - 1].strip():  # trailing blank lines
            s.keys.pop()
    if not s.keys or not any(s.keys):
        raise EbganError(f"{path} holds no sessions (it is empty, or every line is blank)")
    return s


def _read_csv(text: str, path: Path, column: str, label_column: str | None) -> Sessions:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise EbganError(f"{path} holds no sessions (it is empty)") from None
    except csv.Error as e:
        raise EbganError(f"{path} is not a readable CSV file: {e}") from None
    names = [h.strip() for h in header]
    for want, flag in ((column, "--column"), (label_column, "--label-column")):
        if want is not None and want not in names:
            raise EbganError(
                f"{path} has no column {want!r} (its columns: {', '.join(names) or 'none'}); name the "
                f"sessions' column with {flag}"
            )
    ci = names.index(column)
    li = names.index(label_column) if label_column is not None else None
    ii = names.index("id") if "id" in names else None
    keys: list[Session] = []
    labels: list[int] = []
    ids: list[str] = []
    try:
        for n, row in enumerate(reader, start=2):
            if not row:
                continue
            where = f"{path}, line {n}"
            if len(row) <= max(ci, li if li is not None else 0):
                raise EbganError(f"{where}: {len(row)} fields, fewer than the header's {len(names)}")
            keys.append(_parse_keys(row[ci], f"{where}, column {column!r}"))
            if li is not None:
                v = row[li].strip()
                if v not in ("0", "1"):
                    raise EbganError(f"{where}: label {v[:20]!r} in column {label_column!r} is not 0 or 1")
                labels.append(int(v))
            if ii is not None:
                ids.append(row[ii])
    except csv.Error as e:
        raise EbganError(f"{path} is not a readable CSV file: {e}") from None
    return Sessions(keys, labels if li is not None else None, ids if ii is not None else None, str(path))


def format_session(s: Iterable[int]) -> str:
    return " ".join(str(k) for k in s)


def write_session_file(path: str | os.PathLike, sessions: Iterable[Session]) -> None:
    from .._fileio import atomic_write_text

    atomic_write_text(path, "".join(format_session(s) + "\n" for s in sessions))


# ------------------------------------------------------------------------------------------------ vocabulary


class Vocab:
    """The keys seen in training, as indices ``0 .. n-1`` (sorted by key).

    Inputs of the predictor use two more indices: ``unk = n`` (a key never seen in training) and ``pad = n + 1``
    (before the session's start). Targets are ``0 .. n-1`` for a known key, ``n`` for the end of the session
    (when the model predicts it), and ``-1`` for an unknown key, which no prediction can match.
    """

    def __init__(self, keys: Iterable[int]) -> None:
        self.keys = sorted(set(int(k) for k in keys))
        self.index = {k: i for i, k in enumerate(self.keys)}
        self.n = len(self.keys)
        self.unk, self.pad, self.eos = self.n, self.n + 1, self.n

    @classmethod
    def from_sessions(cls, sessions: Iterable[Session]) -> Vocab:
        return cls(k for s in sessions for k in s)

    def encode(self, session: Session) -> list[int]:
        """Input indices: unknown keys become ``unk``."""
        return [self.index.get(k, self.unk) for k in session]


def windows(
    sessions: Sequence[Session], vocab: Vocab, window: int, eos: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every next-key prediction of every session: ``(history [N, window], target [N], session [N])``.

    Position ``t`` of a session ``k_0 .. k_{L-1}`` predicts ``k_t`` from the ``window`` keys before it, padded
    on the left with ``vocab.pad`` near the start, so the first key is predicted too; with ``eos`` one more
    prediction, the end of the session (target ``vocab.eos``), follows the last key. A session of length ``L``
    gives ``L + 1`` predictions with ``eos``, ``L`` without. Targets: see :class:`Vocab` (``-1``: unknown key).

    Example (keys 5 and 22 known as indices 0 and 1, ``n = 2``, pad 3, window 2): the session ``5 22 5`` gives
    histories ``[3,3] [3,0] [0,1] [1,0]`` and targets ``0 1 0 2`` (the last one the end).
    """
    hist, tgt, sid = [], [], []
    pad = [vocab.pad] * window
    for i, s in enumerate(sessions):
        enc = vocab.encode(s)
        seq = pad + enc
        for t in range(len(enc) + (1 if eos else 0)):
            hist.append(seq[t : t + window])
            if t < len(enc):
                tgt.append(enc[t] if enc[t] != vocab.unk else -1)
            else:
                tgt.append(vocab.eos)
            sid.append(i)
    if not hist:
        return (
            torch.zeros(0, window, dtype=torch.long),
            torch.zeros(0, dtype=torch.long),
            torch.zeros(0, dtype=torch.long),
        )
    return (
        torch.tensor(hist, dtype=torch.long),
        torch.tensor(tgt, dtype=torch.long),
        torch.tensor(sid, dtype=torch.long),
    )


def distinct_windows(
    sessions: Sequence[Session], vocab: Vocab, window: int, eos: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The distinct (history, target) pairs of :func:`windows` in a fixed order, with how often each occurs:
    ``(history [M, window], target [M], count [M])``."""
    h, t, _ = windows(sessions, vocab, window, eos)
    if len(t) == 0:
        return h, t, t.clone()
    rows, counts = torch.unique(torch.cat([h, t[:, None]], 1), dim=0, return_counts=True)
    return rows[:, :-1].contiguous(), rows[:, -1].contiguous(), counts


def distinct(sessions: Sequence[Session]) -> tuple[list[Session], list[int]]:
    """The distinct sessions in order of first appearance, and for each input session the index of its own."""
    index: dict[Session, int] = {}
    inverse = [index.setdefault(s, len(index)) for s in sessions]
    return list(index), inverse


# ------------------------------------------------------------------------------------------- raw logs (drain3)


@dataclass
class ParseResult:
    ids: list[str]
    sessions: list[Session]
    templates: dict[int, str]
    counts: Counter
    lines: int
    matched: int


def parse_log(
    path: str | os.PathLike,
    session_regex: str,
    content_regex: str | None = None,
    drain_config: str | os.PathLike | None = None,
) -> ParseResult:
    """Raw log lines to key sessions: each line's message is mined into a template by Drain (``drain3``), whose
    cluster id is the line's key, and the line joins the session of every distinct identifier that
    ``session_regex`` finds in it (its first group, or the whole match), in line order. Sessions are ordered by
    their identifier's first appearance.

    ``content_regex`` picks the message out of a line (its group ``content``, else its first group), e.g. to
    leave out a timestamp; by default the whole line is mined. ``drain_config``: a drain3 ``.ini`` file
    (default: drain3's defaults, similarity 0.4, depth 4).
    """
    try:
        from drain3 import TemplateMiner
        from drain3.template_miner_config import TemplateMinerConfig
    except ImportError:
        raise EbganError("`ebgan seq parse` needs the template miner drain3: pip install 'ebgan[seq]'") from None
    sess_re, cont_re = _compile(session_regex, "--session"), _compile(content_regex, "--content")
    path = Path(path)
    if not path.is_file():
        raise EbganError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    config = TemplateMinerConfig()
    if drain_config is not None:
        if not Path(drain_config).is_file():
            raise EbganError(f"drain3 configuration {drain_config} does not exist")
        config.load(str(drain_config))
    import logging

    logging.getLogger("drain3").setLevel(logging.WARNING)
    miner = TemplateMiner(config=config)
    order: dict[str, list[int]] = {}
    counts: Counter = Counter()
    n_lines = matched = 0
    try:
        f = path.open(errors="replace")
    except OSError as e:
        raise EbganError(f"cannot read {path}: {e}") from None
    with f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            n_lines += 1
            found = [m.group(1) if m.groups() else m.group(0) for m in sess_re.finditer(line)]
            found = [x for x in dict.fromkeys(found) if x]
            if not found:
                continue
            matched += 1
            message = line
            if cont_re is not None:
                m = cont_re.search(line)
                if m is not None:
                    message = (
                        m.group("content") if "content" in m.groupdict() else (m.group(1) if m.groups() else m.group(0))
                    )
            key = int(miner.add_log_message(message.strip())["cluster_id"])
            counts[key] += 1
            for sid in found:
                order.setdefault(sid, []).append(key)
    if n_lines == 0:
        raise EbganError(f"{path} holds no log lines")
    if not order:
        raise EbganError(
            f"the --session regex {session_regex!r} captures nothing in the {n_lines} lines of {path}: "
            f"no line can be put in a session (it must find an identifier, e.g. 'blk_-?\\d+' for HDFS)"
        )
    templates = {int(c.cluster_id): c.get_template() for c in miner.drain.clusters}
    return ParseResult(list(order), [tuple(v) for v in order.values()], templates, counts, n_lines, matched)


@overload
def _compile(regex: str, flag: str) -> re.Pattern: ...


@overload
def _compile(regex: str | None, flag: str) -> re.Pattern | None: ...


def _compile(regex: str | None, flag: str) -> re.Pattern | None:
    if regex is None:
        return None
    try:
        return re.compile(regex)
    except re.error as e:
        raise EbganError(f"{flag} {regex!r} is not a valid regular expression: {e}") from None


def write_parse_result(res: ParseResult, out: str | os.PathLike) -> Path:
    """``out``: CSV ``id,session`` (keys separated by spaces); beside it ``OUT.templates.csv``: ``key,count,
    template``. Returns the templates file's path."""
    from .._fileio import atomic_write_text

    out = Path(out)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "session"])
    for sid, s in zip(res.ids, res.sessions):
        w.writerow([sid, format_session(s)])
    atomic_write_text(out, buf.getvalue())
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["key", "count", "template"])
    for k in sorted(res.templates):
        w.writerow([k, res.counts.get(k, 0), res.templates[k]])
    tpath = out.with_name(out.stem + ".templates.csv")
    atomic_write_text(tpath, buf.getvalue())
    return tpath
