"""Ctrl-C and SIGTERM ask a run to stop gracefully; a second one stops at once.

The first sets the run's ``stop``: no new work, transfers in flight are cut off and parked (``Harvester``), the
summary is written. The second raises KeyboardInterrupt wherever the main thread is; the CLI then exits 130
without waiting for anything (what is on disk is safe at any instant: ``.part`` files resume, rows are last).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def graceful_stop(stop: threading.Event) -> Iterator[threading.Event]:
    """Within the block, SIGINT/SIGTERM set ``stop`` (the run finishes or parks what is in flight)."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        name = signal.Signals(signum).name
        sys.stderr.write(f"\n{name}: stopping; downloads in flight are parked (Ctrl-C again to stop at once)\n")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
