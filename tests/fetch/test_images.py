"""Image sniffing: JPEG/PNG/WebP by magic bytes and their pixel size; the sandbox's covers decode for real."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taobao_video.fetch.images import ImageError, ImageInfo, image_info, image_kind
from taobao_video.sandbox.images import flat_jpeg


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def webp_lossless_header(width: int, height: int) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    body = b"VP8L" + struct.pack("<I", 5) + b"\x2f" + bits.to_bytes(4, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def webp_extended_header(width: int, height: int) -> bytes:
    body = b"VP8X" + struct.pack("<I", 10) + b"\x00" * 4 + (width - 1).to_bytes(3, "little")
    body += (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


@given(st.integers(1, 2000), st.integers(1, 2000), st.integers(0, 255))
def test_jpeg_size_is_read(width, height, level):
    assert image_info(flat_jpeg(width, height, level, "t")) == ImageInfo("jpeg", width, height)


@given(st.integers(1, 300), st.integers(1, 300))
def test_png_size_is_read(width, height):
    assert image_info(png(width, height)) == ImageInfo("png", width, height)


@given(st.integers(1, 16384), st.integers(1, 16384))
def test_webp_sizes_are_read(width, height):
    assert image_info(webp_lossless_header(width, height)) == ImageInfo("webp", width, height)
    assert image_info(webp_extended_header(width, height)) == ImageInfo("webp", width, height)


@given(st.binary(max_size=300))
def test_any_bytes_give_an_image_or_an_image_error(data):
    try:
        info = image_info(data)
    except ImageError:
        return
    assert info.kind == image_kind(data) and info.width > 0 and info.height > 0


@given(st.integers(1, 400), st.integers(1, 400), st.integers(0, 2000))
def test_a_cut_jpeg_header_is_an_error_or_the_right_size(width, height, cut):
    data = flat_jpeg(width, height, 7, "a comment")[:cut]
    try:
        assert image_info(data) == ImageInfo("jpeg", width, height)
    except ImageError:
        pass


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"<!doctype html><html>", "not a JPEG, PNG or WebP"),
        (b"GIF89a\x01\x00\x01\x00", "not a JPEG, PNG or WebP"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDX", "without its IHDR"),
        (b"\xff\xd8\xff\xd9", "without a frame header"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "cut short"),
    ],
)
def test_what_is_not_a_cover_says_why(body, what):
    with pytest.raises(ImageError, match=what):
        image_info(body)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (apt-get install ffmpeg)")
@pytest.mark.parametrize(("width", "height", "level"), [(1280, 720, 200), (544, 960, 0), (480, 480, 128), (17, 9, 255)])
def test_the_sandbox_covers_decode_to_their_grey(tmp_path, width, height, level):
    path = tmp_path / "cover.jpg"
    path.write_bytes(flat_jpeg(width, height, level, "sandbox"))
    pixels = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        capture_output=True,
        check=True,
    ).stdout
    assert len(pixels) == width * height and set(pixels) == {level}
