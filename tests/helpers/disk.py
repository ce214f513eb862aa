"""A file system with little room left, at the edge: an opener whose files fail with ENOSPC once ``room`` bytes
(shared by every file it opened) are written. Patch it in as ``taobao_video.fetch.stream.open``."""

from __future__ import annotations

import errno
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from conftest import IN_CI


class SmallDisk:
    def __init__(self, room: int) -> None:
        self.room = room
        self.lock = threading.Lock()

    def open(self, path: Path, mode: str) -> FillingFile:
        return FillingFile(open(path, mode), self)  # the wrapper closes it

    def take(self, wanted: int) -> int:
        """How many of ``wanted`` bytes still fit."""
        with self.lock:
            granted = min(wanted, self.room)
            self.room -= granted
            return granted


class FillingFile:
    """A real file whose writes past the disk's room write what fits, then fail with ENOSPC."""

    def __init__(self, real: Any, disk: SmallDisk) -> None:
        self._real, self._disk = real, disk

    def write(self, data: bytes) -> int:
        fits = self._disk.take(len(data))
        written = int(self._real.write(data[:fits]))
        if fits < len(data):
            self._real.flush()
            raise OSError(errno.ENOSPC, "No space left on device")
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def __enter__(self) -> FillingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._real.close()


MOUNT_HINT = "run the tests as root (or with CAP_SYS_ADMIN) to test a real full file system"


def mount_tmpfs(where: Path, options: str) -> None:
    """Mount a tmpfs at ``where``; skip (fail under CI) when this machine does not let us."""
    where.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
        problem = done.stderr.decode(errors="replace").strip() if done.returncode else ""
    except OSError as exc:
        problem = str(exc)
    if problem:
        reason = f"cannot mount a tmpfs ({problem}): {MOUNT_HINT}"
        if IN_CI:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


def unmount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)
