"""fetch/media.py: what a file is (MP4 or not, what it looks like), its duration from the file, its sha256."""

from __future__ import annotations

import hashlib

import pytest

from taobao_video.errors import DownloadError
from taobao_video.fetch.media import describe_bytes, hash_file, is_mp4, mp4_duration
from taobao_video.sandbox.mp4 import Mp4Video


def test_duration_and_digest_of_a_real_mp4(tmp_path):
    video = Mp4Video(12.5, 720, 720, 300_000, seed=3)
    path = tmp_path / "v.mp4"
    path.write_bytes(b"".join(video.iter_chunks()))
    assert mp4_duration(path) == pytest.approx(12.5, abs=0.05)
    digest = hash_file(path)
    assert digest.sha256 == video.sha256() == hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest.size == video.size and is_mp4(digest.head) and len(digest.head) == 512


@pytest.mark.parametrize(
    ("data", "looks_like"),
    [
        (b"<!DOCTYPE html><html><body>busy</body></html>", "an HTML page"),
        (b'{"error": "expired"}', "JSON"),
        (b"\xff\xd8\xff\xe0 jpeg", "a JPEG image"),
        (b"", "an empty body"),
        (b"\x00\x00\x00\x18ftypisom" + b"\x00" * 40, None),  # an ftyp box and nothing else: no movie
    ],
)
def test_a_file_that_is_no_movie_is_unreadable(tmp_path, data, looks_like):
    path = tmp_path / "v.mp4"
    path.write_bytes(data)
    with pytest.raises(DownloadError) as caught:
        mp4_duration(path)
    assert caught.value.reason == "unreadable_mp4" and "does not parse as MP4" in str(caught.value)
    if looks_like is not None:
        assert not is_mp4(data) and describe_bytes(data) == looks_like


def test_a_missing_file_is_unreadable_not_a_crash(tmp_path):
    with pytest.raises(DownloadError):
        mp4_duration(tmp_path / "absent.mp4")
    with pytest.raises(OSError):
        hash_file(tmp_path / "absent.mp4")
