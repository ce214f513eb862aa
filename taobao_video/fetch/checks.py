"""Pure checks for downloads: the host allowlist, safe-to-log URLs, what a body or Content-Type looks like,
Content-Range parsing, and the one table from HTTP failures to DownloadError reasons. No I/O here."""

from __future__ import annotations

import http.client
import re
from collections.abc import Sequence
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3

from taobao_video.errors import DownloadError, UrlExpired

MP4_HEAD: Final = 8  # an MP4 starts with a box header: 4 bytes of size, then "ftyp"
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)", re.IGNORECASE)
_QUERY = re.compile(r"\?[^\s'\"()<>]*")


def host_allowed(host: str, patterns: Sequence[str]) -> bool:
    """Whether ``host`` matches one of ``patterns``: exact names or ``*.domain`` (any depth of subdomain, never
    the bare domain, never ``domain.evil.com``). Case-insensitive; a trailing dot is ignored."""
    host = _norm_host(host)
    if not host:
        return False
    for wanted in map(_norm_host, patterns):
        if wanted.startswith("*."):
            if host.endswith(wanted[1:]) and len(host) > len(wanted) - 1:
                return True
        elif wanted and wanted == host:
            return True
    return False


def _norm_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def public_url(url: str) -> str:
    """``url`` without query, fragment or user info: safe to log (signed URLs carry their key in the query)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return _QUERY.sub("", url.split("#", maxsplit=1)[0])


def scrub(text: str, url: str) -> str:
    """An exception text with every query string removed (requests echoes the full URL in its messages)."""
    query = urlsplit(url).query if "?" in url else ""
    if query:
        text = text.replace(query, "…")
    return _QUERY.sub("", text)


def is_signed(url: str) -> bool:
    return "auth_key=" in urlsplit(url).query


def media_type(content_type: str) -> str:
    return content_type.split(";", maxsplit=1)[0].strip().lower()


def wrong_type(content_type: str) -> str | None:
    """What a clearly non-video Content-Type announces ("an HTML page"), or None when it may be a video."""
    media = media_type(content_type)
    if media in ("text/html", "application/xhtml+xml"):
        return "an HTML page"
    if media == "application/json" or media.endswith("+json"):
        return "JSON"
    if media in ("application/xml", "text/xml") or media.endswith("+xml"):
        return "XML"
    if media == "application/javascript":
        return "JavaScript"
    if media.startswith("text/"):
        return "text"
    return None


_SIGNATURES: Final = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "gzip data"),
    (b"PK\x03\x04", "a ZIP archive"),
)


def describe_bytes(head: bytes) -> str:
    """What the first bytes of a body look like, for a message ("an HTML page", "JSON", …)."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not head:
        return "an empty body"
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in text[:512]:
        return "an HTML page"
    if text.startswith(b"<"):
        return "XML"
    if text.startswith((b"{", b"[")):
        return "JSON"
    for magic, name in _SIGNATURES:
        if head.startswith(magic):
            return name
    if len(head) < MP4_HEAD:
        return f"only {len(head)} bytes"
    return f"unknown data (first bytes {head[:8].hex()})"


def is_mp4(head: bytes) -> bool:
    return len(head) >= MP4_HEAD and head[4:8] == b"ftyp"


def parse_content_range(value: str) -> tuple[int | None, int | None, int | None] | None:
    """``bytes a-b/total`` → (a, b, total); ``bytes */total`` → (None, None, total); ``*`` totals are None."""
    match = _CONTENT_RANGE.fullmatch(value.strip())
    if match is None:
        return None
    first, last, total = (int(v) if v and v != "*" else None for v in match.groups())
    return first, last, total


def strong_etag(etag: str) -> str:
    """The ETag if it may go in If-Range (RFC 9110 §13.1.5 wants a strong validator), else ''."""
    return etag if etag.startswith('"') else ""


def status_error(status: int, url: str, reason: str = "", *, signed: bool | None = None) -> DownloadError:
    """The DownloadError for an HTTP status that is not a body we can use (the one mapping table).

    ``signed``: whether the URL asked for was signed (default: whether ``url`` is); a 403 then means expired.
    """
    public = public_url(url)
    said = f"HTTP {status}" + (f" {reason}" if reason else "")
    if status == 403 and (is_signed(url) if signed is None else signed):
        return UrlExpired(f"{public}: URL expired (HTTP 403); look the item up again", url=public)
    if status == 403:
        return DownloadError("forbidden", f"{public}: the CDN refused the download ({said})", url=public)
    if status in (404, 410):
        return DownloadError("gone", f"{public}: the video is gone ({said})", url=public)
    if status == 429 or status >= 500:
        return DownloadError("http_5xx", f"{public}: server error ({said})", retryable=True, url=public)
    if 400 <= status < 500:
        return DownloadError("http_4xx", f"{public}: the CDN refused the request ({said})", url=public)
    return DownloadError("bad_status", f"{public}: unexpected answer {said}", url=public)


def request_error(exc: Exception, url: str) -> DownloadError:
    """A failure to get a response at all (connect, send, headers)."""
    public = public_url(url)
    text = scrub(f"{type(exc).__name__}: {exc}", url)
    transient = isinstance(exc, (requests.ConnectionError, requests.Timeout, urllib3.exceptions.HTTPError, OSError))
    return DownloadError("network", f"{public}: {text}", retryable=transient, url=public)


def read_error(exc: BaseException, url: str, received: int, total: int | None) -> DownloadError:
    """A failure while reading the body: a stall, a short body, or a broken connection; all resumable."""
    public = public_url(url)
    where = f"after {received} of {total if total is not None else '?'} bytes"
    if isinstance(exc, (urllib3.exceptions.ReadTimeoutError, requests.Timeout, TimeoutError)):
        return DownloadError("stalled", f"{public}: no data for too long {where}", retryable=True, url=public)
    cause = exc.args[1] if isinstance(exc, urllib3.exceptions.ProtocolError) and len(exc.args) > 1 else exc
    if isinstance(cause, http.client.IncompleteRead):
        return DownloadError("truncated", f"{public}: body cut short {where}", retryable=True, url=public)
    text = scrub(f"{type(cause).__name__}: {cause}", url)
    return DownloadError("network", f"{public}: connection broken {where} ({text})", retryable=True, url=public)


def content_error(reason: str, message: str, url: str) -> DownloadError:
    public = public_url(url)
    return DownloadError(reason, f"{public}: {message}", url=public)
