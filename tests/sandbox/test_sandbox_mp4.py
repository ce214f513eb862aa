"""The sandbox CDN's MP4s: exact size, deterministic bytes, cheap ranged reads, and real players accept them."""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import threading
import time
import tracemalloc
from pathlib import Path

import mutagen.mp4
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taobao_video.sandbox.mp4 import BLOCK_SIZE, MAX_SIZE, Mp4Video

GIB = 1 << 30
MIB = 1 << 20
# The emulator's sizes, plus 540x960 whose width needs SPS frame cropping (not a multiple of 16).
SHAPES = [(12.5, 720, 720), (30.0, 1280, 720), (7.25, 540, 960), (3.0, 480, 480)]
needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffprobe") is None or shutil.which("ffmpeg") is None, reason="ffmpeg/ffprobe not installed"
)


def _whole(video: Mp4Video) -> bytes:
    return b"".join(video.iter_chunks())


def _top_level_boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of each top-level box, walking the 32-bit size fields."""
    boxes, offset = [], 0
    while offset < len(data):
        size, kind = struct.unpack_from(">I4s", data, offset)
        assert size >= 8, f"bad box size {size} at {offset}"
        boxes.append((kind, offset, size))
        offset += size
    assert offset == len(data), "boxes do not end exactly at the end of the file"
    return boxes


def _write(video: Mp4Video, directory: Path, name: str = "video.mp4") -> Path:
    path = directory / name
    with path.open("wb") as out:
        for chunk in video.iter_chunks():
            out.write(chunk)
    return path


@pytest.mark.parametrize(("duration", "width", "height"), SHAPES)
def test_size_is_exact_and_boxes_are_faststart(duration: float, width: int, height: int) -> None:
    video = Mp4Video(duration, width, height, 1_234_567, seed=3)
    data = _whole(video)
    assert video.size == len(data) == 1_234_567
    assert data[4:8] == b"ftyp" and data[8:12] == b"isom"
    assert [kind for kind, _, _ in _top_level_boxes(data)] == [b"ftyp", b"moov", b"mdat", b"free"]


def test_ftyp_lists_the_compatible_brands() -> None:
    data = Mp4Video(1.0, 64, 64, 10_000, seed=1).read(0, 32)
    size = struct.unpack(">I", data[:4])[0]
    assert [data[i : i + 4] for i in range(16, size, 4)] == [b"isom", b"iso2", b"avc1", b"mp41"]


def test_known_answer_pins_the_bytes_across_versions() -> None:
    # Changing this digest changes every file the emulator serves: only do it on purpose.
    video = Mp4Video(2.5, 64, 48, 100_000, seed=42)
    assert video.sha256() == "7bb8873dc10c438fd7f10848797646cee8466ca5d6be9acd000eeef67c83b30a"


def test_same_arguments_same_bytes_and_other_seed_other_bytes() -> None:
    a, b = Mp4Video(12.5, 720, 720, 300_000, 12345), Mp4Video(12.5, 720, 720, 300_000, 12345)
    assert a.sha256() == b.sha256()
    assert a.sha256() == a.sha256()  # cached answer is the same answer
    assert Mp4Video(12.5, 720, 720, 300_000, 12346).sha256() != a.sha256()


def test_seed_changes_the_picture_even_without_padding() -> None:
    size = Mp4Video.min_size(5.0, 480, 480)
    assert _whole(Mp4Video(5.0, 480, 480, size, 1)) != _whole(Mp4Video(5.0, 480, 480, size, 2))


@pytest.mark.parametrize("seed", [0, 1, -7, 2**70, 12345])
def test_min_size_is_accepted_for_every_seed(seed: int) -> None:
    minimum = Mp4Video.min_size(12.5, 720, 720)
    video = Mp4Video(12.5, 720, 720, minimum, seed)
    assert video.size == minimum == video.head_size
    assert _top_level_boxes(_whole(video))[-1] == (b"free", minimum - 8, 8)


def test_below_min_size_is_refused_with_the_minimum_in_the_message() -> None:
    minimum = Mp4Video.min_size(12.5, 720, 720)
    with pytest.raises(ValueError, match=f"below the {minimum} bytes"):
        Mp4Video(12.5, 720, 720, minimum - 1, seed=1)


@pytest.mark.parametrize(
    ("duration", "width", "height", "size"),
    [
        (12.5, 720, 720, MAX_SIZE + 1),  # boxes have 32-bit sizes
        (0.0, 720, 720, 1_000_000),
        (-1.0, 720, 720, 1_000_000),
        (float("nan"), 720, 720, 1_000_000),
        (12.5, 721, 720, 1_000_000),  # 4:2:0 needs even sides
        (12.5, 720, 0, 1_000_000),
        (12.5, 8192, 8192, 10_000_000),  # larger than any H.264 level
    ],
)
def test_impossible_parameters_raise_value_error(duration: float, width: int, height: int, size: int) -> None:
    with pytest.raises(ValueError):
        Mp4Video(duration, width, height, size, seed=1)


def test_largest_size_is_accepted_and_its_end_readable() -> None:
    video = Mp4Video(12.5, 720, 720, MAX_SIZE, seed=1)
    assert len(video.read(MAX_SIZE - 10, 100)) == 10


def test_duration_is_stored_to_the_millisecond() -> None:
    assert Mp4Video(12.3456, 64, 64, 10_000, 1).duration_s == 12.346
    assert Mp4Video(12.5, 64, 64, 10_000, 1).duration_s == 12.5


SMALL = Mp4Video(4.5, 64, 64, 200_000, seed=9)  # head, three whole padding blocks and a partial one
SMALL_BYTES = b"".join(SMALL.iter_chunks(chunk_size=7_777))


@settings(max_examples=200, deadline=None)
@given(offset=st.integers(0, 200_100), length=st.integers(0, 200_100))
def test_read_matches_the_streamed_file(offset: int, length: int) -> None:
    assert SMALL.read(offset, length) == SMALL_BYTES[offset : offset + length]


@settings(max_examples=100, deadline=None)
@given(start=st.integers(0, 200_100), span=st.integers(0, 200_100), chunk=st.integers(1, 3 * BLOCK_SIZE))
def test_iter_chunks_streams_exactly_the_range(start: int, span: int, chunk: int) -> None:
    chunks = list(SMALL.iter_chunks(start, start + span, chunk_size=chunk))
    assert b"".join(chunks) == SMALL_BYTES[start : start + span]
    assert all(len(c) == chunk for c in chunks[:-1])


def test_negative_ranges_are_refused() -> None:
    with pytest.raises(ValueError):
        SMALL.read(-1, 10)
    with pytest.raises(ValueError):
        SMALL.iter_chunks(0, 100, chunk_size=0)


def test_concurrent_reads_agree() -> None:
    video = Mp4Video(12.5, 720, 720, 3 * MIB, seed=5)
    expected = _whole(video)
    failures: list[int] = []

    def reader(step: int) -> None:
        for offset in range(0, video.size, step):
            if video.read(offset, 5_000) != expected[offset : offset + 5_000]:
                failures.append(offset)

    threads = [threading.Thread(target=reader, args=(step,)) for step in (9_973, 65_537, 131_071, 4_099)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


@pytest.mark.parametrize(("duration", "width", "height"), [*SHAPES, (3600.0, 720, 720)])
def test_mutagen_reads_the_duration(duration: float, width: int, height: int) -> None:
    video = Mp4Video(duration, width, height, 500_000, seed=11)
    info = mutagen.mp4.MP4(io.BytesIO(_whole(video))).info
    assert info is not None
    assert abs(info.length - duration) < 0.05  # mutagen exposes no width/height for video tracks


def test_one_gib_reads_near_the_end_are_cheap() -> None:
    video = Mp4Video(600.0, 1280, 720, GIB, seed=7)
    started = time.perf_counter()
    tail = video.read(GIB - 1_000, 5_000)
    assert time.perf_counter() - started < 0.05
    assert len(tail) == 1_000
    assert video.read(GIB - 1_000, 1_000) == tail
    assert video.read(GIB, 10) == b""


def test_one_gib_streaming_keeps_memory_flat() -> None:
    video = Mp4Video(600.0, 1280, 720, GIB, seed=7)
    tracemalloc.start()
    try:
        streamed = sum(len(chunk) for chunk in video.iter_chunks(512 * MIB, 576 * MIB))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert streamed == 64 * MIB
    assert peak < 4 * MIB


@needs_ffmpeg
@pytest.mark.parametrize(("duration", "width", "height"), SHAPES)
def test_ffprobe_sees_h264_of_the_right_duration_and_size(
    tmp_path: Path, duration: float, width: int, height: int
) -> None:
    path = _write(Mp4Video(duration, width, height, 2 * MIB, seed=1), tmp_path)
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "format=duration,size:stream=codec_name,width,height",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stderr == ""
    report = json.loads(probe.stdout)
    assert abs(float(report["format"]["duration"]) - duration) < 0.01
    assert int(report["format"]["size"]) == 2 * MIB
    assert report["streams"] == [{"codec_name": "h264", "width": width, "height": height}]


@needs_ffmpeg
@pytest.mark.parametrize(("duration", "width", "height"), SHAPES)
def test_ffmpeg_decodes_every_frame_without_error(tmp_path: Path, duration: float, width: int, height: int) -> None:
    path = _write(Mp4Video(duration, width, height, Mp4Video.min_size(duration, width, height) + 3, 2), tmp_path)
    decode = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (decode.returncode, decode.stderr) == (0, "")


@needs_ffmpeg
def test_every_decoded_frame_is_one_flat_colour(tmp_path: Path) -> None:
    width, height = 540, 960
    path = _write(Mp4Video(3.5, width, height, 100_000, seed=4), tmp_path)
    raw = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"],
        capture_output=True,
        check=True,
    ).stdout
    frame = width * height * 3 // 2
    assert len(raw) == 4 * frame  # frames at 0, 1, 2 and 3 s (the last one lasts 0.5 s)
    luma = width * height
    for start in range(0, len(raw), frame):
        planes = (
            raw[start : start + luma],
            raw[start + luma : start + luma * 5 // 4],
            raw[start + luma * 5 // 4 : start + frame],
        )
        assert all(len(set(plane)) == 1 for plane in planes)
