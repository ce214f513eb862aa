"""Streaming video download: ``.part`` + sidecar, Range resume, checks, host allowlist, sha256 (issue 4).

::

    dl = Downloader(dest_dir=Path("data/videos"), allowed_hosts=("*.alicdn.com",))
    result = dl.fetch(url, num_iid=520000000001, name="520000000001.mp4")
    result.path, result.size, result.sha256

One call writes ``<dest_dir>/<name>.part`` and a JSON sidecar ``<name>.part.json`` naming the source (num_iid,
URL without its query, total size, ETag, Last-Modified). A rerun resumes the ``.part`` with ``Range`` +
``If-Range`` only when the sidecar names the same source; anything else is deleted and fetched again, so bytes
of two different files are never mixed. The final file appears by ``os.replace`` only once it is complete,
its length matches what the server promised, it starts like an MP4 and it is fsync'd; its sha256 is computed
while streaming.

Each attempt is bounded three ways, so a stalled body cannot hang a run: the socket read timeout (``timeout_s``),
a minimum average speed over a window (``min_speed_bytes_s`` over ``speed_window_s``: a trickle defeats the
socket timeout) and a wall-clock deadline (``deadline_s``). Tripping one is ``stalled``: retried with tenacity
(``retries`` more attempts, exponential backoff with jitter), each attempt resuming from the ``.part``.

Why the checks: the CDN (top-protocol.md §9) may answer an HTML error page with status 200, cut a body short,
ignore ``Range``, or redirect anywhere; a signed URL expires (403) and must be looked up again, not retried.

Outcomes are a :class:`DownloadResult` or a :class:`~taobao_video.errors.DownloadError` whose ``reason`` is:

=============================================  ==========  ============================================
reason                                         retried     the ``.part`` afterwards
=============================================  ==========  ============================================
network, stalled, truncated, http_5xx,         yes         kept: a rerun resumes it
bad_range, corrupt_part
url_expired (UrlExpired), forbidden, gone,     no          kept
http_4xx, bad_status, bad_redirect,
too_many_redirects, io_error, busy
stopped (DownloadStopped)                      no          kept (the run is stopping)
not_mp4, wrong_type, too_large,                no          deleted, with its sidecar
host_not_allowed, bad_scheme
=============================================  ==========  ============================================

Nothing above this module sees a ``requests`` (or ``urllib3``) exception, and no message carries a URL's query
string: signed URLs hold their auth key there.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Final
from urllib.parse import urljoin, urlsplit

import requests
import tenacity
import urllib3

from taobao_video.errors import DownloadError, DownloadStopped
from taobao_video.fetch.checks import (
    MP4_HEAD,
    content_error,
    describe_bytes,
    host_allowed,
    is_mp4,
    is_signed,
    parse_content_range,
    public_url,
    read_error,
    request_error,
    status_error,
    wrong_type,
)
from taobao_video.fetch.partfile import PartPaths, PartSource, discard
from taobao_video.fsutil import fsync_dir

if TYPE_CHECKING:
    from taobao_video.config.models import DownloadSettings

log = logging.getLogger(__name__)

CHUNK_SIZE: Final = 256 * 1024
# A browser's User-Agent and the item page as Referer: CDN referer rules are unknown (top-protocol.md §9).
DEFAULT_USER_AGENT: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
)
MAX_REDIRECTS: Final = 5
SIDECAR_SUFFIX: Final = ".part.json"
CONTENT_FAILURES: Final = frozenset({"not_mp4", "wrong_type", "too_large", "host_not_allowed", "bad_scheme"})
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_RESTART: Final = "restart"  # the server would not continue our .part: delete it and ask for everything
_COMPLETE: Final = "complete"  # a 416 confirmed the .part is the whole file
# What a body read can raise: urllib3 wraps socket and http.client errors, but be safe at the edge.
_READ_ERRORS = (urllib3.exceptions.HTTPError, requests.RequestException, http.client.HTTPException, OSError)


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


# ---------------------------------------------------------------------------------------- per-call state


@dataclass
class _Job:
    """One ``fetch`` call: what was asked, and what its attempts have done so far."""

    url: str
    num_iid: int
    paths: PartPaths
    expected_size: int | None
    on_progress: Callable[[int], None] | None
    should_stop: Callable[[], bool] | None
    resumed_from: int | None = None
    bytes_fetched: int = 0

    @property
    def public(self) -> str:
        return public_url(self.url)

    def check_stop(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise DownloadStopped(f"{self.public}: stopped; partial file kept for the next run", url=self.public)


@dataclass
class _Answer:
    """A response accepted for writing: where its body lands in the file and what it promises."""

    response: requests.Response
    final_url: str
    start: int
    total: int | None  # the whole file's size when the server (or the caller's hint) says
    etag: str
    last_modified: str
    content_type: str

    def source(self, job: _Job) -> PartSource:
        return PartSource(
            job.num_iid, public_url(job.url), self.total, self.etag, self.last_modified, self.content_type
        )


class _Pace:
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


# ---------------------------------------------------------------------------------------------- downloader


def new_download_session(workers: int) -> requests.Session:
    """A Session whose pool keeps one connection per worker, so parallel downloads reuse connections."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=max(10, workers), pool_maxsize=workers, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class Downloader:
    """Downloads videos into ``dest_dir``; :meth:`fetch` is safe to call from several threads at once."""

    def __init__(
        self,
        dest_dir: Path,
        *,
        allowed_hosts: Sequence[str] = ("*.taobao.com", "*.alicdn.com", "*.tbcdn.cn"),
        max_bytes: int = 500 * 2**20,
        timeout_s: float = 30.0,
        deadline_s: float = 900.0,
        min_speed_bytes_s: int = 4096,
        speed_window_s: float = 30.0,
        retries: int = 3,
        user_agent: str = DEFAULT_USER_AGENT,
        referer: str = "https://item.taobao.com/",
        workers: int = 8,
        http: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        chunk_size: int = CHUNK_SIZE,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 30.0,
    ) -> None:
        self.dest_dir = Path(dest_dir)
        self.allowed_hosts = tuple(allowed_hosts)
        self.max_bytes, self.timeout_s, self.deadline_s = max_bytes, timeout_s, deadline_s
        self.min_speed_bytes_s, self.speed_window_s = min_speed_bytes_s, speed_window_s
        self.retries, self.chunk_size = retries, chunk_size
        self.headers = {"User-Agent": user_agent, "Referer": referer, "Accept-Encoding": "identity"}
        self._own_http = http is None
        self.http = http if http is not None else new_download_session(workers)
        self._sleep, self._monotonic = sleep, monotonic
        self._backoff = tenacity.wait_exponential(multiplier=backoff_initial_s, max=backoff_max_s) + (
            tenacity.wait_random(0, backoff_initial_s)
        )
        self._active: set[str] = set()
        self._active_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: DownloadSettings, http: requests.Session | None = None, *, workers: int | None = None
    ) -> Downloader:
        """A downloader configured by the ``[download]`` section; ``workers`` overrides its ``workers`` (--workers)."""
        return cls(
            settings.dir,
            allowed_hosts=settings.allowed_hosts,
            max_bytes=settings.max_bytes,
            timeout_s=settings.timeout_s,
            deadline_s=settings.deadline_s,
            min_speed_bytes_s=settings.min_speed_bytes_s,
            speed_window_s=settings.speed_window_s,
            retries=settings.retries,
            user_agent=settings.user_agent,
            referer=settings.referer,
            workers=workers or settings.workers,
            http=http,
        )

    def close(self) -> None:
        """Close the connection pool, if this downloader made it."""
        if self._own_http:
            self.http.close()

    def __enter__(self) -> Downloader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Downloader(dest_dir={str(self.dest_dir)!r}, allowed_hosts={self.allowed_hosts!r})"

    # -- public ------------------------------------------------------------------------------------------------

    def fetch(
        self,
        url: str,
        *,
        num_iid: int,
        name: str,
        expected_size: int | None = None,
        on_progress: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> DownloadResult:
        """Download ``url`` to ``dest_dir/name``, resuming a matching ``.part``; retry what is transient.

        ``expected_size`` is a hint: it must match a ``.part``'s record for that to be resumed, and it is the
        expected length when the server states none. ``on_progress(n)`` is called with each chunk's size (from
        this thread). ``should_stop()`` is polled between chunks; True parks the ``.part`` and raises
        DownloadStopped. Raises DownloadError (see the module docstring for reasons); ValueError for a
        ``name`` that is not a plain file name.
        """
        paths = self._paths(name)
        job = _Job(url, num_iid, paths, expected_size, on_progress, should_stop)
        with self._claim(paths.final):
            try:
                self.dest_dir.mkdir(parents=True, exist_ok=True)
                return self._retrying()(self._attempt, job)
            except DownloadError as exc:
                if exc.reason in CONTENT_FAILURES:
                    discard(paths)
                raise
            except OSError as exc:
                raise DownloadError("io_error", f"{paths.part}: {exc.strerror or exc}", url=job.public) from None

    # -- retry policy ------------------------------------------------------------------------------------------

    def _retrying(self) -> tenacity.Retrying:
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda exc: isinstance(exc, DownloadError) and exc.retryable),
            stop=tenacity.stop_after_attempt(self.retries + 1),
            wait=self._backoff,
            sleep=self._sleep,
            reraise=True,
            before_sleep=_log_retry,
        )

    # -- one attempt -------------------------------------------------------------------------------------------

    def _attempt(self, job: _Job) -> DownloadResult:
        """Ask for what is missing and write it; a second pass only when the server would not resume."""
        job.check_stop()
        self._check_url(job.url)
        pace = _Pace(self._monotonic, self.deadline_s, self.min_speed_bytes_s, self.speed_window_s, job.public)
        for _ in range(2):
            offset, source = self._resumable(job)
            response, final_url = self._open(job.url, self._request_headers(offset, source))
            with response:
                answer = self._accept(job, response, final_url, offset, source)
                if isinstance(answer, _Answer):
                    return self._receive(job, answer, pace)
                if answer == _COMPLETE and source is not None:
                    return self._finish_complete(job, response, final_url, offset, source)
                discard(job.paths)
        raise AssertionError("a download restarted from 0 cannot ask to restart again")

    def _resumable(self, job: _Job) -> tuple[int, PartSource | None]:
        """How many bytes of a ``.part`` may be resumed, with its source; a foreign one is deleted."""
        paths = job.paths
        try:
            size = paths.part.stat().st_size
        except FileNotFoundError:
            size = None
        source = PartSource.load(paths.sidecar) if size is not None else None
        if size is None or source is None or not self._same_source(job, source, size):
            discard(job.paths)
            size, source = 0, None
        if job.resumed_from is None:
            job.resumed_from = size
        return size, source

    @staticmethod
    def _same_source(job: _Job, source: PartSource, size: int) -> bool:
        """A ``.part`` is resumed only into the file it was cut from, and only with a validator for If-Range."""
        return (
            source.num_iid == job.num_iid
            and urlsplit(source.url).path == urlsplit(job.url).path
            and (job.expected_size is None or source.size in (None, job.expected_size))
            and (source.size is None or size <= source.size)
            and size >= MP4_HEAD
            and bool(source.validator())
        )

    def _request_headers(self, offset: int, source: PartSource | None) -> dict[str, str]:
        headers = dict(self.headers)
        if offset and source is not None:
            headers["Range"] = f"bytes={offset}-"
            headers["If-Range"] = source.validator()
        return headers

    def _open(self, url: str, headers: dict[str, str]) -> tuple[requests.Response, str]:
        """GET ``url``, following redirects ourselves so every hop is checked against the allowlist."""
        for _ in range(MAX_REDIRECTS + 1):
            self._check_url(url)
            try:
                response = self.http.get(
                    url, headers=headers, stream=True, allow_redirects=False, timeout=(self.timeout_s, self.timeout_s)
                )
            except requests.RequestException as exc:
                raise request_error(exc, url) from None
            if response.status_code not in _REDIRECTS:
                return response, url
            response.close()
            location = response.headers.get("Location", "").strip()
            if not location:
                message = f"HTTP {response.status_code} redirect without a Location"
                raise DownloadError("bad_redirect", f"{public_url(url)}: {message}", url=public_url(url))
            url = urljoin(url, location)
        message = f"more than {MAX_REDIRECTS} redirects"
        raise DownloadError("too_many_redirects", f"{public_url(url)}: {message}", url=public_url(url))

    def _check_url(self, url: str) -> None:
        """Refuse a URL (the first or a redirect hop) whose scheme or host is not allowed."""
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
        except ValueError:
            raise content_error("bad_scheme", "not a valid URL", url) from None
        if parts.scheme.lower() not in ("http", "https"):
            raise content_error("bad_scheme", f"scheme {parts.scheme or '(none)'!r} is not http(s)", url)
        if not host_allowed(host, self.allowed_hosts):
            allowed = ", ".join(self.allowed_hosts)
            raise content_error("host_not_allowed", f"host {host!r} is not in allowed_hosts ({allowed})", url)

    # -- what came back ----------------------------------------------------------------------------------------

    def _accept(
        self, job: _Job, response: requests.Response, final_url: str, offset: int, source: PartSource | None
    ) -> _Answer | str:
        """An answer to write, ``"restart"`` (the server would not resume) or ``"complete"`` (416, all here)."""
        status = response.status_code
        if status == 416 and offset:
            return self._after_416(response, offset, source)
        if status not in (200, 206):
            signed = is_signed(job.url) or is_signed(final_url)
            raise status_error(status, final_url, response.reason or "", signed=signed)
        content_type = response.headers.get("Content-Type", "")
        self._check_type(response, content_type, final_url)
        length = _content_length(response)
        if status == 200:
            start, total = 0, length if length is not None else job.expected_size
        else:
            span = self._range_of(response, length, offset, source, final_url)
            if span is None:
                return _RESTART
            start, total = span
        announced = total if total is not None else start + (length or 0)
        if announced > self.max_bytes:
            message = f"{announced} bytes is more than max_bytes ({self.max_bytes})"
            raise content_error("too_large", message, final_url)
        etag, modified = response.headers.get("ETag", ""), response.headers.get("Last-Modified", "")
        if start and source is not None:  # a 206 need not repeat the validators; keep them for the next resume
            etag, modified = etag or source.etag, modified or source.last_modified
        return _Answer(response, final_url, start, total, etag, modified, content_type)

    @staticmethod
    def _check_type(response: requests.Response, content_type: str, url: str) -> None:
        """Refuse, before reading, a body announced as a web page, data or text, or compressed although identity
        was asked (``wrong_type``). A body that only turns out not to be an MP4 is ``not_mp4``."""
        announced = wrong_type(content_type)
        if announced is not None:
            raise content_error("wrong_type", f"the server sent {announced} ({content_type}), not a video", url)
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise content_error("wrong_type", f"the body is compressed (Content-Encoding: {encoding})", url)

    @staticmethod
    def _range_of(
        response: requests.Response, length: int | None, offset: int, source: PartSource | None, url: str
    ) -> tuple[int, int | None] | None:
        """(start, total) of a 206 that continues our ``.part``; None when it does not (start over)."""
        span = parse_content_range(response.headers.get("Content-Range", ""))
        first, last, total = span if span is not None else (None, None, None)
        etag = response.headers.get("ETag", "")
        fits = (
            first == offset
            and last is not None
            and (total is None or last == total - 1)
            and (length is None or length == last - first + 1)
            and (source is None or source.size is None or total == source.size)
            and (source is None or not etag or not source.etag or etag == source.etag)
        )
        if fits:
            return offset, total
        if offset:
            return None
        shown = response.headers.get("Content-Range", "(none)")
        message = f"HTTP 206 with Content-Range {shown} does not match the request from byte 0"
        raise DownloadError("bad_range", f"{public_url(url)}: {message}", retryable=True, url=public_url(url))

    @staticmethod
    def _after_416(response: requests.Response, offset: int, source: PartSource | None) -> str:
        """A 416 to ``bytes=N-`` means complete only if the server's total is exactly N."""
        span = parse_content_range(response.headers.get("Content-Range", ""))
        total = span[2] if span is not None else None
        etag = response.headers.get("ETag", "")
        if source is None or total != offset or source.size not in (None, total):
            return _RESTART
        return _COMPLETE if not etag or not source.etag or etag == source.etag else _RESTART

    # -- writing -----------------------------------------------------------------------------------------------

    def _receive(self, job: _Job, answer: _Answer, pace: _Pace) -> DownloadResult:
        """Write the body after the first ``answer.start`` bytes of the ``.part``, then verify and finish."""
        job.resumed_from = min(answer.start, job.resumed_from if job.resumed_from is not None else answer.start)
        hasher = self._rehash(job, answer.start)
        answer.source(job).save(job.paths.sidecar)
        with open(job.paths.part, "r+b" if answer.start else "wb") as file:
            file.seek(answer.start)
            file.truncate()
            received = answer.start + self._pump(job, answer, file, hasher, pace)
            self._verify_length(job, answer, received)
            file.flush()
            os.fsync(file.fileno())
        return self._finalise(job, answer.final_url, received, hasher.hexdigest(), answer.etag, answer.content_type)

    @staticmethod
    def _rehash(job: _Job, length: int) -> hashlib._Hash:
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

    def _pump(self, job: _Job, answer: _Answer, file: BinaryIO, hasher: hashlib._Hash, pace: _Pace) -> int:
        """Copy the body to ``file`` and the hash in one pass; the hot loop, so it does little else."""
        read, write, update = answer.response.raw.read1, file.write, hasher.update
        size, room, start = self.chunk_size, self.max_bytes - answer.start, answer.start
        progress, url = job.on_progress, answer.final_url
        head: bytes | None = b"" if start == 0 else None  # the first bytes must be checked before any is written
        written = 0
        while True:
            try:
                chunk = read(size, decode_content=False)
            except _READ_ERRORS as exc:
                raise read_error(exc, url, start + written, answer.total) from None
            if not chunk:
                break
            job.bytes_fetched += len(chunk)
            if head is not None:
                head, chunk = self._check_head(head + chunk, answer)
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
            self._check_head(head, answer, at_end=True)
        return written

    @staticmethod
    def _check_head(data: bytes, answer: _Answer, *, at_end: bool = False) -> tuple[bytes | None, bytes]:
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

    def _verify_length(self, job: _Job, answer: _Answer, received: int) -> None:
        """Bytes on disk must be what the server promised; fewer is a cut body we resume next attempt."""
        if answer.total is None or received == answer.total:
            return
        if received < answer.total:
            message = f"body cut short at {received} of {answer.total} bytes"
            raise DownloadError("truncated", f"{job.public}: {message}", retryable=True, url=job.public)
        log.warning("%s: %d bytes, more than the expected %d; keeping them", job.public, received, answer.total)

    def _finish_complete(
        self, job: _Job, response: requests.Response, final_url: str, size: int, source: PartSource
    ) -> DownloadResult:
        """The ``.part`` already holds the whole file (a 416 said so): verify and finish without a body."""
        hasher = self._rehash(job, size)
        with open(job.paths.part, "rb") as file:
            os.fsync(file.fileno())
        etag = response.headers.get("ETag", "") or source.etag
        return self._finalise(job, final_url, size, hasher.hexdigest(), etag, source.content_type)

    def _finalise(
        self, job: _Job, final_url: str, size: int, sha256: str, etag: str, content_type: str
    ) -> DownloadResult:
        """Rename the synced ``.part`` into place, sync the folder, then drop the sidecar."""
        os.replace(job.paths.part, job.paths.final)
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
        )

    # -- bookkeeping -------------------------------------------------------------------------------------------

    def _paths(self, name: str) -> PartPaths:
        if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
            raise ValueError(f"name must be a plain file name, not {name!r}")
        final = self.dest_dir / name
        return PartPaths(final, final.with_name(name + ".part"), final.with_name(name + SIDECAR_SUFFIX))

    @contextmanager
    def _claim(self, final: Path) -> Iterator[None]:
        """One fetch per file at a time: two writers on one ``.part`` would interleave their bytes."""
        key = str(final)
        with self._active_lock:
            if key in self._active:
                raise DownloadError("busy", f"{final.name} is already being downloaded")
            self._active.add(key)
        try:
            yield
        finally:
            with self._active_lock:
                self._active.discard(key)


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length", "").strip()
    return int(value) if value.isdigit() else None


def _log_retry(state: tenacity.RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning("download attempt %d failed (%s); retrying in %.1f s", state.attempt_number, exc, wait)


__all__ = [
    "CHUNK_SIZE",
    "CONTENT_FAILURES",
    "DEFAULT_USER_AGENT",
    "DownloadResult",
    "Downloader",
    "host_allowed",
    "new_download_session",
    "parse_content_range",
    "public_url",
    "status_error",
]
