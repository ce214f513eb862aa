"""From a finished download to its row: the row's columns, one copy per video, and the hand-over to the group commit.

A download thread calls :meth:`Recorder.download` for each job. Under the job's ``video_id`` turn (``sharing.py``)
it first looks for a stored copy of the same video (no download: the item's file becomes a hard link), else the
pipeline fetches the file and :meth:`Recorder.record` builds its row (probe columns, the cover fetched beside it,
the same bytes already stored → a link) and hands it to the run's :class:`~taobao_video.jobs.keep.Keeper`
(uploaded first for object storage, then made durable and recorded a batch at a time). The outcome is counted
when the row is committed, never before: a row, and its ``downloaded`` event, promise a durable file.

A video downloaded in this run but not yet committed is shared too: the second item's hard link names the same
inode, and its own row is committed only once that inode and its folder are synced, as every row is.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from taobao_video.fetch.stream import DownloadResult
from taobao_video.jobs.keep import Keeper
from taobao_video.jobs.media import Covers, item_facts, probe_columns
from taobao_video.jobs.plan import Job
from taobao_video.jobs.sharing import Sharing
from taobao_video.model import FailureKind, Outcome
from taobao_video.store.records import VideoRow

_SHARED = "the same video is stored already: its file is shared, nothing downloaded"


class Count(Protocol):
    def __call__(self, outcome: Outcome, num_iid: int, **details: Any) -> None: ...


class Recorder:
    """Records one run's downloads; ``count`` tells the run an id's outcome, ``add_bytes`` the bytes it moved."""

    def __init__(
        self,
        *,
        base_dir: Path,
        dest_dir: Path,
        clock: Callable[[], datetime],
        count: Count,
        add_bytes: Callable[[int], None],
        covers: Covers | None = None,
        sharing: Sharing | None = None,
    ) -> None:
        self.base_dir, self.dest_dir, self.clock = base_dir, dest_dir, clock
        self.covers = covers  # None: no cover is fetched
        self.sharing = sharing  # None: every item keeps its own copy (object storage)
        self._count, self._add_bytes = count, add_bytes
        self.keeper: Keeper | None = None  # set while a run is on
        self.covered: set[int] = set()  # ids whose cover this run tried with their video
        self._lock = threading.Lock()

    def download(self, job: Job, fetch: Callable[[Job], None]) -> None:
        """Share a stored copy of ``job``'s video, or ``fetch`` it (which ends in :meth:`record`)."""
        with self.sharing.turn(job.video_id) if self.sharing is not None else nullcontext():
            if not self._share_known(job):
                fetch(job)

    def record(self, job: Job, result: DownloadResult, duration: float | None, warn: Callable[[str], None]) -> None:
        """Hand a verified download to the keeper; raises StorageError or ConfigError when its upload fails."""
        row = VideoRow(
            num_iid=job.num_iid,
            video_path=os.path.relpath(result.path, self.base_dir),
            duration=duration,
            size_bytes=result.size,
            sha256=result.sha256,
            video_url=job.url,
            cover_url=job.cover_url,
            width=job.width,
            height=job.height,
            api_method=job.api_method,
            downloaded_at=self.clock(),
            title=job.title,
            nick=job.nick,
            video_id=job.video_id,
            **probe_columns(result.path, warn=warn),
            **self._cover_columns(job),
        )
        if self.sharing is not None:  # the same bytes already stored: one file
            row = self.sharing.after_download(row)
            self.sharing.remember(row)
            result = dataclasses.replace(result, path=self.base_dir / row.video_path)

        def committed(done: VideoRow) -> None:
            self._add_bytes(result.bytes_fetched)
            self._count(Outcome.DOWNLOADED, job.num_iid, bytes=result.size, duration=duration, **item_facts(done))

        failed = self._failed(job.num_iid, result.bytes_fetched)
        after_upload = self.covers.upload if self.covers is not None else (lambda row: row)
        self._keeper().keep(result, row, committed, failed, after_upload=after_upload)

    def _share_known(self, job: Job) -> bool:
        """Record ``job`` sharing the stored file of its ``video_id`` (no download), if one is stored."""
        if self.sharing is None:
            return False
        path = os.path.relpath(self.dest_dir / f"{job.num_iid}.mp4", self.base_dir)
        wanted = VideoRow(job.num_iid, path, None, 0, "", job.url, job.cover_url, job.width, job.height,
                          job.api_method, self.clock(), job.title, job.nick, job.video_id)  # fmt: skip
        row = self.sharing.known(wanted)
        if row is None:
            return False
        row = dataclasses.replace(row, **self._cover_columns(job))

        def committed(done: VideoRow) -> None:
            self._count(Outcome.DOWNLOADED, job.num_iid, bytes=0, duration=done.duration, **item_facts(done),
                        detail=_SHARED)  # fmt: skip

        self._keeper().link(self.base_dir / row.video_path, row, committed, self._failed(job.num_iid, 0))
        return True

    def _failed(self, num_iid: int, fetched: int) -> Callable[[Exception], None]:
        def failed(exc: Exception) -> None:  # syncing or recording it failed: no row, the next run fetches it again
            self._add_bytes(fetched)
            detail = f"{type(exc).__name__}: {exc}"
            self._count(Outcome.FAILED, num_iid, error_kind=FailureKind.INTERNAL, detail=detail)

        return failed

    def _cover_columns(self, job: Job) -> dict[str, Any]:
        if self.covers is None:
            return {}
        with self._lock:
            self.covered.add(job.num_iid)
        return self.covers.columns(job.num_iid, job.cover_url)

    def _keeper(self) -> Keeper:
        assert self.keeper is not None, "downloads are only recorded while a run is on"
        return self.keeper


__all__ = ["Recorder"]
