"""``taobao-video serve``: a local web page to browse and watch the catalog, over a small JSON API.

Routes (GET and HEAD; anything else is 405)::

    /                        the page: web/static/ (plain HTML, CSS and JS; no build step, nothing from a CDN)
    /static/<file>           the page's script and style sheet
    /api/videos?<filters>    {"total", "offset", "limit", "videos": [...]}: the filters of ``catalog list``
    /api/stats               what ``catalog stats --json`` prints: counts by state, totals, histogram, per day
    /videos/<num_iid>.mp4    the video file, with Range (seeking), ETag and Last-Modified
    /metrics                 the Prometheus metrics of ``[metrics] textfile`` (ops/metrics.py), the state as it is now
    /covers/<num_iid>.<ext>  the cover on disk (``web/covers.py``): jpg, png or webp

A thin layer: the filters are :class:`taobao_video.store.query.VideoQuery`, the rows come from
:func:`taobao_video.store.query.list_page`, the stats from :func:`taobao_video.store.report.stats`. The catalog is
opened without migrating (:func:`taobao_video.store.catalog.open_existing`) and only read.

What may be served: only regular files inside the videos folder (``download.dir``). The id in a video URL must be
digits and have a ``videos`` row; the row's ``video_path`` is resolved (symlinks followed) and must land inside the
videos folder, so a hostile row (``../settings.toml``, an absolute path, a symlink out) is refused like an unknown
id. Requests naming a Host other than the loopback names are refused while bound to loopback (a web page cannot
reach the API through DNS rebinding). Errors are JSON ``{"error": ..., "status": ...}``, 4xx for a bad request
and 500 for a failure of the server itself (one line on stderr), never a traceback; 503 naming the file and
the fix (`db check`, `db rebuild`) when the catalog is damaged.

The server never touches the network itself, and neither does the page: it shows the cover on disk
(``/covers/``) and falls back to a frame of the local video when there is none; its policy allows images from
this server only.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import re
import signal
import socket
import stat
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from email.utils import format_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from taobao_video.errors import CatalogDamaged, TaobaoVideoError, UsageError
from taobao_video.jobs.verify_objects import object_key
from taobao_video.model import MAX_NUM_IID
from taobao_video.storage.base import is_object_url
from taobao_video.store.filters import QueryError, VideoQuery, local_zone
from taobao_video.store.public import PublicUrls
from taobao_video.store.query import jsonable, list_page
from taobao_video.web.byteranges import UNSATISFIABLE, content_range, unsatisfied_range, wanted_range
from taobao_video.web.covers import COVER_PATH, COVER_TYPES, cover_reply, cover_src
from taobao_video.web.objects import object_reply

if TYPE_CHECKING:
    from taobao_video.storage import Storage
    from taobao_video.store.catalog import Catalog

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_PAGE_SIZE = 60
MAX_PAGE_SIZE = 1000
_VIDEO_PATH = re.compile(r"/videos/(\d{1,19})\.mp4")
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}
_STATIC = {  # URL path -> (file in taobao_video/web/static, Content-Type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/app.css": ("app.css", "text/css; charset=utf-8"),
}
# The page loads its own script, style, videos and covers, and nothing from any other host.
_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; media-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_JSON_TYPE = "application/json; charset=utf-8"
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # Prometheus' text format


@dataclass
class Reply:
    """What a route answers: status, headers and a body that is bytes or a span of an open file."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    file: IO[bytes] | None = None  # the handler sends ``length`` bytes of it from ``offset``, then closes it
    offset: int = 0
    length: int | None = None

    def content_length(self) -> int:
        return len(self.body) if self.length is None else self.length

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def json_reply(payload: Any, status: int = 200) -> Reply:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Reply(status, [("Content-Type", _JSON_TYPE), ("Cache-Control", "no-store")], body)


def error_reply(status: int, message: str) -> Reply:
    return json_reply({"error": message, "status": status}, status)


class CatalogSite:
    """The routes over one open catalog. ``base_dir`` is what ``video_path`` is relative to (the settings folder),
    ``videos_dir`` the only folder whose files may be served. ``log`` gets one line per refused or failed request.
    ``/api/stats`` counts downloads per day in ``zone`` (default: this machine's) and calls per quota day in
    ``quota_zone``, up to ``clock()``. With ``public_url_prefix`` the API's rows carry ``video_public_url`` and
    ``cover_public_url`` (the page itself plays and shows its own ``/videos/`` and ``/covers/``).
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        base_dir: Path,
        videos_dir: Path,
        allowed_hosts: frozenset[str] | None = frozenset(_LOOPBACK_NAMES),
        log: Callable[[str], None] = lambda line: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        zone: tzinfo | None = None,
        quota_zone: tzinfo | None = None,
        metrics: Callable[[], str] | None = None,
        public_url_prefix: str | None = None,
        storage: Storage | None = None,
    ) -> None:
        self._catalog = catalog
        self._metrics = metrics  # the Prometheus text (ops/metrics.current); None: no /metrics
        self._storage = storage  # download.dir = "s3://…": videos are streamed from the bucket (web/objects.py)
        self._base_dir = Path(base_dir)
        self._videos_root = Path(videos_dir).resolve()
        # what holds videos/ and covers/ as the harvest wrote them (a videos/ that is a symlink to a bigger disk
        # leaves covers/ beside it, not beside its target)
        self._media_root = Path(os.path.abspath(videos_dir)).parent
        self._allowed_hosts = allowed_hosts  # None: any Host header (bound to a public address on purpose)
        self._log = log
        self._clock = clock
        self._zone = zone or local_zone()  # downloads per day: the viewer's days
        self._quota_zone = quota_zone or self._zone
        self._pages = {path: (_web_file(name), kind) for path, (name, kind) in _STATIC.items()}
        media_root = self._media_root  # the page's own /covers/ are served from here too
        self._public = (
            None
            if public_url_prefix is None
            else PublicUrls(
                public_url_prefix,
                base_dir=base_dir,
                media_root=media_root,
                object_root=storage.url if storage is not None else None,
            )
        )

    def handle(self, verb: str, target: str, headers: Mapping[str, str] | Any) -> Reply:
        """Answer one request; ``target`` is the request line's path and query, exactly as the client sent it."""
        if verb not in ("GET", "HEAD"):
            reply = error_reply(405, f"method {verb} not allowed: this server is read-only")
            reply.headers.append(("Allow", "GET, HEAD"))
            return reply
        if not self._host_allowed(headers.get("Host")):
            return error_reply(403, f"unexpected Host header {headers.get('Host')!r}: open the URL the server printed")
        parts = urlsplit(target)
        path = parts.path
        try:
            if path in self._pages:
                return self._page(path)
            if path == "/api/videos":
                return self._list(parts.query)
            if path == "/api/stats":
                return json_reply(self._stats())
            if path == "/metrics" and self._metrics is not None:
                return Reply(
                    200, [("Content-Type", METRICS_TYPE), ("Cache-Control", "no-store")], self._metrics().encode()
                )
            if match := _VIDEO_PATH.fullmatch(path):
                return self._video(int(match[1]), headers)
            if match := COVER_PATH.fullmatch(path):
                return self._cover(int(match[1]), match[2], headers)
        except CatalogDamaged as exc:  # not the server's fault, nor the request's: the file needs `db rebuild`
            self._log(f"{verb} {path}: {exc}")
            return error_reply(503, str(exc))
        except TaobaoVideoError as exc:
            return error_reply(400 if exc.exit_code == 2 else 500, str(exc))
        return error_reply(404, f"no such page: {path}")

    # ---- routes

    def _host_allowed(self, host: str | None) -> bool:
        if self._allowed_hosts is None:
            return True
        if not host:
            return False
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return name.lower() in self._allowed_hosts

    def _page(self, path: str) -> Reply:
        body, kind = self._pages[path]
        headers = [
            ("Content-Type", kind),
            ("Cache-Control", "no-cache"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
        ]
        if path == "/":
            headers.append(("Content-Security-Policy", _PAGE_POLICY))
        return Reply(200, headers, body)

    def _list(self, query_string: str) -> Reply:
        query = _video_query(query_string)
        rows, total = list_page(self._catalog, query, base_dir=self._base_dir)
        if self._public is not None:  # download.public_url_prefix: video_public_url and cover_public_url
            rows = [self._public.add(row) for row in rows]
        videos = [{**jsonable(row), "cover_src": cover_src(row)} for row in rows]
        return json_reply({"total": total, "offset": query.offset, "limit": query.limit, "videos": videos})

    def _stats(self) -> dict[str, Any]:
        from taobao_video.store.report import stats

        return stats(self._catalog, now=self._clock(), tz=self._zone, quota_tz=self._quota_zone)

    def _video(self, num_iid: int, headers: Any) -> Reply:
        if not 0 < num_iid <= MAX_NUM_IID:
            return error_reply(404, f"no video {num_iid} in the catalog")
        row = self._catalog.video(num_iid)
        if row is None:
            return error_reply(404, f"no video {num_iid} in the catalog")
        if is_object_url(row.video_path) and self._storage is not None:
            return self._object(num_iid, row.video_path, headers)
        path = self._inside_videos(row.video_path)
        if path is None:
            self._log(f"refused to serve {num_iid}: its video_path {row.video_path!r} is outside {self._videos_root}")
            return error_reply(404, f"the file of {num_iid} is not in the videos folder")
        try:
            file = open_regular(path)
        except FileNotFoundError:
            return error_reply(404, f"the file of {num_iid} is missing ({row.video_path}): see `catalog verify`")
        except OSError as exc:
            return error_reply(404, f"the file of {num_iid} cannot be read ({row.video_path}): {exc.strerror}")
        return file_reply(file, headers)

    def _cover(self, num_iid: int, ext: str, headers: Any) -> Reply:
        row = self._catalog.video(num_iid) if 0 < num_iid <= MAX_NUM_IID else None
        cover_path = row.cover_path if row is not None else None
        if cover_path and is_object_url(cover_path) and cover_path.lower().endswith("." + ext):
            if self._storage is not None:
                return self._object(num_iid, cover_path, headers, content_type=COVER_TYPES[ext])
        covers = {"base_dir": self._base_dir, "covers_root": self._media_root / "covers"}
        return cover_reply(row, num_iid, ext, headers=headers, log=self._log, **covers)

    def _object(self, num_iid: int, video_path: str, headers: Any, content_type: str = "video/mp4") -> Reply:
        assert self._storage is not None
        key = object_key(self._storage, video_path)
        try:
            answer = None if key is None else object_reply(self._storage, key, headers, content_type=content_type)
        except TaobaoVideoError as exc:
            self._log(f"cannot serve {num_iid} from {self._storage.url}: {exc}")
            return error_reply(502, f"the object storage failed for {num_iid}: see the server's log")
        if answer is None:
            return error_reply(404, f"the object of {num_iid} is missing ({video_path}): see `catalog verify`")
        status, head, reader, offset, length = answer
        if status == 416:
            reply = error_reply(416, f"range not satisfiable: the object has {head[0][1].rsplit('/', 1)[-1]} bytes")
            reply.headers += head
            return reply
        return Reply(status, head, file=reader, offset=offset, length=length if reader is not None else None)

    def _inside_videos(self, video_path: str) -> Path | None:
        """The file ``video_path`` names, symlinks resolved, if it lies inside the videos folder; else None."""
        try:
            resolved = (self._base_dir / video_path).resolve()
        except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
            return None
        if resolved == self._videos_root or not resolved.is_relative_to(self._videos_root):
            return None
        return resolved


def _video_query(query_string: str) -> VideoQuery:
    """The :class:`VideoQuery` of an ``/api/videos`` query string, with a default and a maximum page size."""
    try:
        parsed = parse_qs(query_string, keep_blank_values=True, errors="strict", max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        raise QueryError("query string", query_string, "is not valid percent-encoded UTF-8") from None
    params: dict[str, str] = {}
    for name, values in parsed.items():
        if len(values) > 1:
            raise QueryError(name, values, "is given more than once (ids take one comma-separated list)")
        params[name] = values[0]
    params.setdefault("limit", str(DEFAULT_PAGE_SIZE))
    query = VideoQuery.from_params(params)
    if query.limit is None or query.limit > MAX_PAGE_SIZE:
        raise QueryError("limit", query.limit, f"must be at most {MAX_PAGE_SIZE} rows per request; page with offset")
    return query


def open_regular(path: Path) -> IO[bytes]:
    """Open a regular file for reading without following a symlink swapped in since it was resolved."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
    file = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        file.close()
        raise OSError(errno.EISDIR, "not a regular file", str(path))
    return file


def file_reply(file: IO[bytes], headers: Any, *, content_type: str = "video/mp4") -> Reply:
    """200, 206, 304 or 416 for an open file (a video, or a cover), by the request's Range, If-Range and
    If-None-Match."""
    info = os.fstat(file.fileno())
    size = info.st_size
    etag = f'"{info.st_mtime_ns:x}-{size:x}"'  # changes whenever the file is replaced or rewritten
    modified = format_datetime(datetime.fromtimestamp(int(info.st_mtime), UTC), usegmt=True)
    common = [("Content-Type", content_type), ("Accept-Ranges", "bytes"), ("ETag", etag), ("Last-Modified", modified)]
    if etag in (headers.get("If-None-Match") or "") and not headers.get("Range"):
        file.close()
        return Reply(304, common[2:])
    span = wanted_range(headers.get("Range"), headers.get("If-Range"), size, (etag, modified))
    if span == UNSATISFIABLE:
        file.close()
        reply = error_reply(416, f"range not satisfiable: the file has {size} bytes")
        reply.headers.append(("Content-Range", unsatisfied_range(size)))
        return reply
    if span is None:
        return Reply(200, common, file=file, offset=0, length=size)
    return Reply(
        206,
        [*common, ("Content-Range", content_range(span, size))],
        file=file,
        offset=span[0],
        length=span[1] - span[0] + 1,
    )


def _web_file(name: str) -> bytes:
    return (resources.files("taobao_video.web") / "static" / name).read_bytes()


# ------------------------------------------------------------------------------------------------ HTTP


class CatalogServer(ThreadingHTTPServer):
    """A threaded HTTP/1.1 server answering every request with one :class:`CatalogSite`."""

    daemon_threads = True  # a player holding a keep-alive connection never delays Ctrl-C
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], site: CatalogSite, *, access_log: Callable[[str], None] | None):
        self.site = site
        self.access_log = access_log
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{name}]" if ":" in name else name
        return f"http://{shown}:{port}/"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line instead of the default traceback (a client that hung up mid-request, usually)."""
        kind, exc = sys.exc_info()[:2]
        sys.stderr.write(
            f"taobao-video serve: request from {client_address[0]} failed: {kind and kind.__name__}: {exc}\n"
        )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a page of thumbnails makes dozens of small requests
    server_version = "taobao-video"
    sys_version = ""
    timeout = 60  # idle keep-alive connections are dropped after this
    # Headers and body leave in two writes; with Nagle on, the second waits for the client's delayed ACK (40 ms).
    disable_nagle_algorithm = True
    server: CatalogServer

    def do_GET(self) -> None:
        try:
            reply = self.server.site.handle(self.command, self.path, self.headers)
        except Exception as exc:  # a bug or a database error: one line on stderr, a JSON 500 for the client
            sys.stderr.write(f"taobao-video serve: {self.command} {self.path} failed: {type(exc).__name__}: {exc}\n")
            reply = error_reply(500, f"internal error: {type(exc).__name__}")
        try:
            self._write(reply)
        except (ConnectionError, TimeoutError):  # the player hung up, e.g. on a seek: nothing to report
            self.close_connection = True
        finally:
            reply.close()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed requests (bad request line, oversized headers) get the same JSON errors as the rest."""
        self.close_connection = True
        try:
            text = message or HTTPStatus(code).phrase
        except ValueError:
            text = message or "error"
        self._write(error_reply(code, text))

    def _write(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(reply.content_length()))
        self.end_headers()
        if self.command == "HEAD" or reply.status in (204, 304):
            return
        if reply.file is None:
            self.wfile.write(reply.body)
        elif reply.length != 0:  # an empty file has nothing to send (sendfile refuses a count of 0)
            self.wfile.flush()
            self.connection.sendfile(reply.file, reply.offset, reply.length)

    def version_string(self) -> str:
        return self.server_version

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if self.server.access_log is not None:
            self.server.access_log(f'{self.address_string()} "{self.requestline}" {code}')

    def log_message(self, format: str, *args: Any) -> None:
        pass  # errors reach stderr through do_GET and handle_error, requests through log_request


# ------------------------------------------------------------------------------------------------ set-up


def loopback_hosts(host: str) -> frozenset[str]:
    """The Host header names a browser may use for a server bound to the loopback address ``host``."""
    name = host.strip("[]").lower()
    return frozenset({*_LOOPBACK_NAMES, name, f"[{name}]"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(
    site: CatalogSite, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, access_log: Callable[[str], None] | None
) -> CatalogServer:
    """A server listening on ``host:port`` (port 0: any free one); UsageError when the address cannot be used."""
    try:
        return CatalogServer((host.strip("[]"), port), site, access_log=access_log)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} on {host} is in use: pick another with --port") from None
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve_until_stopped(server: CatalogServer) -> None:
    """Serve until Ctrl-C or SIGTERM, then close the listening socket (open streams end with the process)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop) if threading.current_thread() is threading.main_thread() else None
    try:
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        server.server_close()
