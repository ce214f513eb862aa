"""Asking the CDN and judging its answer before a byte is written.

- :func:`new_download_session`: a pool with a connection per download thread.
- :func:`open_url`: GET, following redirects ourselves so every hop is checked against the host allowlist.
- :func:`accept`: status, Content-Type, encoding, Content-Range and size → an :class:`Answer` to write, or the
  verdict that the server would not continue our ``.part`` (:data:`RESTART`) or that it is already whole
  (:data:`COMPLETE`).
- :func:`cut_off`, :class:`CuttableAdapter`: end transfers from another thread (a run that stops must not wait
  for a stall, before or after the headers).
- :func:`network_error`: a network failure (translated by ``net.py``, per cause) as the DownloadError the job
  layer knows: ``stalled`` (no data in time), ``truncated`` (cut short) or ``network``; never with a query string.
"""

from __future__ import annotations

import socket
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urljoin

import requests
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from taobao_video import net
from taobao_video.errors import DownloadError
from taobao_video.fetch.checks import (
    content_error,
    is_signed,
    parse_content_range,
    public_url,
    scrub,
    status_error,
    wrong_type,
)
from taobao_video.fetch.partfile import PartSource

MAX_REDIRECTS: Final = 5
RESTART: Final = "restart"  # the server would not continue our .part: delete it and ask for everything
COMPLETE: Final = "complete"  # a 416 confirmed the .part is the whole file
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_REASONS: Final = {"read_timeout": "stalled", "truncated": "truncated"}  # every other cause is "network"


@dataclass
class Answer:
    """A response accepted for writing: where its body lands in the file and what it promises."""

    response: requests.Response
    final_url: str
    start: int
    total: int | None  # the whole file's size when the server (or the caller's hint) says
    etag: str
    last_modified: str
    content_type: str


class CuttableAdapter(requests.adapters.HTTPAdapter):
    """An adapter that knows its connections in use, so a stopping run can cut them off from another thread
    (:meth:`cut_off_all`) even before an answer's headers arrived (a CDN that accepts and then says nothing)."""

    def __init__(self, **kwargs: Any) -> None:
        self._busy: weakref.WeakSet[Any] = weakref.WeakSet()
        self._busy_lock = threading.Lock()
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": self._tracking(HTTPConnectionPool),
            "https": self._tracking(HTTPSConnectionPool),
        }

    def _tracking(self, base: type[HTTPConnectionPool]) -> type[HTTPConnectionPool]:
        adapter = self

        class Tracking(base):  # type: ignore[valid-type,misc]
            def _get_conn(self, timeout: float | None = None) -> Any:
                conn = super()._get_conn(timeout)
                with adapter._busy_lock:
                    adapter._busy.add(conn)
                return conn

            def _put_conn(self, conn: Any) -> None:
                if conn is not None:  # urllib3 puts None back for a connection it dropped
                    with adapter._busy_lock:
                        adapter._busy.discard(conn)
                super()._put_conn(conn)

        return Tracking

    def cut_off_all(self) -> None:
        """Shut down the sockets of every connection in use."""
        with self._busy_lock:
            busy = list(self._busy)
        for conn in busy:
            _shut_down(getattr(conn, "sock", None))


def new_download_session(workers: int) -> requests.Session:
    """A Session whose pool keeps one connection per worker, so parallel downloads reuse connections."""
    session = net.EnvironmentOnce()
    adapter = CuttableAdapter(pool_connections=max(10, workers), pool_maxsize=workers, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def cut_off(response: requests.Response) -> None:
    """Shut the socket under ``response`` down, so a read blocked on it (in another thread) returns at once."""
    connection = getattr(response.raw, "connection", None) or getattr(response.raw, "_connection", None)
    _shut_down(getattr(connection, "sock", None))


def _shut_down(sock: object) -> None:
    """``shutdown``, not ``close``: closing a socket another thread is reading leaves that read waiting until its
    timeout, and it frees a file descriptor the reader still uses."""
    if isinstance(sock, socket.socket):
        try:  # the plain socket's shutdown: an SSLSocket's own would drop its TLS state under the reader's feet
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:  # already closed or never connected: nothing is waiting on it
            pass


def network_error(
    exc: BaseException, url: str, *, answering: bool = False, received: int = 0, total: int | None = None
) -> DownloadError:
    """The DownloadError for a network failure on ``url``; ``answering``: while reading the body."""
    public = public_url(url)
    what = f"{public} after {received} of {total if total is not None else '?'} bytes" if answering else public
    error = net.transport_error(exc, what=what, scrub=lambda text: scrub(text, url), answering=answering)
    return DownloadError(_REASONS.get(error.cause, "network"), str(error), retryable=error.retryable, url=public)


def open_url(
    http: requests.Session,
    url: str,
    headers: dict[str, str],
    *,
    timeout_s: float,
    check_url: Callable[[str], None],
) -> tuple[requests.Response, str]:
    """GET ``url`` (streamed); each hop of a redirect goes through ``check_url`` first. (response, final URL)."""
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url)
        try:
            response = http.get(
                url, headers=headers, stream=True, allow_redirects=False, timeout=net.timeouts(timeout_s)
            )
        except net.NETWORK_ERRORS as exc:
            raise network_error(exc, url) from None
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


def accept(
    response: requests.Response,
    final_url: str,
    offset: int,
    source: PartSource | None,
    *,
    url: str,
    expected_size: int | None,
    max_bytes: int,
) -> Answer | str:
    """An answer to write, :data:`RESTART` (the server would not resume) or :data:`COMPLETE` (416, all here).

    ``url`` is the one first asked for (a signed one makes a 403 mean "expired"); ``expected_size`` the caller's
    hint, used when the server states no length."""
    status = response.status_code
    if status == 416 and offset:
        return _after_416(response, offset, source)
    if status not in (200, 206):
        raise status_error(status, final_url, response.reason or "", signed=is_signed(url) or is_signed(final_url))
    content_type = response.headers.get("Content-Type", "")
    _check_type(response, content_type, final_url)
    length = content_length(response)
    if status == 200:
        start, total = 0, length if length is not None else expected_size
    else:
        span = _range_of(response, length, offset, source, final_url)
        if span is None:
            return RESTART
        start, total = span
    announced = total if total is not None else start + (length or 0)
    if announced > max_bytes:
        raise content_error("too_large", f"{announced} bytes is more than max_bytes ({max_bytes})", final_url)
    etag, modified = response.headers.get("ETag", ""), response.headers.get("Last-Modified", "")
    if start and source is not None:  # a 206 need not repeat the validators; keep them for the next resume
        etag, modified = etag or source.etag, modified or source.last_modified
    return Answer(response, final_url, start, total, etag, modified, content_type)


def _check_type(response: requests.Response, content_type: str, url: str) -> None:
    """Refuse, before reading, a body announced as a web page, data or text, or compressed although identity
    was asked (``wrong_type``). A body that only turns out not to be an MP4 is ``not_mp4``."""
    announced = wrong_type(content_type)
    if announced is not None:
        raise content_error("wrong_type", f"the server sent {announced} ({content_type}), not a video", url)
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise content_error("wrong_type", f"the body is compressed (Content-Encoding: {encoding})", url)


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


def _after_416(response: requests.Response, offset: int, source: PartSource | None) -> str:
    """A 416 to ``bytes=N-`` means complete only if the server's total is exactly N."""
    span = parse_content_range(response.headers.get("Content-Range", ""))
    total = span[2] if span is not None else None
    etag = response.headers.get("ETag", "")
    if source is None or total != offset or source.size not in (None, total):
        return RESTART
    return COMPLETE if not etag or not source.etag or etag == source.etag else RESTART


def content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length", "").strip()
    return int(value) if value.isdigit() else None
