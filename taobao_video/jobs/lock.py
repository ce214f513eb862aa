"""One run at a time per SQLite catalog: an OS file lock (released by the kernel when the holder dies) plus a note
of who holds it, so the refusal can name the holder.

A PostgreSQL catalog takes no such lock: many workers share its queue, each claiming the ids it works on
(``store/claims.py``). :func:`run_lock` decides which.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import filelock

from taobao_video.errors import LockHeldError
from taobao_video.fsutil import make_parent
from taobao_video.store.dialects import one_run_at_a_time


@contextlib.contextmanager
def run_lock(database_url: str, path: Path, *, purpose: str) -> Iterator[bool]:
    """The run lock at ``path`` when the catalog at ``database_url`` needs one (SQLite); yields whether it was
    taken, which tells the run that no other worker can be alive (claims left in the catalog are a killed run's).
    LockHeldError (exit 75) when another run holds it."""
    if not one_run_at_a_time(database_url):
        yield False
        return
    with RunLock(path, purpose=purpose):
        yield True


class RunLock:
    """``with RunLock(path, purpose="harvest"):`` — LockHeldError (exit 75) when another run holds it."""

    def __init__(self, path: Path, *, purpose: str) -> None:
        self.path = Path(path)
        self.info_path = self.path.with_name(self.path.name + ".holder")
        self.purpose = purpose
        self._lock = filelock.FileLock(str(self.path), timeout=0)

    def __enter__(self) -> RunLock:
        make_parent(self.path, setting="harvest.lock_file")
        try:
            self._lock.acquire()
        except filelock.Timeout:
            raise LockHeldError(
                f"another run holds the lock {self.path} ({self._describe_holder()}); try again when it ends"
            ) from None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "purpose": self.purpose,
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.info_path.write_text(json.dumps(holder), encoding="utf-8")
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.info_path.unlink(missing_ok=True)
        self._lock.release()

    def _describe_holder(self) -> str:
        try:
            holder = json.loads(self.info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return "holder unknown"
        purpose, pid, host = holder.get("purpose", "a run"), holder.get("pid"), holder.get("host")
        return f"{purpose} pid {pid} on {host} since {holder.get('since')}"
