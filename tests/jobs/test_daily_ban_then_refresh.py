"""A daily run stopped by a frequency ban too long to wait goes on to its refresh, which calls the banned gateway
again at once (a charged, refused call, and the ban is hit again)."""

from __future__ import annotations

from helpers.harvest import harvest, log_in, opened, sandbox_settings

from conftest import Sleeps, make_sandbox
from taobao_video import wiring
from taobao_video.jobs.daily import run_daily
from taobao_video.jobs.refresh import refresh_after_daily
from taobao_video.jobs.runner import open_run
from taobao_video.sandbox import Fault


def test_a_daily_run_stopped_by_a_long_ban_makes_no_refresh_calls(clock, tmp_path):
    with make_sandbox(clock, daily_limit=1000, video_bytes=(40_000, 60_000)) as sb:
        settings = sandbox_settings(sb, tmp_path, harvest={"refresh_after_days": 1})
        log_in(sb, settings, clock)
        done = sb.catalogue.sample("video", 4)
        assert harvest(settings, clock, done)[0].downloaded == 4
        clock.advance(3 * 86400)
        log_in(sb, settings, clock)
        with opened(settings) as catalog:
            catalog.enqueue(sb.catalogue.sample("video", 10)[4:7], now=clock.now())
        sb.set_faults([Fault("rate_limit", "gateway", seconds=3600)])  # banned for an hour
        sb.reset_stats()
        with open_run(settings, purpose="daily") as run:
            job = wiring.harvester(settings, run.catalog, exclusive=True, clock=clock.now, sleep=Sleeps())
            report = run_daily(job)
            assert report.harvest.stopped == "rate_limited"
            calls_by_daily = sb.stats()["gateway"]["calls"]
            refresh_after_daily(run, job, report, sleep=Sleeps())
        assert sb.stats()["gateway"]["calls"] == calls_by_daily, report.refresh
