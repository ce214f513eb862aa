"""Ctrl-C and SIGTERM ask a run to stop gracefully; a second one stops at once.

The first sets the run's ``stop``: no new work, transfers in flight are cut off and parked (``Harvester``), the
summary is written. The second raises KeyboardInterrupt wherever the main thread is; the CLI then exits 130
without waiting for anything (what is on disk is safe at any instant: ``.part`` files resume, rows are last).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TypeVar

T = TypeVar("T")
_POLL_S = 0.1


class Abandoned(Exception):
    """The run was stopped while :func:`unless_stopped` waited: the call goes on (or times out) unwatched."""


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
        sys.stderr.write(
            f"\n{name}: stopping; what is in flight finishes or is parked (Ctrl-C again to stop at once)\n"
        )

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def unless_stopped(call: Callable[[], T], stop: threading.Event) -> T:
    """``call()`` on a helper thread, waited for until it returns (its result or its exception) or ``stop`` is set,
    which raises Abandoned within a tenth of a second.

    For a blocking network call a stopping run must not wait for: a stalled gateway holds its socket for the read
    timeout and its retries. The helper is a daemon, so it never holds the process's exit either."""
    outcome: list[tuple[bool, object]] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as exc:  # handed to the waiting thread, which raises it
            outcome.append((False, exc))
        finally:
            done.set()

    threading.Thread(target=run, name="unless-stopped", daemon=True).start()
    while not done.wait(_POLL_S):
        if stop.is_set():
            raise Abandoned
    ok, value = outcome[0]
    if not ok:
        assert isinstance(value, BaseException)
        raise value
    return value  # type: ignore[return-value]
