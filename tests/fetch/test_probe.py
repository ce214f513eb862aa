"""The media probe (PyAV) against ffprobe on the sandbox's files, a damaged file, and how much of a file it reads."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from taobao_video.fetch.probe import ProbeError, probe, probe_stream
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
