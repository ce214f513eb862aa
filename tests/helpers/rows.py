"""Catalog rows for tests: a complete ``VideoRow`` with plausible values, changed only where a test cares."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from taobao_video.store.records import VideoRow

DOWNLOADED_AT = datetime(2026, 11, 22, 4, 5, tzinfo=UTC)  # the catalog tests' NOW + 5 minutes (their LATER)


def video_row(num_iid: int = 101, **changes: Any) -> VideoRow:
    """A downloaded video of ``num_iid`` (a portrait 720x1280 clip of 12.5 s), with ``changes`` applied."""
    row = VideoRow(
        num_iid=num_iid,
        video_path=f"data/videos/{num_iid}.mp4",
        duration=12.5,
        size_bytes=1_234_567,
        sha256="ab" * 32,
        video_url=f"https://cloud.video.taobao.com/play/{num_iid}.mp4",
        cover_url=f"https://img.alicdn.com/{num_iid}.jpg",
        width=720,
        height=1280,
        api_method="taobao.item_video",
        downloaded_at=DOWNLOADED_AT,
    )
    return replace(row, **changes)


__all__ = ["DOWNLOADED_AT", "video_row"]
