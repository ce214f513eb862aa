"""`serve` over object storage at its edges (SeaweedFS): a row naming a key outside the prefix is a 404, an empty
object keeps the connection, odd keys are served, and an object without its sha256 gets a weak ETag, so If-Range
never splices two versions."""

from __future__ import annotations

import hashlib
import http.client
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from helpers.serve import served_catalog

from taobao_video.config.load import settings_from_mapping
from taobao_video.storage import S3Options, open_storage
from taobao_video.store.catalog import Catalog
from taobao_video.store.records import VideoRow

NOW = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
MP4 = b"\x00\x00\x00\x18ftypisom object video"


@pytest.fixture
def s3site(s3_env, bucket, tmp_path):
    """(settings, storage, boto3 client, record(rows)) with download.dir = s3://bucket/tv."""
    base = tmp_path / "home"
    base.mkdir()
    settings = settings_from_mapping(
        {"download": {"dir": "spool"}, "database": {"url": "sqlite:///catalog.sqlite3"}},
        base_dir=base,
        source=str(base / "settings.toml"),
        env={},
    )
    storage = open_storage(f"s3://{bucket}/tv", S3Options(endpoint_url=s3_env.endpoint_url, addressing_style="path"))
    client = boto3.client("s3", endpoint_url=s3_env.endpoint_url, region_name="us-east-1")

    def record(rows):
        with Catalog.open(settings.database.url) as catalog:
            for num_iid, path, size in rows:
                row = VideoRow(num_iid, path, 1.0, size, "0" * 64, "http://cdn/x.mp4", None, 8, 8, "t", NOW)
                catalog.record_video(replace(row), now=NOW)

    return settings, storage, client, bucket, record


def put(client, bucket, key, data, sha=True):
    meta = {"sha256": hashlib.sha256(data).hexdigest()} if sha else {}
    client.put_object(Bucket=bucket, Key=key, Body=data, Metadata=meta)


@pytest.mark.parametrize("path", ["tv/../tv/1.mp4", "tv/a//1.mp4", "tv/./1.mp4", "tv/"])
def test_a_hostile_object_row_is_a_404(s3site, path):
    """A row naming "..", "//", "." or nothing under the prefix names no object of ours: object_key() answers
    None (check_key's ValueError is caught) and the request is a 404, not a 500."""
    settings, storage, client, bucket, record = s3site
    put(client, bucket, "tv/1.mp4", MP4)
    record([(1, f"s3://{bucket}/{path}", len(MP4))])
    with served_catalog(settings, storage=storage) as url:
        response = requests.get(f"{url}/videos/1.mp4", timeout=10)
    assert response.status_code == 404, response.text


def test_an_empty_object_keeps_the_connection(s3site, capfd):
    settings, storage, client, bucket, record = s3site
    put(client, bucket, "tv/1.mp4", b"")
    put(client, bucket, "tv/2.mp4", MP4)
    record([(1, f"s3://{bucket}/tv/1.mp4", 0), (2, f"s3://{bucket}/tv/2.mp4", len(MP4))])
    with served_catalog(settings, storage=storage) as url:
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        conn.request("GET", "/videos/1.mp4")
        first = conn.getresponse()
        assert (first.status, first.read()) == (200, b"")
        conn.request("GET", "/videos/2.mp4")
        second = conn.getresponse()
        assert second.status == 200 and second.read() == MP4
        conn.close()


def test_if_range_never_splices_two_versions_of_an_object_without_its_sha256(s3site):
    """An object without sha256 metadata gets the weak ETag 'W/"<size>"', which If-Range never matches: replaced
    by other bytes of the same size, a resumed read with the old ETag gets a 200 of the whole NEW object, never a
    206 of its tail (a player would splice two versions)."""
    settings, storage, client, bucket, record = s3site
    old, new = b"A" * 100, b"B" * 100
    put(client, bucket, "tv/1.mp4", old, sha=False)
    record([(1, f"s3://{bucket}/tv/1.mp4", 100)])
    with served_catalog(settings, storage=storage) as url:
        first = requests.get(f"{url}/videos/1.mp4", headers={"Range": "bytes=0-49"}, timeout=10)
        assert first.content == old[:50]
        put(client, bucket, "tv/1.mp4", new, sha=False)
        rest = requests.get(
            f"{url}/videos/1.mp4", headers={"Range": "bytes=50-", "If-Range": first.headers["ETag"]}, timeout=10
        )
    assert first.headers["ETag"] == 'W/"100"'
    assert (rest.status_code, rest.content) == (200, new)


@pytest.mark.parametrize("key", ["tv/a b.mp4", "tv/视频 1.mp4", "tv/x+y%20z.mp4"])
def test_odd_keys_are_served(s3site, key):
    settings, storage, client, bucket, record = s3site
    put(client, bucket, key, MP4)
    record([(1, f"s3://{bucket}/{key}", len(MP4))])
    with served_catalog(settings, storage=storage) as url:
        response = requests.get(f"{url}/videos/1.mp4", headers={"Range": "bytes=2-"}, timeout=10)
        head = requests.head(f"{url}/videos/1.mp4", timeout=10)
    assert response.status_code == 206 and response.content == MP4[2:]
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(MP4))


def test_object_416_and_if_none_match(s3site):
    settings, storage, client, bucket, record = s3site
    put(client, bucket, "tv/1.mp4", MP4)
    record([(1, f"s3://{bucket}/tv/1.mp4", len(MP4))])
    with served_catalog(settings, storage=storage) as url:
        r = requests.get(f"{url}/videos/1.mp4", headers={"Range": "bytes=-0"}, timeout=10)
        assert r.status_code == 416 and r.headers["Content-Range"] == f"bytes */{len(MP4)}"
        r = requests.head(f"{url}/videos/1.mp4", headers={"Range": "bytes=999-"}, timeout=10)
        assert r.status_code == 416
