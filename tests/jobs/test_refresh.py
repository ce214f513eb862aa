"""Refresh against the sandbox across quota days (the injected clock): exactly the items whose seller replaced the
video download again, their old versions go to video_history, unchanged items cost one call each and nothing
else, and no refresh spends more than its budget."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from helpers.harvest import harvest, log_in, opened, sandbox_settings, sha256_of

from conftest import START, Sleeps, make_sandbox
from taobao_video import wiring
from taobao_video.jobs.daily import run_daily
from taobao_video.jobs.refresh import refresh, refresh_after_daily, refresh_budget
from taobao_video.jobs.runner import open_run
from taobao_video.sandbox.products import Catalogue
from taobao_video.store.history import history_of

CATALOGUE = Catalogue(11, (40_000, 90_000))
VIDEOS = CATALOGUE.sample("video", 6)
EMPTY = CATALOGUE.sample("no_video", 2)
CHANGED = VIDEOS[1:3]
CHANGES_AT = START + timedelta(days=2)


@pytest.fixture
def world(clock, tmp_path):
    changes = dict.fromkeys(CHANGED, CHANGES_AT)
    with make_sandbox(clock, daily_limit=1000, video_bytes=(40_000, 90_000), video_changes=changes) as sb:
        settings = sandbox_settings(sb, tmp_path)
        log_in(sb, settings, clock)
        report, _ = harvest(settings, clock, VIDEOS + EMPTY)
        assert report.downloaded == 6 and report.no_video == 2
        yield sb, settings


def test_the_budget_is_a_share_of_what_the_queue_leaves():
    assert refresh_budget(1000, 0, 0.2) == 200
    assert refresh_budget(1000, 400, 0.2) == 120
    assert refresh_budget(1000, 1200, 0.2) == 0  # the queue needs more than is left: nothing for refresh
    assert refresh_budget(1000, 0, 0.2, max_calls=50) == 50
    assert refresh_budget(7, 0, 1.0) == 7 and refresh_budget(10, 0, 0.0) == 0


def test_a_refresh_on_a_later_day_downloads_exactly_the_changed_videos(world, clock):
    sb, settings = world
    with opened(settings) as catalog:
        before = catalog.videos(VIDEOS)
    clock.advance(3 * 86400)  # two quota days later: the sellers of CHANGED replaced their videos on day 2
    log_in(sb, settings, clock)
    sb.reset_stats()
    events: list[dict] = []
    report = refresh(settings, older_than_days=1, on_event=events.append, clock=clock.now, sleep=Sleeps())
    assert (report.checked, report.unchanged, report.changed, report.gone, report.gained) == (8, 6, 2, 0, 0)
    assert report.downloaded == 2 and report.failed == 0 and report.exit_code == 0
    assert report.budget == 200 and report.api_calls == 8 == sb.stats()["gateway"]["calls"]  # one call per item
    assert sorted(int(i) for i in sb.stats()["cdn"]["by_item"]) == sorted(CHANGED)  # nothing else downloaded
    outcomes = {e["num_iid"]: e["outcome"] for e in events if e["event"] == "refresh"}
    assert outcomes == {i: "changed" if i in CHANGED else "unchanged" for i in VIDEOS + EMPTY}
    assert events[-1]["event"] == "summary" and events[-1]["changed"] == 2
    with opened(settings) as catalog:
        after = catalog.videos(VIDEOS)
        for num_iid in VIDEOS:
            new, old = after[num_iid], before[num_iid]
            history = history_of(catalog, num_iid)
            if num_iid not in CHANGED:
                assert new == old and history == []
                assert catalog.item(num_iid).checked_at == clock.now()
                continue
            item = sb.catalogue.item(num_iid)
            assert new.video_id == str(item.video_id) != old.video_id and new.duration == item.duration_s
            assert sha256_of(settings.base_dir / new.video_path) == new.sha256 == sb.video(num_iid).sha256()
            (kept,) = history
            assert (kept["video_id"], kept["sha256"], kept["replaced_at"]) == (old.video_id, old.sha256, clock.now())
            assert kept["video_path"] == f"videos/history/{num_iid}-{old.sha256[:12]}.mp4"
            assert sha256_of(settings.base_dir / kept["video_path"]) == old.sha256  # the old file, kept


def test_prune_deletes_the_replaced_files(world, clock):
    sb, settings = world
    clock.advance(3 * 86400)
    log_in(sb, settings, clock)
    report = refresh(settings, older_than_days=1, prune=True, clock=clock.now, sleep=Sleeps())
    assert (report.changed, report.pruned, report.downloaded) == (2, 2, 2)
    assert not (settings.base_dir / "videos" / "history").exists()
    with opened(settings) as catalog:
        for num_iid in CHANGED:
            (kept,) = history_of(catalog, num_iid)
            assert kept["video_path"] is None
            assert (settings.base_dir / catalog.video(num_iid).video_path).exists()


def test_calls_spent_never_exceed_the_budget_and_the_oldest_go_first(world, clock, tmp_path):
    sb, settings = world
    clock.advance(3 * 86400)
    log_in(sb, settings, clock)
    with opened(settings) as catalog:
        catalog.enqueue(CATALOGUE.sample("video", 20)[10:15], now=clock.now())  # 5 ids daily still needs
    small = sandbox_settings(sb, tmp_path, quota={"daily_limit": 20})
    sb.reset_stats()
    report = refresh(small, older_than_days=1, clock=clock.now, sleep=Sleeps())
    assert report.budget == 3 == refresh_budget(20, 5, 0.2)  # 20% of the 15 the queue does not need
    assert report.checked == 3 and report.api_calls <= 3 and sb.stats()["gateway"]["calls"] == report.api_calls
    checked = sorted(int(i) for i in sb.stats()["gateway"]["by_item"])
    assert checked == sorted(VIDEOS + EMPTY)[:3] or len(checked) == 3  # all checked at the same moment: by id
    report = refresh(small, older_than_days=1, max_calls=1, clock=clock.now, sleep=Sleeps())
    assert report.budget == 1 and report.checked == 1


def test_daily_refreshes_with_what_it_did_not_need(world, clock, tmp_path):
    sb, _ = world
    settings = sandbox_settings(sb, tmp_path, harvest={"refresh_after_days": 1})
    clock.advance(3 * 86400)
    log_in(sb, settings, clock)
    new_ids = CATALOGUE.sample("video", 20)[10:13]
    with opened(settings) as catalog:
        catalog.enqueue(new_ids, now=clock.now())
    sb.reset_stats()
    events: list[dict] = []
    with open_run(settings, purpose="daily") as run:
        job = wiring.harvester(
            settings, run.catalog, exclusive=True, clock=clock.now, sleep=Sleeps(), on_event=events.append
        )
        report = run_daily(job)
        refresh_after_daily(run, job, report, on_event=events.append, sleep=Sleeps())
    summary = json.loads(json.dumps(report.as_dict()))
    assert report.harvest.downloaded == 3 and report.exit_code == 0
    assert [e["outcome"] for e in events if e["event"] == "refresh"].count("changed") == 2
    assert not set(new_ids) & {e["num_iid"] for e in events if e["event"] == "refresh"}  # just looked up: fresh
    refreshed = summary["refresh"]
    assert refreshed["budget"] == refresh_budget(1000 - 3, 0, 0.2)
    assert (refreshed["checked"], refreshed["changed"], refreshed["downloaded"]) == (8, 2, 2)
    assert sb.stats()["gateway"]["calls"] == 3 + 8


def test_an_item_that_lost_or_gained_a_video_is_updated(clock, tmp_path):
    lost, gained = VIDEOS[4], EMPTY[1]
    moments = {"video_losses": {lost: CHANGES_AT}, "video_gains": {gained: CHANGES_AT}}
    with make_sandbox(clock, daily_limit=1000, video_bytes=(40_000, 90_000), **moments) as sb:
        settings = sandbox_settings(sb, tmp_path)
        log_in(sb, settings, clock)
        report, _ = harvest(settings, clock, [lost, gained])
        assert (report.downloaded, report.no_video) == (1, 1)
        with opened(settings) as catalog:
            old = catalog.video(lost)
        clock.advance(3 * 86400)
        log_in(sb, settings, clock)
        report = refresh(settings, older_than_days=1, clock=clock.now, sleep=Sleeps())
        assert (report.checked, report.gone, report.gained, report.downloaded, report.api_calls) == (2, 1, 1, 1, 2)
        with opened(settings) as catalog:
            assert catalog.item(lost).state == "no_video" and catalog.video(lost) is None
            (kept,) = history_of(catalog, lost)
            assert kept["sha256"] == old.sha256 and (settings.base_dir / kept["video_path"]).exists()
            assert catalog.item(gained).state == "done"
            assert catalog.video(gained).sha256 == sb.video(gained).sha256()


SHOP_VIDEOS = CATALOGUE.sample("video", 55)  # one shop of 60 items: 55 with a video, 5 without
SHOP_EMPTY = CATALOGUE.sample("no_video", 5)
SHOP_CHANGED = SHOP_VIDEOS[10:13]
SHOP_NICK = "沙箱买家"  # the nick of the sandbox's token: the shop that authorised the app


def test_with_the_seller_channel_an_unchanged_item_costs_a_twentieth_of_a_call(clock, tmp_path):
    changes = dict.fromkeys(SHOP_CHANGED, CHANGES_AT)
    shops = {SHOP_NICK: tuple(SHOP_VIDEOS + SHOP_EMPTY)}
    with make_sandbox(clock, daily_limit=1000, video_bytes=(9_000, 12_000), video_changes=changes, shops=shops) as sb:
        settings = sandbox_settings(sb, tmp_path, taobao={"provider": "seller"})
        log_in(sb, settings, clock)
        report, _ = harvest(settings, clock, SHOP_VIDEOS + SHOP_EMPTY)
        assert report.downloaded == 55 and report.no_video == 5
        clock.advance(3 * 86400)
        log_in(sb, settings, clock)
        sb.reset_stats()
        report = refresh(settings, older_than_days=1, clock=clock.now, sleep=Sleeps())
        assert (report.checked, report.unchanged, report.changed, report.downloaded) == (60, 57, 3, 3)
        # 60 items, 20 a list call: 3 list calls (0.05 a checked item); a video query for each changed video only
        by_method = sb.stats()["gateway"]["by_method"]
        assert by_method == {"taobao.items.seller.list.get": 3, "alibaba.video.query": 3}
        assert report.api_calls == 6 == sb.stats()["gateway"]["calls"]
        assert sorted(int(i) for i in sb.stats()["cdn"]["by_item"]) == sorted(SHOP_CHANGED)  # nothing else moved
        with opened(settings) as catalog:
            for num_iid in SHOP_CHANGED:
                assert catalog.video(num_iid).video_id == str(sb.catalogue.item(num_iid).video_id)
                assert len(history_of(catalog, num_iid)) == 1


def test_a_refresh_the_gateway_stops_is_75_with_every_due_item_counted(world, clock):
    sb, settings = world
    clock.advance(3 * 86400)
    log_in(sb, settings, clock)
    dead = settings.taobao.model_copy(update={"gateway_url": "http://127.0.0.1:9/router/rest"})  # nothing listens
    report = refresh(settings.model_copy(update={"taobao": dead}), older_than_days=1, max_calls=3, clock=clock.now,
                     sleep=Sleeps())  # fmt: skip
    assert report.stopped == "gateway_unreachable" and report.exit_code == 75 and report.checked == 0
    assert (report.due, report.budget) == (8, 3)  # all that is due, not what the budget could take
    assert report.as_dict()["stopped"] == "gateway_unreachable" and report.as_dict()["exit_code"] == 75
    done = refresh(settings, older_than_days=1, max_calls=3, clock=clock.now, sleep=Sleeps())
    assert (done.checked, done.stopped, done.exit_code) == (3, None, 0)  # the budget spent is a refresh done
