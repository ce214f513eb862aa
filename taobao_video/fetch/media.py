"""What a video file is: whether bytes start like an MP4, what they look like when not, its duration (mutagen) and
its sha256. The downloader, the harvest's duration check and ``catalog verify`` all ask here.

mutagen is imported by the first :func:`mp4_duration` call, so the read-only commands that import this module
stay light.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from taobao_video.errors import DownloadError

MP4_HEAD: Final = 8  # an MP4 starts with a box header: 4 bytes of size, then "ftyp"
_CHUNK: Final = 1 << 20
_HEAD_KEPT: Final = 512  # enough for describe_bytes to tell a web page from JSON or an image

_SIGNATURES: Final = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "gzip data"),
    (b"PK\x03\x04", "a ZIP archive"),
)


def is_mp4(head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes) starts with an ``ftyp`` box."""
    return len(head) >= MP4_HEAD and head[4:8] == b"ftyp"


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


def mp4_duration(path: Path) -> float:
    """The movie's length in seconds, read from the file itself; DownloadError ``unreadable_mp4`` when mutagen
    cannot read a movie header there (a damaged or foreign file), ``OSError`` aside."""
    import mutagen.mp4

    try:
        info = mutagen.mp4.MP4(path).info
        if info is None:
            raise ValueError("no movie header")
        return float(info.length)
    except (mutagen.MutagenError, OSError, ValueError) as exc:
        raise DownloadError("unreadable_mp4", f"the file does not parse as MP4 ({exc})") from None


@dataclass(frozen=True)
class FileDigest:
    """One read of a file: its sha256, its first bytes and how many bytes were read."""

    sha256: str
    head: bytes
    size: int


def hash_file(path: Path) -> FileDigest:
    """Read ``path`` once: the sha256 and the first bytes (for :func:`is_mp4` / :func:`describe_bytes`). OSError
    when it cannot be read."""
    with path.open("rb") as handle:
        return hash_stream(handle)


def hash_stream(handle: BinaryIO) -> FileDigest:
    """:func:`hash_file` of an open binary stream (a file, an object's body), read to its end."""
    digest = hashlib.sha256()
    head = b""
    size = 0
    while chunk := handle.read(_CHUNK):
        if len(head) < _HEAD_KEPT:
            head += chunk[: _HEAD_KEPT - len(head)]
        digest.update(chunk)
        size += len(chunk)
    return FileDigest(digest.hexdigest(), head, size)


__all__ = ["MP4_HEAD", "FileDigest", "describe_bytes", "hash_file", "hash_stream", "is_mp4", "mp4_duration"]
