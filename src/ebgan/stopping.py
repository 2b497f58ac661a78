"""Stopping a long job cleanly: the first SIGINT/SIGTERM asks for a checkpoint, the second stops at once.

Shared by ``ebgan train`` and ``ebgan semisup``: their loops poll :class:`StopSignals` after every step, save
a checkpoint of the step they finished and raise :class:`Interrupted`, which the CLI turns into exit status
128 + the signal number (130 for Ctrl-C, 143 for SIGTERM).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any


class Interrupted(Exception):
    """Training stopped on SIGINT or SIGTERM after writing a checkpoint of the step it had finished."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


class StopSignals:
    """Turn the first SIGINT/SIGTERM into a request to stop after the current step (which is then
    checkpointed); a second one stops at once, like an ordinary Ctrl-C. Only in the main thread, where Python
    can install handlers; elsewhere the signals keep their usual behaviour."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.signum: int | None = None
        self._old: dict[int, Any] = {}
        self._pid = os.getpid()

    def _handle(self, signum, frame) -> None:
        if os.getpid() != self._pid:
            # A child forked while the handler was installed (a data worker before its own init ran): the
            # signal is the training process's to act on, once.
            return
        if self.signum is not None:  # the second signal: give up on the checkpoint
            self.restore()
            raise KeyboardInterrupt
        self.signum = signum
        if not self.quiet:
            # os.write, not print: a handler that prints while the interrupted code is inside a buffered
            # write to stderr would fail with a reentrant-call error.
            msg = (
                f"\nebgan: {signal.Signals(signum).name} received: saving a checkpoint after this step "
                f"(send it again to stop at once, without one)\n"
            )
            with contextlib.suppress(OSError):
                os.write(2, msg.encode())

    def __enter__(self) -> StopSignals:
        self._pid = os.getpid()
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}

    def __exit__(self, *exc) -> None:
        self.restore()
