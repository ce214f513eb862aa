"""The local folder backend: files under ``root``, each put by a rename of a synced file, then a folder sync."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from taobao_video.fsutil import fsync_dir
from taobao_video.storage.base import StoredObject, check_key


class LocalStorage:
    """Files under a folder. The folder keeps no sha256 beside a file: ``stat`` gives None and a deep check hashes."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.url = str(self.root)

    def __repr__(self) -> str:
        return f"LocalStorage({self.url!r})"

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, source: Path, key: str, *, sha256: str, content_type: str = "video/mp4") -> StoredObject:
        """Move ``source`` (same file system) to ``key``, synced: the bytes, then the folder's new entry."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(source, os.O_RDONLY)
        try:
            os.fsync(fd)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        os.replace(source, target)
        fsync_dir(target.parent)
        return StoredObject(key, size, sha256)

    def stat(self, key: str) -> StoredObject | None:
        try:
            info = self.path(key).stat()
        except FileNotFoundError:
            return None
        return StoredObject(key, info.st_size, None) if os.path.isfile(self.path(key)) else None

    def open(self, key: str, *, start: int = 0, end: int | None = None) -> AbstractContextManager[BinaryIO]:
        """The bytes ``start``..``end`` (inclusive; None: to the end) of ``key``."""
        return _range(self.path(key), start, end)

    def iter_objects(self, prefix: str = "") -> Iterator[StoredObject]:
        """Every regular file under the root whose key starts with ``prefix``, in key order (``.part`` files too:
        callers filter by name)."""
        if not self.root.is_dir():
            return
        for folder, dirs, files in os.walk(self.root):
            dirs.sort()
            for name in sorted(files):
                path = Path(folder) / name
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix) and path.is_file():
                    yield StoredObject(key, path.stat().st_size, None)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def move(self, key: str, to: str) -> None:
        """Rename ``key`` to ``to`` (same folder tree), synced."""
        target = self.path(to)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path(key), target)
        fsync_dir(target.parent)

    def location(self, key: str) -> str:
        return str(self.path(key))

    def clean_debris(self, *, older_than_s: float) -> int:
        """Nothing to clean: a local put is one rename. (``.part`` files are resumed, not debris.)"""
        return 0

    def sha256(self, key: str) -> str:
        """Hash the stored bytes (``--deep``)."""
        with open(self.path(key), "rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()


class _Limited(io.RawIOBase):
    """At most ``left`` bytes of an open file, read on demand (a range is never read into memory whole)."""

    def __init__(self, file: BinaryIO, left: int) -> None:
        self._file, self._left = file, left

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)[: max(0, self._left)]
        count = self._file.readinto(view)  # type: ignore[attr-defined]
        self._left -= count or 0
        return count or 0


@contextmanager
def _range(path: Path, start: int, end: int | None) -> Iterator[BinaryIO]:
    with open(path, "rb") as file:
        file.seek(start)
        if end is None:
            yield file
        else:
            yield io.BufferedReader(_Limited(file, end - start + 1))  # type: ignore[misc]
