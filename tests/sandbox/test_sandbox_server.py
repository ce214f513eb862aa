"""The sandbox server: lifecycle, keep-alive, admin endpoints, a 1 GiB stream, the ``sandbox serve`` CLI."""

from __future__ import annotations

import hashlib
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from click.testing import CliRunner

from taobao_video.sandbox import FakeClock, Sandbox, SandboxConfig
from taobao_video.sandbox.cli import build_config, parse_byte_range, parse_fault, sandbox, serve
from taobao_video.top.signing import sign


def test_start_stop_many_without_leaking_threads():
    before = set(threading.enumerate())
    for _ in range(15):
        with Sandbox() as sb:
            session = requests.Session()
            session.get(sb.url + "/_sandbox/stats", timeout=5)  # leaves a keep-alive connection open
            assert sb.url.startswith("http://127.0.0.1:")
        session.close()
    assert set(threading.enumerate()) - before == set()
    sb.stop()  # stopping twice is harmless


def test_stop_drops_idle_keep_alive_connections():
    sb = Sandbox().start()
    session = requests.Session()
    session.get(sb.url + "/_sandbox/stats", timeout=5)
    started = time.monotonic()
    sb.stop()
    assert time.monotonic() - started < 2
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(sb.urls.base + "/_sandbox/stats", timeout=2)


def test_fixed_port_and_restart():
    first = Sandbox().start()
    port = first.port
    first.stop()
    with Sandbox(port=port) as again:
        assert again.port == port
        assert requests.get(again.url + "/", timeout=5).status_code == 200
    with pytest.raises(RuntimeError):
        _ = again.url


def test_keep_alive_one_connection_for_many_calls():
    with Sandbox() as sb, requests.Session() as session:
        for _ in range(20):
            assert session.post(sb.gateway_url, data={"app_key": "x"}, timeout=5).status_code == 200
        pools = session.get_adapter(sb.url).poolmanager.pools
        assert [pools[key].num_connections for key in pools.keys()] == [1]


def test_concurrent_calls_are_counted_exactly():
    with Sandbox() as sb:

        def hammer() -> None:
            with requests.Session() as session:
                for _ in range(25):
                    session.post(sb.gateway_url, data={"app_key": "test", "format": "json"}, timeout=5)

        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = sb.stats()
        assert stats["gateway"]["calls"] == 200 and stats["quota"]["test"]
        assert sum(stats["quota"]["test"].values()) == 200


def test_admin_endpoints():
    clock = FakeClock(datetime(2026, 11, 22, 4, 0, tzinfo=UTC))
    with Sandbox(SandboxConfig(seed=4, clock=clock.now)) as sb:
        items = requests.get(sb.url + "/_sandbox/items", params={"kind": "video", "n": 3}, timeout=5).json()
        assert items == {"kind": "video", "num_iids": sb.catalogue.sample("video", 3)}
        mixed = requests.get(sb.url + "/_sandbox/items?kind=mixed&n=4", timeout=5).json()["num_iids"]
        assert mixed == sb.catalogue.sample_mixed(4)
        facts = requests.get(f"{sb.url}/_sandbox/item/{items['num_iids'][0]}", timeout=5).json()
        assert facts["kind"] == "video" and facts["sha256"] == sb.video(items["num_iids"][0]).sha256()
        assert facts["video_url"].startswith(sb.url + "/cdn/")
        no_video = sb.catalogue.sample("no_video", 1)[0]
        assert "sha256" not in requests.get(f"{sb.url}/_sandbox/item/{no_video}", timeout=5).json()
        moved = requests.post(sb.url + "/_sandbox/clock", json={"offset_s": 3600}, timeout=5).json()
        assert moved["now"] == "2026-11-22T05:00:00+00:00" and sb.now() == clock.now() + timedelta(hours=1)
        requests.post(sb.url + "/_sandbox/clock", json={"offset_s": 0}, timeout=5)
        assert requests.post(sb.url + "/_sandbox/reset", timeout=5).json() == {"ok": True}
        assert sb.stats()["cdn"]["requests"] == 0
        assert requests.get(sb.url + "/_sandbox/nothing", timeout=5).status_code == 404
        assert requests.post(sb.url + "/_sandbox/quota", data=b"{", timeout=5).status_code == 400
        assert requests.get(sb.url + "/_sandbox/items?kind=bogus", timeout=5).status_code == 400
        assert requests.get(sb.url + "/nowhere", timeout=5).status_code == 404


def test_date_header_follows_the_sandbox_clock():
    clock = FakeClock(datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))
    with Sandbox(SandboxConfig(clock=clock.now)) as sb:
        assert requests.get(sb.url + "/", timeout=5).headers["Date"] == "Wed, 02 Jan 2030 03:04:05 GMT"


def test_one_gib_video_streams_in_constant_memory():
    clock = FakeClock(datetime(2026, 11, 22, 4, 0, tzinfo=UTC))
    target = 526_000_000_001
    config = SandboxConfig(seed=1, clock=clock.now, video_size_override={target: 1 << 30})
    with Sandbox(config) as sb:
        item = sb.catalogue.item(target)
        url = sb.urls.video_url(item, sb.now())
        video = sb.video(target)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        size, head, tail = 0, b"", b""
        with requests.get(url, stream=True, timeout=30) as response:
            assert int(response.headers["Content-Length"]) == 1 << 30
            for chunk in response.iter_content(1 << 20):
                if not head:
                    head = chunk[:4096]
                tail = (tail + chunk)[-4096:]
                size += len(chunk)
        assert size == 1 << 30
        assert head == video.read(0, 4096) and tail == video.read((1 << 30) - 4096, 4096)
        growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
        assert growth_kib < 100 * 1024, f"RSS grew by {growth_kib} KiB"
        assert sb.stats()["cdn"]["bytes_sent"] == 1 << 30


# --- the CLI ----------------------------------------------------------------------------------------------


def test_parse_fault_and_byte_range():
    assert parse_fault("reset").target == "cdn"
    assert parse_fault("isp_error").target == "gateway"
    fault = parse_fault("http_500:cdn:0.5:3")
    assert (fault.kind, fault.target, fault.rate, fault.times) == ("http_500", "cdn", 0.5, 3)
    assert parse_fault("stall:cdn:::2.5").seconds == 2.5
    with pytest.raises(ValueError):
        parse_fault("reset:gateway")
    assert parse_byte_range("64K-512K") == (65536, 524288)
    assert parse_byte_range("1M-1G") == (1 << 20, 1 << 30)
    assert parse_byte_range("1000") == (1000, 1000)


def test_cli_options_build_the_config():
    ctx = serve.make_context("serve", ["--no-item-video", "--seed", "9", "--daily-limit", "0", "--no-session"])
    config = build_config(ctx.params)
    (app,) = config.apps
    assert config.seed == 9 and not config.require_session and app.daily_limit is None
    seller = {"taobao.items.seller.list.get", "alibaba.video.query"}  # the seller channel is always offered
    assert app.methods == {"taobao.item.get", *seller} and "taobao.item_video" in config.platform_methods
    ctx = serve.make_context("serve", ["--without-item-video-api", "--fault", "reset::0.5", "--video-bytes", "1M-2M"])
    config = build_config(ctx.params)
    assert config.platform_methods == {"taobao.item.get", *seller} and config.apps[0].daily_limit == 1000
    assert config.faults[0].rate == 0.5 and config.video_bytes == (1 << 20, 2 << 20)


def test_cli_refuses_other_hosts_and_bad_faults():
    runner = CliRunner()
    result = runner.invoke(sandbox, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "127.0.0.1" in result.output
    result = runner.invoke(sandbox, ["serve", "--fault", "explode"])
    assert result.exit_code == 2 and "explode" in result.output
    assert "Run the local Taobao emulator" in runner.invoke(sandbox, ["--help"]).output


def test_cli_serve_answers_and_stops_on_sigterm():
    code = "from taobao_video.sandbox.cli import sandbox; sandbox()"
    args = [
        sys.executable,
        "-c",
        code,
        "serve",
        "--port",
        "0",
        "--seed",
        "3",
        "--daily-limit",
        "5",
        "--qps",
        "50",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", first)
        assert match, first
        url = match[0]
        rest = [process.stdout.readline()]
        while rest[-1] and "TAOBAO_APP_SECRET" not in rest[-1]:
            rest.append(process.stdout.readline())
        assert f'gateway_url = "{url}/router/rest"' in "".join(rest)
        assert "TAOBAO_APP_SECRET=test" in "".join(rest)
        token = requests.post(url + "/_sandbox/token", json={}, timeout=5).json()["access_token"]
        num_iid = requests.get(url + "/_sandbox/items?n=1", timeout=5).json()["num_iids"][0]
        params = {
            "method": "taobao.item_video",
            "app_key": "test",
            "v": "2.0",
            "format": "json",
            "sign_method": "hmac",
            "timestamp": (datetime.now(UTC) + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S"),
            "session": token,
            "num_iid": str(num_iid),
        }
        body = requests.post(url + "/router/rest", data={**params, "sign": sign(params, "test", "hmac")}, timeout=5)
        video_url = body.json()["item_video_response"]["video"]["url"]
        assert hashlib.sha256(requests.get(video_url, timeout=5).content).hexdigest()
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "sandbox stopped" in err
