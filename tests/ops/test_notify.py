"""`[notify]`: one Apprise message at the end of a harvest or daily run, posted to a loopback JSON receiver; a
notifier that hangs or fails never changes the run's exit code; `token_expiring` once a quota day in the window."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers.cli import run, write_settings
from helpers.receiver import json_receiver, silent_receiver
from prometheus_client.parser import text_string_to_metric_families

from conftest import APP_KEY, CANARY_SECRET, START
from taobao_video.config.load import load_settings
from taobao_video.ops.notify import RunEnd, Watch, compose, happened
from taobao_video.sandbox import AppConfig, FakeClock, Fault, Sandbox, SandboxConfig
from taobao_video.top.tokens import Token, TokenStore


def notify_toml(*urls: str, on: str = '["failure", "auth", "quota_platform", "token_expiring"]', timeout: int = 5):
    listed = ", ".join(f'"{url}"' for url in urls)
    return f"[notify]\nurls = [{listed}]\non = {on}\ntimeout_s = {timeout}\n"


def queue_and_run_daily(config: Path, ids: list[int], capsys, monkeypatch) -> tuple[int, list[dict], str]:
    code, _, err = run(["--config", str(config), "queue", "add", *map(str, ids)], capsys, monkeypatch)
    assert code == 0, err
    code, out, err = run(["--config", str(config), "daily", "--json"], capsys, monkeypatch)
    return code, [json.loads(line) for line in out.splitlines()], err


def test_a_failed_daily_run_posts_exactly_one_message_with_its_counts(live: Sandbox, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TAOBAO_VIDEO__DOWNLOAD__RETRIES", "0")
    live.set_faults([Fault("http_500", "cdn")])  # every download fails
    with json_receiver() as receiver:
        config = write_settings(tmp_path, live, more_toml=notify_toml(receiver.url("alerts")))
        ids = live.catalogue.sample("video", 2) + live.catalogue.sample("no_video", 1)
        code, events, err = queue_and_run_daily(config, ids, capsys, monkeypatch)
        summary = events[-1]
        assert code == 1 and summary["failed"] == 2 and summary["no_video"] == 1, err
        assert len(receiver.posts) == 1
        path, body = receiver.posts[0]
        assert path == "/alerts" and body["type"] == "failure"
        assert body["title"] == "taobao-video daily: exit 1 (failure)"
        assert "exit code 1" in body["message"] and "failed 2" in body["message"] and "no_video 1" in body["message"]
        assert f"{summary['api_calls']} API calls" in body["message"]
        assert "queue list --state failed" in body["message"]
        assert {"event": "notify", "events": ["failure"], "sent": 1, "failed": 0} in events
        assert events[-1]["event"] == "summary"  # the summary stays the last line
        assert receiver.url() not in err and str(receiver.port) not in err  # a URL is never printed


def test_a_clean_run_sends_nothing_unless_summary_is_asked_for(live: Sandbox, tmp_path, capsys, monkeypatch):
    with json_receiver() as receiver:
        config = write_settings(tmp_path, live, more_toml=notify_toml(receiver.url()))
        code, _, err = queue_and_run_daily(config, live.catalogue.sample("video", 1), capsys, monkeypatch)
        assert code == 0 and receiver.posts == [], err
        config.write_text(config.read_text().replace('"token_expiring"]', '"token_expiring", "summary"]'))
        code, _, err = queue_and_run_daily(config, live.catalogue.sample("video", 2), capsys, monkeypatch)
        assert code == 0 and len(receiver.posts) == 1, err
        assert receiver.posts[0][1]["title"] == "taobao-video daily: exit 0 (summary)"
        assert "downloaded 1, skipped 0" in receiver.posts[0][1]["message"]


def test_urls_from_the_environment_are_added_to_the_files(live: Sandbox, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TAOBAO_VIDEO__DOWNLOAD__RETRIES", "0")
    live.set_faults([Fault("http_500", "cdn")])
    with json_receiver() as from_file, json_receiver() as from_env:
        monkeypatch.setenv("TAOBAO_VIDEO_NOTIFY_URLS", from_env.url("env"))
        config = write_settings(tmp_path, live, more_toml=notify_toml(from_file.url("file")))
        code, _, _ = queue_and_run_daily(config, live.catalogue.sample("video", 1), capsys, monkeypatch)
        assert code == 1
        assert [p for p, _ in from_file.posts] == ["/file"] and [p for p, _ in from_env.posts] == ["/env"]


def test_a_notifier_that_never_answers_does_not_change_the_exit_code_or_hang(
    live: Sandbox, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("TAOBAO_VIDEO__DOWNLOAD__RETRIES", "0")
    live.set_faults([Fault("http_500", "cdn")])
    prom = tmp_path / "taobao_video.prom"
    with silent_receiver() as silent:
        more = notify_toml(silent.url(), timeout=1) + f'[metrics]\ntextfile = "{prom}"\n'
        config = write_settings(tmp_path, live, more_toml=more)
        began = time.monotonic()
        code, events, err = queue_and_run_daily(config, live.catalogue.sample("video", 2), capsys, monkeypatch)
        took = time.monotonic() - began
    assert code == 1 and events[-1]["failed"] == 2
    assert took < 15, f"the run waited {took:.1f} s on a notifier with a 1 s timeout"
    warnings = [event["detail"] for event in events if event["event"] == "warning"]
    assert any("notify URL 1 (json://…)" in w and "the run's exit code is unchanged" in w for w in warnings), warnings
    assert str(silent.port) not in json.dumps(events) + err  # the URL is never printed
    assert {"event": "notify", "events": ["failure"], "sent": 0, "failed": 1} in events
    state = json.loads((tmp_path / "notify-state.json").read_text())
    assert state["failed"] == 1 and state["sent"] == 0
    families = {f.name: f for f in text_string_to_metric_families(prom.read_text())}
    counted = {s.labels["result"]: s.value for s in families["taobao_video_notifications"].samples}
    assert counted == {"sent": 0, "failed": 1}  # the metrics, written after the send, count it


def test_an_expired_token_is_one_auth_message_and_exit_77(live: Sandbox, tmp_path, capsys, monkeypatch):
    with json_receiver() as receiver:
        config = write_settings(tmp_path, live, more_toml=notify_toml(receiver.url()))
        past = datetime.now(UTC) - timedelta(days=2)
        TokenStore(tmp_path / "token.json").save(Token("stale", expires_at=past, obtained_at=past - timedelta(1)))
        code, _, err = queue_and_run_daily(config, live.catalogue.sample("video", 1), capsys, monkeypatch)
        assert code == 77, err
        assert len(receiver.posts) == 1
        body = receiver.posts[0][1]
        assert body["title"] == "taobao-video daily: exit 77 (auth)" and "taobao-video auth login" in body["message"]


@pytest.fixture
def near_expiry() -> Iterator[Sandbox]:
    """A sandbox on the real clock whose refresh tokens last two days: inside the default three-day window."""
    app = AppConfig(key=APP_KEY, secret=CANARY_SECRET)
    config = SandboxConfig(seed=9, apps=(app,), video_bytes=(40_000, 90_000), refresh_ttl_s=2 * 86400)
    with Sandbox(config) as sb:
        yield sb


def test_a_daily_run_sends_token_expiring_once_a_day(near_expiry: Sandbox, tmp_path, capsys, monkeypatch):
    with json_receiver() as receiver:
        config = write_settings(tmp_path, near_expiry, more_toml=notify_toml(receiver.url()))
        for _ in range(2):
            code, _, err = queue_and_run_daily(config, near_expiry.catalogue.sample("video", 1), capsys, monkeypatch)
            assert code == 0, err
        assert len(receiver.posts) == 1
        body = receiver.posts[0][1]
        assert (
            body["title"] == "taobao-video daily: exit 0 (token_expiring)"
            and "refresh token expires in" in body["message"]
        )


def settings_with_token(tmp_path: Path, url: str, refresh_ends: datetime):
    (tmp_path / "settings.toml").write_text(
        '[taobao]\napp_key = "12345678"\ntoken_file = "token.json"\n' + notify_toml(url), encoding="utf-8"
    )
    TokenStore(tmp_path / "token.json").save(
        Token("a", expires_at=START + timedelta(hours=1), refresh_token="r", refresh_expires_at=refresh_ends)
    )
    return load_settings(tmp_path / "settings.toml", env={})


def test_token_expiring_fires_once_per_quota_day_inside_the_window_only(tmp_path: Path) -> None:
    clock = FakeClock(START - timedelta(days=2))  # refresh ends START + 2 days: 4 days ahead, outside 3
    with json_receiver() as receiver:
        settings = settings_with_token(tmp_path, receiver.url(), START + timedelta(days=2))

        def day_run() -> int:
            before = len(receiver.posts)
            Watch(settings, "daily", lambda event: None, clock.now).finished(0, {"failed": 0}, None)
            return len(receiver.posts) - before

        assert day_run() == 0  # outside the window
        clock.set(START)  # two days left: inside
        assert [day_run(), day_run()] == [1, 0]  # once that day
        clock.advance(3600)
        assert day_run() == 0
        clock.advance(86400)  # the next quota day, a day left
        assert day_run() == 1
        assert "refresh token expires in" in receiver.posts[-1][1]["message"]
        clock.set(START + timedelta(days=3))  # over: the run's own auth error says so, not this
        assert day_run() == 0


def test_the_events_and_the_message_are_decided_from_the_run_end() -> None:
    end = RunEnd("harvest", exit_code=75, summary={"failed": 3, "stopped": "disk_full", "api_calls": 4})
    events = happened(end, failure_threshold=2, disk_dir="/videos")
    assert list(events) == ["failure"]
    assert "3 ids failed" in events["failure"] and "/videos is full" in events["failure"]
    assert happened(end, failure_threshold=3, disk_dir="/v")["failure"].startswith("the videos folder /v is full")
    quota = RunEnd("daily", 75, {"stopped": "quota"}, platform_quota=["app default: spent"])
    assert list(happened(quota, failure_threshold=0)) == ["quota_platform"]
    unreachable = RunEnd("daily", 75, {"stopped": "gateway_unreachable", "unreachable_since": "2026-11-22T04:00:00"})
    assert (
        "the gateway was unreachable (since 2026-11-22T04:00:00)"
        in happened(unreachable, failure_threshold=0)["failure"]
    )
    storage = RunEnd("daily", 75, {"stopped": "storage_failed", "error": "uploading 1.mp4: EndpointConnectionError"})
    said = happened(storage, failure_threshold=0)["failure"]
    assert said.startswith("the object storage failed (uploading 1.mp4: EndpointConnectionError): check the bucket")
    assert "auth" in happened(RunEnd("daily", 77, None, error="no token"), failure_threshold=0)
    assert happened(RunEnd("daily", 0, {"failed": 0}), failure_threshold=0) == {}
    odd = happened(RunEnd("harvest", 1, {"failed": 0}, error="TOP error 42 Odd"), failure_threshold=0)
    assert odd == {"failure": "the run stopped: TOP error 42 Odd"}
    locked = RunEnd("daily", 75, None, error="another run holds the lock")
    assert "failure" in happened(locked, failure_threshold=0)
    title, body, kind = compose(end, events)
    assert title == "taobao-video harvest: exit 75 (failure)" and kind == "failure"
    assert "failed 3" in body and "4 API calls" in body


def test_the_platforms_own_quota_answer_is_a_quota_platform_message(tmp_path, capsys, monkeypatch):
    """The ledger allows 1000 calls, but the platform stops this app key after 2 (something else spends it)."""
    app = AppConfig(key=APP_KEY, secret=CANARY_SECRET, daily_limit=2)
    with Sandbox(SandboxConfig(seed=9, apps=(app,), video_bytes=(40_000, 90_000))) as sb, json_receiver() as receiver:
        config = write_settings(tmp_path, sb, more_toml=notify_toml(receiver.url()))
        code, events, err = queue_and_run_daily(config, sb.catalogue.sample("video", 4), capsys, monkeypatch)
        assert code == 75 and events[-1]["stopped"] == "quota", err
        assert len(receiver.posts) == 1
        body = receiver.posts[0][1]
        assert body["title"] == "taobao-video daily: exit 75 (quota_platform)"
        assert "the platform answered that its daily quota is spent after" in body["message"]
        assert "give it its own app key" in body["message"]


def test_the_sandbox_clock_brings_a_token_into_the_window(clock: FakeClock, tmp_path: Path) -> None:
    """A token the sandbox issued with a five-day refresh window, and the same injected clock on both sides: the
    warning starts when three days are left, not before."""
    from conftest import make_sandbox

    with make_sandbox(clock, refresh_ttl_s=5 * 86400) as sb, json_receiver() as receiver:
        (tmp_path / "settings.toml").write_text(
            f'[taobao]\napp_key = "{APP_KEY}"\ntoken_file = "token.json"\n' + notify_toml(receiver.url())
        )
        issued = Token.from_response(sb.issue_token(app_key=APP_KEY), now=clock.now(), grant="authorization_code")
        TokenStore(tmp_path / "token.json").save(issued)
        settings = load_settings(tmp_path / "settings.toml", env={})
        sent = []
        for _ in range(4):
            before = len(receiver.posts)
            Watch(settings, "daily", lambda event: None, clock.now).finished(0, {"failed": 0}, None)
            sent.append(len(receiver.posts) - before)
            clock.advance(86400)
        assert sent == [0, 0, 1, 1]  # 5 and 4 days left: outside; 3 and 2 days left: once each day


def test_notify_settings_merge_the_environment_and_never_echo_a_url(tmp_path: Path) -> None:
    from taobao_video.errors import ConfigError

    path = tmp_path / "settings.toml"
    path.write_text('[notify]\nurls = ["json://127.0.0.1:1/file"]\non = ["failure", "summary"]\n')
    env = {"TAOBAO_VIDEO_NOTIFY_URLS": "json://127.0.0.1:1/a-TOKEN\n  tgram://BOT/CHAT "}
    settings = load_settings(path, env=env)
    urls = [url.get_secret_value() for url in settings.notify.urls]
    assert urls == ["json://127.0.0.1:1/file", "json://127.0.0.1:1/a-TOKEN", "tgram://BOT/CHAT"]
    assert settings.notify.on == ("failure", "summary")
    assert "a-TOKEN" not in repr(settings) and "BOT" not in repr(settings)
    path.write_text('[notify]\nurls = "json://h/SECRET-PATH"\n')
    with pytest.raises(ConfigError) as refused:
        load_settings(path, env={})
    assert "must be an array of Apprise URLs" in str(refused.value) and "SECRET-PATH" not in str(refused.value)
    path.write_text("")
    with pytest.raises(ConfigError) as refused:
        load_settings(path, env={"TAOBAO_VIDEO_NOTIFY_URLS": "no-scheme-SECRET"})
    assert str(refused.value).startswith("TAOBAO_VIDEO_NOTIFY_URLS: each entry must be an Apprise URL")
    assert "no-scheme-SECRET" not in str(refused.value)
    path.write_text('[notify]\non = ["failures"]\n')
    with pytest.raises(ConfigError, match=r"unknown event 'failures' \(known: failure, auth"):
        load_settings(path, env={})
    path.write_text('[notify]\nurls = ["mailto://me:hunter2@example.com"]\n')
    with pytest.raises(ConfigError) as refused:  # a password in the file: the secret rule refuses it
        load_settings(path, env={})
    assert "hunter2" not in str(refused.value) and "set TAOBAO_VIDEO_NOTIFY_URLS in the environment" in str(
        refused.value
    )


def test_a_harvest_notifies_too_and_a_run_that_cannot_start_says_why(live: Sandbox, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TAOBAO_VIDEO__DOWNLOAD__RETRIES", "0")
    live.set_faults([Fault("http_500", "cdn")])
    with json_receiver() as receiver:
        config = write_settings(tmp_path, live, more_toml=notify_toml(receiver.url()))
        ids = live.catalogue.sample("video", 1)
        code, _, err = run(["--config", str(config), "harvest", *map(str, ids)], capsys, monkeypatch)
        assert code == 1, err
        assert [body["title"] for _, body in receiver.posts] == ["taobao-video harvest: exit 1 (failure)"]
        monkeypatch.setenv("TAOBAO_VIDEO__DOWNLOAD__MIN_FREE_MB", "1e12")  # more than any disk: disk full at start
        code, _, err = run(["--config", str(config), "daily"], capsys, monkeypatch)
        assert code == 75 and "disk full" in err
        assert len(receiver.posts) == 2
        body = receiver.posts[1][1]
        assert body["title"] == "taobao-video daily: exit 75 (failure)"
        assert "the run did not start: disk full" in body["message"]
        assert "no summary: the run stopped before it began" in body["message"]


def test_a_stop_during_the_send_leaves_it_at_once_and_a_stop_before_does_not_prevent_it() -> None:
    import threading

    from taobao_video.ops.sender import send

    with silent_receiver() as silent:
        stop = threading.Event()
        threading.Timer(0.3, stop.set).start()  # Ctrl-C while the receiver keeps the message waiting
        began = time.monotonic()
        result = send([silent.url()], "t", "b", kind="failure", timeout_s=20, stop=stop)
        assert time.monotonic() - began < 3 and result.sent == 0
        assert result.problems == ["notify URL 1 (json://…): left unsent: the run was stopped"]
    with json_receiver() as receiver:  # a run stopped by Ctrl-C earlier still reports how it ended
        result = send([receiver.url()], "t", "b", kind="failure", timeout_s=5, stop=stop)
        assert result.sent == 1 and len(receiver.posts) == 1
