"""Two refreshes at once on one PostgreSQL catalog (every daily worker ends with one): each item is re-checked,
paid for and downloaded once, and a refresh that read its due list before another replaced a video never retires
the new version under the old one's name."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from helpers.harvest import harvest, log_in, opened, sandbox_settings, sha256_of

from conftest import START, Sleeps, make_sandbox
from taobao_video.jobs.refresh import refresh
from taobao_video.sandbox.products import Catalogue
from taobao_video.store.history import history_of

pytestmark = pytest.mark.slow

CATALOGUE = Catalogue(11, (40_000, 90_000))
VIDEOS = CATALOGUE.sample("video", 6)
CHANGED = VIDEOS[1:3]


@pytest.mark.timeout(120)
def test_two_refreshes_at_once_never_recheck_the_same_item_twice(clock, tmp_path, pg_url):
    changes = dict.fromkeys(CHANGED, START + timedelta(days=2))
    with make_sandbox(clock, daily_limit=1000, video_bytes=(40_000, 90_000), video_changes=changes) as sb:
        settings = sandbox_settings(sb, tmp_path, database={"url": pg_url})
        log_in(sb, settings, clock)
        assert harvest(settings, clock, VIDEOS)[0].downloaded == 6
        clock.advance(3 * 86400)
        log_in(sb, settings, clock)
        sb.reset_stats()
        second: list = []

        def on_event(event: dict) -> None:  # the other machine's refresh starts while this one is under way
            if event.get("event") == "refresh" and not second:
                other = threading.Thread(
                    target=lambda: second.append(refresh(settings, older_than_days=1, clock=clock.now, sleep=Sleeps()))
                )
                second.append(None)
                other.start()
                other.join()

        first = refresh(settings, older_than_days=1, on_event=on_event, clock=clock.now, sleep=Sleeps())
        asked = sb.stats()["gateway"]["by_item"]
        assert all(count == 1 for count in asked.values()), (asked, first.as_dict(), second[1].as_dict())
        assert first.api_calls + second[1].api_calls == len(VIDEOS)


@pytest.mark.timeout(120)
def test_a_refresh_racing_another_keeps_the_old_version_and_downloads_once(clock, tmp_path, pg_url):
    changes = dict.fromkeys(VIDEOS[:3], START + timedelta(days=2))  # every seller replaced its video on day 2
    with make_sandbox(clock, daily_limit=1000, video_bytes=(40_000, 90_000), video_changes=changes) as sb:
        settings = sandbox_settings(sb, tmp_path, database={"url": pg_url})
        log_in(sb, settings, clock)
        assert harvest(settings, clock, VIDEOS[:3])[0].downloaded == 3
        with opened(settings) as catalog:
            old = catalog.videos(VIDEOS[:3])
        clock.advance(3 * 86400)
        log_in(sb, settings, clock)
        sb.reset_stats()
        slow = sandbox_settings(sb, tmp_path, database={"url": pg_url}, harvest={"qps": 0.5})
        other: list = []

        def sleep(seconds: float) -> None:  # between two of its lookups, another machine's refresh runs whole
            if not other:
                worker = threading.Thread(
                    target=lambda: other.append(refresh(settings, older_than_days=1, clock=clock.now, sleep=Sleeps()))
                )
                worker.start()
                worker.join()

        first = refresh(slow, older_than_days=1, clock=clock.now, sleep=sleep)
        # the other found the first item re-checked already and the second claimed (the first run is on it): it
        # re-checked the third; the first run did the first two
        assert other and (other[0].checked, other[0].changed) == (1, 1) and (first.checked, first.changed) == (2, 2)
        cdn = sb.stats()["cdn"]["by_item"]
        with opened(settings) as catalog:
            for num_iid in VIDEOS[:3]:
                kept = [h for h in history_of(catalog, num_iid) if h["video_path"]]
                for entry in kept:  # every kept file holds the version its history row names
                    assert sha256_of(settings.base_dir / entry["video_path"]) == entry["sha256"], (num_iid, entry)
                assert [h["sha256"] for h in history_of(catalog, num_iid)] == [old[num_iid].sha256]
        assert all(count == 1 for count in cdn.values()), cdn
