"""What the catalog knows, summed up: one id (:func:`show`) or the whole catalog (:func:`stats`). Read-only.

Both return plain dicts of JSON-able values (numbers, strings, None; times as ISO 8601 UTC text), which the CLI
prints as text or as one JSON object and the web page can serve as they are.

:func:`stats` must stay fast on a million videos (issue 6: the whole command within 1.5x of bare start-up), so
no figure reads the table rows: counts by state from ``ix_items_queue`` (the biggest state as the total minus the
others), the totals and the duration histogram from ``video_totals`` (running sums per second of duration that
triggers keep, migration 0004), downloads per day as range counts on ``ix_videos_downloaded_at``, the quota from
``quota_days`` (one row per app key and day).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from taobao_video.model import UNSENT_CALL
from taobao_video.store.filters import STATES, VIDEO_COLUMNS
from taobao_video.store.query import jsonable

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from taobao_video.store.catalog import Catalog

# Histogram bucket edges in seconds: [0, 5), [5, 10), … [300, ∞), and videos whose duration is unknown.
DURATION_EDGES: tuple[int, ...] = (0, 5, 10, 15, 30, 60, 120, 300)
DEFAULT_DAYS = 14
_CALLS_SHOWN = 20
_SMALL = 10_000  # items per state counted one by one before "the rest" is cheaper


def show(catalog: Catalog, num_iid: int) -> dict[str, Any] | None:
    """Everything known about ``num_iid``: its video row, its item row, the calls spent on it and its last error.

    ``calls`` counts every gateway attempt logged for the id that the platform may have counted (failed ones
    too), ``unsent`` the attempts that never left this machine (not counted anywhere), and ``latest`` lists the
    latest :data:`_CALLS_SHOWN` of both; None when the catalog has never heard of the id.
    """
    from sqlalchemy import func, select

    from taobao_video.store.catalog import engine_of
    from taobao_video.store.schema import Call, Item, Video

    with engine_of(catalog).connect() as connection:
        video = connection.execute(select(Video.__table__).where(Video.num_iid == num_iid)).mappings().first()
        item = connection.execute(select(Item.__table__).where(Item.num_iid == num_iid)).mappings().first()
        calls = Call.__table__.c
        attempts = select(func.count()).where(calls.num_iid == num_iid)
        count = int(connection.scalar(attempts.where(calls.outcome != UNSENT_CALL)) or 0)
        unsent = int(connection.scalar(attempts.where(calls.outcome == UNSENT_CALL)) or 0)
        recent = connection.execute(
            select(calls.at, calls.method, calls.outcome, calls.quota_day, calls.elapsed_ms, calls.request_id)
            .where(calls.num_iid == num_iid)
            .order_by(calls.at.desc(), calls.id.desc())
            .limit(_CALLS_SHOWN)
        ).mappings()
        latest = [jsonable(row) for row in recent]
    if video is None and item is None and count + unsent == 0:
        return None
    item_part = None
    if item is not None:
        item_part = jsonable(item)
    from taobao_video.store.history import history_of
    from taobao_video.store.shares import users_of

    same_video = [other for other in users_of(catalog, num_iid) if other != num_iid] if video is not None else []
    return {
        "num_iid": num_iid,
        "state": item["state"] if item is not None else None,
        "video": jsonable({name: video[name] for name in VIDEO_COLUMNS}) if video is not None else None,
        "item": item_part,
        "calls": {"total": count, "unsent": unsent, "latest": latest},
        "last_error": item["last_error"] if item is not None else None,
        "error_kind": item["error_kind"] if item is not None else None,
        "same_video": same_video,  # the other items that use this video (one file on disk)
        "history": [jsonable(row) for row in history_of(catalog, num_iid)],  # versions replaced (refresh), oldest first
    }


def stats(
    catalog: Catalog, *, now: datetime, tz: tzinfo, days: int = DEFAULT_DAYS, quota_tz: tzinfo | None = None
) -> dict[str, Any]:
    """Counts by state, total bytes and hours, the duration histogram, downloads per day and calls per quota day.

    ``downloads_per_day`` covers the ``days`` days up to ``now`` in ``tz`` (the user's zone; each day's bounds
    are computed there, so summer-time days are right), oldest first, zeros included. ``quota_days`` lists what
    the ledger holds for the last ``days`` quota days (their dates are in the quota zone), newest first.
    """
    if days < 1:
        raise ValueError(f"days must be 1 or more, got {days}")
    from taobao_video.store.catalog import engine_of

    with engine_of(catalog).connect() as connection:
        items = _counts_by_state(connection)
        videos, total_bytes, total_seconds, histogram = _totals_and_histogram(connection)
        per_day = _downloads_per_day(connection, now=now, tz=tz, days=days)
        quota = _quota_days(connection, now=now, tz=quota_tz or tz, days=days)
    from taobao_video.store.shares import shared_bytes

    return {
        "items": items,
        "videos": videos,
        "bytes": total_bytes,
        "disk_bytes": total_bytes - shared_bytes(catalog),  # a file several items share counted once
        "seconds": round(total_seconds, 3),
        "hours": round(total_seconds / 3600, 2),
        "duration_histogram": histogram,
        "downloads_per_day": per_day,
        "quota_days": quota,
    }


def _counts_by_state(connection: Connection) -> dict[str, int]:
    """Items per state, and ``total``.

    Counting every row of a table is a b-tree page count (milliseconds for a million); counting one state walks
    its part of ``ix_items_queue`` entry by entry (about 40 ms per million). So the states are counted up to a
    cap that grows fourfold each round, the ones under it being done, until at most one is left over: that one
    (the biggest) is the total minus the others. A million done items beside 20,000 of each other state cost
    about 200,000 steps instead of 1,100,000.
    """
    # Plain SQL text: the same statements built with SQLAlchemy's expression language took 40 ms more to compile
    # than SQLite took to run them on a million items.
    from sqlalchemy import text

    total = int(connection.scalar(text("SELECT count(*) FROM items")) or 0)
    counts: dict[str, int] = {}
    open_states, cap = list(STATES), _SMALL
    while True:
        capped = ", ".join(
            f"(SELECT count(*) FROM (SELECT 1 FROM items WHERE state = :s{i} LIMIT :cap) AS s{i})"
            for i in range(len(open_states))
        )
        params: dict[str, Any] = {f"s{i}": state for i, state in enumerate(open_states)}
        found = connection.execute(text(f"SELECT {capped}"), {**params, "cap": cap + 1}).one()
        counts.update(zip(open_states, map(int, found), strict=True))
        open_states = [state for state in open_states if counts[state] > cap]
        if len(open_states) <= 1:
            break
        cap *= 4
    if open_states:
        (big,) = open_states
        counts[big] = total - sum(count for state, count in counts.items() if state != big)
    return {**counts, "total": total}


def _totals_and_histogram(connection: Connection) -> tuple[int, int, float, list[dict[str, Any]]]:
    """Videos, bytes and seconds in all, and videos per duration bucket (``from`` inclusive, ``to`` exclusive, None
    for no bound; then the unknown, ``from`` and ``to`` None), from the few hundred rows of ``video_totals``. The
    edges are whole seconds, so sums of its per-second rows give them exactly."""
    from sqlalchemy import text

    rows = connection.execute(text("SELECT duration_s, videos, bytes, seconds FROM video_totals")).all()
    videos = sum(int(row[1]) for row in rows)
    total_bytes = sum(int(row[2]) for row in rows)
    seconds = sum(float(row[3]) for row in rows)
    buckets: list[dict[str, Any]] = []
    for index, low in enumerate(DURATION_EDGES):
        high = DURATION_EDGES[index + 1] if index + 1 < len(DURATION_EDGES) else None
        count = sum(int(row[1]) for row in rows if row[0] >= low and (high is None or row[0] < high))
        buckets.append({"from": low, "to": high, "videos": count})
    buckets.append({"from": None, "to": None, "videos": sum(int(row[1]) for row in rows if row[0] == -1)})
    return videos, total_bytes, seconds, buckets


def day_bounds(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """The UTC instants that start and end ``day`` in ``tz`` (23 or 25 hours apart on a summer-time change)."""
    start = datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz).astimezone(UTC)
    return start, end


def _downloads_per_day(connection: Connection, *, now: datetime, tz: tzinfo, days: int) -> list[dict[str, Any]]:
    """A range count on ``ix_videos_downloaded_at`` per day: a day's rows, never the table's. (One statement
    with a filtered count per day was slower: it tests every row of the range against every day.)"""
    from sqlalchemy import bindparam, text

    from taobao_video.store.dialects import UtcDateTime

    count = text("SELECT count(*) FROM videos WHERE downloaded_at >= :start AND downloaded_at < :end").bindparams(
        bindparam("start", type_=UtcDateTime()), bindparam("end", type_=UtcDateTime())
    )
    today = now.astimezone(tz).date()
    result = []
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        start, end = day_bounds(day, tz)
        videos = int(connection.scalar(count, {"start": start, "end": end}) or 0)
        result.append({"day": day.isoformat(), "videos": videos})
    return result


def _quota_days(connection: Connection, *, now: datetime, tz: tzinfo, days: int) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from taobao_video.store.schema import QuotaDay

    first = (now.astimezone(tz).date() - timedelta(days=days - 1)).isoformat()
    table = QuotaDay.__table__.c
    rows = connection.execute(
        select(table.day, table.app_key, table.used, table.daily_limit, table.banned_until)
        .where(table.day >= first)
        .order_by(table.day.desc(), table.app_key)
    ).mappings()
    return [jsonable(row) for row in rows]


def histogram_label(bucket: dict[str, Any]) -> str:
    if bucket["from"] is None:
        return "unknown"
    if bucket["to"] is None:
        return f"{bucket['from']} s and more"
    return f"{bucket['from']}-{bucket['to']} s"


def sparkline(values: Sequence[int]) -> str:
    """A one-line bar chart of ``values`` (for the text form of stats)."""
    bars = " ▁▂▃▄▅▆▇█"
    top = max(values, default=0)
    if top <= 0:
        return " " * len(values)
    return "".join(bars[min(8, -(-value * 8 // top))] for value in values)
