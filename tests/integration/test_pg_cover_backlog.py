"""Two workers on one PostgreSQL catalog working the same backlog of missing covers (covers of videos harvested
before covers were kept): each cover is fetched once."""

from __future__ import annotations

import threading

import pytest
from helpers.harvest import log_in, opened, sandbox_settings
from sqlalchemy import update

from conftest import Sleeps, make_sandbox
from taobao_video import wiring
from taobao_video.jobs.report import HarvestReport
from taobao_video.store.catalog import engine_of
from taobao_video.store.schema import Video

pytestmark = pytest.mark.slow


@pytest.mark.timeout(120)
def test_two_workers_never_fetch_the_same_missing_cover(clock, tmp_path, pg_url):
    with make_sandbox(clock, daily_limit=1000, video_bytes=(20_000, 40_000)) as sb:
        settings = sandbox_settings(sb, tmp_path, database={"url": pg_url}, download={"workers": 1})
        log_in(sb, settings, clock)
        ids = [i for i in sb.catalogue.sample("video", 30) if sb.catalogue.item(i).mpic][:10]
        with opened(settings) as catalog:
            job = wiring.harvester(settings, catalog, clock=clock.now, sleep=Sleeps())
            assert job.run(ids).downloaded == len(ids)
            with engine_of(catalog).begin() as connection:  # harvested before covers were kept
                connection.execute(update(Video).values(cover_path=None, cover_width=None, cover_height=None))
        sb.reset_stats()
        started: list[bool] = []
        other: list = []  # the other worker's report, or the exception that ended its thread

        def on_event(event: dict) -> None:  # the other machine's run starts while this one works its backlog
            if event.get("event") == "cover" and not started:
                started.append(True)
                worker = threading.Thread(target=other_worker)
                worker.start()
                worker.join()

        def other_worker() -> None:
            try:
                other.append(run())
            except Exception as exc:  # asserted below, in the test's thread
                other.append(exc)

        def run(**hooks):
            with opened(settings) as catalog:
                return wiring.harvester(settings, catalog, clock=clock.now, sleep=Sleeps(), **hooks).run(ids)

        first = run(on_event=on_event)
        assert started == [True]
        assert len(other) == 1 and isinstance(other[0], HarvestReport), other
        assert isinstance(first, HarvestReport) and (first.error, other[0].error) == (None, None), (first, other)
        fetched = sb.stats()["pictures"]["by_item"]
        assert len(fetched) == len(ids)
        assert all(count == 1 for count in fetched.values()), fetched
