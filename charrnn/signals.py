"""Ctrl-C and SIGTERM during training: a flag the loop reads between steps.

A signal never lands in the middle of an update, and a second Ctrl-C cannot interrupt a
save. ``event`` is set too, for the step in progress: it gives up at its next layer
(model.Stopped), so a slow step stops quickly.
"""

from __future__ import annotations

import signal
import threading


class StopFlag:
    """``with StopFlag() as stop:`` turns SIGINT and SIGTERM into ``stop.signum``."""

    def __init__(self):
        self.signum = None
        self.event = threading.Event()
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: signals stay as they were
                pass
        return self

    def _handle(self, signum, frame):
        self.signum = self.signum or signum
        self.event.set()

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)

    @property
    def name(self) -> str:
        """The signal's name, SIGINT or SIGTERM."""
        return signal.Signals(self.signum).name
