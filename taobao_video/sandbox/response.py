"""What a route hands the server to write: status, headers, body and, for faults, how to break off."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

JSON_TYPE = "application/json;charset=UTF-8"
HTML_TYPE = "text/html;charset=UTF-8"
TEXT_TYPE = "text/plain;charset=UTF-8"


class Headers(Protocol):
    """Request headers, looked up case-insensitively (``http.client.HTTPMessage`` is one)."""

    def get(self, name: str, /) -> str | None: ...


@dataclass(frozen=True)
class Cut:
    """Break the body off after ``after`` bytes: ``reset`` (TCP RST), ``close`` (FIN) or ``stall`` (pause
    ``seconds``, then carry on)."""

    after: int
    action: str
    seconds: float = 0.0


@dataclass
class Response:
    """A reply. ``body`` is bytes or an iterable of chunks; ``length`` (the Content-Length) defaults to
    ``len(body)`` for bytes and must be given for iterables. ``on_sent`` is told the size of each piece
    of body just before it is written (so the count is complete before the client sees the last byte)."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | Iterable[bytes] = b""
    length: int | None = None
    cut: Cut | None = None
    on_sent: Callable[[int], None] | None = None

    def content_length(self) -> int:
        if self.length is not None:
            return self.length
        if isinstance(self.body, bytes):
            return len(self.body)
        raise ValueError("a streamed body needs an explicit length")


def json_response(payload: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(status, [("Content-Type", JSON_TYPE), *(headers or [])], body)


def html_response(status: int, title: str, text: str) -> Response:
    title, text = html.escape(title), html.escape(text)
    page = (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title></head>'
        f"<body><h1>{title}</h1><p>{text}</p><hr><p>taobao-video sandbox</p></body></html>"
    )
    return Response(status, [("Content-Type", HTML_TYPE)], page.encode("utf-8"))


def text_response(status: int, text: str) -> Response:
    return Response(status, [("Content-Type", TEXT_TYPE)], text.encode("utf-8"))
