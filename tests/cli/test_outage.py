"""A gateway outage through the CLI, as a user meets it: the quota ledger equals what the platform counted, the run
stops within seconds with exit 75 ("gateway unreachable since …"), and a rerun loses nothing."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from helpers.cli import run

from conftest import APP_KEY, CANARY_SECRET, free_port_url
from taobao_video.sandbox import AppConfig, Sandbox, SandboxConfig
from taobao_video.top.tokens import Token, TokenStore


def write_settings(folder: Path, sb: Sandbox, *, gateway_url: str | None = None, qps: float = 1000) -> Path:
    """Settings for a fast-failing run shaped like the defaults (the breaker opens on a call's last attempt, so
    the id that meets the outage is deferred, not failed): 3 attempts per call, 3 answerless ones open the
    breaker; no download retries (the CDN is down too); a token from the sandbox."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "settings.toml"
    path.write_text(
        "[taobao]\n"
        f'gateway_url = "{gateway_url or sb.gateway_url}"\n'
        f'oauth_url = "{sb.oauth_url}"\n'
        'token_file = "token.json"\n'
        "max_retries = 2\n"
        "breaker_failures = 3\n"
        "[download]\n"
        'dir = "videos"\n'
        'allowed_hosts = ["127.0.0.1"]\n'
        "workers = 2\n"
        "retries = 0\n"
        "[harvest]\n"
        f"qps = {qps}\n"
        'lock_file = "harvest.lock"\n'
        '[database]\nurl = "sqlite:///catalog.sqlite3"\n'
    )
    body = sb.issue_token(app_key=APP_KEY)
    TokenStore(folder / "token.json").save(Token.from_response(body, now=datetime.now(UTC), grant="authorization_code"))
    return path


def quota_used(config: Path, capsys, monkeypatch) -> int:
    code, out, _ = run(["--config", str(config), "quota", "status", "--json"], capsys, monkeypatch)
    assert code == 0
    return int(json.loads(out)["used"])


def item_states(folder: Path) -> dict[int, str]:
    db = sqlite3.connect(folder / "catalog.sqlite3")
    try:
        return dict(db.execute("SELECT num_iid, state FROM items").fetchall())
    finally:
        db.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_dead_gateway_costs_nothing_and_defers_everything(live, tmp_path, capsys, monkeypatch):
    ids = live.catalogue.sample_mixed(8)
    dead = write_settings(tmp_path, live, gateway_url=free_port_url())
    started = time.monotonic()
    code, out, err = run(["--config", str(dead), "harvest", *map(str, ids)], capsys, monkeypatch)
    took = time.monotonic() - started
    assert code == 75, err
    assert "gateway unreachable since" in err and "nothing lost, run again later" in err
    assert "Stopped: the gateway is unreachable since" in out and f"{len(ids)} ids deferred, nothing lost" in out
    assert sum(1 for line in out.splitlines() if line.endswith(" deferred") or " deferred  " in line) == len(ids)
    assert quota_used(dead, capsys, monkeypatch) == 0
    assert set(item_states(tmp_path).values()) == {"pending"}
    assert took < 10, f"the run took {took:.1f} s to notice the outage"

    live_config = write_settings(tmp_path, live)  # the same folder, the gateway back
    code, out, err = run(["--config", str(live_config), "harvest", "--json", *map(str, ids)], capsys, monkeypatch)
    summary = json.loads(out.splitlines()[-1])
    assert code == 0, err
    assert summary["deferred"] == 0 and summary["api_calls"] == len(ids) == live.stats()["gateway"]["calls"]
    assert summary["downloaded"] + summary["no_video"] + summary["not_found"] == len(ids)
    assert quota_used(live_config, capsys, monkeypatch) == len(ids)


def test_the_json_summary_says_why_it_stopped(live, tmp_path, capsys, monkeypatch):
    config = write_settings(tmp_path, live, gateway_url=free_port_url())
    ids = live.catalogue.sample_mixed(4)
    code, out, _ = run(["--config", str(config), "harvest", "--json", *map(str, ids)], capsys, monkeypatch)
    events = [json.loads(line) for line in out.splitlines()]
    summary = events[-1]
    assert code == 75
    assert summary["stopped"] == "gateway_unreachable" and summary["deferred"] == 4 and summary["api_calls"] == 0
    assert summary["unreachable_since"] is not None
    stop = next(event for event in events if event["event"] == "stop")
    assert stop["reason"] == "gateway_unreachable" and stop["detail"].startswith("gateway unreachable since")


def test_the_sandbox_stopped_mid_run_ledger_equals_the_platform_count(tmp_path, capsys, monkeypatch):
    config = SandboxConfig(seed=9, apps=(AppConfig(key=APP_KEY, secret=CANARY_SECRET),), video_bytes=(40_000, 90_000))
    sb = Sandbox(config, port=free_port()).start()  # a fixed port, so the restarted sandbox serves the same URLs
    try:
        ids = sb.catalogue.sample_mixed(30)
        settings = write_settings(tmp_path, sb, qps=5)  # paced, so the stop lands between two calls
        counted: list[int] = []
        stopped_at: list[float] = []

        def outage() -> None:
            while sb.stats()["gateway"]["calls"] < 6:
                time.sleep(0.005)
            time.sleep(0.05)  # let the sixth answer and its download finish
            sb.stop()
            stopped_at.append(time.monotonic())
            counted.append(sb.stats()["gateway"]["calls"])

        watcher = threading.Thread(target=outage, daemon=True)
        watcher.start()
        code, out, err = run(["--config", str(settings), "harvest", "--json", *map(str, ids)], capsys, monkeypatch)
        ended = time.monotonic()
        watcher.join(10)
        summary = json.loads(out.splitlines()[-1])
        assert code == 75, err
        assert summary["stopped"] == "gateway_unreachable"
        assert ended - stopped_at[0] < 10, "the run should end within seconds of the outage"
        assert quota_used(settings, capsys, monkeypatch) == counted[0] == summary["api_calls"]
        done_so_far = {i for i, state in item_states(tmp_path).items() if state != "pending"}
        assert summary["deferred"] >= len(ids) - len(done_so_far) > 0

        sb.start()  # the gateway is back: the rerun finishes everything, asking only about what was not asked
        settings = write_settings(tmp_path, sb)  # unpaced
        code, out, err = run(["--config", str(settings), "harvest", "--json", *map(str, ids)], capsys, monkeypatch)
        rerun = json.loads(out.splitlines()[-1])
        assert code == 0, err
        assert rerun["deferred"] == 0 and rerun["failed"] == 0
        assert rerun["api_calls"] == len(ids) - counted[0]
        assert quota_used(settings, capsys, monkeypatch) == sb.stats()["gateway"]["calls"] == len(ids)
        states = item_states(tmp_path)
        assert set(states) == set(ids) and set(states.values()) <= {"done", "no_video", "not_found"}
        videos = sorted(p.name for p in (tmp_path / "videos").iterdir())
        assert videos == sorted(f"{i}.mp4" for i, state in states.items() if state == "done")
    finally:
        sb.stop()
