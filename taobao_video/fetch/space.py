"""Room for videos: the checks a run makes on ``download.dir`` before it spends a call, and the full-disk error.

A run that cannot store what it downloads should find out before it looks anything up: the folder must exist or
be creatable, be a folder, take a new file, and have ``download.min_free_mb`` free. A write that meets ENOSPC or
EDQUOT later is :class:`~taobao_video.errors.DiskFull` (exit 75): the run stops, nothing is lost.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Final

from taobao_video.errors import ConfigError, DiskFull
from taobao_video.fsutil import free_bytes, nearest_existing

# EDQUOT: the user's quota on the file system is spent (Windows has no such code)
FULL_ERRNOS: Final = frozenset(code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if code is not None)
_KEY: Final = "download.dir"


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the file system (or the user's quota on it) has no room left."""
    return isinstance(exc, OSError) and exc.errno in FULL_ERRNOS


def disk_full(folder: Path, *, needed_bytes: int | None = None) -> DiskFull:
    """The DiskFull error for ``folder``, with the free space measured now."""
    return DiskFull(str(folder), free_bytes(folder), needed_bytes=needed_bytes)


def check_room(folder: Path, min_free_bytes: int) -> None:
    """DiskFull when ``folder`` has less than ``min_free_bytes`` free."""
    if min_free_bytes and free_bytes(folder) < min_free_bytes:
        raise disk_full(folder, needed_bytes=min_free_bytes)


def preflight(folder: Path, min_free_bytes: int) -> None:
    """Before a run spends a call: ``folder`` exists or can be made, is a folder, takes a new file, and has
    ``min_free_bytes`` free. ConfigError (exit 78) naming the folder, or DiskFull (exit 75)."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder", key=_KEY)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full(nearest_existing(folder)) from None
        raise ConfigError(f"cannot create the folder {folder}: {exc.strerror or exc}", key=_KEY) from None
    try:  # a real write: permissions, a read-only mount and ACLs all show here (os.access ignores some, e.g. as root)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full(folder) from None
        raise ConfigError(f"cannot write in {folder}: {exc.strerror or exc}", key=_KEY) from None
    os.close(fd)
    os.unlink(probe)
    check_room(folder, min_free_bytes)
