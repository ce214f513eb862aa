"""A file system with little room left, at the edge: an opener whose files fail with ENOSPC once ``room`` bytes
(shared by every file it opened) are written. Patch it in as ``taobao_video.fetch.stream.open``."""

from __future__ import annotations

import errno
import threading
from pathlib import Path
from typing import Any


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
