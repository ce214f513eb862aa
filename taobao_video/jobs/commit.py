"""Group commit: finished downloads made durable and recorded a batch at a time, off the download threads.

A ``videos`` row promises a complete file that survives a crash, so it may only be committed once the file's bytes
and its directory entry are on disk. Doing that per file (fsync the file, fsync the folder, one catalog transaction)
cost more than the transfer itself on a fast link (issue 15: a 2 MiB file took longer to record than to fetch).
Databases solved this long ago: the download threads hand their finished, verified files (renamed into place but
not yet synced, ``Downloader(sync=False)``) to one committer thread, which for each batch

1. fsyncs each file as it takes it from the queue,
2. fsyncs each folder the batch's files are in once (their renames become durable),
3. records every row in ONE catalog transaction (:meth:`Catalog.record_videos`),
4. only then tells the run each one is downloaded.

A batch is what has arrived while the previous one was being committed, bounded: at most ``max_files`` (64) files
and no more taken once its syncs have lasted ``max_wait_s`` (0.5 s). There is no waiting for a batch to fill, so a
lone file is committed at once. A crash anywhere leaves either no row (the file, synced or not, is fetched again by
the next run, which replaces it) or a row whose file is durable: the invariant of one file at a time, at a fraction
of the cost.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from taobao_video.fsutil import fsync_dir, fsync_file
from taobao_video.store.records import VideoRow

log = logging.getLogger(__name__)

MAX_BATCH_FILES: Final = 64
MAX_BATCH_WAIT_S: Final = 0.5  # a batch stops taking files once its syncs have taken this long


@dataclass(frozen=True)
class Finished:
    """A verified file in its final place, and the row that records it."""

    row: VideoRow
    path: Path
    durable: bool  # already synced, with its folder (a Downloader with sync=True)
    on_committed: Callable[[VideoRow], None]  # called with the row once it is committed
    on_failed: Callable[[Exception], None]  # called instead when syncing or recording it failed

    @property
    def owned(self) -> bool:
        """Whether the file is this item's own name (``<num_iid>.mp4``, maybe a hard link), which a failed sync
        may remove; a shared copy named for another item (no hard links there) is that item's, never removed."""
        return self.path.name == f"{self.row.num_iid}.mp4"


class GroupCommit:
    """One committer thread: :meth:`add` from any thread; :meth:`close` commits what is left and stops it.

    ``record(rows)`` must write all the rows in one transaction. ``sync_file`` and ``sync_dir`` are injectable so a
    test can watch the order (every sync before the transaction)."""

    def __init__(
        self,
        record: Callable[[Sequence[VideoRow]], None],
        *,
        max_files: int = MAX_BATCH_FILES,
        max_wait_s: float = MAX_BATCH_WAIT_S,
        monotonic: Callable[[], float] = time.monotonic,
        sync_file: Callable[[Path], None] = fsync_file,
        sync_dir: Callable[[Path], None] = fsync_dir,
    ) -> None:
        if max_files < 1:
            raise ValueError("max_files must be at least 1")
        self._record, self._max_files, self._max_wait_s = record, max_files, max_wait_s
        self._monotonic = monotonic
        self._sync_file, self._sync_dir = sync_file, sync_dir
        self._queue: queue.SimpleQueue[Finished | None] = queue.SimpleQueue()
        self._closed = False
        self._close_lock = threading.Lock()
        self.batches: list[int] = []  # the size of each batch committed, for the tests and the benchmark
        self._thread = threading.Thread(target=self._loop, name="group-commit", daemon=True)
        self._thread.start()

    def add(self, finished: Finished) -> None:
        """Queue a finished file; once closed (a download thread outliving an interrupted run), commit it here."""
        with self._close_lock:
            if not self._closed:
                self._queue.put(finished)
                return
        self._commit([finished] if self._synced(finished) else [])

    def close(self) -> None:
        """Commit everything queued, then stop the thread. Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()

    def __enter__(self) -> GroupCommit:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch: list[Finished] = []
            started = self._monotonic()
            while item is not None:
                if self._synced(item):
                    batch.append(item)
                if len(batch) >= self._max_files or self._monotonic() - started >= self._max_wait_s:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            self._commit(batch)
            if item is None:  # closing
                return

    def _synced(self, item: Finished) -> bool:
        """Sync one file's bytes; False (the file removed, the item told) when that failed."""
        if item.durable:
            return True
        try:
            self._sync_file(item.path)
        except OSError as exc:  # its bytes may not be on disk: no row; the next run fetches it again
            if item.owned:
                item.path.unlink(missing_ok=True)
            self._fail([item], exc)
            return False
        return True

    def _commit(self, batch: list[Finished]) -> None:
        """Sync the batch's folders (its files are synced), record the rows in one transaction, then report."""
        if not batch:
            return
        try:
            for folder in dict.fromkeys(item.path.parent for item in batch if not item.durable):
                self._sync_dir(folder)
            self._record([item.row for item in batch])
        except Exception as exc:  # a database failure must not vanish in this thread: each item is told
            log.exception("recording %d downloaded videos failed", len(batch))
            self._fail(batch, exc)
            return
        self.batches.append(len(batch))
        for item in batch:
            _tell(item.on_committed, item.row)

    @staticmethod
    def _fail(items: list[Finished], exc: Exception) -> None:
        for item in items:
            _tell(item.on_failed, exc)


def _tell(callback: Callable[[Any], None], value: Any) -> None:
    """Run one item's callback on the committer thread; its failure (a listener whose stdout has gone, a bug) is
    logged and must not end the thread, or every file after it would be left unrecorded and untold."""
    try:
        callback(value)
    except Exception:
        log.exception("a downloaded video's callback failed")


__all__ = ["MAX_BATCH_FILES", "MAX_BATCH_WAIT_S", "Finished", "GroupCommit"]
