"""The gateway provider against the sandbox's item-data gateway: exact call counts, the vendor's error table, its
own quota ledger, and the key and secret nowhere in output or logs (issue 13)."""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from helpers.cli import run, write_settings
from helpers.harvest import ENV, harvest

from conftest import make_sandbox
from taobao_video import wiring
from taobao_video.config.load import settings_from_mapping
from taobao_video.errors import ConfigError
from taobao_video.sandbox import FakeClock, Sandbox, VendorKey

BEIJING = ZoneInfo("Asia/Shanghai")
KEY, SECRET = "CANARY-gwkey-4b9c1a", "CANARY-gwsecret-88d0e3"


def gateway_settings(sb: Sandbox, base: Path, *, daily_limit: int = 1000, key: str = KEY, secret: str = SECRET):
    mapping = {
        "taobao": {"provider": "gateway", "gateway_url": sb.gateway_url, "max_retries": 2},
        "gateway": {"url": sb.itemdata_url, "daily_limit": daily_limit, "params": {"cache": "no"}},
        "download": {"dir": "videos", "allowed_hosts": ["127.0.0.1"], "workers": 4, "timeout_s": 5},
        "harvest": {"qps": 1000, "lock_file": "harvest.lock"},
        "database": {"url": "sqlite:///catalog.sqlite3"},
    }
    env = {**ENV, "TAOBAO_GATEWAY_KEY": key, "TAOBAO_GATEWAY_SECRET": secret}
    return settings_from_mapping(mapping, base_dir=base, source=str(base / "settings.toml"), env=env)


def vendor(clock: FakeClock, *, limit: int | None = None, transient: dict[int, int] | None = None) -> Sandbox:
    return make_sandbox(
        clock,
        vendor_keys=(VendorKey(KEY, SECRET, daily_limit=limit),),
        vendor_transient=transient or {},
        video_bytes=(6_000, 9_000),
    )


def ledger_used(base: Path) -> dict[str, int]:
    db = sqlite3.connect(base / "catalog.sqlite3")
    try:
        rows = db.execute("SELECT day, used FROM quota_days WHERE app_key = ?", (wiring.gateway_ledger_key(KEY),))
        return dict(rows.fetchall())
    finally:
        db.close()


def test_twenty_ids_cost_21_gateway_calls_20_charged_and_no_top_call(clock, tmp_path, caplog):
    probe = make_sandbox(clock).catalogue
    with_video, without, unknown = probe.sample("video", 14), probe.sample("no_video", 3), probe.sample("not_found", 3)
    ids = with_video + without + unknown
    with vendor(clock, transient={with_video[4]: 1}) as sb:
        settings = gateway_settings(sb, tmp_path)
        caplog.set_level(logging.DEBUG)
        report, events = harvest(settings, clock, ids)
        stats = sb.stats()
        assert stats["itemdata"] == {
            "requests": 21,
            "charged": 20,
            "by_code": {"0000": 17, "2000": 3, "4002": 1},
        }
        assert stats["gateway"]["calls"] == 0  # no TOP call at all
        assert (report.downloaded, report.no_video, report.not_found, report.exit_code) == (14, 3, 3, 0)
        assert report.api_calls == 20 and list(ledger_used(tmp_path).values()) == [20]  # the ledger == the vendor
        assert report.quota_remaining == 1000 - 20
        text = json.dumps(events, ensure_ascii=False) + caplog.text + json.dumps(report.as_dict(), default=str)
        assert KEY not in text and SECRET not in text


def test_the_vendor_quota_stops_the_run_with_75_and_the_next_day_resumes(clock, tmp_path):
    ids = make_sandbox(clock).catalogue.sample("video", 8)
    with vendor(clock, limit=5) as sb:
        settings = gateway_settings(sb, tmp_path, daily_limit=100)  # the vendor's limit is lower than ours
        first, _ = harvest(settings, clock, ids)
        assert first.exit_code == 75 and first.stopped.value == "quota" and first.downloaded == 5
        assert first.deferred == 3 and sb.stats()["itemdata"]["by_code"] == {"0000": 5, "4013": 1}
        assert first.quota_remaining == 0  # the ledger is marked spent until the vendor's day ends
        again, _ = harvest(settings, clock, ids)  # same day: nothing is asked
        assert again.exit_code == 75 and sb.stats()["itemdata"]["requests"] == 6
        tomorrow = clock.now().astimezone(BEIJING).date() + timedelta(days=1)
        clock.set(datetime.combine(tomorrow, datetime.min.time(), BEIJING) + timedelta(minutes=5))
        last, _ = harvest(settings, clock, ids)
        assert last.exit_code == 0 and last.downloaded == 3 and last.skipped == 5
        assert sorted(ledger_used(tmp_path).values()) == [3, 5]  # the 4013 was not charged: the ledger gave it back


@pytest.mark.parametrize(
    ("key", "secret", "variable"),
    [("wrong-key-0000", SECRET, "TAOBAO_GATEWAY_KEY"), (KEY, "wrong-secret-00", "TAOBAO_GATEWAY_SECRET")],
)
def test_a_refused_key_or_secret_is_a_configuration_error_naming_the_variable(clock, tmp_path, key, secret, variable):
    ids = make_sandbox(clock).catalogue.sample("video", 3)
    with vendor(clock) as sb:
        settings = gateway_settings(sb, tmp_path, key=key, secret=secret)
        report, _ = harvest(settings, clock, ids)
        assert isinstance(report.error, ConfigError) and report.exit_code == 78
        assert variable in str(report.error) and secret not in str(report.error) and key not in str(report.error)
        assert sb.stats()["itemdata"]["requests"] == 1 and report.deferred == 3


def test_the_cli_never_shows_the_key_or_the_secret(clock, tmp_path, capsys, monkeypatch, caplog):
    ids = make_sandbox(clock).catalogue.sample_mixed(6)
    with vendor(clock, limit=4) as sb:
        path = write_settings(tmp_path, sb, more_toml=f'[gateway]\nurl = "{sb.itemdata_url}"\n')
        monkeypatch.setenv("TAOBAO_VIDEO__TAOBAO__PROVIDER", "gateway")
        monkeypatch.setenv("TAOBAO_GATEWAY_KEY", KEY)
        monkeypatch.setenv("TAOBAO_GATEWAY_SECRET", SECRET)
        caplog.set_level(logging.DEBUG)
        code, out, err = run(["--config", str(path), "harvest", "--json", *map(str, ids)], capsys, monkeypatch)
        summary = json.loads(out.splitlines()[-1])
        assert code == 75 and summary["stopped"] == "quota" and summary["api_calls"] == 4
        assert "not_visible" in summary
        code2, out2, err2 = run(["--config", str(path), "quota", "status"], capsys, monkeypatch)
        assert code2 == 0 and "Used:       4 of 1000" in out2  # the gateway key's own ledger
        assert "item_get/?key=***&secret=***" in caplog.text  # urllib3's request line, scrubbed
        everything = out + err + out2 + err2 + caplog.text
        assert KEY not in everything and SECRET not in everything


def test_a_key_in_the_settings_file_is_refused(tmp_path):
    (tmp_path / "settings.toml").write_text(f'[gateway]\nkey = "{KEY}"\nsecret = "{SECRET}"\n')
    from taobao_video.config.load import load_settings

    with pytest.raises(ConfigError) as refused:
        load_settings(tmp_path / "settings.toml", env={})
    assert "TAOBAO_GATEWAY_KEY" in str(refused.value) and KEY not in str(refused.value)
