"""What an image file is: JPEG, PNG or WebP by its magic bytes, and its pixel size from its header. Pure.

Covers are verified with this before they are renamed into place: a CDN's HTML error page, a GIF or a truncated
header is not a cover. Only the header is read (for a JPEG: segments up to the first frame header), so a caller
hands :func:`image_info` the first :data:`IMAGE_HEAD` bytes, or the whole body when it is shorter.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

IMAGE_HEAD: Final = 64 * 1024  # a JPEG's frame header comes after its EXIF and ICC segments: usually well within
_JPEG_SOF: Final = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_NO_LENGTH: Final = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RSTn stand alone


class ImageError(ValueError):
    """The bytes are not a JPEG, PNG or WebP image whose size can be read (``str`` says what they look like)."""


@dataclass(frozen=True)
class ImageInfo:
    kind: str  # "jpeg", "png" or "webp": also the file's extension
    width: int
    height: int


def image_kind(head: bytes) -> str | None:
    """ "jpeg", "png" or "webp" from the first bytes, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def image_info(head: bytes) -> ImageInfo:
    """The kind and pixel size of the image starting with ``head``; ImageError when it is none we take."""
    kind = image_kind(head)
    if kind is None:
        raise ImageError("not a JPEG, PNG or WebP image")
    width, height = {"jpeg": _jpeg_size, "png": _png_size, "webp": _webp_size}[kind](head)
    if width <= 0 or height <= 0:
        raise ImageError(f"the {kind.upper()} header says {width}x{height} pixels")
    return ImageInfo(kind, width, height)


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ImageError("a PNG without its IHDR header")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        if data[23:26] != b"\x9d\x01\x2a":
            raise ImageError("a WebP (VP8) without its frame start code")
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        if data[20] != 0x2F:
            raise ImageError("a WebP (VP8L) without its signature byte")
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    raise ImageError("a WebP whose header is cut short or unknown")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            raise ImageError(f"a JPEG whose segments break off at byte {at}")
        marker = data[at + 1]
        if marker == 0xFF:  # fill bytes before a marker
            at += 1
            continue
        if marker in _JPEG_NO_LENGTH:
            at += 2
            continue
        if marker in (0xD9, 0xDA):
            break  # end of image or start of scan before any frame header
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if length < 2:
            raise ImageError(f"a JPEG segment of length {length}")
        if marker in _JPEG_SOF:
            if at + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        at += 2 + length
    raise ImageError("a JPEG without a frame header in its first bytes")


__all__ = ["IMAGE_HEAD", "ImageError", "ImageInfo", "image_info", "image_kind"]
