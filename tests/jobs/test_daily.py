"""The daily run over the queue: quota days with an injected clock, midnight, the platform's own quota answer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from helpers.harvest import ENV, log_in, opened, sandbox_settings

from conftest import APP_KEY, Sleeps, make_sandbox
from taobao_video import wiring
from taobao_video.jobs.daily import DailyReport, run_daily

BEIJING = ZoneInfo("Asia/Shanghai")
REPO = Path(__file__).resolve().parents[2]


def daily(settings, clock, sleep=None, **kw) -> DailyReport:
    with opened(settings) as catalog:
        job = wiring.harvester(
            settings,
            catalog,
            clock=clock.now,
            sleep=sleep or Sleeps(),
            monotonic=lambda: clock.now().timestamp(),
            **kw,
        )
        return run_daily(job, **kw)


def enqueue(settings, clock, ids, priority=0):
    with opened(settings) as catalog:
        return catalog.enqueue(ids, priority=priority, now=clock.now())


def quota_days(sb) -> dict[str, int]:
    return sb.stats()["quota"].get(APP_KEY, {})


@pytest.mark.timeout(300)
def test_three_quota_days_drain_a_queue_of_2500(clock, tmp_path):
    with make_sandbox(clock, daily_limit=1000, video_bytes=(6_000, 9_000)) as sb:
        settings = sandbox_settings(sb, tmp_path, download={"workers": 8})
        log_in(sb, settings, clock)
        ids = sb.catalogue.sample_mixed(2500)
        enqueue(settings, clock, ids)
        codes, calls = [], []
        for day in range(3):
            if day:
                clock.set(
                    datetime.combine(
                        clock.now().astimezone(BEIJING).date() + timedelta(days=1), datetime.min.time(), BEIJING
                    )
                    + timedelta(minutes=10)
                )
                log_in(sb, settings, clock)
            before = sb.stats()["gateway"]["calls"]
            report = daily(settings, clock)
            codes.append(report.exit_code)
            calls.append(sb.stats()["gateway"]["calls"] - before)
            if day == 0:
                assert report.pending == 1500 and report.days_left == 2
                again = daily(settings, clock)
                assert again.harvest.api_calls == 0 and again.exit_code == 75, "same day: nothing left to spend"
        assert codes == [75, 75, 0]
        assert calls == [1000, 1000, 500]
        assert sorted(quota_days(sb).values()) == [500, 1000, 1000]
        cdn = sb.stats()["cdn"]["by_item"]
        assert all(count == 1 for count in cdn.values()), "nothing downloaded twice"
        with opened(settings) as catalog:
            assert len(catalog.videos(ids)) == len(cdn)
            assert catalog.queue_stats()["pending"] == 0


def test_priority_ids_go_first(clock, tmp_path, catalog_url):
    with make_sandbox(clock, daily_limit=5) as sb:
        settings = sandbox_settings(sb, tmp_path, quota={"daily_limit": 5}, database={"url": catalog_url})
        log_in(sb, settings, clock)
        ids = sb.catalogue.sample_mixed(12)
        enqueue(settings, clock, ids[:10])
        enqueue(settings, clock, ids[10:], priority=5)
        daily(settings, clock)
        asked = {int(k) for k in sb.stats()["gateway"]["by_item"]}
        assert asked == set(ids[10:] + ids[:3])


def test_a_run_crossing_midnight_counts_each_call_on_its_own_day(clock, tmp_path, catalog_url):
    with make_sandbox(clock, daily_limit=1000, video_bytes=(6_000, 9_000)) as sb:
        settings = sandbox_settings(sb, tmp_path, harvest={"qps": 1}, database={"url": catalog_url})
        clock.set(datetime(2026, 11, 22, 23, 59, 55, tzinfo=BEIJING))
        log_in(sb, settings, clock)
        enqueue(settings, clock, sb.catalogue.sample("no_video", 10))

        def sleep(seconds):  # pacing at 1 call/s moves the injected clock across midnight
            clock.advance(seconds)

        daily(settings, clock, sleep=sleep)
        assert quota_days(sb) == {"2026-11-22": 5, "2026-11-23": 5}
        with opened(settings) as catalog:
            ledger = wiring.ledger(settings, catalog, settings.app(), clock=clock.now)
            assert ledger.status().day == "2026-11-23" and ledger.status().used == 5
            clock.set(datetime(2026, 11, 22, 23, 0, tzinfo=BEIJING))
            assert ledger.status().used == 5  # the 22nd's own count
            assert catalog.call_count(app_key=APP_KEY, day="2026-11-22") == 5


def test_the_platforms_quota_answer_stops_the_run_and_bans_the_day(clock, tmp_path, catalog_url):
    with make_sandbox(clock, daily_limit=1000, video_bytes=(6_000, 9_000)) as sb:
        settings = sandbox_settings(sb, tmp_path, database={"url": catalog_url})
        log_in(sb, settings, clock)
        sb.set_quota_used(APP_KEY, 990)  # spent elsewhere
        enqueue(settings, clock, sb.catalogue.sample_mixed(30))
        report = daily(settings, clock)
        midnight = datetime.combine(
            clock.now().astimezone(BEIJING).date() + timedelta(days=1), datetime.min.time(), BEIJING
        )
        assert report.harvest.stopped == "quota" and report.exit_code == 75
        assert report.harvest.quota_resets_at == midnight
        assert sb.stats()["gateway"]["calls"] == 11  # ten accepted, the eleventh refused
        with opened(settings) as catalog:
            status = wiring.ledger(settings, catalog, settings.app(), clock=clock.now).status()
            assert status.banned_until == midnight and status.remaining == 0
        calls = sb.stats()["gateway"]["calls"]
        assert daily(settings, clock).harvest.api_calls == 0 and sb.stats()["gateway"]["calls"] == calls


def test_max_calls_caps_a_run(clock, tmp_path, catalog_url):
    with make_sandbox(clock, daily_limit=1000) as sb:
        settings = sandbox_settings(sb, tmp_path, database={"url": catalog_url})
        log_in(sb, settings, clock)
        enqueue(settings, clock, sb.catalogue.sample_mixed(20))
        report = daily(settings, clock, max_calls=7)
        assert sb.stats()["gateway"]["calls"] == 7 and report.exit_code == 75
        assert report.pending == 13 and report.days_left == 1 and report.calls_per_day == 1000  # not --max-calls


def test_downloads_proceed_with_no_call_left(clock, tmp_path, catalog_url):
    with make_sandbox(clock, daily_limit=4) as sb:
        settings = sandbox_settings(sb, tmp_path, quota={"daily_limit": 4}, database={"url": catalog_url})
        log_in(sb, settings, clock)
        videos = sb.catalogue.sample("video", 4)
        with opened(settings) as catalog:  # looked up yesterday, never downloaded
            lookup, _ = wiring.app_pool(settings, catalog, clock=clock.now, sleep=Sleeps())
            from taobao_video.jobs.plan import record_lookup

            for num_iid in videos:
                record_lookup(catalog, lookup.lookup(num_iid), now=clock.now())
        enqueue(settings, clock, videos + sb.catalogue.sample("no_video", 3))
        sb.reset_stats()
        report = daily(settings, clock)
        assert report.harvest.downloaded == 4 and sb.stats()["gateway"]["calls"] == 0
        assert report.pending == 3 and report.exit_code == 75


@pytest.mark.skipif(shutil.which("faketime") is None, reason="faketime (Debian package) is not installed")
def test_a_daily_run_under_faketime_counts_on_the_shifted_day(tmp_path):
    """The real clock, shifted by faketime for the child: the ledger's day follows the (shifted) wall clock."""
    from taobao_video.sandbox import AppConfig, Sandbox, SandboxConfig

    shifted = datetime(2027, 3, 14, 23, 58, 0, tzinfo=BEIJING)
    offset = (shifted - datetime.now(UTC)).total_seconds()
    config = SandboxConfig(
        seed=4,
        apps=(AppConfig(key=APP_KEY, secret=ENV["TAOBAO_APP_SECRET"], daily_limit=1000),),
        video_bytes=(6_000, 9_000),
    )
    with Sandbox(config) as sb:
        sb.set_clock_offset(offset)
        (tmp_path / "settings.toml").write_text(
            f'[taobao]\ngateway_url = "{sb.gateway_url}"\noauth_url = "{sb.oauth_url}"\n'
            'oauth_grant = "client_credentials"\n'
            'token_file = "token.json"\n[download]\ndir = "videos"\nallowed_hosts = ["127.0.0.1"]\n'
            '[database]\nurl = "sqlite:///catalog.sqlite3"\n[harvest]\nlock_file = "harvest.lock"\nqps = 100\n'
        )
        env = {**os.environ, **ENV, "PYTHONPATH": str(REPO), "TZ": "America/New_York"}
        cfg = str(tmp_path / "settings.toml")
        ids = [str(i) for i in sb.catalogue.sample_mixed(6)]
        subprocess.run(
            [sys.executable, "-m", "taobao_video", "--config", cfg, "queue", "add", *ids],
            env=env,
            check=True,
            capture_output=True,
        )
        # faketime reads the start time in the child's own zone (New York, whose DST starts that very day)
        stamp = shifted.astimezone(ZoneInfo("America/New_York")).strftime("@%Y-%m-%d %H:%M:%S")
        done = subprocess.run(
            ["faketime", "-f", stamp, sys.executable, "-m", "taobao_video", "--config", cfg, "daily", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout.splitlines()[-1])
        assert summary["api_calls"] == 6 and summary["remaining"] == 0
        assert quota_days(sb) == {"2027-03-14": 6}
        status = subprocess.run(
            [
                "faketime",
                "-f",
                stamp,
                sys.executable,
                "-m",
                "taobao_video",
                "--config",
                cfg,
                "quota",
                "status",
                "--json",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert json.loads(status.stdout)["day"] == "2027-03-14" and json.loads(status.stdout)["used"] == 6
