"""What a refresh reads and writes: the items due for a re-check, a re-check that found nothing new, and a video
that moves to ``video_history`` when its item's video changed or went (migration 0005's table)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, insert, or_, select, update

from taobao_video.model import ItemState
from taobao_video.store.catalog import Catalog, engine_of
from taobao_video.store.common import count_arg, num_iid_arg, retry_on_race
from taobao_video.store.dialects import require_aware
from taobao_video.store.schema import Item, Video, VideoHistory

REFRESHED_STATES = (ItemState.DONE.value, ItemState.NO_VIDEO.value)


def due_for_refresh(catalog: Catalog, *, checked_before: datetime, limit: int) -> list[int]:
    """Items done or without a video whose last lookup is older than ``checked_before``, oldest check first (never
    checked first of all), at most ``limit``."""
    require_aware(checked_before)
    query = (
        select(Item.num_iid)
        .where(Item.state.in_(REFRESHED_STATES))
        .where(or_(Item.checked_at.is_(None), Item.checked_at < checked_before))
        .order_by(Item.checked_at.asc().nulls_first(), Item.num_iid)
        .limit(count_arg("limit", limit))
    )
    with engine_of(catalog).connect() as connection:
        return list(connection.scalars(query))


def count_due(catalog: Catalog, *, checked_before: datetime) -> int:
    """How many items :func:`due_for_refresh` would give without a limit (what a budget leaves waiting)."""
    require_aware(checked_before)
    query = (
        select(func.count())
        .select_from(Item)
        .where(Item.state.in_(REFRESHED_STATES))
        .where(or_(Item.checked_at.is_(None), Item.checked_at < checked_before))
    )
    with engine_of(catalog).connect() as connection:
        return int(connection.scalar(query) or 0)


def mark_checked(
    catalog: Catalog, num_iid: int, *, now: datetime, title: str | None = None, nick: str | None = None
) -> None:
    """A re-check found the item's video unchanged: one more lookup, ``checked_at`` now; a title or nick the
    answer carried is kept on the item and its video."""
    num_iid_arg(num_iid)
    require_aware(now)
    facts = {k: v for k, v in (("title", title), ("nick", nick)) if v}
    values = {"checked_at": now, "updated_at": now, "lookups": Item.lookups + 1, **facts}
    with engine_of(catalog).begin() as connection:
        connection.execute(update(Item).where(Item.num_iid == num_iid).values(values))
        if facts:
            connection.execute(update(Video).where(Video.num_iid == num_iid).values(facts))


def retire_video(catalog: Catalog, num_iid: int, *, kept_path: str | None, now: datetime) -> bool:
    """Move the item's ``videos`` row to ``video_history`` (``replaced_at`` now, ``video_path`` = ``kept_path``:
    where the old file was kept, None when it was pruned), in one transaction. False when it has no video."""
    num_iid_arg(num_iid)
    require_aware(now)

    @retry_on_race
    def attempt() -> bool:
        with engine_of(catalog).begin() as connection:
            row = connection.execute(select(*Video.__table__.c).where(Video.num_iid == num_iid)).mappings().first()
            if row is None:
                return False
            kept = {name: row[name] for name in ("num_iid", "video_id", "video_url", "sha256", "size_bytes")}
            kept |= {"duration": row["duration"], "downloaded_at": row["downloaded_at"]}
            connection.execute(insert(VideoHistory).values(**kept, video_path=kept_path, replaced_at=now))
            connection.execute(delete(Video).where(Video.num_iid == num_iid))
            return True

    return attempt()


def history_of(catalog: Catalog, num_iid: int) -> list[dict[str, object]]:
    """The item's replaced versions, oldest first."""
    query = select(*VideoHistory.__table__.c).where(VideoHistory.num_iid == num_iid).order_by(VideoHistory.id)
    with engine_of(catalog).connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]
