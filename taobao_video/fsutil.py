"""Durable file writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


def atomic_write_text(path: Path, text: str, *, mode: int) -> None:
    """Write ``text`` to ``path`` with ``mode``: a temp file beside it, fsync, rename over it, fsync the folder.

    The temp file is created 0600 (mkstemp), so a secret is never readable by others, not even briefly.
    """
    with atomic_text_file(path, mode=mode) as handle:
        handle.write(text)


@contextlib.contextmanager
def atomic_text_file(path: Path, *, mode: int) -> Iterator[TextIO]:
    """A UTF-8 text file to write in a ``with`` block that appears at ``path`` (with ``mode``) only complete.

    The text goes to a temp file beside ``path`` (created 0600); at the end of the block it is flushed, fsynced
    and renamed over ``path``, and the folder fsynced. If the block raises, the temp file is removed and ``path``
    is left as it was. For writers that stream (an export of a million rows) where building one string won't do.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_path(path: Path, *, mode: int) -> Iterator[Path]:
    """A temp file's path beside ``path`` for a writer that wants a file name (XlsxWriter); at the end of the block
    the file is fsynced, given ``mode`` and renamed over ``path``. If the block raises, ``path`` is left as it was.
    The folder must exist."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        fsync_file(Path(tmp))
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_file(path: Path) -> None:
    """Flush a file's bytes (written by another descriptor, maybe another thread) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    """Make a rename durable: the new directory entry is only on disk once the folder is synced."""
    if not hasattr(os, "O_DIRECTORY"):  # Windows cannot open a folder; NTFS journals the rename
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def nearest_existing(path: Path) -> Path:
    """``path`` itself when it exists, else its nearest existing ancestor (what it would be made in)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def free_bytes(folder: Path) -> int:
    """Bytes an unprivileged writer may still use in ``folder``'s file system, or the file system it would be
    made on (0 when that cannot be read)."""
    try:
        return shutil.disk_usage(nearest_existing(folder)).free
    except OSError:
        return 0


def file_in_the_way(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` when it is not a folder (a file where a folder must be made, so
    ``path`` can never be created), else None."""
    parent = nearest_existing(Path(os.path.abspath(path)).parent)
    return None if parent.is_dir() else parent


def make_parent(path: Path, *, setting: str) -> None:
    """Create ``path``'s folder; a ConfigError naming ``setting`` when a file stands where a folder must be."""
    from taobao_video.errors import ConfigError

    blocker = file_in_the_way(path)
    if blocker is not None:
        raise ConfigError(f"{setting}: {path} cannot be made: {blocker} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot make the folder {path.parent}: {exc.strerror or exc}") from None
