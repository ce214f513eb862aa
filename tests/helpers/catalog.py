"""A small catalog whose every number is known: for the query library's tests and the catalog CLI's."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from taobao_video.store.catalog import Catalog
from taobao_video.store.quota import QuotaLedger
from taobao_video.store.records import VideoRow
from taobao_video.top.client import CallRecord

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")
# (num_iid, duration, size_bytes, downloaded_at): durations on and around the filters' edges, one unknown.
VIDEOS = [
    (520000000001, 3.0, 1_000, T0),
    (520000000002, 10.0, 5_000, T0 + timedelta(days=1)),
    (520000000003, 12.5, 3_000, T0 + timedelta(days=2)),
    (530000000004, 30.0, 8_000, T0 + timedelta(days=2, hours=12)),
    (530000000005, None, 2_000, T0 + timedelta(days=4)),
    (610000000006, 61.0, 7_000, T0 + timedelta(days=5)),
    (52, 20.0, 3_000, T0 + timedelta(days=5, hours=1)),
]
ON_DISK = {520000000001, 520000000003, 530000000004, 610000000006, 52}  # the others' files are gone


def video_row(num_iid: int, duration: float | None, size: int, at: datetime) -> VideoRow:
    return VideoRow(
        num_iid=num_iid,
        video_path=f"videos/{num_iid}.mp4",
        duration=duration,
        size_bytes=size,
        sha256=hashlib.sha256(str(num_iid).encode()).hexdigest(),
        video_url=f"https://cloud.video.taobao.com/{num_iid}.mp4",
        cover_url=None if num_iid == 52 else f"https://img.alicdn.com/{num_iid}.jpg",
        width=720,
        height=1280,
        api_method="taobao.item_video",
        downloaded_at=at,
    )


def build_known(cat: Catalog, base: Path) -> None:
    """Seven videos (five files on disk), items in every other state, three calls and two quota days."""
    for spec in VIDEOS:
        cat.record_video(video_row(*spec), now=spec[3])
        if spec[0] in ON_DISK:
            (base / "videos").mkdir(parents=True, exist_ok=True)
            (base / "videos" / f"{spec[0]}.mp4").write_bytes(b"x" * spec[2])
    cat.enqueue([1001, 1002], now=T0)
    cat.mark_no_video(2001, api_method="taobao.item_video", now=T0)
    cat.mark_not_found(2002, detail="isv.item-not-exist", api_method="taobao.item_video", now=T0)
    cat.mark_failed(3001, error_kind="gone", error="HTTP 404", now=T0)
    cat.mark_resolved(
        4001,
        video_url="https://cloud.video.taobao.com/4001.mp4",
        cover_url=None,
        api_duration=9.0,
        width=None,
        height=None,
        api_method="taobao.item_video",
        now=T0,
    )
    for at, outcome in ((T0, "ok"), (T0 + timedelta(minutes=1), "error")):
        record = CallRecord(
            at=at, method="taobao.item_video", num_iid=520000000001, outcome=outcome, request_id="r", elapsed_s=0.2
        )
        cat.log_call(record, app_key="K", quota_day="2026-11-01")
    once = CallRecord(at=T0, method="taobao.item_video", num_iid=2001, outcome="ok", request_id="", elapsed_s=0.1)
    cat.log_call(once, app_key="K", quota_day="x")
    moments = iter([T0, T0, T0 + timedelta(days=1)])
    ledger = QuotaLedger(cat, app_key="K", daily_limit=1000, reserve=0, tz=SHANGHAI, clock=lambda: next(moments))
    for _ in range(3):
        ledger.reserve()


def known_settings(base: Path) -> Path:
    """The known catalog (``build_known``) in ``base`` and the smallest settings file that reads it."""
    with Catalog.open(f"sqlite:///{base / 'catalog.sqlite3'}") as cat:
        build_known(cat, base)
    path = base / "settings.toml"
    path.write_text('[download]\ndir = "videos"\n[database]\nurl = "sqlite:///catalog.sqlite3"\n', encoding="utf-8")
    return path
