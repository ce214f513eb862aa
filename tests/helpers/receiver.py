"""Loopback targets for Apprise's ``json://`` notifications: a receiver that keeps every POSTed body, and one that
accepts connections and never answers (a notifier that hangs)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """What the receiver got: one JSON body per POST, and the path it was posted to."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.posts: list[tuple[str, dict[str, Any]]] = []

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"


@contextmanager
def json_receiver() -> Iterator[Receiver]:
    posts: list[tuple[str, dict[str, Any]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            posts.append((self.path, json.loads(self.rfile.read(length) or b"{}")))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver = Receiver(server.server_address[1])
    receiver.posts = posts
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def silent_receiver() -> Iterator[Receiver]:
    """A port whose connections are taken by the kernel's backlog and never answered."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield Receiver(listener.getsockname()[1])
