"""`serve` at its edges: an empty video keeps the keep-alive connection, a Range number too long to be one is
ignored, and a videos/ that is a symlink (to a bigger disk) keeps its covers and public URLs beside it."""

from __future__ import annotations

import http.client
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
import requests
from helpers.serve import served_catalog

from taobao_video.config.load import settings_from_mapping
from taobao_video.store.catalog import Catalog
from taobao_video.store.records import VideoRow

NOW = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
MP4 = b"\x00\x00\x00\x18ftypisom honest video"


def make_settings(base, **download):
    return settings_from_mapping(
        {"download": {"dir": "videos", **download}, "database": {"url": "sqlite:///catalog.sqlite3"}},
        base_dir=base,
        source=str(base / "settings.toml"),
        env={},
    )


def record(settings, rows, cover_path=None):
    with Catalog.open(settings.database.url) as catalog:
        for num_iid, path, size in rows:
            row = VideoRow(num_iid, path, 1.0, size, "0" * 64, "http://cdn/x.mp4", None, 8, 8, "taobao.item_video", NOW)
            catalog.record_video(replace(row, cover_path=cover_path), now=NOW)


def symlinked_home(tmp_path):
    """<tmp>/home whose videos/ is a symlink to <tmp>/bigdisk/videos, which holds 2.mp4: the home."""
    base = tmp_path / "home"
    disk = tmp_path / "bigdisk" / "videos"
    disk.mkdir(parents=True)
    base.mkdir()
    (base / "videos").symlink_to(disk, target_is_directory=True)
    (disk / "2.mp4").write_bytes(MP4)
    return base


def test_an_empty_video_file_keeps_the_connection(tmp_path, capfd):
    """A 0-byte file inside videos/ is a 200 with an empty body (no sendfile(count=0) after the headers), and the
    keep-alive connection serves the next request."""
    base = tmp_path / "home"
    (base / "videos").mkdir(parents=True)
    (base / "videos" / "1.mp4").write_bytes(b"")
    (base / "videos" / "2.mp4").write_bytes(MP4)
    settings = make_settings(base)
    record(settings, [(1, "videos/1.mp4", 0), (2, "videos/2.mp4", len(MP4))])
    with served_catalog(settings) as url:
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        conn.request("GET", "/videos/1.mp4")
        first = conn.getresponse()
        assert (first.status, first.read()) == (200, b"")
        conn.request("GET", "/videos/2.mp4")  # same keep-alive connection
        second = conn.getresponse()
        assert second.status == 200 and second.read() == MP4
        conn.close()
    assert "count must be a positive integer" not in capfd.readouterr().err


@pytest.mark.parametrize("digits", [4301, 5000])
def test_a_huge_range_number_is_ignored(tmp_path, digits):
    """A Range number longer than any 64-bit offset (here past int()'s 4300-digit limit) is no range we serve:
    parse_range ignores the header, so the answer is a 200 of the whole file, never a 500."""
    base = tmp_path / "home"
    (base / "videos").mkdir(parents=True)
    (base / "videos" / "2.mp4").write_bytes(MP4)
    settings = make_settings(base)
    record(settings, [(2, "videos/2.mp4", len(MP4))])
    with served_catalog(settings) as url:
        response = requests.get(f"{url}/videos/2.mp4", headers={"Range": "bytes=0-" + "9" * digits}, timeout=10)
    assert (response.status_code, response.content) == (200, MP4), response.text
    assert "Content-Range" not in response.headers


def test_covers_beside_a_symlinked_videos_folder_are_served(tmp_path):
    """videos/ a symlink to another disk (common): harvest keeps covers in <base>/covers (wiring.covers_dir), and
    the server serves them from there, not from <resolved videos>/../covers."""
    base = symlinked_home(tmp_path)
    (base / "covers").mkdir()
    (base / "covers" / "2.jpg").write_bytes(b"\xff\xd8\xff\xe0 jpeg")
    settings = make_settings(base)
    record(settings, [(2, "videos/2.mp4", len(MP4))], cover_path="covers/2.jpg")
    with served_catalog(settings) as url:
        assert requests.get(f"{url}/videos/2.mp4", timeout=10).content == MP4
        cover = requests.get(f"{url}/covers/2.jpg", timeout=10)
    assert (cover.status_code, cover.content) == (200, b"\xff\xd8\xff\xe0 jpeg"), cover.text


def test_public_urls_of_a_symlinked_videos_folder(tmp_path):
    """Same set-up: the API's video_public_url is prefix + videos/2.mp4 (the path under the home), not the Taobao
    URL."""
    base = symlinked_home(tmp_path)
    settings = make_settings(base, public_url_prefix="https://media.example.com/t/")
    record(settings, [(2, "videos/2.mp4", len(MP4))])
    with served_catalog(settings, public_url_prefix=settings.download.public_url_prefix) as url:
        row = requests.get(f"{url}/api/videos", timeout=10).json()["videos"][0]
    assert row["video_public_url"] == "https://media.example.com/t/videos/2.mp4"
