"""One copy per video on disk: a second item using a video the catalog holds shares its file.

Two ways a video is found already stored:

* before the download, by ``video_id`` (the lookup named it): the item's ``videos/<num_iid>.mp4`` becomes a hard
  link to the stored file and its row copies the file's facts; nothing is downloaded (:meth:`Sharing.known`);
* after the download, by ``sha256`` (two video ids, or none, for the same bytes): the new file is replaced by a
  hard link to the stored one (:meth:`Sharing.after_download`).

Hard links keep every item's file at its own path (``serve``, ``verify`` and a rerun's plan see nothing special)
and deleting one item's file leaves the others'. Where the file system has no hard links (another device, some
network shares), the row points at the stored file's path instead. Either way the row is marked ``shares_file``,
and ``catalog stats`` counts the file once. Two items of one ``video_id`` in the same run are downloaded once:
the second waits for the first (:meth:`Sharing.turn`) and links to its file even before the group commit has
recorded it (:meth:`Sharing.remember`). Object storage has no links: there ``wiring`` gives the run no Sharing.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from taobao_video.store.catalog import Catalog
from taobao_video.store.records import VideoRow
from taobao_video.store.shares import holders

_FILE_FACTS = ("duration", "size_bytes", "sha256", "codec", "bitrate", "fps", "has_audio", "container")


class Sharing:
    """Finds a stored copy and links to it; ``base_dir`` is what ``video_path`` is relative to."""

    def __init__(self, catalog: Catalog, base_dir: Path) -> None:
        self.catalog, self.base_dir = catalog, base_dir
        self._lock = threading.Lock()
        self._busy: dict[str, threading.Lock] = {}
        self._fresh: dict[str, VideoRow] = {}  # video_id -> this run's download of it, maybe not committed yet

    def remember(self, row: VideoRow) -> None:
        """``row`` was just downloaded: a later item of its ``video_id`` in this run shares it, committed or not."""
        if row.video_id is not None:
            with self._lock:
                self._fresh[row.video_id] = row

    @contextmanager
    def turn(self, video_id: str | None) -> Iterator[None]:
        """Held while one item of ``video_id`` is downloaded and recorded: another item of it waits, then finds it
        stored."""
        if video_id is None:
            yield
            return
        with self._lock:
            lock = self._busy.setdefault(video_id, threading.Lock())
        with lock:
            yield

    def known(self, row: VideoRow) -> VideoRow | None:
        """``row`` (the item to record, its file facts not known yet) sharing the stored file of its
        ``video_id``, linked into place; None when no intact copy is stored."""
        if row.video_id is None:
            return None
        for held in self._holders_of(row.video_id):
            if held.num_iid == row.num_iid or not self._intact(held):
                continue
            path = self._share(held, Path(row.video_path))
            facts = {name: getattr(held, name) for name in _FILE_FACTS}
            return dataclasses.replace(row, **facts, video_path=path, shares_file=True)
        return None

    def _holders_of(self, video_id: str) -> Iterator[VideoRow]:
        """This run's copy of ``video_id`` first; the catalog is asked only when that one will not do."""
        with self._lock:
            fresh = self._fresh.get(video_id)
        if fresh is not None:
            yield fresh
        yield from holders(self.catalog, video_id=video_id)

    def after_download(self, row: VideoRow) -> VideoRow:
        """``row`` (just downloaded) sharing a stored file with the same bytes, if there is one."""
        for held in holders(self.catalog, sha256=row.sha256):
            if held.num_iid == row.num_iid or held.size_bytes != row.size_bytes or not self._intact(held):
                continue
            if held.video_path == row.video_path:
                continue
            path = self._share(held, Path(row.video_path))
            if path != row.video_path:
                (self.base_dir / row.video_path).unlink(missing_ok=True)
            return dataclasses.replace(row, video_path=path, shares_file=True)
        return row

    def _intact(self, held: VideoRow) -> bool:
        try:
            return (self.base_dir / held.video_path).stat().st_size == held.size_bytes
        except OSError:
            return False

    def _share(self, held: VideoRow, wanted: Path) -> str:
        """Hard-link ``held``'s file at ``wanted`` (relative); the path the row should record."""
        source, target = self.base_dir / held.video_path, self.base_dir / wanted
        temporary = target.with_name(target.name + ".link")
        try:
            temporary.unlink(missing_ok=True)
            os.link(source, temporary)
            os.replace(temporary, target)
        except OSError:  # no hard links here: the row names the stored file itself
            temporary.unlink(missing_ok=True)
            return held.video_path
        return wanted.as_posix()
