"""The sandbox CDN: exact bytes, HEAD, Range/If-Range, signed URL expiry, covers, and every CDN fault."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest
import requests
from helpers.sandbox import gateway_call, gateway_params, signed

from taobao_video.sandbox import Fault, Sandbox, SandboxConfig


def lookup(sb: Sandbox, num_iid: int) -> dict:
    session = sb.issue_token()["access_token"]
    form = signed(gateway_params(sb, session, num_iid=str(num_iid), fields="url,cover_url,duration,width,height"))
    return gateway_call(sb, form)["item_video_response"]["video"]


def of_style(sb: Sandbox, style: str) -> int:
    return next(i for i in sb.catalogue.sample("video", 60) if sb.catalogue.item(i).url_style == style)


@pytest.fixture
def stable(sb: Sandbox) -> tuple[int, str]:
    num_iid = of_style(sb, "stable")
    return num_iid, lookup(sb, num_iid)["url"]


def test_full_get_is_the_items_video(sb, stable):
    num_iid, url = stable
    response = requests.get(url, timeout=10)
    video = sb.video(num_iid)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "video/mp4"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert int(response.headers["Content-Length"]) == video.size == sb.catalogue.item(num_iid).size_bytes
    assert hashlib.sha256(response.content).hexdigest() == video.sha256()
    assert response.content[4:8] == b"ftyp"
    assert response.headers["ETag"].startswith('"') and response.headers["Last-Modified"].endswith("GMT")


def test_head(sb, stable):
    num_iid, url = stable
    response = requests.head(url, timeout=10)
    assert response.status_code == 200 and response.content == b""
    assert int(response.headers["Content-Length"]) == sb.video(num_iid).size
    assert response.headers["ETag"] == requests.get(url, timeout=10).headers["ETag"]


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-", 1000, None),
        ("bytes=-50", -50, None),
        ("bytes=10-99999999", 10, None),
    ],
)
def test_ranges(sb, stable, header, first, last):
    num_iid, url = stable
    video = sb.video(num_iid)
    size = video.size
    first = first % size
    last = size - 1 if last is None else last
    response = requests.get(url, headers={"Range": header}, timeout=10)
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
    assert int(response.headers["Content-Length"]) == last - first + 1
    assert response.content == video.read(first, last - first + 1)


def test_unsatisfiable_and_multiple_ranges(sb, stable):
    num_iid, url = stable
    size = sb.video(num_iid).size
    response = requests.get(url, headers={"Range": f"bytes={size}-"}, timeout=10)
    assert response.status_code == 416 and response.headers["Content-Range"] == f"bytes */{size}"
    response = requests.get(url, headers={"Range": "bytes=0-9,20-29"}, timeout=10)
    assert response.status_code == 200 and len(response.content) == size


def test_if_range(sb, stable):
    _, url = stable
    etag = requests.head(url, timeout=10).headers["ETag"]
    same = requests.get(url, headers={"Range": "bytes=5-9", "If-Range": etag}, timeout=10)
    assert same.status_code == 206 and len(same.content) == 5
    changed = requests.get(url, headers={"Range": "bytes=5-9", "If-Range": '"other"'}, timeout=10)
    assert changed.status_code == 200 and "Content-Range" not in changed.headers


def test_signed_url_expires_and_cannot_be_forged(sb, clock):
    num_iid = of_style(sb, "signed")
    url = lookup(sb, num_iid)["url"]
    assert "/cdn/auth/" in url and "auth_key=" in url
    assert hashlib.sha256(requests.get(url, timeout=10).content).hexdigest() == sb.video(num_iid).sha256()
    forged = url[:-1] + ("0" if url[-1] != "0" else "1")
    assert requests.get(forged, timeout=10).status_code == 403
    assert requests.get(url.split("?")[0], timeout=10).status_code == 403
    clock.advance(3601)
    expired = requests.get(url, timeout=10)
    assert expired.status_code == 403 and "expired" in expired.text
    assert requests.get(lookup(sb, num_iid)["url"], timeout=10).status_code == 200  # look it up again


def test_unknown_paths_are_404(sb, stable):
    num_iid, url = stable
    item = sb.catalogue.item(num_iid)
    assert requests.get(url.replace(f"/u/{item.owner_id}/", "/u/1/"), timeout=10).status_code == 404
    assert requests.get(f"{sb.url}/cdn/play/u/1/p/1/e/6/t/1/123.mp4", timeout=10).status_code == 404
    no_video = sb.catalogue.sample("no_video", 1)[0]
    video_id = sb.catalogue.video_id_for(no_video)
    assert requests.get(f"{sb.url}/cdn/auth/{video_id}.mp4", timeout=10).status_code == 404
    assert requests.get(f"{sb.url}/cdn/nothing", timeout=10).status_code == 404
    assert requests.post(url, timeout=10).status_code == 405


def test_cover_and_picture(sb, stable):
    num_iid, _ = stable
    cover = requests.get(lookup(sb, num_iid)["cover_url"], timeout=10)
    assert cover.status_code == 200 and cover.headers["Content-Type"] == "image/jpeg"
    assert cover.content[:2] == b"\xff\xd8" and cover.content[-2:] == b"\xff\xd9"
    assert cover.content == sb.catalogue.cover(num_iid)
    assert requests.get(f"{sb.url}/cdn/pic/{num_iid}.jpg", timeout=10).status_code == 200
    missing = sb.catalogue.sample("not_found", 1)[0]
    assert requests.get(f"{sb.url}/cdn/pic/{missing}.jpg", timeout=10).status_code == 404


def test_stats_count_bytes_exactly(sb, stable):
    num_iid, url = stable
    sb.reset_stats()
    size = len(requests.get(url, timeout=10).content)
    requests.get(url, headers={"Range": "bytes=0-9"}, timeout=10)
    requests.head(url, timeout=10)
    cdn = sb.stats()["cdn"]
    assert cdn == {
        "requests": 3,
        "bytes_sent": size + 10,
        "by_item": {str(num_iid): 3},
        "by_status": {"200": 2, "206": 1},
    }


# --- faults ----------------------------------------------------------------------------------------------


def raw_get(url: str) -> tuple[bytes, bytes, BaseException | None]:
    """Headers, body and the error that ended the read (None on a clean EOF), over a bare socket."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as conn:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
        data, error = b"", None
        try:
            while chunk := conn.recv(65536):
                data += chunk
        except OSError as exc:
            error = exc
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body, error


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    raise AssertionError("no Content-Length")


def test_fault_reset(sb, stable):
    num_iid, url = stable
    sb.set_faults([Fault("reset", "cdn", num_iid=num_iid)])
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        requests.get(url, timeout=10)
    head, body, error = raw_get(url)
    assert isinstance(error, ConnectionResetError)
    assert b" 200 " in head.split(b"\r\n")[0] and len(body) < content_length(head)


def test_fault_truncate(sb, stable):
    num_iid, url = stable
    sb.set_faults([Fault("truncate", "cdn", num_iid=num_iid, times=1)])
    head, body, error = raw_get(url)
    assert error is None and len(body) == content_length(head) // 2
    assert requests.get(url, timeout=10).status_code == 200  # times=1: spent


def test_fault_stall_times_out_a_short_read_timeout_then_resumes(sb, stable):
    num_iid, url = stable
    sb.set_faults([Fault("stall", "cdn", num_iid=num_iid, times=1, seconds=1.5)])
    with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        requests.get(url, timeout=(5, 0.3))
    sb.set_faults([Fault("stall", "cdn", num_iid=num_iid, times=1, seconds=0.3)])
    started = time.monotonic()
    response = requests.get(url, timeout=(5, 5))
    assert time.monotonic() - started >= 0.3
    assert hashlib.sha256(response.content).hexdigest() == sb.video(num_iid).sha256()


def test_stall_does_not_block_stop(clock):
    sb = Sandbox(SandboxConfig(clock=clock.now, faults=(Fault("stall", "cdn", seconds=60),))).start()
    num_iid = sb.catalogue.sample("video", 1)[0]
    url = sb.urls.video_url(sb.catalogue.item(num_iid), sb.now())
    reader = threading.Thread(target=raw_get, args=(url,), daemon=True)
    reader.start()
    time.sleep(0.3)
    started = time.monotonic()
    sb.stop()
    assert time.monotonic() - started < 3
    reader.join(5)
    assert not reader.is_alive()


@pytest.mark.parametrize(
    ("kind", "status", "content_type"),
    [
        ("http_500", 500, "text/html"),
        ("html_200", 200, "text/html"),
        ("expired", 403, "text/plain"),
        ("wrong_type", 200, "application/json"),
    ],
)
def test_fault_pages(sb, stable, kind, status, content_type):
    num_iid, url = stable
    sb.set_faults([Fault(kind, "cdn", num_iid=num_iid)])
    response = requests.get(url, timeout=10)
    assert response.status_code == status and response.headers["Content-Type"].startswith(content_type)
    assert response.content[4:8] != b"ftyp"
    other = lookup(sb, of_style(sb, "signed"))["url"]
    assert requests.get(other, timeout=10).status_code == 200  # the num_iid filter spares other items


def test_fault_no_range(sb, stable):
    num_iid, url = stable
    sb.set_faults([Fault("no_range", "cdn")])
    response = requests.get(url, headers={"Range": "bytes=0-9"}, timeout=10)
    assert response.status_code == 200 and len(response.content) == sb.video(num_iid).size


def test_admin_fault_endpoints(sb, stable):
    _, url = stable
    plan = [{"kind": "http_500", "target": "cdn", "times": 2}]
    response = requests.post(sb.url + "/_sandbox/faults", json=plan, timeout=10)
    assert response.status_code == 200 and response.json()["faults"][0]["kind"] == "http_500"
    assert [requests.get(url, timeout=10).status_code for _ in range(3)] == [500, 500, 200]
    requests.post(sb.url + "/_sandbox/faults", json=plan, timeout=10)
    assert requests.delete(sb.url + "/_sandbox/faults", timeout=10).json() == {"faults": []}
    assert requests.get(url, timeout=10).status_code == 200
    bad = requests.post(sb.url + "/_sandbox/faults", json=[{"kind": "nope"}], timeout=10)
    assert bad.status_code == 400 and "nope" in bad.json()["error"]
