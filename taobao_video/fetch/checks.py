"""Pure checks for downloads: the host allowlist, safe-to-log URLs, what a Content-Type announces, Content-Range
parsing, and the one table from HTTP statuses to DownloadError reasons. No I/O here; what bytes are is
``media.py``'s business."""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from taobao_video.errors import DownloadError, UrlExpired

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


def content_error(reason: str, message: str, url: str) -> DownloadError:
    public = public_url(url)
    return DownloadError(reason, f"{public}: {message}", url=public)


__all__ = [
    "content_error",
    "host_allowed",
    "is_signed",
    "media_type",
    "parse_content_range",
    "public_url",
    "scrub",
    "status_error",
    "strong_etag",
    "wrong_type",
]
