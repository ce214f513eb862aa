"""The catalog's plain records: what the repository hands out and takes in. Standard library only.

Callers (the jobs, the CLI, the web page) work with these and never with the SQLAlchemy models in ``schema.py``.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from taobao_video.model import ItemState


@dataclasses.dataclass(frozen=True)
class VideoRow:
    """A ``videos`` row as a plain record."""

    num_iid: int
    video_path: str
    duration: float | None
    size_bytes: int
    sha256: str
    video_url: str
    cover_url: str | None
    width: int | None
    height: int | None
    api_method: str
    downloaded_at: datetime
    title: str | None = None
    nick: str | None = None
    video_id: str | None = None
    cover_path: str | None = None
    cover_width: int | None = None
    cover_height: int | None = None
    cover_error: str | None = None
    codec: str | None = None
    bitrate: int | None = None
    fps: float | None = None
    has_audio: bool | None = None
    container: str | None = None
    shares_file: bool | None = None  # the file is another row's (hard link or the same path): counted once


@dataclasses.dataclass(frozen=True)
class ItemRow:
    """An ``items`` row as a plain record."""

    num_iid: int
    state: ItemState
    video_url: str | None
    cover_url: str | None
    api_duration: float | None
    width: int | None
    height: int | None
    api_method: str | None
    attempts: int
    lookups: int
    last_error: str | None
    error_kind: str | None
    priority: int
    added_at: datetime
    updated_at: datetime
    checked_at: datetime | None
    seq: int
    deferred_at: datetime | None
    title: str | None = None
    nick: str | None = None
    video_id: str | None = None


@dataclasses.dataclass(frozen=True)
class RemoveResult:
    """What :meth:`Catalog.remove_items` did, each id given counted once per batch it appears in."""

    removed: int = 0  # taken out of the queue
    kept: int = 0  # downloaded: kept, with its video and row
    unknown: int = 0  # not in the queue at all
    unknown_ids: tuple[int, ...] = ()  # the first few of those, to show


@dataclasses.dataclass(frozen=True)
class EnqueueResult:
    """What :meth:`Catalog.enqueue` did; every id given is counted once, repeats included."""

    added: int = 0  # new, pending
    reprioritised: int = 0  # waiting with a lower priority: raised to the one given
    already_queued: int = 0  # waiting with this priority or a higher one (or given again in this call)
    already_done: int = 0  # done, no_video or not_found: untouched

    def __add__(self, other: EnqueueResult) -> EnqueueResult:
        pairs = zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)
        return EnqueueResult(*(a + b for a, b in pairs))

    @property
    def total(self) -> int:
        return self.added + self.reprioritised + self.already_queued + self.already_done
