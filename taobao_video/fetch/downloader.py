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
network (but a TLS failure or a bad URL),      yes         kept: a rerun resumes it
stalled, truncated, http_5xx,
bad_range, corrupt_part
url_expired (UrlExpired), forbidden, gone,     no          kept
http_4xx, bad_status, bad_redirect,
too_many_redirects, io_error, busy
stopped (DownloadStopped)                      no          kept (the run is stopping)
DiskFull (not a DownloadError: ENOSPC, EDQUOT) no          kept, unless too short to resume
not_mp4, wrong_type, too_large,                no          deleted, with its sidecar
host_not_allowed, bad_scheme
=============================================  ==========  ============================================

Network failures are translated once, per cause, by ``net.py`` (through ``cdn.network_error``); nothing above this
package sees a ``requests`` (or ``urllib3``) exception, and no message carries a URL's query string: signed URLs
hold their auth key there.

The pieces: ``cdn.py`` asks the CDN and judges its answer, ``stream.py`` writes an accepted body into the
``.part`` and renames it into place, ``partfile.py`` keeps the sidecar, ``checks.py`` and ``media.py`` hold the
pure checks. This module runs the attempts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import requests

from taobao_video import net
from taobao_video.errors import DiskFull, DownloadError
from taobao_video.fetch.cdn import (
    COMPLETE,
    Answer,
    CuttableAdapter,
    accept,
    cut_off,
    new_download_session,
    open_url,
)
from taobao_video.fetch.checks import content_error, host_allowed
from taobao_video.fetch.media import MP4_HEAD
from taobao_video.fetch.partfile import PartPaths, PartSource, discard
from taobao_video.fetch.space import disk_full, is_disk_full
from taobao_video.fetch.stream import BodyWriter, DownloadResult, Job, Pace, finish_complete

if TYPE_CHECKING:
    from taobao_video.config.models import DownloadSettings


CHUNK_SIZE: Final = 256 * 1024
# A browser's User-Agent and the item page as Referer: CDN referer rules are unknown (top-protocol.md §9).
DEFAULT_USER_AGENT: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
)
SIDECAR_SUFFIX: Final = ".part.json"
_BACKOFF_NAP_S: Final = 0.25  # how soon a stop ends a wait between attempts
CONTENT_FAILURES: Final = frozenset({"not_mp4", "wrong_type", "too_large", "host_not_allowed", "bad_scheme"})


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
        sync: bool = True,
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
        self.backoff_initial_s, self.backoff_max_s = backoff_initial_s, backoff_max_s
        # sync False: a finished file is renamed into place unsynced and DownloadResult.durable is False; the caller
        # must fsync it and its folder (jobs/commit.py does, a batch at a time) before anything relies on it
        self._writer = BodyWriter(max_bytes=max_bytes, chunk_size=chunk_size, sync=sync)
        self._active: dict[str, Job] = {}
        self._active_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: DownloadSettings,
        http: requests.Session | None = None,
        *,
        workers: int | None = None,
        sync: bool = True,
    ) -> Downloader:
        """A downloader configured by the ``[download]`` section; ``workers`` overrides its ``workers`` (--workers);
        ``sync`` False leaves syncing finished files to the caller (the harvest's group commit)."""
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
            sync=sync,
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
        DownloadStopped. Raises DownloadError (see the module docstring for reasons), DiskFull when a write
        meets a full disk (ENOSPC, EDQUOT; the ``.part`` kept); ValueError for a ``name`` that is not a plain
        file name.
        """
        paths = self._paths(name)
        job = Job(url, num_iid, paths, expected_size, on_progress, should_stop)
        with self._claim(job):
            try:
                self.dest_dir.mkdir(parents=True, exist_ok=True)
                retrying = net.retrying(
                    "download",
                    attempts=self.retries + 1,
                    # once the run is stopping, a failure (often the stop cutting the transfer off) is not retried
                    should_retry=lambda exc: isinstance(exc, DownloadError) and exc.retryable and not job.stopping,
                    backoff_initial_s=self.backoff_initial_s,
                    backoff_max_s=self.backoff_max_s,
                    sleep=lambda seconds: self._backoff(job, seconds),
                )
                return retrying(self._attempt, job)
            except DownloadError as exc:
                if exc.reason in CONTENT_FAILURES:
                    discard(paths)
                exc.bytes_fetched = job.bytes_fetched
                raise
            except OSError as exc:
                error = self._write_error(job, exc)
                error.bytes_fetched = job.bytes_fetched
                raise error from None

    def _write_error(self, job: Job, exc: OSError) -> DownloadError | DiskFull:
        """A file error as the job layer knows it: DiskFull (the run stops; a ``.part`` worth resuming is kept)
        or ``io_error``."""
        if not is_disk_full(exc):
            return DownloadError("io_error", f"{job.paths.part}: {exc.strerror or exc}", url=job.public)
        with suppress(OSError):
            if job.paths.part.stat().st_size < MP4_HEAD:  # too short to be resumed: not worth its space
                discard(job.paths)
        return disk_full(self.dest_dir)

    def abort(self) -> None:
        """Cut off every transfer in flight (from any thread): their fetches raise DownloadStopped promptly if
        their ``should_stop`` says so, their ``.part`` kept. A stalled read would otherwise hold a stopping run
        for up to ``timeout_s``."""
        with self._active_lock:
            responses = [job.response for job in self._active.values() if job.response is not None]
        for response in responses:
            cut_off(response)
        for adapter in set(self.http.adapters.values()):
            if isinstance(adapter, CuttableAdapter):  # requests still waiting for their headers
                adapter.cut_off_all()

    def _backoff(self, job: Job, seconds: float) -> None:
        """Wait before a retry, in short naps while a stop may come, so a stop ends the wait."""
        if job.should_stop is None:
            self._sleep(seconds)
            return
        deadline = self._monotonic() + seconds
        while (left := deadline - self._monotonic()) > 0:
            job.check_stop()
            self._sleep(min(left, _BACKOFF_NAP_S))
        job.check_stop()

    # -- one attempt -------------------------------------------------------------------------------------------

    def _attempt(self, job: Job) -> DownloadResult:
        """Ask for what is missing and write it; a second pass only when the server would not resume."""
        job.check_stop()
        self._check_url(job.url)
        pace = Pace(self._monotonic, self.deadline_s, self.min_speed_bytes_s, self.speed_window_s, job.public)
        for _ in range(2):
            offset, source = self._resumable(job)
            headers = self._request_headers(offset, source)
            try:
                response, final_url = open_url(
                    self.http, job.url, headers, timeout_s=self.timeout_s, check_url=self._check_url
                )
            except DownloadError:
                job.check_stop()  # the stop cut the request off before its answer: parked, not failed
                raise
            with response, job.reading(response):
                job.check_stop()  # asked to stop while waiting for the answer: read nothing
                answer = accept(
                    response,
                    final_url,
                    offset,
                    source,
                    url=job.url,
                    expected_size=job.expected_size,
                    max_bytes=self.max_bytes,
                )
                if isinstance(answer, Answer):
                    return self._writer.receive(job, answer, pace)
                if answer == COMPLETE and source is not None:
                    return finish_complete(job, response, final_url, offset, source, sync=self._writer.sync)
                discard(job.paths)
        raise AssertionError("a download restarted from 0 cannot ask to restart again")

    def _resumable(self, job: Job) -> tuple[int, PartSource | None]:
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
    def _same_source(job: Job, source: PartSource, size: int) -> bool:
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

    # -- bookkeeping -------------------------------------------------------------------------------------------

    def _paths(self, name: str) -> PartPaths:
        if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
            raise ValueError(f"name must be a plain file name, not {name!r}")
        final = self.dest_dir / name
        return PartPaths(final, final.with_name(name + ".part"), final.with_name(name + SIDECAR_SUFFIX))

    @contextmanager
    def _claim(self, job: Job) -> Iterator[None]:
        """One fetch per file at a time: two writers on one ``.part`` would interleave their bytes."""
        final = job.paths.final
        key = str(final)
        with self._active_lock:
            if key in self._active:
                raise DownloadError("busy", f"{final.name} is already being downloaded")
            self._active[key] = job
        try:
            yield
        finally:
            with self._active_lock:
                self._active.pop(key, None)


__all__ = [
    "CHUNK_SIZE",
    "CONTENT_FAILURES",
    "DEFAULT_USER_AGENT",
    "SIDECAR_SUFFIX",
    "Downloader",
]
