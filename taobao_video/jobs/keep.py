"""Where a verified download goes before its row: the group commit directly (a local folder), or first an upload
to object storage (``download.dir = "s3://…"``), after which the spool file is removed.

An object becomes visible only complete (a PUT, or a multipart upload's completion) and is durable when ``put``
returns, so the row that follows it in the group commit promises an object that is there, as on disk. A failed
upload leaves the item without a row and its spool file removed: the next run downloads it again from the stored
URL (no call) and uploads it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from taobao_video.fetch.stream import DownloadResult
from taobao_video.jobs.commit import Finished, GroupCommit
from taobao_video.storage import Storage
from taobao_video.store.records import VideoRow


class Keeper:
    """Takes verified downloads to their home (the folder or the bucket), then to the run's group commit."""

    def __init__(self, commits: GroupCommit, storage: Storage | None = None) -> None:
        self.commits, self.storage = commits, storage

    def keep(
        self,
        result: DownloadResult,
        row: VideoRow,
        on_committed: Callable[[VideoRow], None],
        on_failed: Callable[[Exception], None],
        after_upload: Callable[[VideoRow], VideoRow] = lambda row: row,
    ) -> None:
        """Hand the file over; raises StorageError or ConfigError when an upload fails (nothing recorded).
        ``after_upload`` finishes the row once its object is in (the cover's upload: ``Covers.upload``)."""
        if self.storage is None:
            self.commits.add(Finished(row, result.path, result.durable, on_committed, on_failed))
            return
        spool = result.path
        key = spool.name
        try:
            self.storage.put(spool, key, sha256=result.sha256, content_type="video/mp4")
        except BaseException:
            spool.unlink(missing_ok=True)
            raise
        row = after_upload(dataclasses.replace(row, video_path=self.storage.location(key)))

        def committed(done: VideoRow) -> None:
            spool.unlink(missing_ok=True)
            on_committed(done)

        def failed(exc: Exception) -> None:
            spool.unlink(missing_ok=True)
            on_failed(exc)

        self.commits.add(Finished(row, spool, True, committed, failed))  # the object is durable once put returns

    def link(
        self,
        path: Path,
        row: VideoRow,
        on_committed: Callable[[VideoRow], None],
        on_failed: Callable[[Exception], None],
    ) -> None:
        """Hand over a file that is another item's copy, hard-linked at ``path`` (``jobs/sharing.py``): its link,
        and the bytes if that copy is still waiting for its own batch, are synced before the row is recorded."""
        self.commits.add(Finished(row, path, False, on_committed, on_failed))


__all__ = ["Keeper"]
