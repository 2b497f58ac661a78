"""Training progress on standard error: one live line on a terminal, periodic plain lines in a log file.

On a terminal the line is redrawn in place at most every ``interval`` seconds and never wider than the
terminal: the step count, percentage, elapsed time, ETA and speed always show; the live values come next,
each one whole or not at all; a bar takes whatever width is left. Written to a file or pipe (``ebgan train
... 2> log``), it prints a complete line every ``log_interval`` seconds and at the end, so a log holds a
readable history instead of thousands of carriage-return refreshes.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from typing import TextIO


def format_duration(seconds: float) -> str:
    """``75`` -> ``"01:15"``, ``3725`` -> ``"1:02:05"``; unknown (negative or inf) -> ``"?"``."""
    if not seconds >= 0 or seconds == float("inf"):
        return "?"
    s = int(seconds + 0.5)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def format_value(v: float) -> str:
    """Three significant digits, without exponent noise for ordinary magnitudes."""
    return f"{v:.3g}"


class Progress:
    """Progress of ``total`` steps, starting at ``initial`` (a resumed run).

    ``update(step, values)`` reports the step just finished and the latest logged values (a dict of floats);
    ``close()`` writes the final state. ``clock`` and ``width`` exist for tests.
    """

    def __init__(
        self,
        total: int,
        initial: int = 0,
        desc: str = "",
        stream: TextIO | None = None,
        interval: float = 0.5,
        log_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        width: int | None = None,
    ) -> None:
        self.total, self.initial, self.desc = total, initial, desc
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if self.tty else log_interval
        self.clock = clock
        self.width = width
        self.start = clock()
        self.last_draw = -float("inf") if self.tty else self.start
        self.step = initial
        self.values: dict[str, float] = {}
        self.closed = False
        self._last_len = 0

    def update(self, step: int, values: dict[str, float] | None = None) -> None:
        self.step = step
        if values is not None:
            self.values = values
        now = self.clock()
        if now - self.last_draw >= self.interval:
            self.last_draw = now
            self._draw(now)

    def write(self, message: str) -> None:
        """Print a message line without breaking the live line."""
        if self.tty and self._last_len:
            self.stream.write("\r" + " " * self._last_len + "\r")
            self._last_len = 0
        self.stream.write(message.rstrip("\n") + "\n")
        self.stream.flush()
        if self.tty and not self.closed:
            self._draw(self.clock())

    def close(self) -> None:
        if self.closed:
            return
        self._draw(self.clock(), final=True)
        self.closed = True

    # -------------------------------------------------------------------------------------------------------
    def _stats(self, now: float) -> tuple[str, str, str]:
        elapsed = now - self.start
        done = self.step - self.initial
        rate = done / elapsed if elapsed > 0 and done > 0 else 0.0
        eta = (self.total - self.step) / rate if rate > 0 else float("inf")
        if rate >= 1:
            speed = f"{rate:.1f} it/s"
        elif rate > 0:
            speed = f"{1 / rate:.2f} s/it"
        else:
            speed = "? it/s"
        return format_duration(elapsed), format_duration(eta if self.step < self.total else 0), speed

    def line(self, now: float | None = None, width: int | None = None) -> str:
        """The progress line, at most ``width`` characters (None: no limit)."""
        now = self.clock() if now is None else now
        elapsed, eta, speed = self._stats(now)
        pct = 100.0 * self.step / self.total if self.total else 100.0
        head = f"{self.desc} " if self.desc else ""
        core = f"{self.step}/{self.total} {pct:3.0f}% {elapsed}<{eta} {speed}"
        parts = [head + core]
        used = len(parts[0])
        limit = width if width is not None else 10**9
        shown = []
        for k, v in self.values.items():
            item = f"{k} {format_value(v)}"
            if used + 2 + len(item) > limit:
                break
            shown.append(item)
            used += 2 + len(item)
        room = limit - used - 3  # " |" + "|"
        if width is not None and room >= 10:
            bar_w = min(room, 30)
            filled = int(bar_w * self.step / self.total) if self.total else bar_w
            parts = [head + f"|{'#' * filled}{'.' * (bar_w - filled)}| " + core]
        return "  ".join(parts + shown)[:limit]

    def _draw(self, now: float, final: bool = False) -> None:
        if self.tty:
            width = self.width or shutil.get_terminal_size((80, 24)).columns
            text = self.line(now, max(20, width - 1))
            pad = " " * max(0, self._last_len - len(text))
            self.stream.write("\r" + text + pad + ("\n" if final else ""))
            self._last_len = 0 if final else len(text)
        else:
            self.stream.write(self.line(now) + "\n")
        self.stream.flush()
