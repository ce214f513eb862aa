"""`taobao-video serve` over HTTP: the JSON API and its filters, Range streaming, and what may never be served."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from helpers.serve import harvested, running, served_catalog, serving, site_for

from taobao_video.config.load import settings_from_mapping
from taobao_video.errors import UsageError
from taobao_video.store.catalog import Catalog, engine_of
from taobao_video.store.filters import VIDEO_COLUMNS
from taobao_video.store.migrate import alembic_config
from taobao_video.store.records import VideoRow
from taobao_video.web.server import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, bind, is_loopback


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A harvested catalog (14 videos in two batches three days apart, 3 items without one) and the server on it."""
    with harvested(tmp_path_factory.mktemp("serve")) as data:
        now = data.second_batch_at + timedelta(hours=1)
        with served_catalog(data.settings, clock=lambda: now, zone=UTC, quota_zone=UTC) as url:
            data.url = url
            yield data


def api(world, **params):
    response = requests.get(world.url + "/api/videos", params=params, timeout=10)
    assert response.headers["Content-Type"].startswith("application/json")
    return response


def listed(world, **params):
    response = api(world, **params)
    assert response.status_code == 200, response.text
    return response.json()


def ids_of(page):
    return [row["num_iid"] for row in page["videos"]]


# ------------------------------------------------------------------------------------------------ the API


def test_lists_every_video_with_the_catalog_columns(world):
    page = listed(world, limit=MAX_PAGE_SIZE)
    assert page["total"] == len(world.rows) == 14
    assert page["offset"] == 0 and page["limit"] == MAX_PAGE_SIZE
    assert ids_of(page) == sorted(world.rows)  # by num_iid by default
    for record in page["videos"]:
        assert tuple(record) == (*VIDEO_COLUMNS, "cover_src")
        row = world.rows[record["num_iid"]]
        assert record["video_path"] == row.video_path and record["sha256"] == row.sha256
        assert record["duration"] == row.duration and record["size_bytes"] == row.size_bytes
        assert datetime.fromisoformat(record["downloaded_at"]) == row.downloaded_at


def test_a_page_without_limit_is_bounded(world):
    assert listed(world)["limit"] == DEFAULT_PAGE_SIZE


def test_duration_range(world):
    durations = sorted({row.duration for row in world.rows.values()})
    low = (durations[2] + durations[3]) / 2  # between two real values: no rounding question at the edges
    high = (durations[-3] + durations[-4]) / 2
    page = listed(world, min_duration=low, max_duration=high, limit=100)
    expected = sorted(i for i, row in world.rows.items() if low <= row.duration <= high)
    assert ids_of(page) == expected and page["total"] == len(expected)
    assert 0 < len(expected) < len(world.rows)
    assert set(ids_of(listed(world, min_duration=low, limit=100))) == {
        i for i, row in world.rows.items() if row.duration >= low
    }
    assert set(ids_of(listed(world, max_duration=high, limit=100))) == {
        i for i, row in world.rows.items() if row.duration <= high
    }


def test_download_date_range(world):
    second = {i for i, row in world.rows.items() if row.downloaded_at == world.second_batch_at}
    assert len(second) == 6
    since = world.second_batch_at.isoformat()
    assert set(ids_of(listed(world, since=since, limit=100))) == second
    assert set(ids_of(listed(world, until=since, limit=100))) == set(world.rows) - second
    day_after_first = (world.first_batch_at + timedelta(days=1)).astimezone(UTC).date().isoformat()
    assert set(ids_of(listed(world, since=day_after_first, limit=100))) == second


def test_ids_and_id_prefix_search(world):
    some = sorted(world.rows)[3:6]
    unknown = 999_999_999_999
    page = listed(world, ids=",".join(map(str, [*some, unknown])))
    assert ids_of(page) == some and page["total"] == 3
    prefix = str(sorted(world.rows)[-1])[:-1]  # the last id without its last digit
    expected = sorted(i for i in world.rows if str(i).startswith(prefix))
    assert ids_of(listed(world, q=prefix)) == expected and 0 < len(expected) < len(world.rows)
    assert ids_of(listed(world, q=str(some[0]))) == [some[0]]
    assert listed(world, q="9")["total"] == 0


def test_sorting_and_paging(world):
    by_duration = sorted(world.rows, key=lambda i: (world.rows[i].duration, i), reverse=True)
    assert ids_of(listed(world, sort="duration", desc="1", limit=100)) == by_duration
    page = listed(world, sort="duration", desc="true", limit=5, offset=5)
    assert ids_of(page) == by_duration[5:10] and page["total"] == 14 and page["offset"] == 5
    by_size = sorted(world.rows, key=lambda i: (world.rows[i].size_bytes, i))
    assert ids_of(listed(world, sort="size", limit=100)) == by_size
    newest = ids_of(listed(world, sort="downloaded_at", desc="1", limit=6))
    assert {world.rows[i].downloaded_at for i in newest} == {world.second_batch_at}


def test_missing_files(world):
    victim = sorted(world.rows)[4]
    path = world.path(victim)
    moved = path.with_suffix(".moved")
    path.rename(moved)
    try:
        page = listed(world, missing="1")
        assert ids_of(page) == [victim] and page["total"] == 1
        gone = requests.get(f"{world.url}/videos/{victim}.mp4", timeout=10)
        assert gone.status_code == 404 and "missing" in gone.json()["error"]
    finally:
        moved.rename(path)
    assert listed(world, missing="1")["total"] == 0


def test_item_states(world):
    page = listed(world, state="no_video")
    assert ids_of(page) == sorted(world.no_video)
    assert all(row["state"] == "no_video" and row["video_path"] is None for row in page["videos"])
    assert listed(world, state="done,no_video", limit=100)["total"] == 14 + 3


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("min_duration=abc", "min_duration"),
        ("max_duration=-1", "max_duration"),
        ("min_duration=20&max_duration=10", "min_duration"),
        ("since=yesterday", "since"),
        ("until=2026-13-01", "until"),
        ("state=bogus", "state"),
        ("ids=12a", "ids"),
        ("q=abc", "q"),
        ("missing=maybe", "missing"),
        ("sort=colour", "sort"),
        ("desc=2", "desc"),
        ("limit=-1", "limit"),
        (f"limit={MAX_PAGE_SIZE + 1}", "limit"),
        ("offset=x", "offset"),
        ("colour=red", "colour"),
        ("min_duration=1&min_duration=2", "min_duration"),
        ("q=%ff", "query string"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(world, query, field):
    response = requests.get(f"{world.url}/api/videos?{query}", timeout=10)
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 400 and body["error"].startswith(f"{field}: ")


def test_stats(world):
    stats = requests.get(world.url + "/api/stats", timeout=10).json()
    assert stats["videos"] == 14
    assert stats["bytes"] == sum(row.size_bytes for row in world.rows.values())
    assert stats["seconds"] == pytest.approx(sum(row.duration for row in world.rows.values()), abs=0.01)
    assert stats["items"]["done"] == 14 and stats["items"]["no_video"] == 3
    per_day = {entry["day"]: entry["videos"] for entry in stats["downloads_per_day"]}
    assert per_day[world.first_batch_at.date().isoformat()] == 8
    assert per_day[world.second_batch_at.date().isoformat()] == 6
    assert sum(per_day.values()) == 14


def test_the_page_and_its_files(world):
    page = requests.get(world.url + "/", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert '<script src="/static/app.js"' in page.text and "http" not in page.text.split("<body>")[0]
    script = requests.get(world.url + "/static/app.js", timeout=10)
    assert script.status_code == 200 and "/api/videos" in script.text
    assert requests.get(world.url + "/static/app.css", timeout=10).headers["Content-Type"].startswith("text/css")
    head = requests.head(world.url + "/", timeout=10)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["Content-Length"]) == len(page.content)


def test_unknown_routes_methods_and_hosts(world):
    missing = requests.get(world.url + "/nothing-here", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"] == "no such page: /nothing-here"
    posted = requests.post(world.url + "/api/videos", data=b"x", timeout=10)
    assert (
        posted.status_code == 405 and posted.headers["Allow"] == "GET, HEAD" and "read-only" in posted.json()["error"]
    )
    port = urlsplit(world.url).port
    assert requests.get(world.url + "/api/stats", headers={"Host": f"localhost:{port}"}, timeout=10).ok
    rebound = requests.get(world.url + "/api/stats", headers={"Host": f"evil.example:{port}"}, timeout=10)
    assert rebound.status_code == 403 and "Host" in rebound.json()["error"]


# ------------------------------------------------------------------------------------------------ Range


@pytest.fixture(scope="module")
def clip(world):
    """(URL, bytes on disk) of the largest harvested video."""
    num_iid = max(world.rows, key=lambda i: world.rows[i].size_bytes)
    return f"{world.url}/videos/{num_iid}.mp4", world.path(num_iid).read_bytes()


def test_whole_file(clip):
    url, data = clip
    response = requests.get(url, timeout=10)
    assert response.status_code == 200 and response.content == data
    assert response.headers["Content-Type"] == "video/mp4"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert int(response.headers["Content-Length"]) == len(data)
    assert response.headers["ETag"].startswith('"') and response.headers["Last-Modified"].endswith(" GMT")
    head = requests.head(url, timeout=10)
    assert head.status_code == 200 and head.content == b"" and int(head.headers["Content-Length"]) == len(data)


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),  # the first bytes
        ("bytes=1000-1999", 1000, 1999),  # the middle
        ("bytes=-100", -100, -1),  # suffix: the last 100
        ("bytes=5000-", 5000, -1),  # open-ended
        ("bytes=-1", -1, -1),
        ("bytes=0-0", 0, 0),
    ],
)
def test_ranges(clip, header, first, last):
    url, data = clip
    size = len(data)
    first, last = first % size, last % size
    response = requests.get(url, headers={"Range": header}, timeout=10)
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
    assert int(response.headers["Content-Length"]) == last - first + 1
    assert response.content == data[first : last + 1]


def test_a_range_past_the_end_is_clipped(clip):
    url, data = clip
    size = len(data)
    response = requests.get(url, headers={"Range": f"bytes={size - 10}-{size + 500}"}, timeout=10)
    assert response.status_code == 206 and response.content == data[-10:]
    assert response.headers["Content-Range"] == f"bytes {size - 10}-{size - 1}/{size}"


@pytest.mark.parametrize("header", ["bytes={size}-", "bytes={size}-{size}", "bytes=-0"])
def test_unsatisfiable_ranges_are_416(clip, header):
    url, data = clip
    response = requests.get(url, headers={"Range": header.format(size=len(data))}, timeout=10)
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(data)}"
    assert "not satisfiable" in response.json()["error"]


@pytest.mark.parametrize("header", ["bytes=0-9,20-29", "bytes=0-9, 100-", "bytes=abc", "items=0-5", "bytes=9-3"])
def test_several_or_malformed_ranges_get_the_whole_file(clip, header):
    url, data = clip
    response = requests.get(url, headers={"Range": header}, timeout=10)
    assert response.status_code == 200 and response.content == data and "Content-Range" not in response.headers


def test_conditional_requests(clip):
    url, data = clip
    etag = requests.head(url, timeout=10).headers["ETag"]
    same = requests.get(url, headers={"Range": "bytes=10-19", "If-Range": etag}, timeout=10)
    assert same.status_code == 206 and same.content == data[10:20]
    other = requests.get(url, headers={"Range": "bytes=10-19", "If-Range": '"other"'}, timeout=10)
    assert other.status_code == 200 and other.content == data
    cached = requests.get(url, headers={"If-None-Match": etag}, timeout=10)
    assert cached.status_code == 304 and cached.content == b"" and cached.headers["ETag"] == etag
    ranged_head = requests.head(url, headers={"Range": "bytes=0-99"}, timeout=10)
    assert ranged_head.status_code == 206 and ranged_head.headers["Content-Length"] == "100"


def test_keep_alive_and_a_client_that_hangs_up(clip):
    url, data = clip
    with requests.Session() as session:
        for start in (0, 4096, len(data) - 512):
            part = session.get(url, headers={"Range": f"bytes={start}-{start + 511}"}, timeout=10)
            assert part.content == data[start : start + 512]
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as raw:
        raw.sendall(f"GET {parts.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        assert raw.recv(1024).startswith(b"HTTP/1.1 200")
    assert requests.get(url, timeout=10).content == data  # the server carries on


# ------------------------------------------------------------------------------------------------ what is refused

SECRET = "app_secret = 'do-not-serve-me'"


@pytest.fixture
def hostile(tmp_path):
    """A catalog with one honest row (id 1) and rows whose video_path points out of the videos folder."""
    base = tmp_path / "home"
    videos = base / "videos"
    videos.mkdir(parents=True)
    (videos / "1.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom honest video")
    (base / "settings.toml").write_text(SECRET)
    (tmp_path / "settings.toml").write_text(SECRET)
    (videos / "sub").mkdir()
    (videos / "link.mp4").symlink_to(base / "settings.toml")
    paths = {
        1: "videos/1.mp4",
        2: "../settings.toml",  # above the settings folder
        3: str(base / "settings.toml"),  # absolute
        4: "videos/../settings.toml",  # through the videos folder and out again
        5: "videos/link.mp4",  # a symlink inside pointing out
        6: "videos",  # the folder itself
        7: "videos/sub",  # a folder inside
        8: "/etc/passwd",
        9: "videos/\x00.mp4",
    }
    settings = settings_from_mapping(
        {"download": {"dir": "videos"}, "database": {"url": "sqlite:///catalog.sqlite3"}},
        base_dir=base,
        source=str(base / "settings.toml"),
        env={},
    )
    now = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
    with Catalog.open(settings.database.url) as catalog:
        for num_iid, path in paths.items():
            row = VideoRow(num_iid, path, 1.0, 20, "0" * 64, "http://cdn/x.mp4", None, 8, 8, "taobao.item_video", now)
            catalog.record_video(row, now=now)
    logged: list[str] = []
    with served_catalog(settings, log=logged.append) as url:
        yield url, logged


def raw_get(url, target):
    """GET ``target`` exactly as written (no client-side normalisation of ``..`` or percent-escapes)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.putrequest("GET", target, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        connection.close()


def test_the_honest_row_is_served(hostile):
    url, _ = hostile
    status, kind, body = raw_get(url, "/videos/1.mp4")
    assert (status, kind) == (200, "video/mp4") and body.endswith(b"honest video")


@pytest.mark.parametrize("num_iid", [2, 3, 4, 5, 6, 7, 8, 9])
def test_hostile_rows_are_refused(hostile, num_iid):
    url, logged = hostile
    status, kind, body = raw_get(url, f"/videos/{num_iid}.mp4")
    assert status == 404 and kind.startswith("application/json")
    assert SECRET.encode() not in body and b"root:" not in body
    assert json.loads(body)["error"].startswith(f"the file of {num_iid} ")
    if num_iid not in (6, 7):  # the folder and a folder inside are inside, just not files
        assert any(line.startswith(f"refused to serve {num_iid}:") for line in logged)


@pytest.mark.parametrize(
    "target",
    [
        "/videos/../settings.toml",
        "/videos/%2e%2e/settings.toml",
        "/videos/%2E%2E%2Fsettings.toml",
        "/videos/..%2f..%2fsettings.toml",
        "/videos/1.mp4/../../settings.toml",
        "/../settings.toml",
        "/static/../settings.toml",
        "/static/%2e%2e/serve.py",
        "//etc/passwd",
        "/videos/%31.mp4",
        "/videos/1.mp4%00",
        "/videos/1a.mp4",
        "/videos/-1.mp4",
        "/videos/0.mp4",
        "/videos/99999999999999999999.mp4",
        "/videos/9223372036854775808.mp4",
        "/videos/42.mp4",  # digits, but not in the catalog
        "/videos/1.MP4",
        "/videos/1.mp4.toml",
    ],
)
def test_traversal_and_bad_ids_are_refused(hostile, target):
    url, _ = hostile
    status, kind, body = raw_get(url, target)
    assert status in (400, 404) and kind.startswith("application/json")
    assert SECRET.encode() not in body and b"root:" not in body
    assert json.loads(body)["status"] == status


def test_a_malformed_request_gets_a_json_error(hostile):
    url, _ = hostile
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as raw:
        raw.sendall(b"GET /api stats HTTP/1.1\r\n")  # four words: not a request line
        answer = b"".join(iter(lambda: raw.recv(4096), b""))  # the server closes after a malformed request
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert json.loads(body) == {"error": "Bad request syntax ('GET /api stats HTTP/1.1')", "status": 400}


# ------------------------------------------------------------------------------------------------ opening and binding


def test_a_port_in_use_is_a_usage_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite3'}") as catalog:
            site = site_for(
                settings_from_mapping({}, base_dir=tmp_path, source=str(tmp_path / "s.toml"), env={}), catalog
            )
            with pytest.raises(UsageError, match=f"port {port} on 127.0.0.1 is in use"):
                bind(site, "127.0.0.1", port, access_log=None)
            with serving(site) as url:  # port 0 picks a free one
                assert requests.get(url + "/api/stats", timeout=10).json()["videos"] == 0


def test_ipv6_loopback(tmp_path):
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    with Catalog.open(f"sqlite:///{tmp_path / 'c.sqlite3'}") as catalog:
        site = site_for(settings_from_mapping({}, base_dir=tmp_path, source=str(tmp_path / "s.toml"), env={}), catalog)
        try:
            server = bind(site, "::1", 0, access_log=None)
        except UsageError as exc:
            pytest.skip(f"::1 cannot be bound here: {exc}")
        assert server.url.startswith("http://[::1]:")
        with running(server) as url:
            assert requests.get(url + "/api/stats", timeout=10).json()["videos"] == 0


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True), ("[::1]", True),
     ("0.0.0.0", False), ("192.168.1.5", False), ("::", False), ("example.org", False)],
)  # fmt: skip
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


# ------------------------------------------------------------------------------------------------ the command


def _settings_file(world) -> Path:
    """A settings.toml in the harvested folder, as a user has it (video_path is relative to its folder)."""
    path = world.settings.base_dir / "settings.toml"
    path.write_text('[download]\ndir = "videos"\n[database]\nurl = "sqlite:///catalog.sqlite3"\n')
    return path


@contextmanager
def serve_process(world, *args: str) -> Iterator[subprocess.Popen]:
    """`taobao-video serve --port 0 ARGS` on the harvested catalog; killed at the end if a test left it running."""
    env = {**os.environ, "TAOBAO_VIDEO_CONFIG": str(_settings_file(world))}
    process = subprocess.Popen(
        [sys.executable, "-m", "taobao_video", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_the_command_serves_until_ctrl_c(world):
    with serve_process(world) as process:
        line = process.stdout.readline()
        assert line.startswith("Serving the catalog at http://127.0.0.1:"), line
        url = line.split(" at ", 1)[1].split()[0].rstrip("/")
        assert requests.get(url + "/api/stats", timeout=10).json()["videos"] == 14
        num_iid = min(world.rows)
        assert requests.get(f"{url}/videos/{num_iid}.mp4", timeout=10).content == world.path(num_iid).read_bytes()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "Stopped." in err and "Traceback" not in err


def test_the_command_warns_when_not_on_loopback(world):
    with serve_process(world, "--host", "0.0.0.0") as process:
        assert process.stdout.readline().startswith("Serving the catalog at http://0.0.0.0:")
        time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert "warning: listening on 0.0.0.0, not loopback" in err and process.returncode == 0


def _serve_command(tmp_path, settings_text: str) -> subprocess.CompletedProcess:
    (tmp_path / "settings.toml").write_text(settings_text)
    command = [
        sys.executable,
        "-m",
        "taobao_video",
        "--config",
        str(tmp_path / "settings.toml"),
        "serve",
        "--port",
        "0",
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_the_command_neither_creates_nor_migrates_a_catalog(tmp_path):
    from alembic import command

    from taobao_video.store.migrate import current_revision

    result = _serve_command(tmp_path, '[database]\nurl = "sqlite:///none.sqlite3"\n')
    assert result.returncode == 78 and "no catalog at" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "none.sqlite3").exists()
    old = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    command.upgrade(alembic_config(old), "0001")
    result = _serve_command(tmp_path, '[database]\nurl = "sqlite:///old.sqlite3"\n')
    assert result.returncode == 78
    assert "revision 0001" in result.stderr and "run `taobao-video db upgrade`" in result.stderr
    assert "Traceback" not in result.stderr
    with Catalog.open(old, migrate=False) as catalog:
        assert current_revision(engine_of(catalog)) == "0001"  # left as it was
