"""The streaming downloader against the sandbox CDN (a real loopback server) and a tiny origin of our own.

Covers: exact bytes and sha256, .part + sidecar resume and when not to resume, every CDN fault once (retried and
resumed) and unlimited (the right reason, the .part kept), content rejections, 416, the size cap, the host
allowlist on every redirect hop, stopping, the status table, the pace watchdog, no query string in any message,
and eight threads sharing one Downloader.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from conftest import Sleeps
from taobao_video.config.load import settings_from_mapping
from taobao_video.errors import DownloadError, DownloadStopped, UrlExpired
from taobao_video.fetch.checks import host_allowed, parse_content_range, status_error
from taobao_video.fetch.downloader import Downloader
from taobao_video.fetch.stream import DownloadResult
from taobao_video.sandbox import Fault, Sandbox

SECRET_KEY = "1767000000-0-0-deadbeefcafef00d"


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_dl(tmp_path: Path, sleeps: Sleeps) -> Iterator[Callable[..., Downloader]]:
    made: list[Downloader] = []

    def make(**overrides: object) -> Downloader:
        options: dict[str, object] = {"allowed_hosts": ("127.0.0.1",), "timeout_s": 5.0, "retries": 3, "sleep": sleeps}
        options.update(overrides)
        dl = Downloader(tmp_path / "videos", **options)  # type: ignore[arg-type]
        made.append(dl)
        return dl

    yield make
    for dl in made:
        dl.close()


def of_style(sb: Sandbox, style: str) -> int:
    return next(i for i in sb.catalogue.sample("video", 60) if sb.catalogue.item(i).url_style == style)


def url_of(sb: Sandbox, num_iid: int) -> str:
    return sb.urls.video_url(sb.catalogue.item(num_iid), sb.now())


def cdn(sb: Sandbox) -> dict:
    return sb.stats()["cdn"]


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def assert_verified(result: DownloadResult, sb: Sandbox, num_iid: int) -> None:
    video = sb.video(num_iid)
    data = result.path.read_bytes()
    assert result.size == video.size == len(data)
    assert result.sha256 == video.sha256() == hashlib.sha256(data).hexdigest()
    assert data == video.read(0, video.size)
    assert files(result.path.parent) == [result.path.name]  # no .part, no sidecar, nothing else


def make_part(sb: Sandbox, folder: Path, num_iid: int, length: int, sidecar: dict | None = None) -> Path:
    """A .part holding the first ``length`` bytes of the item's video, with a sidecar as a run would write."""
    url = url_of(sb, num_iid)
    head = requests.head(url, timeout=10).headers
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{num_iid}.mp4"
    (folder / f"{name}.part").write_bytes(sb.video(num_iid).read(0, length))
    record = {
        "num_iid": num_iid,
        "url": url.split("?")[0],
        "size": sb.video(num_iid).size,
        "etag": head["ETag"],
        "last_modified": head["Last-Modified"],
        "content_type": "video/mp4",
    }
    record.update(sidecar or {})
    (folder / f"{name}.part.json").write_text(json.dumps(record))
    sb.reset_stats()
    return folder / f"{name}.part"


def fetch(dl: Downloader, sb: Sandbox, num_iid: int, **kw: object) -> DownloadResult:
    return dl.fetch(url_of(sb, num_iid), num_iid=num_iid, name=f"{num_iid}.mp4", **kw)  # type: ignore[arg-type]


# --- the happy path ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["stable", "signed"])
def test_full_download_is_the_video(sb, make_dl, monkeypatch, style):
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr("taobao_video.fetch.stream.os.fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    num_iid = of_style(sb, style)
    progress: list[int] = []
    result = fetch(make_dl(), sb, num_iid, on_progress=progress.append)
    assert_verified(result, sb, num_iid)
    assert result.path.name == f"{num_iid}.mp4"
    assert result.resumed_from == 0 and result.bytes_fetched == result.size == sum(progress)
    assert result.content_type == "video/mp4" and result.etag.startswith('"')
    assert "?" not in result.final_url and urlsplit(result.final_url).path == urlsplit(url_of(sb, num_iid)).path
    assert len(synced) >= 2  # the file, then its folder
    assert cdn(sb)["requests"] == 1 and cdn(sb)["bytes_sent"] == result.size


def test_from_settings(tmp_path):
    settings = settings_from_mapping(
        {"download": {"dir": "v", "workers": 3, "retries": 1, "allowed_hosts": ["127.0.0.1"]}}, base_dir=tmp_path
    )
    dl = Downloader.from_settings(settings.download)
    try:
        assert dl.dest_dir == tmp_path / "v" and dl.allowed_hosts == ("127.0.0.1",) and dl.retries == 1
        adapter = dl.http.get_adapter("http://127.0.0.1/")
        assert adapter._pool_maxsize == 3  # type: ignore[attr-defined]
    finally:
        dl.close()
    with Downloader.from_settings(settings.download, workers=12) as wider:  # --workers: one connection per thread
        assert wider.http.get_adapter("http://127.0.0.1/")._pool_maxsize == 12  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["", ".", "..", "a/b.mp4", "..\\x.mp4", "x\x00.mp4"])
def test_names_must_be_plain_file_names(make_dl, name):
    with pytest.raises(ValueError, match="plain file name"):
        make_dl().fetch("http://127.0.0.1/x.mp4", num_iid=1, name=name)


# --- resume -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["stable", "signed"])
def test_resume_fetches_only_the_rest(sb, make_dl, tmp_path, style):
    num_iid = of_style(sb, style)
    size = sb.video(num_iid).size
    make_part(sb, tmp_path / "videos", num_iid, size // 3)
    result = fetch(make_dl(), sb, num_iid)
    assert_verified(result, sb, num_iid)
    assert result.resumed_from == size // 3 and result.bytes_fetched == size - size // 3
    assert cdn(sb)["bytes_sent"] == size - size // 3 and cdn(sb)["by_status"] == {"206": 1}


@pytest.mark.parametrize(
    "change",
    [
        "no_sidecar",
        "garbage_sidecar",
        {"num_iid": 1},
        {"url": "http://127.0.0.1/cdn/play/u/1/p/1/e/6/t/1/1.mp4"},
        {"etag": '"another-file"'},
        {"size": 123_456_789},
        {"etag": "", "last_modified": ""},
    ],
    ids=["no_sidecar", "garbage_sidecar", "num_iid", "url", "etag", "size", "no_validator"],
)
def test_a_foreign_part_is_never_resumed(sb, make_dl, tmp_path, change):
    num_iid, other = sb.catalogue.sample("video", 2)
    folder = tmp_path / "videos"
    part = make_part(sb, folder, num_iid, 100_000, change if isinstance(change, dict) else None)
    part.write_bytes(sb.video(other).read(0, 100_000))  # the bytes of another video: must not be kept
    sidecar = folder / f"{num_iid}.mp4.part.json"
    if change == "no_sidecar":
        sidecar.unlink()
    elif change == "garbage_sidecar":
        sidecar.write_text("{not json")
    result = fetch(make_dl(), sb, num_iid)
    assert_verified(result, sb, num_iid)
    assert result.resumed_from == 0 and result.bytes_fetched == result.size
    if change == {"size": 123_456_789}:  # only the server's answer shows the size differs: its 206 is dropped
        assert cdn(sb)["by_status"] == {"206": 1, "200": 1}
    else:
        assert cdn(sb)["bytes_sent"] == result.size and cdn(sb)["by_status"] == {"200": 1}


def test_expected_size_hint_must_match_the_part(sb, make_dl, tmp_path):
    num_iid = sb.catalogue.sample("video", 1)[0]
    make_part(sb, tmp_path / "videos", num_iid, 50_000)
    size = sb.video(num_iid).size
    result = fetch(make_dl(), sb, num_iid, expected_size=size + 1)
    assert_verified(result, sb, num_iid)
    assert result.resumed_from == 0
    make_part(sb, tmp_path / "videos", num_iid, 50_000)
    (tmp_path / "videos" / f"{num_iid}.mp4").unlink()
    assert fetch(make_dl(), sb, num_iid, expected_size=size).resumed_from == 50_000


def test_no_range_with_a_part_restarts_from_zero(sb, make_dl, tmp_path):
    num_iid = sb.catalogue.sample("video", 1)[0]
    make_part(sb, tmp_path / "videos", num_iid, 200_000)
    sb.set_faults([Fault("no_range", "cdn")])
    result = fetch(make_dl(), sb, num_iid)
    assert_verified(result, sb, num_iid)
    assert result.resumed_from == 0 and cdn(sb)["by_status"] == {"200": 1}
    assert cdn(sb)["bytes_sent"] == result.size


def test_416_on_a_complete_part_finalises_without_a_body(sb, make_dl, tmp_path):
    num_iid = sb.catalogue.sample("video", 1)[0]
    size = sb.video(num_iid).size
    make_part(sb, tmp_path / "videos", num_iid, size)
    result = fetch(make_dl(), sb, num_iid)
    assert_verified(result, sb, num_iid)
    assert result.resumed_from == size and result.bytes_fetched == 0
    assert cdn(sb)["by_status"] == {"416": 1} and cdn(sb)["bytes_sent"] == 0


def test_416_with_another_total_starts_over(sb, make_dl, tmp_path):
    num_iid = sb.catalogue.sample("video", 1)[0]
    size = sb.video(num_iid).size
    part = make_part(sb, tmp_path / "videos", num_iid, size, {"size": None})
    part.write_bytes(part.read_bytes() + b"\0" * 1000)  # longer than the file: 416 bytes */size
    result = fetch(make_dl(), sb, num_iid)
    assert_verified(result, sb, num_iid)
    assert cdn(sb)["by_status"] == {"416": 1, "200": 1} and result.resumed_from == 0


def test_should_stop_parks_the_part_and_the_next_fetch_resumes(sb, make_dl, tmp_path):
    num_iid = of_style(sb, "signed")
    folder = tmp_path / "videos"
    chunks: list[int] = []
    with pytest.raises(DownloadStopped) as stopped:
        fetch(make_dl(), sb, num_iid, on_progress=chunks.append, should_stop=lambda: bool(chunks))
    assert stopped.value.reason == "stopped" and "auth_key" not in str(stopped.value)
    part = folder / f"{num_iid}.mp4.part"
    kept = part.stat().st_size
    assert kept == sum(chunks) > 0 and not (folder / f"{num_iid}.mp4").exists()
    record = json.loads((folder / f"{num_iid}.mp4.part.json").read_text())
    assert record["num_iid"] == num_iid and record["size"] == sb.video(num_iid).size
    assert "?" not in record["url"] and record["etag"].startswith('"')
    result = fetch(make_dl(), sb, num_iid)
    assert_verified(result, sb, num_iid)
    assert result.resumed_from == kept and result.bytes_fetched == result.size - kept


def test_should_stop_before_anything_sends_nothing(sb, make_dl):
    num_iid = sb.catalogue.sample("video", 1)[0]
    with pytest.raises(DownloadStopped):
        fetch(make_dl(), sb, num_iid, should_stop=lambda: True)
    assert cdn(sb)["requests"] == 0


# --- CDN faults -------------------------------------------------------------------------------------------

QUICK = {"timeout_s": 0.3}  # a 0.3 s read timeout turns the sandbox's 1 s stall into a quick failure


@pytest.mark.parametrize("kind", ["http_500", "reset", "truncate", "stall"])
def test_a_fault_once_is_retried_and_resumed(sb, make_dl, sleeps, kind):
    num_iid = sb.catalogue.sample("video", 1)[0]
    size = sb.video(num_iid).size
    sb.set_faults([Fault(kind, "cdn", times=1, num_iid=num_iid, seconds=1.0)])
    result = fetch(make_dl(**QUICK), sb, num_iid)
    assert_verified(result, sb, num_iid)
    assert cdn(sb)["requests"] == 2 and len(sleeps) == 1
    if kind == "http_500":
        assert cdn(sb)["by_status"] == {"500": 1, "200": 1}
    else:  # the retry asked for the rest only
        assert cdn(sb)["by_status"] == {"200": 1, "206": 1}
        sent = cdn(sb)["bytes_sent"]
        assert sent == size if kind != "reset" else size <= sent < size + size // 2


@pytest.mark.parametrize(
    ("kind", "reason", "keeps_part"),
    [
        ("http_500", "http_5xx", False),
        ("reset", "network", True),
        ("truncate", "truncated", True),
        ("stall", "stalled", True),
    ],
)
def test_a_fault_that_persists_fails_with_its_reason(sb, make_dl, sleeps, tmp_path, kind, reason, keeps_part):
    num_iid = of_style(sb, "signed")
    sb.set_faults([Fault(kind, "cdn", num_iid=num_iid, seconds=1.0)])
    with pytest.raises(DownloadError) as failed:
        fetch(make_dl(retries=2, **QUICK), sb, num_iid)
    assert failed.value.reason == reason and failed.value.retryable
    assert cdn(sb)["requests"] == 3 and len(sleeps) == 2
    assert "auth_key" not in str(failed.value) and "?" not in failed.value.url
    folder = tmp_path / "videos"
    assert not (folder / f"{num_iid}.mp4").exists()
    if keeps_part:
        part = folder / f"{num_iid}.mp4.part"
        assert part.stat().st_size > 0 and (folder / f"{num_iid}.mp4.part.json").exists()
        kept = part.stat().st_size
        sb.clear_faults()
        result = fetch(make_dl(), sb, num_iid)
        assert_verified(result, sb, num_iid)
        assert result.resumed_from == kept


@pytest.mark.parametrize("kind", ["html_200", "wrong_type"])
def test_pages_are_rejected_and_the_part_deleted(sb, make_dl, tmp_path, kind):
    num_iid = sb.catalogue.sample("video", 1)[0]
    make_part(sb, tmp_path / "videos", num_iid, 100_000)
    sb.set_faults([Fault(kind, "cdn", num_iid=num_iid)])
    with pytest.raises(DownloadError) as rejected:
        fetch(make_dl(), sb, num_iid)
    assert rejected.value.reason == "wrong_type"  # the Content-Type gives both away before any byte is read
    assert ("an HTML page (text/html" if kind == "html_200" else "JSON (application/json") in str(rejected.value)
    assert not rejected.value.retryable
    assert files(tmp_path / "videos") == [] and cdn(sb)["requests"] == 1


def test_expired_fault_on_a_signed_url_is_url_expired(sb, make_dl, tmp_path):
    num_iid = of_style(sb, "signed")
    sb.set_faults([Fault("expired", "cdn", num_iid=num_iid)])
    with pytest.raises(UrlExpired) as expired:
        fetch(make_dl(), sb, num_iid)
    assert "URL expired (HTTP 403); look the item up again" in str(expired.value)
    assert expired.value.reason == "url_expired" and "auth_key" not in str(expired.value)
    assert cdn(sb)["requests"] == 1  # never retried


def test_403_on_a_stable_url_is_forbidden(sb, make_dl):
    num_iid = of_style(sb, "stable")
    sb.set_faults([Fault("expired", "cdn", num_iid=num_iid)])
    with pytest.raises(DownloadError) as refused:
        fetch(make_dl(), sb, num_iid)
    assert refused.value.reason == "forbidden" and not isinstance(refused.value, UrlExpired)


def test_a_really_expired_signed_url_is_url_expired_and_the_part_kept(sb, make_dl, clock, tmp_path):
    num_iid = of_style(sb, "signed")
    make_part(sb, tmp_path / "videos", num_iid, 100_000)
    url = url_of(sb, num_iid)
    clock.advance(sb.config.signed_url_ttl_s + 1)
    with pytest.raises(UrlExpired) as expired:
        make_dl().fetch(url, num_iid=num_iid, name=f"{num_iid}.mp4")
    assert url.split("auth_key=")[1] not in str(expired.value) and "auth_key" not in str(expired.value)
    assert (tmp_path / "videos" / f"{num_iid}.mp4.part").stat().st_size == 100_000
    result = fetch(make_dl(), sb, num_iid)  # a fresh lookup's URL resumes the same .part
    assert_verified(result, sb, num_iid)
    assert result.resumed_from == 100_000


# --- limits -----------------------------------------------------------------------------------------------


def test_size_cap_from_content_length(sb, make_dl, tmp_path):
    num_iid = sb.catalogue.sample("video", 1)[0]
    with pytest.raises(DownloadError) as capped:
        fetch(make_dl(max_bytes=sb.video(num_iid).size - 1), sb, num_iid)
    assert capped.value.reason == "too_large" and files(tmp_path / "videos") == []


def test_deadline_with_an_injected_clock(sb, make_dl, tmp_path):
    ticks = iter(range(0, 10**6, 100))
    num_iid = sb.catalogue.sample("video", 1)[0]
    with pytest.raises(DownloadError) as slow:
        dl = make_dl(retries=0, deadline_s=150, min_speed_bytes_s=0, chunk_size=16384, monotonic=lambda: next(ticks))
        fetch(dl, sb, num_iid)
    assert slow.value.reason == "stalled" and "deadline" in str(slow.value) and slow.value.retryable
    assert (tmp_path / "videos" / f"{num_iid}.mp4.part").stat().st_size > 0


def test_minimum_speed_with_an_injected_clock(sb, make_dl):
    ticks = iter(range(10**6))
    num_iid = sb.catalogue.sample("video", 1)[0]
    dl = make_dl(retries=0, speed_window_s=2, min_speed_bytes_s=10**9, monotonic=lambda: next(ticks))
    with pytest.raises(DownloadError) as slow:
        fetch(dl, sb, num_iid)
    assert slow.value.reason == "stalled" and "below the minimum" in str(slow.value)


# --- a tiny origin for what the sandbox does not do -------------------------------------------------------

MP4_BYTES = b"\x00\x00\x00\x18ftypisom" + bytes(4000)
HTML = b"<!DOCTYPE html><html><body>blocked</body></html>"


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the downloader hangs up on purpose (redirect bodies, rejected pages): no tracebacks


class Origin:
    """A loopback HTTP server: ``routes`` maps a path to (status, headers, body)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.hits: list[str] = []
        self.headers: list[dict[str, str]] = []
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                origin.hits.append(self.path)
                origin.headers.append(dict(self.headers.items()))
                status, headers, body = origin.routes.get(urlsplit(self.path).path, (404, {}, b"no"))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if "Content-Length" not in headers:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def add(self, path: str, status: int, body: bytes = b"", **headers: str) -> str:
        headers = {k.replace("_", "-"): v for k, v in headers.items()}
        headers.setdefault("Content-Length", str(len(body)))
        self.routes[path] = (status, {k: v for k, v in headers.items() if v != "-"}, body)
        return self.url + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def origin() -> Iterator[Origin]:
    server = Origin()
    yield server
    server.close()


def test_redirect_to_a_host_not_allowed_is_refused(sb, make_dl, origin, tmp_path):
    num_iid = of_style(sb, "signed")
    target = url_of(sb, num_iid).replace("127.0.0.1", "localhost")
    url = origin.add("/go", 302, Location=target)
    with pytest.raises(DownloadError) as refused:
        make_dl().fetch(url + "?auth_key=" + SECRET_KEY, num_iid=num_iid, name="x.mp4")
    assert refused.value.reason == "host_not_allowed" and "'localhost'" in str(refused.value)
    assert "auth_key" not in str(refused.value) and SECRET_KEY not in str(refused.value)
    assert cdn(sb)["requests"] == 0 and files(tmp_path / "videos") == []


def test_a_host_not_allowed_gets_no_request(sb, make_dl, tmp_path):
    num_iid = sb.catalogue.sample("video", 1)[0]
    with pytest.raises(DownloadError) as refused:
        fetch(make_dl(allowed_hosts=("*.alicdn.com", "localhost")), sb, num_iid)
    assert refused.value.reason == "host_not_allowed" and "'127.0.0.1'" in str(refused.value)
    assert cdn(sb)["requests"] == 0


def test_schemes_other_than_http_are_refused(make_dl, origin):
    with pytest.raises(DownloadError) as refused:
        make_dl().fetch("ftp://127.0.0.1/v.mp4", num_iid=1, name="v.mp4")
    assert refused.value.reason == "bad_scheme" and "'ftp'" in str(refused.value)
    url = origin.add("/to-ftp", 301, Location="ftp://127.0.0.1/v.mp4")
    with pytest.raises(DownloadError) as hop:
        make_dl().fetch(url, num_iid=1, name="v.mp4")
    assert hop.value.reason == "bad_scheme"


def test_request_headers(make_dl, origin):
    url = origin.add("/video.mp4", 200, MP4_BYTES, Content_Type="video/mp4")
    make_dl(user_agent="UA/1", referer="https://item.taobao.com/").fetch(url, num_iid=7, name="7.mp4")
    sent = origin.headers[0]
    assert sent["User-Agent"] == "UA/1" and sent["Referer"] == "https://item.taobao.com/"
    assert sent["Accept-Encoding"] == "identity" and "Range" not in sent


def test_relative_redirects_are_followed_and_limited(make_dl, origin):
    origin.add("/video.mp4", 200, MP4_BYTES, Content_Type="application/octet-stream")
    url = origin.add("/a/start", 302, Location="../video.mp4?sig=abc")
    result = make_dl().fetch(url, num_iid=7, name="7.mp4")
    assert result.final_url == origin.url + "/video.mp4" and result.path.read_bytes() == MP4_BYTES
    loop = origin.add("/loop", 307, Location="/loop")
    with pytest.raises(DownloadError) as looping:
        make_dl().fetch(loop, num_iid=7, name="8.mp4")
    assert looping.value.reason == "too_many_redirects" and origin.hits.count("/loop") == 6


@pytest.mark.parametrize(
    ("content_type", "reason", "said"),
    [
        ("text/plain", "wrong_type", "text (text/plain)"),
        ("application/xml", "wrong_type", "XML (application/xml)"),
        ("application/problem+json", "wrong_type", "JSON (application/problem+json)"),
        ("application/xhtml+xml", "wrong_type", "an HTML page (application/xhtml+xml)"),
    ],
)
def test_content_types_refused_before_reading(make_dl, origin, content_type, reason, said):
    url = origin.add("/v.mp4", 200, MP4_BYTES, Content_Type=content_type)
    with pytest.raises(DownloadError) as rejected:
        make_dl().fetch(url, num_iid=1, name="v.mp4")
    assert rejected.value.reason == reason and said in str(rejected.value)
    gz = origin.add("/gz.mp4", 200, MP4_BYTES, Content_Type="video/mp4", Content_Encoding="gzip")
    with pytest.raises(DownloadError) as compressed:
        make_dl().fetch(gz, num_iid=1, name="v.mp4")
    assert compressed.value.reason == "wrong_type" and "gzip" in str(compressed.value)


@pytest.mark.parametrize(
    ("body", "content_type", "said"),
    [
        (HTML, "application/octet-stream", "an HTML page (application/octet-stream)"),
        (b'{"code": "FAIL"}', "video/mp4", "JSON (video/mp4)"),
        (b"\xff\xd8\xff\xe0" + bytes(100), "-", "a JPEG image (no Content-Type)"),
        (b"", "video/mp4", "an empty body"),
    ],
)
def test_bodies_that_are_not_mp4_are_rejected(make_dl, origin, tmp_path, body, content_type, said):
    url = origin.add("/v.mp4", 200, body, Content_Type=content_type)
    with pytest.raises(DownloadError) as rejected:
        make_dl().fetch(url, num_iid=1, name="v.mp4")
    assert rejected.value.reason == "not_mp4" and said in str(rejected.value)
    assert files(tmp_path / "videos") == []


def test_size_cap_while_reading_a_body_without_length(make_dl, origin, tmp_path):
    url = origin.add("/big.mp4", 200, MP4_BYTES * 10, Content_Type="video/mp4", Content_Length="-")
    with pytest.raises(DownloadError) as capped:
        make_dl(max_bytes=len(MP4_BYTES) * 3).fetch(url, num_iid=1, name="v.mp4")
    assert capped.value.reason == "too_large" and files(tmp_path / "videos") == []
    assert make_dl().fetch(url, num_iid=1, name="v.mp4").size == len(MP4_BYTES) * 10  # read to EOF


def test_a_body_shorter_than_the_hint_is_truncated(make_dl, origin, tmp_path):
    url = origin.add("/short.mp4", 200, MP4_BYTES, Content_Type="video/mp4", Content_Length="-")
    with pytest.raises(DownloadError) as short:
        make_dl(retries=1).fetch(url, num_iid=1, name="v.mp4", expected_size=len(MP4_BYTES) + 10)
    assert short.value.reason == "truncated" and short.value.retryable and len(origin.hits) == 2


@pytest.mark.parametrize(
    ("status", "reason", "retryable"),
    [
        (404, "gone", False),
        (410, "gone", False),
        (403, "forbidden", False),
        (400, "http_4xx", False),
        (429, "http_5xx", True),
        (503, "http_5xx", True),
        (204, "bad_status", False),
        (302, "bad_redirect", False),
    ],
)
def test_status_table(make_dl, origin, status, reason, retryable):
    url = origin.add("/s.mp4", status, b"x", Content_Type="text/plain")
    with pytest.raises(DownloadError) as failed:
        make_dl(retries=1).fetch(url, num_iid=1, name="v.mp4")
    assert (failed.value.reason, failed.value.retryable) == (reason, retryable)
    assert len(origin.hits) == (2 if retryable else 1)


def test_status_error_on_signed_urls():
    error = status_error(403, f"https://tbm-auth.alicdn.com/a/b.mp4?auth_key={SECRET_KEY}")
    assert isinstance(error, UrlExpired) and SECRET_KEY not in str(error) and "?" not in error.url
    assert status_error(403, "https://cloud.video.taobao.com/play/u/1/p/1/e/6/t/1/2.mp4").reason == "forbidden"


def test_network_errors_never_show_the_query(make_dl, caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/cdn/auth/1.mp4?auth_key={SECRET_KEY}"
    with caplog.at_level(logging.DEBUG), pytest.raises(DownloadError) as failed:
        make_dl(retries=2).fetch(url, num_iid=1, name="v.mp4")
    assert failed.value.reason == "network" and failed.value.retryable
    assert "Connection" in str(failed.value) and "/cdn/auth/1.mp4" in str(failed.value)
    for text in [str(failed.value), failed.value.url, caplog.text]:
        assert SECRET_KEY not in text and "auth_key" not in text
    assert caplog.text.count("retrying") == 2


# --- pure helpers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "patterns", "allowed"),
    [
        ("a.alicdn.com", ["*.alicdn.com"], True),
        ("a.b.alicdn.com", ["*.alicdn.com"], True),
        ("TBM-AUTH.AliCDN.com", ["*.alicdn.com"], True),
        ("a.alicdn.com.", ["*.alicdn.com"], True),
        ("alicdn.com", ["*.alicdn.com"], False),
        ("alicdn.com.evil.com", ["*.alicdn.com"], False),
        ("evilalicdn.com", ["*.alicdn.com"], False),
        ("a.alicdn.com.evil.com", ["*.alicdn.com"], False),
        ("127.0.0.1", ["127.0.0.1"], True),
        ("127.0.0.10", ["127.0.0.1"], False),
        ("localhost", ["127.0.0.1"], False),
        ("cloud.video.taobao.com", ["*.alicdn.com", "*.taobao.com"], True),
        ("", ["*.alicdn.com"], False),
        ("x.com", [], False),
        ("x.com", [""], False),
    ],
)
def test_host_allowed_table(host, patterns, allowed):
    assert host_allowed(host, patterns) is allowed


LABEL = st.from_regex(r"[a-z0-9][a-z0-9-]{0,10}", fullmatch=True)


@given(subs=st.lists(LABEL, min_size=1, max_size=3), tail=st.lists(LABEL, min_size=1, max_size=2))
def test_host_allowed_properties(subs, tail):
    sub = ".".join(subs)
    assert host_allowed(f"{sub}.alicdn.com", ["*.alicdn.com"])
    assert host_allowed(f"{sub}.ALICDN.com".upper(), ["*.alicdn.com"])
    assert not host_allowed(f"{sub}.alicdn.com.{'.'.join(tail)}", ["*.alicdn.com"])
    assert not host_allowed(f"{sub}alicdn.com", ["*.alicdn.com"])
    assert not host_allowed(f"{sub}.alicdn.com", [f"{sub}.alicdn.co"])


def test_parse_content_range():
    assert parse_content_range("bytes 10-19/100") == (10, 19, 100)
    assert parse_content_range("bytes */100") == (None, None, 100)
    assert parse_content_range("bytes 0-9/*") == (0, 9, None)
    assert parse_content_range("items 0-9/10") is None and parse_content_range("") is None


# --- threads ----------------------------------------------------------------------------------------------


def test_eight_threads_sixteen_items_one_downloader(sb, make_dl):
    ids = sb.catalogue.sample("video", 16)
    dl = make_dl(workers=8)
    seen: dict[int, int] = dict.fromkeys(ids, 0)
    lock = threading.Lock()

    def one(num_iid: int) -> DownloadResult:
        def progress(n: int) -> None:
            with lock:
                seen[num_iid] += n

        return fetch(dl, sb, num_iid, on_progress=progress)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, ids))
    for num_iid, result in zip(ids, results, strict=True):
        assert result.sha256 == sb.video(num_iid).sha256() and result.size == seen[num_iid]
        assert hashlib.sha256(result.path.read_bytes()).hexdigest() == result.sha256
    assert files(results[0].path.parent) == sorted(f"{i}.mp4" for i in ids)
    assert cdn(sb)["requests"] == 16


def test_the_same_file_twice_at_once_is_refused(sb, make_dl):
    num_iid = sb.catalogue.sample("video", 1)[0]
    dl = make_dl()
    inner: list[BaseException] = []

    def nested(_: int) -> None:
        if not inner:
            try:
                fetch(dl, sb, num_iid)
            except DownloadError as exc:
                inner.append(exc)

    assert_verified(fetch(dl, sb, num_iid, on_progress=nested), sb, num_iid)
    assert isinstance(inner[0], DownloadError) and inner[0].reason == "busy"
