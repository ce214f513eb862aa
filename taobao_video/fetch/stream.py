"""One download's state and the writing of an accepted answer's body into its ``.part``.

The body goes to the file and the sha256 in one pass; the first bytes are held back until they show an MP4; a
watchdog (:class:`Pace`) bounds each attempt by a wall-clock deadline and a minimum average speed; the length on
disk must be what the server promised; the synced ``.part`` is renamed into place last, then its sidecar goes.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import requests

from taobao_video.errors import DownloadError, DownloadStopped
from taobao_video.fetch.cdn import Answer, network_error
from taobao_video.fetch.checks import content_error, public_url
from taobao_video.fetch.media import MP4_HEAD, describe_bytes, is_mp4
from taobao_video.fetch.partfile import PartPaths, PartSource, discard
from taobao_video.fsutil import fsync_dir
from taobao_video.net import NETWORK_ERRORS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DownloadResult:
    """A complete, verified file in its final place."""

    path: Path
    size: int
    sha256: str
    etag: str
    content_type: str
    final_url: str  # after redirects, without the query string
    resumed_from: int  # bytes of an earlier run's .part that are in this file
    bytes_fetched: int  # bytes transferred by this call, failed attempts included
    durable: bool = True  # False: renamed into place but not yet fsynced, nor its folder (Downloader(sync=False))


@dataclass
class Job:
    """One ``Downloader.fetch`` call: what was asked, and what its attempts have done so far."""

    url: str
    num_iid: int
    paths: PartPaths
    expected_size: int | None
    on_progress: Callable[[int], None] | None
    should_stop: Callable[[], bool] | None
    resumed_from: int | None = None
    bytes_fetched: int = 0
    response: requests.Response | None = None  # the answer being read, for Downloader.abort to cut off

    @property
    def public(self) -> str:
        return public_url(self.url)

    @property
    def stopping(self) -> bool:
        return self.should_stop is not None and self.should_stop()

    def check_stop(self) -> None:
        if self.stopping:
            raise self.stopped()

    @contextmanager
    def reading(self, response: requests.Response) -> Iterator[None]:
        """While the block reads ``response``, :meth:`Downloader.abort` may cut it off."""
        self.response = response
        try:
            yield
        finally:
            self.response = None

    def stopped(self) -> DownloadStopped:
        return DownloadStopped(f"{self.public}: stopped; partial file kept for the next run", url=self.public)


class Pace:
    """One attempt's watchdog: a wall-clock deadline and a minimum average speed over a window.

    The socket timeout alone cannot catch a server that trickles a byte every few seconds."""

    def __init__(
        self, monotonic: Callable[[], float], deadline_s: float, min_speed: int, window_s: float, url: str
    ) -> None:
        self._clock, self._url = monotonic, url
        self._started = self._window_start = monotonic()
        self._deadline_s, self._min_speed, self._window_s = deadline_s, min_speed, window_s
        self._window_bytes = 0

    def check(self, received: int) -> None:
        """Raise ``stalled`` when the deadline passed or the last window was too slow."""
        now, url = self._clock(), self._url
        if now - self._started > self._deadline_s:
            message = f"{url}: not finished within the {self._deadline_s:g} s deadline ({received} bytes in)"
            raise DownloadError("stalled", message, retryable=True, url=url)
        elapsed = now - self._window_start
        if elapsed < self._window_s:
            return
        speed = (received - self._window_bytes) / elapsed
        if speed < self._min_speed:
            message = f"{url}: {speed:.0f} B/s over {elapsed:.0f} s, below the minimum of {self._min_speed} B/s"
            raise DownloadError("stalled", message, retryable=True, url=url)
        self._window_start, self._window_bytes = now, received


class BodyWriter:
    """Writes accepted answers into their ``.part`` files, within ``max_bytes``, ``chunk_size`` at a time."""

    def __init__(self, *, max_bytes: int, chunk_size: int, sync: bool = True) -> None:
        self.max_bytes, self.chunk_size = max_bytes, chunk_size
        self.sync = sync  # False: the caller makes finished files durable itself, in batches (jobs/commit.py)

    def receive(self, job: Job, answer: Answer, pace: Pace) -> DownloadResult:
        """Write the body after the first ``answer.start`` bytes of the ``.part``, then verify and finish."""
        job.resumed_from = min(answer.start, job.resumed_from if job.resumed_from is not None else answer.start)
        hasher = rehash(job, answer.start)
        source_of(job, answer).save(job.paths.sidecar)
        with open(job.paths.part, "r+b" if answer.start else "wb") as file:
            file.seek(answer.start)
            file.truncate()
            try:
                received = answer.start + self._pump(job, answer, file, hasher, pace)
                _verify_length(job, answer, received)
            except DownloadError:
                if job.stopping:  # the stop cut the transfer off: whatever it broke, the .part is parked
                    raise job.stopped() from None
                raise
            file.flush()
            if self.sync:
                os.fsync(file.fileno())
        return finalise(
            job, answer.final_url, received, hasher.hexdigest(), answer.etag, answer.content_type, sync=self.sync
        )

    def _pump(self, job: Job, answer: Answer, file: BinaryIO, hasher: hashlib._Hash, pace: Pace) -> int:
        """Copy the body to ``file`` and the hash in one pass; the hot loop, so it does little else."""
        read, write, update = answer.response.raw.read1, file.write, hasher.update
        size, room, start = self.chunk_size, self.max_bytes - answer.start, answer.start
        progress, url = job.on_progress, answer.final_url
        head: bytes | None = b"" if start == 0 else None  # the first bytes must be checked before any is written
        written = 0
        while True:
            try:
                chunk = read(size, decode_content=False)
            except NETWORK_ERRORS as exc:
                raise network_error(exc, url, answering=True, received=start + written, total=answer.total) from None
            if not chunk:
                break
            job.bytes_fetched += len(chunk)
            if head is not None:
                head, chunk = _check_head(head + chunk, answer)
                if not chunk:
                    continue
            if written + len(chunk) > room:
                raise content_error("too_large", f"the body passed max_bytes ({self.max_bytes})", url)
            write(chunk)
            update(chunk)
            written += len(chunk)
            if progress is not None:
                progress(len(chunk))
            job.check_stop()
            pace.check(start + written)
        if head is not None:
            _check_head(head, answer, at_end=True)
        return written


def source_of(job: Job, answer: Answer) -> PartSource:
    """What the sidecar records about the file an answer is a piece of."""
    return PartSource(
        job.num_iid, public_url(job.url), answer.total, answer.etag, answer.last_modified, answer.content_type
    )


def rehash(job: Job, length: int) -> hashlib._Hash:
    """The sha256 of the ``.part``'s first ``length`` bytes (read back once), checking it starts as an MP4."""
    if not length:
        return hashlib.sha256()
    with open(job.paths.part, "rb") as reader:
        head = reader.read(MP4_HEAD)
        reader.seek(0)
        hasher = hashlib.file_digest(reader, "sha256")
        end = reader.tell()
    if not is_mp4(head) or end != length:
        discard(job.paths)  # our own .part is damaged: start over next attempt
        message = f"{job.paths.part.name} is damaged ({describe_bytes(head)}); starting over"
        raise DownloadError("corrupt_part", message, retryable=True, url=job.public)
    return hasher


def _check_head(data: bytes, answer: Answer, *, at_end: bool = False) -> tuple[bytes | None, bytes]:
    """(bytes still held back, bytes to write): hold back until 8 bytes show whether this is an MP4."""
    if len(data) < MP4_HEAD and not at_end:
        return data, b""
    if at_end and answer.total is not None and len(data) < min(answer.total, MP4_HEAD):
        public = public_url(answer.final_url)
        message = f"{public}: body cut short at {len(data)} of {answer.total} bytes"
        raise DownloadError("truncated", message, retryable=True, url=public)
    if not is_mp4(data):
        shown = answer.content_type or "no Content-Type"
        message = f"not an MP4 video: the body is {describe_bytes(data)} ({shown})"
        raise content_error("not_mp4", message, answer.final_url)
    return None, data


def _verify_length(job: Job, answer: Answer, received: int) -> None:
    """Bytes on disk must be what the server promised; fewer is a cut body we resume next attempt."""
    if answer.total is None or received == answer.total:
        return
    if received < answer.total:
        message = f"body cut short at {received} of {answer.total} bytes"
        raise DownloadError("truncated", f"{job.public}: {message}", retryable=True, url=job.public)
    log.warning("%s: %d bytes, more than the expected %d; keeping them", job.public, received, answer.total)


def finish_complete(
    job: Job, response: requests.Response, final_url: str, size: int, source: PartSource, *, sync: bool = True
) -> DownloadResult:
    """The ``.part`` already holds the whole file (a 416 said so): verify and finish without a body."""
    hasher = rehash(job, size)
    if sync:
        with open(job.paths.part, "rb") as file:
            os.fsync(file.fileno())
    etag = response.headers.get("ETag", "") or source.etag
    return finalise(job, final_url, size, hasher.hexdigest(), etag, source.content_type, sync=sync)


def finalise(
    job: Job, final_url: str, size: int, sha256: str, etag: str, content_type: str, *, sync: bool = True
) -> DownloadResult:
    """Rename the ``.part`` into place, sync it and the folder (unless the caller does that in a batch: ``sync``
    False), then drop the sidecar, which is only a resume hint and never synced."""
    os.replace(job.paths.part, job.paths.final)
    if sync:
        fsync_dir(job.paths.final.parent)
    job.paths.sidecar.unlink(missing_ok=True)
    return DownloadResult(
        path=job.paths.final,
        size=size,
        sha256=sha256,
        etag=etag,
        content_type=content_type,
        final_url=public_url(final_url),
        resumed_from=job.resumed_from or 0,
        bytes_fetched=job.bytes_fetched,
        durable=sync,
    )
