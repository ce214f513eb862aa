"""The media probe (PyAV) against ffprobe on the sandbox's files, a damaged file, and how much of a file it reads."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from taobao_video.fetch.probe import _HEADERS_ONLY, ProbeError, probe, probe_stream
from taobao_video.sandbox.products import PICTURE_SIZES, Catalogue

CATALOGUE = Catalogue(11, (40_000, 400_000))
# Every picture size the sandbox makes, each at several durations and byte sizes.
SAMPLE = CATALOGUE.sample("video", 24)


def _write(num_iid: int, folder: Path) -> Path:
    path = folder / f"{num_iid}.mp4"
    with path.open("wb") as handle:
        for chunk in CATALOGUE.video(num_iid).iter_chunks():
            handle.write(chunk)
    return path


def _ffprobe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return json.loads(out)


def test_the_sample_covers_every_picture_size():
    assert {(CATALOGUE.item(i).width, CATALOGUE.item(i).height) for i in SAMPLE} == set(PICTURE_SIZES)


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe is not installed (apt-get install ffmpeg)")
@pytest.mark.parametrize("num_iid", SAMPLE)
def test_probe_agrees_with_ffprobe(num_iid, tmp_path):
    path = _write(num_iid, tmp_path)
    info = probe(path)
    expected = _ffprobe(path)
    video = next(s for s in expected["streams"] if s["codec_type"] == "video")
    assert info.container == expected["format"]["format_name"]
    assert info.bitrate == int(expected["format"]["bit_rate"])
    assert info.codec == video["codec_name"] == "h264"
    assert info.fps == round(float(Fraction(video["avg_frame_rate"])), 3)
    assert info.has_audio is any(s["codec_type"] == "audio" for s in expected["streams"])
    assert (info.width, info.height) == (video["width"], video["height"])
    item = CATALOGUE.item(num_iid)
    assert (info.width, info.height) == (item.width, item.height)


class _CountingReader(io.RawIOBase):
    """A file that counts the bytes read from it."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self.bytes_read += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()
        super().close()


def test_a_big_file_is_not_read_whole(tmp_path):
    """A 64 MiB sandbox video: the probe reads its headers and seeks past the media data."""
    big = Catalogue(11, (64 * 2**20, 64 * 2**20))
    num_iid = big.sample("video", 1)[0]
    path = tmp_path / "big.mp4"
    with path.open("wb") as handle:
        for chunk in big.video(num_iid).iter_chunks():
            handle.write(chunk)
    assert path.stat().st_size == 64 * 2**20
    reader = _CountingReader(path)
    with reader:
        info = probe_stream(reader)  # type: ignore[arg-type]
    assert info.codec == "h264"
    assert reader.bytes_read < 2 * 2**20, reader.bytes_read


def test_a_file_that_is_not_media_is_a_probe_error(tmp_path):
    path = tmp_path / "page.mp4"
    path.write_bytes(b"<!doctype html><html><body>not a video</body></html>" * 20)
    with pytest.raises(ProbeError, match="cannot read it as media"):
        probe(path)


def test_a_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        probe(tmp_path / "gone.mp4")


# Real encoder output (ffmpeg's test source, encoded for real): the probe skips decoding frames, and must still read
# what a full analysis reads. The sandbox's MP4s have no real frames, so they cannot show a difference.
ENCODED = {
    "h264-aac-720p30": ["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30", "-f", "lavfi", "-i", "sine",
                        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"],
    "h264-portrait-29.97-faststart": ["-f", "lavfi", "-i", "testsrc2=size=360x640:rate=30000/1001", "-c:v",
                                      "libx264", "-movflags", "+faststart"],
    "h264-bframes-fragmented": ["-f", "lavfi", "-i", "testsrc2=size=426x240:rate=24", "-f", "lavfi", "-i", "sine",
                                "-c:v", "libx264", "-bf", "3", "-c:a", "aac", "-movflags", "+frag_keyframe+empty_moov"],
    "hevc-aac-25": ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-f", "lavfi", "-i", "sine",
                    "-c:v", "libx265", "-tag:v", "hvc1", "-x265-params", "log-level=error", "-c:a", "aac"],
    "mpeg4-60": ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=60", "-c:v", "mpeg4"],
}  # fmt: skip


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (apt-get install ffmpeg)")
@pytest.mark.parametrize("name", sorted(ENCODED))
def test_headers_only_reads_what_a_full_analysis_reads(name, tmp_path):
    import av

    path = tmp_path / f"{name}.mp4"
    command = ["ffmpeg", "-v", "error", "-y", *ENCODED[name], "-t", "2", str(path)]
    encoded = subprocess.run(command, capture_output=True, text=True)
    if encoded.returncode != 0 and "Unknown encoder" in encoded.stderr:
        pytest.skip(f"this ffmpeg cannot encode {name}: {encoded.stderr.strip()}")
    assert encoded.returncode == 0, encoded.stderr
    with av.open(str(path)) as container:  # the full analysis: the first frames decoded
        video = container.streams.video[0]
        rate = video.average_rate
        full = (container.format.name, video.codec_context.name, container.bit_rate or None,
                round(float(rate), 3) if rate else None, bool(container.streams.audio),
                video.codec_context.width, video.codec_context.height)  # fmt: skip
        full_pix_fmt = video.codec_context.pix_fmt
    info = probe(path)
    assert (info.container, info.codec, info.bitrate, info.fps, info.has_audio, info.width, info.height) == full
    if name.startswith("h264"):
        # the option is in force: with no frame decoded, H.264's pixel format stays unknown (HEVC's and MPEG-4's
        # parsers read it from the headers, so they cannot show it); a PyAV that ignored the option would decode
        with av.open(str(path), options=_HEADERS_ONLY) as container:
            headers_pix_fmt = container.streams.video[0].codec_context.pix_fmt
        assert (full_pix_fmt, headers_pix_fmt) == ("yuv420p", None)
