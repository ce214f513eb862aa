"""The emulator's HTTP server and the ``Sandbox`` that owns the platform state and its lifecycle.

One ``ThreadingHTTPServer`` on 127.0.0.1 serves every route: ``/router/rest`` (gateway.py), ``/authorize``
and ``/token`` (oauth.py), ``/cdn/`` (cdn.py) and ``/_sandbox/`` (admin.py). HTTP/1.1 with exact
Content-Length on every answer, so clients keep connections alive and pool them. ``stop()`` closes every open
connection and joins every thread it started, so tests can start and stop sandboxes by the hundred.
"""

from __future__ import annotations

import io
import socket
import struct
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from taobao_video.sandbox.admin import handle_admin
from taobao_video.sandbox.cdn import Cdn
from taobao_video.sandbox.config import SandboxConfig
from taobao_video.sandbox.faults import Fault, FaultPlan
from taobao_video.sandbox.gateway import Gateway
from taobao_video.sandbox.itemdata import PATH as ITEMDATA_PATH
from taobao_video.sandbox.itemdata import ItemDataGateway
from taobao_video.sandbox.mp4 import Mp4Video
from taobao_video.sandbox.oauth import OAuth
from taobao_video.sandbox.products import Catalogue
from taobao_video.sandbox.quota import QuotaBook
from taobao_video.sandbox.response import Cut, Headers, Response, text_response
from taobao_video.sandbox.stats import Stats
from taobao_video.sandbox.tokens import TokenStore
from taobao_video.sandbox.urls import Urls

HOST = "127.0.0.1"
MAX_BODY = 16 * 1024 * 1024
_INDEX = """taobao-video sandbox: a local Taobao Open Platform emulator
  gateway   {url}/router/rest
  itemdata  {url}/taobao/item_get/  (a third-party item-data gateway)
  oauth     {url}/authorize  {url}/token
  cdn       {url}/cdn/...
  admin     {url}/_sandbox/stats  (see taobao_video/sandbox/admin.py)
"""


class Sandbox:
    """A running (or startable) emulator; see the package docstring for the whole API."""

    def __init__(self, config: SandboxConfig | None = None, port: int = 0) -> None:
        self.config = config or SandboxConfig()
        self._wanted_port = port
        self._offset = timedelta(0)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        cfg = self.config
        self.catalogue = Catalogue(
            cfg.seed, cfg.video_bytes, cfg.video_size_override, cfg.shared_videos, cfg.video_changes, cfg.clock,
            cfg.video_losses, cfg.video_gains,
        )  # fmt: skip
        self.urls = Urls(self.catalogue, cfg.signed_url_ttl_s)
        self.quota = QuotaBook()
        self.faults = FaultPlan(cfg.seed, cfg.faults)
        self.tokens = TokenStore()
        self._stats = Stats()
        self.gateway = Gateway(
            cfg,
            catalogue=self.catalogue,
            urls=self.urls,
            quota=self.quota,
            faults=self.faults,
            tokens=self.tokens,
            stats=self._stats,
            now=self.now,
        )
        self.oauth = OAuth(cfg, self.tokens, self._stats, self.now)
        self.cdn = Cdn(self.catalogue, self.urls, self.faults, self._stats, self.now)
        self.itemdata = ItemDataGateway(cfg, catalogue=self.catalogue, urls=self.urls, now=self.now)

    # lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> Sandbox:
        if self._server is not None:
            raise RuntimeError("the sandbox is already running")
        self._stopping.clear()
        server = _Server((HOST, self._wanted_port), _Handler, self)
        self._server = server
        self.urls.base = f"http://{HOST}:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sandbox:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections, wake stalled answers and join every thread."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join()
        server.join_handlers(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def gateway_url(self) -> str:
        return self.url + "/router/rest"

    @property
    def oauth_url(self) -> str:
        return self.url

    # platform state ----------------------------------------------------------------------------------------
    def now(self) -> datetime:
        """The sandbox clock: the configured clock plus the admin offset."""
        return self.config.clock() + self._offset

    def set_clock_offset(self, seconds: float) -> None:
        self._offset = timedelta(seconds=seconds)

    def stats(self) -> dict[str, Any]:
        return {**self._stats.snapshot(self.quota.snapshot()), "itemdata": self.itemdata.stats.snapshot()}

    def reset_stats(self) -> None:
        self._stats.reset()
        self.itemdata.stats.reset()

    @property
    def itemdata_url(self) -> str:
        """The item-data gateway's item endpoint (itemdata.py)."""
        return self.url + ITEMDATA_PATH

    def video(self, num_iid: int) -> Mp4Video:
        return self.catalogue.video(num_iid)

    def issue_token(
        self, app_key: str = "test", user_nick: str | None = None, access_token: str | None = None
    ) -> dict[str, Any]:
        """A token body as ``/token`` answers it; ``access_token`` fixes the value (e.g. ``"test"``)."""
        return self.oauth.issue(app_key, user_nick or self.config.user_nick, access_token)

    def set_faults(self, faults: Iterable[Fault]) -> None:
        self.faults.replace(faults)

    def clear_faults(self) -> None:
        self.faults.clear()

    def set_quota_used(self, app_key: str, used: int) -> None:
        self.quota.set_used(app_key, used, self.now())

    def quota_used(self, app_key: str) -> int:
        return self.quota.used(app_key, self.now())

    def describe_item(self, num_iid: int) -> dict[str, Any]:
        """An item's facts; for a video item also its URLs and the sha256 of its video."""
        item = self.catalogue.item(num_iid)
        facts = item.to_dict()
        if item.has_video:
            facts["video_url"] = self.urls.video_url(item, self.now())
            facts["cover_url"] = self.urls.cover_url(item)
            facts["sha256"] = self.video(num_iid).sha256()
        return facts

    # routing ----------------------------------------------------------------------------------------------
    def route(self, verb: str, path: str, query: str, headers: Headers, body: bytes) -> Response:
        if path == "/router/rest":
            return self.gateway.handle(verb, query, body)
        if path == ITEMDATA_PATH:
            return self.itemdata.handle(verb, query)
        if path.startswith("/cdn/"):
            return self.cdn.handle(verb, path, query, headers)
        if path == "/authorize":
            return self.oauth.authorize(query)
        if path == "/token":
            return self.oauth.token(verb, query, body)
        if path.startswith("/_sandbox/"):
            return handle_admin(self, verb, path, query, body)
        if path == "/" and verb in ("GET", "HEAD"):
            return text_response(200, _INDEX.format(url=self.url))
        return text_response(404, "not found\n")

    @property
    def stopping(self) -> threading.Event:
        return self._stopping


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._handlers: set[threading.Thread] = set()
        super().__init__(address, handler)

    def register(self, connection: socket.socket) -> bool:
        """Track a connection and its thread; False when the server is already stopping."""
        with self._lock:
            if self.sandbox.stopping.is_set():
                return False
            self._connections.add(connection)
            self._handlers.add(threading.current_thread())
            return True

    def unregister(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)
            self._handlers.discard(threading.current_thread())

    def close_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by its handler

    def join_handlers(self, timeout: float) -> None:
        with self._lock:
            handlers = list(self._handlers)
        for thread in handlers:
            thread.join(timeout)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "TaobaoSandbox/1.0"
    sys_version = ""
    wbufsize = 64 * 1024  # headers and a small body leave in one segment
    disable_nagle_algorithm = True
    timeout = 60  # an idle keep-alive connection is dropped after this
    server: _Server

    def setup(self) -> None:
        super().setup()
        if not self.server.register(self.connection):
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away (a killed harvest, a cut download): not news

    def finish(self) -> None:
        try:
            super().finish()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the same client, gone before the last bytes could be flushed to it
        finally:
            self.server.unregister(self.connection)

    def version_string(self) -> str:
        return self.server_version

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header follows the sandbox clock, so clients that read server time see the fake one."""
        moment = self.server.sandbox.now() if timestamp is None else datetime.fromtimestamp(timestamp, UTC)
        return format_datetime(moment.astimezone(UTC), usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests and benchmarks make thousands of requests

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:
            self.close_connection = True
            self._write(text_response(413, "request body too large\n"))
            return
        parts = urlsplit(self.path)
        response = self.server.sandbox.route(self.command, parts.path, parts.query, self.headers, body)
        self._write(response)

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes | None:
        parts: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024).strip():
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                return None
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(response.content_length()))
        self.end_headers()
        if self.command == "HEAD":
            return
        try:
            self._write_body(response)
        except OSError:  # the client hung up (broken pipe, reset) or the sandbox is stopping
            self.close_connection = True

    def _write_body(self, response: Response) -> None:
        chunks = [response.body] if isinstance(response.body, bytes) else response.body
        cut, sent = response.cut, 0
        for chunk in chunks:
            if cut is not None and sent + len(chunk) >= cut.after:
                head = chunk[: cut.after - sent]
                self._send(head, response)
                sent += len(head)
                self.wfile.flush()
                if not self._break_off(cut):
                    return
                cut, rest = None, chunk[len(head) :]
            else:
                rest = chunk
            self._send(rest, response)
            sent += len(rest)

    def _send(self, data: bytes, response: Response) -> None:
        # counted before the write: once the client holds the last byte, the stats already show it
        if response.on_sent is not None:
            response.on_sent(len(data))
        self.wfile.write(data)

    def _break_off(self, cut: Cut) -> bool:
        """Act on a fault's cut; True when the body should carry on (a stall that ended)."""
        if cut.action == "stall" and not self.server.sandbox.stopping.wait(cut.seconds):
            return True
        self.close_connection = True
        if cut.action == "reset":
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN
            # (the socket only really closes once both file objects are closed; dummies take their place)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.wfile.close()
            self.rfile, self.wfile = io.BytesIO(), io.BytesIO()
            self.connection.close()
        return False
