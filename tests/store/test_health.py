"""`db check`'s library on both databases: a good catalog, a done item without its video row, an old schema."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete

from taobao_video.store.catalog import Catalog, engine_of
from taobao_video.store.health import check_catalog
from taobao_video.store.records import VideoRow
from taobao_video.store.schema import Video

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def video(num_iid: int) -> VideoRow:
    return VideoRow(num_iid, f"videos/{num_iid}.mp4", 3.0, 10, "0" * 64, "https://v/x.mp4", None, 1, 1, "m", NOW)


def test_a_good_catalog_then_a_done_item_without_its_video(catalog_url: str) -> None:
    with Catalog.open(catalog_url) as catalog:
        catalog.record_video(video(1), now=NOW)
        catalog.record_video(video(2), now=NOW)
        catalog.enqueue([3], now=NOW)
        report = check_catalog(catalog_url)
        assert report.ok and not report.damaged, report
        assert "rows: 2 videos, 3 items" in report.found
        assert ("integrity_check: ok" in report.found) == catalog_url.startswith("sqlite")
        with engine_of(catalog).begin() as connection:
            connection.execute(delete(Video).where(Video.num_iid == 2))
    report = check_catalog(catalog_url)
    assert not report.ok and not report.damaged
    assert report.problems[0].startswith("consistency: 1 items are done without their videos row")
