"""Plan before spending, and record what a lookup learnt: the two steps of a harvest that decide about calls.

Planning spends nothing: ids already in ``videos`` (file present, right size) are skipped, ids known to have no
video (or to be gone) are not asked again until ``no_video_ttl`` passes, and ids resolved earlier whose download
failed are downloaded from their stored URL without a call. Only what is left is looked up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from taobao_video.model import FailureKind, ItemState, LookupOutcome
from taobao_video.storage.base import is_object_url
from taobao_video.store.catalog import Catalog
from taobao_video.store.records import ItemRow, VideoRow
from taobao_video.top.lookup import LookupResult

# Outcomes not asked about again until the no-video TTL has passed.
_CHECKED_STATES = (ItemState.NO_VIDEO, ItemState.NOT_FOUND, ItemState.NOT_VISIBLE)


@dataclass(frozen=True)
class Job:
    """A video to download: where from, and what the API said about it."""

    num_iid: int
    url: str
    cover_url: str | None
    api_duration: float | None
    width: int | None
    height: int | None
    api_method: str
    title: str | None = None
    nick: str | None = None
    video_id: str | None = None


@dataclass
class Plan:
    """Per id: look it up (costs a call), download it from a known URL, or skip it (with the reason)."""

    lookups: list[int] = field(default_factory=list)
    downloads: list[Job] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class PlanOptions:
    force: bool = False  # download again what the catalog has
    no_video_ttl: timedelta = timedelta(days=30)


def make_plan(ids: Iterable[int], catalog: Catalog, *, now: datetime, base_dir: Path, options: PlanOptions) -> Plan:
    """Decide per id: skip, download from a stored URL, or look up (the only choice that costs a call)."""
    ids = list(ids)
    items, videos = catalog.items(ids), catalog.videos(ids)
    plan = Plan()
    for num_iid in ids:
        video, item = videos.get(num_iid), items.get(num_iid)
        if video is not None:
            # an object's row is the catalog's word (``catalog verify`` checks the bucket): no request per id
            stored = is_object_url(video.video_path) or _file_intact(base_dir / video.video_path, video.size_bytes)
            if not options.force and stored:
                plan.skipped.append((num_iid, "in the catalog"))
            else:
                plan.downloads.append(job_from_video(video))
        elif item is not None and item.state in _CHECKED_STATES and not options.force:
            if item.checked_at is not None and now - item.checked_at < options.no_video_ttl:
                plan.skipped.append((num_iid, f"{item.state.value} (checked {item.checked_at:%Y-%m-%d})"))
            else:
                plan.lookups.append(num_iid)
        elif item is not None and item.video_url and item.error_kind != FailureKind.URL_EXPIRED:
            plan.downloads.append(_job_from_item(item))
        else:
            plan.lookups.append(num_iid)
    return plan


def record_lookup(catalog: Catalog, result: LookupResult, *, now: datetime) -> Job | None:
    """Remember what a lookup found, so no later run pays for it again; the download it calls for, if any."""
    if result.outcome == LookupOutcome.VIDEO and result.video is not None:
        v = result.video
        catalog.mark_resolved(
            v.num_iid,
            video_url=v.url,
            cover_url=v.cover_url,
            api_duration=v.duration,
            width=v.width,
            height=v.height,
            api_method=v.api_method,
            title=v.title,
            nick=v.nick,
            video_id=v.video_id,
            now=now,
        )
        return Job(
            v.num_iid, v.url, v.cover_url, v.duration, v.width, v.height, v.api_method, v.title, v.nick, v.video_id
        )
    if result.outcome == LookupOutcome.NO_VIDEO:
        catalog.mark_no_video(result.num_iid, api_method=result.api_method, now=now)
    elif result.outcome == LookupOutcome.NOT_VISIBLE:
        catalog.mark_not_visible(result.num_iid, api_method=result.api_method, now=now)
    else:
        catalog.mark_not_found(result.num_iid, detail=result.detail, api_method=result.api_method, now=now)
    return None


def _file_intact(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except OSError:
        return False


def job_from_video(video: VideoRow) -> Job:
    return Job(
        video.num_iid,
        video.video_url,
        video.cover_url,
        video.duration,
        video.width,
        video.height,
        video.api_method,
        video.title,
        video.nick,
        video.video_id,
    )


def _job_from_item(item: ItemRow) -> Job:
    assert item.video_url is not None
    return Job(
        item.num_iid,
        item.video_url,
        item.cover_url,
        item.api_duration,
        item.width,
        item.height,
        item.api_method or "",
        item.title,
        item.nick,
        item.video_id,
    )
