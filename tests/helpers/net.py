"""Misbehaving loopback servers for the network-edge tests: each fails in one way a real network does."""

from __future__ import annotations

import socket
import ssl
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

Handler = Callable[[socket.socket], None]


@contextmanager
def serving(handler: Handler) -> Iterator[int]:
    """A loopback TCP server running ``handler`` on each connection (its own thread); yields the port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=_run, args=(handler, connection), daemon=True)
            threads.append(thread)
            thread.start()

    acceptor = threading.Thread(target=serve, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        try:
            listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        listener.close()
        acceptor.join(5)
        for thread in threads:
            thread.join(5)


def _run(handler: Handler, connection: socket.socket) -> None:
    try:
        handler(connection)
    except OSError:
        pass
    finally:
        connection.close()


def read_request(connection: socket.socket) -> bytes:
    """Read one request's head and body (by Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return data


def reset_after_reading(connection: socket.socket) -> None:
    """Read the whole request, then send RST: the request arrived, no answer left."""
    read_request(connection)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def never_answer(seconds: float) -> Handler:
    def handler(connection: socket.socket) -> None:
        read_request(connection)
        connection.settimeout(seconds)
        try:
            connection.recv(1)
        except OSError:
            pass

    return handler


def redirect_forever(connection: socket.socket) -> None:
    while read_request(connection):
        connection.sendall(b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n")


def cut_body(connection: socket.socket) -> None:
    """Promise 1000 bytes, send 10, hang up."""
    read_request(connection)
    connection.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"a": 1, ')


def answer_http_500(connection: socket.socket) -> None:
    while read_request(connection):
        connection.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n")


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for localhost (openssl), as (cert, key)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def tls_server(cert: Path, key: Path, seen: list[bytes]) -> Handler:
    """Completes a handshake only for clients that trust ``cert``; records any request bytes that arrive."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def handler(connection: socket.socket) -> None:
        connection.settimeout(5)
        try:
            secured = context.wrap_socket(connection, server_side=True)
        except (ssl.SSLError, OSError):
            return
        with secured:
            seen.append(read_request(secured))  # type: ignore[arg-type]

    return handler


@contextmanager
def full_backlog() -> Iterator[int]:
    """A port whose listen queue is full, so a new connect hangs until the client's connect timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
