"""The harvest job end to end against the sandbox: files, catalog rows, calls and bytes counted by the platform."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from helpers.harvest import harvest, log_in, opened, outcomes, sandbox_settings, sha256_of

from conftest import APP_KEY, make_sandbox
from taobao_video.model import ItemState, next_midnight
from taobao_video.sandbox import Fault
from taobao_video.top.lookup import ITEM_GET, ITEM_VIDEO


def _world(clock, tmp_path, **sections):
    with make_sandbox(clock, daily_limit=1000, video_bytes=(40_000, 200_000)) as sb:
        settings = sandbox_settings(sb, tmp_path, **sections)
        log_in(sb, settings, clock)
        yield sb, settings


@pytest.fixture
def world(clock, tmp_path, catalog_url):
    """A sandbox, settings pointing at it, and a token: everything a harvest needs; once on each database."""
    yield from _world(clock, tmp_path, database={"url": catalog_url})


@pytest.fixture
def sqlite_world(clock, tmp_path):
    """The same on SQLite only: for what does not depend on the database (faults, API fallbacks, sessions)."""
    yield from _world(clock, tmp_path)


def mixed(sb, n_video=30, n_none=10, n_missing=6, n_deleted=4):
    c = sb.catalogue
    return (
        c.sample("video", n_video)
        + c.sample("no_video", n_none)
        + c.sample("not_found", n_missing)
        + c.sample("deleted", n_deleted)
    )


def test_fifty_mixed_ids(world, clock):
    sb, settings = world
    ids = mixed(sb)
    report, events = harvest(settings, clock, ids)
    assert (report.downloaded, report.no_video, report.not_found, report.failed, report.deferred) == (30, 10, 10, 0, 0)
    assert report.api_calls == 50 == sb.stats()["gateway"]["calls"]
    assert report.exit_code == 0
    assert report.quota_remaining == 1000 - 50
    with opened(settings) as catalog:
        videos = catalog.videos(ids)
        assert set(videos) == set(sb.catalogue.sample("video", 30))
        for num_iid, row in videos.items():
            item = sb.catalogue.item(num_iid)
            path = settings.base_dir / row.video_path
            assert sha256_of(path) == row.sha256 == sb.video(num_iid).sha256()
            assert row.size_bytes == path.stat().st_size == item.size_bytes
            assert row.duration == pytest.approx(item.duration_s, abs=0.01)
            assert (row.width, row.height) == (item.width, item.height)
            assert row.api_method == ITEM_VIDEO and row.video_path == f"videos/{num_iid}.mp4"
            assert row.downloaded_at == clock.now()
        items = catalog.items(ids)
        for num_iid in sb.catalogue.sample("no_video", 10):
            assert items[num_iid].state == ItemState.NO_VIDEO
        for num_iid in sb.catalogue.sample("not_found", 6) + sb.catalogue.sample("deleted", 4):
            assert items[num_iid].state == ItemState.NOT_FOUND
        assert catalog.call_count(app_key=APP_KEY) == 50
    assert sorted(p.name for p in (settings.base_dir / "videos").iterdir()) == sorted(f"{i}.mp4" for i in videos)
    assert outcomes(events) == {
        i: ("downloaded" if i in videos else "no_video" if i in sb.catalogue.sample("no_video", 10) else "not_found")
        for i in ids
    }


def test_a_rerun_spends_nothing(world, clock):
    sb, settings = world
    ids = mixed(sb, 8, 3, 2, 2)
    harvest(settings, clock, ids)
    sb.reset_stats()
    report, _ = harvest(settings, clock, ids)
    assert (report.skipped, report.api_calls, report.bytes) == (15, 0, 0)
    assert sb.stats()["gateway"]["calls"] == 0 and sb.stats()["cdn"]["bytes_sent"] == 0


def test_quota_of_ten_defers_and_the_next_day_finishes(clock, tmp_path, catalog_url):
    with make_sandbox(clock, video_bytes=(40_000, 80_000)) as sb:
        settings = sandbox_settings(sb, tmp_path, quota={"daily_limit": 10}, database={"url": catalog_url})
        log_in(sb, settings, clock)
        ids = sb.catalogue.sample_mixed(25)
        report, events = harvest(settings, clock, ids)
        assert sb.stats()["gateway"]["calls"] == 10 == report.api_calls
        assert (report.deferred, report.stopped, report.exit_code) == (15, "quota", 75)
        assert report.quota_resets_at == next_midnight(clock.now(), settings.quota.tz)
        assert report.quota_remaining == 0
        assert sum(1 for o in outcomes(events).values() if o == "deferred") == 15

        clock.set(report.quota_resets_at + timedelta(minutes=5))
        report2, _ = harvest(settings, clock, ids)
        assert sb.stats()["gateway"]["calls"] == 20 and report2.api_calls == 10
        assert (report2.deferred, report2.exit_code) == (5, 75)
        clock.advance(86400)
        report3, _ = harvest(settings, clock, ids)
        assert (report3.deferred, report3.exit_code, report3.api_calls) == (0, 0, 5)
        assert sorted(sb.stats()["quota"][APP_KEY].values()) == [5, 10, 10]


def test_the_platforms_own_quota_answer_stops_cleanly(world, clock):
    sb, settings = world
    sb.set_quota_used(APP_KEY, 1000 - 3)  # spent elsewhere today
    report, _ = harvest(settings, clock, sb.catalogue.sample("video", 6))
    assert report.stopped == "quota" and report.exit_code == 75
    assert report.quota_resets_at == next_midnight(clock.now(), settings.quota.tz)
    assert report.downloaded == 3 and report.deferred == 3
    sb.reset_stats()
    report2, _ = harvest(settings, clock, sb.catalogue.sample("video", 6))
    assert sb.stats()["gateway"]["calls"] == 0, "the ledger remembers the ban: no call until the reset"
    assert report2.deferred == 3 and report2.skipped == 3


def test_no_video_is_not_asked_again_until_the_ttl(world, clock):
    sb, settings = world
    ids = sb.catalogue.sample("no_video", 3) + sb.catalogue.sample("deleted", 2)
    harvest(settings, clock, ids)
    clock.advance(29 * 86400)
    report, _ = harvest(settings, clock, ids)
    assert report.api_calls == 0 and report.skipped == 5
    clock.advance(2 * 86400)
    log_in(sb, settings, clock)  # a month on, the old token has expired for good
    report, _ = harvest(settings, clock, ids)
    assert report.api_calls == 5


def test_failed_download_is_retried_without_a_call(world, clock):
    sb, settings = world
    num_iid = next(i for i in sb.catalogue.sample("video", 20) if sb.catalogue.item(i).url_style == "stable")
    sb.set_faults([Fault("html_200", "cdn", num_iid=num_iid)])
    report, events = harvest(settings, clock, [num_iid])
    assert report.failed == 1 and report.exit_code == 1
    failure = next(e for e in events if e["event"] == "item")
    assert failure["error_kind"] == "wrong_type" and "text/html" in failure["detail"]
    assert not (settings.base_dir / "videos" / f"{num_iid}.mp4").exists()
    sb.clear_faults()
    sb.reset_stats()
    report, _ = harvest(settings, clock, [num_iid])
    assert report.downloaded == 1 and report.api_calls == 0 and sb.stats()["gateway"]["calls"] == 0


def test_an_expired_signed_url_is_looked_up_again(sqlite_world, clock):
    sb, settings = sqlite_world
    num_iid = next(i for i in sb.catalogue.sample("video", 40) if sb.catalogue.item(i).url_style == "signed")
    sb.set_faults([Fault("http_500", "cdn", num_iid=num_iid)])
    harvest(settings, clock, [num_iid])  # resolved, download failed: the URL is stored
    sb.clear_faults()
    clock.advance(sb.config.signed_url_ttl_s + 60)
    sb.reset_stats()
    report, _ = harvest(settings, clock, [num_iid])
    assert report.downloaded == 1
    assert sb.stats()["gateway"]["calls"] == 1, "one fresh lookup for a fresh URL"
    assert sb.stats()["cdn"]["by_status"].get("403") == 1


def test_a_url_that_expires_right_after_its_lookup_gets_one_fresh_lookup_in_the_same_run(sqlite_world, clock):
    sb, settings = sqlite_world
    num_iid = next(i for i in sb.catalogue.sample("video", 40) if sb.catalogue.item(i).url_style == "signed")
    sb.set_faults([Fault("expired", "cdn", num_iid=num_iid, times=1)])
    report, _ = harvest(settings, clock, [num_iid])
    assert (report.downloaded, report.failed, report.api_calls) == (1, 0, 2), "looked up again at once, downloaded"


def test_a_second_expiry_in_one_run_is_a_failure_and_costs_no_third_call(sqlite_world, clock):
    sb, settings = sqlite_world
    num_iid = next(i for i in sb.catalogue.sample("video", 40) if sb.catalogue.item(i).url_style == "signed")
    sb.set_faults([Fault("expired", "cdn", num_iid=num_iid)])
    report, events = harvest(settings, clock, [num_iid])
    assert (report.downloaded, report.failed, report.api_calls) == (0, 1, 2)
    assert next(e for e in events if e["event"] == "item")["error_kind"] == "url_expired"


@pytest.mark.parametrize(
    "kind", ["http_500", "reset", "truncate", "html_200", "stall", "expired", "no_range", "wrong_type"]
)
def test_every_cdn_fault_ends_verified_or_recorded(sqlite_world, clock, kind):
    sb, settings = sqlite_world
    ids = sb.catalogue.sample("video", 6)
    sb.set_faults([Fault(kind, "cdn", rate=0.5, seconds=1.0)])
    report, events = harvest(settings, clock, ids)
    assert report.downloaded + report.failed == 6
    with opened(settings) as catalog:
        videos = catalog.videos(ids)
        for num_iid, row in videos.items():
            assert sha256_of(settings.base_dir / row.video_path) == sb.video(num_iid).sha256()
        for num_iid in set(ids) - set(videos):
            item = catalog.item(num_iid)
            assert item.state == ItemState.FAILED and item.error_kind and item.last_error
            assert not (settings.base_dir / "videos" / f"{num_iid}.mp4").exists()
    assert report.failed == sum(1 for e in events if e.get("outcome") == "failed")


def test_fallback_to_item_get_is_used_and_durations_come_from_the_file_when_missing(clock, tmp_path):
    with make_sandbox(clock, methods=frozenset({ITEM_GET}), video_bytes=(40_000, 80_000)) as sb:
        settings = sandbox_settings(sb, tmp_path)
        log_in(sb, settings, clock)
        ids = sb.catalogue.sample("video", 10)
        report, _ = harvest(settings, clock, ids)
        assert report.downloaded == 10 and report.api_calls == 11  # one refused item_video, then item.get
        with opened(settings) as catalog:
            for num_iid, row in catalog.videos(ids).items():
                assert row.api_method == ITEM_GET
                assert row.duration == pytest.approx(sb.catalogue.item(num_iid).duration_s, abs=0.6)


def test_force_downloads_again_without_calls_for_stable_urls(world, clock):
    sb, settings = world
    ids = [i for i in sb.catalogue.sample("video", 10) if sb.catalogue.item(i).url_style == "stable"][:3]
    harvest(settings, clock, ids)
    sb.reset_stats()
    report, _ = harvest(settings, clock, ids, force=True)
    assert report.downloaded == 3 and report.api_calls == 0
    assert sb.stats()["cdn"]["bytes_sent"] == sum(sb.catalogue.item(i).size_bytes for i in ids)


def test_a_missing_file_is_downloaded_again_without_a_call(sqlite_world, clock):
    sb, settings = sqlite_world
    num_iid = next(i for i in sb.catalogue.sample("video", 10) if sb.catalogue.item(i).url_style == "stable")
    harvest(settings, clock, [num_iid])
    (settings.base_dir / "videos" / f"{num_iid}.mp4").unlink()
    sb.reset_stats()
    report, _ = harvest(settings, clock, [num_iid])
    assert report.downloaded == 1 and report.api_calls == 0


def test_a_stop_request_defers_the_rest(world, clock):
    sb, settings = world
    ids = sb.catalogue.sample("video", 12)
    stop = threading.Event()
    seen: list[dict] = []

    def on_event(event):
        seen.append(event)
        if event.get("outcome") == "downloaded":
            stop.set()

    from helpers.harvest import opened as open_catalog

    from taobao_video import wiring

    with open_catalog(settings) as catalog:
        job = wiring.harvester(settings, catalog, clock=clock.now, stop=stop, on_event=on_event, workers=1)
        report = job.run(ids)
    assert report.stopped == "signal" and report.exit_code == 75
    assert report.downloaded + report.deferred == 12 and report.deferred > 0
    report2, _ = harvest(settings, clock, ids)
    assert report2.downloaded == report.deferred and report2.skipped == report.downloaded


def test_an_invalid_session_that_cannot_refresh_is_fatal(sqlite_world, clock):
    sb, settings = sqlite_world
    (settings.taobao.token_file).unlink()
    from helpers.harvest import opened as open_catalog

    from taobao_video import wiring

    with open_catalog(settings) as catalog:
        job = wiring.harvester(settings, catalog, clock=clock.now)
        report = job.run(sb.catalogue.sample("video", 3))
    assert report.error is not None and report.error.exit_code == 77
    assert report.deferred == 3 and sb.stats()["gateway"]["calls"] == 0
