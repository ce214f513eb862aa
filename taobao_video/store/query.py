"""Asking the catalog which videos it holds: a :class:`VideoQuery` (``filters.py``) run as SQL.

:func:`iter_rows`, :func:`list_rows`, :func:`count_rows` and :func:`list_page` run a query; what each row holds is
said in ``filters.py``. Read-only: nothing here writes the catalog or touches the network, and click/rich are never
imported (the web server uses this too). SQLAlchemy is imported when a query runs, not with the module, so that
the filters' names, re-exported here, stay as light to import as ``filters.py`` itself.

Most filters are SQL. Two are not: ``ids`` (any number of them: matched in chunks of bound parameters, then
sorted here) and ``missing`` (a file check on disk against ``base_dir``, the settings folder that ``video_path``
is relative to). Both sort and page in Python with the same order as the SQL: the sort key, then ``num_iid``,
both in the asked direction, a missing duration smaller than any (SQLite's own rule, spelt out for others).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taobao_video.model import MAX_NUM_IID
from taobao_video.storage.base import is_object_url
from taobao_video.store.filters import (
    VIDEO_COLUMNS,
    VideoQuery,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine, Select
    from sqlalchemy.sql.elements import ColumnElement

    from taobao_video.store.catalog import Catalog

__all__ = ["count_rows", "iter_rows", "jsonable", "list_page", "list_rows", "prefix_ranges"]

_SORT_COLUMN = {"num_iid": "num_iid", "duration": "duration", "downloaded_at": "downloaded_at", "size": "size_bytes"}


def iter_rows(catalog: Catalog, query: VideoQuery, *, base_dir: Path) -> Iterator[dict[str, Any]]:
    """The rows of ``query`` as dicts of Python values (datetimes aware UTC), keys :attr:`VideoQuery.columns`.

    Streams: without ``ids`` the rows come from one cursor as they are read, so a million-row export holds a
    chunk at a time; with ``ids`` only the rows of those ids are ever held.
    """
    if query.ids is not None:
        yield from _page(_sorted(_id_rows(catalog, query, base_dir), query), query)
        return
    if query.missing:
        yield from _page(_stream(catalog, _select(query, paged=False), query, base_dir), query)
        return
    yield from _stream(catalog, _select(query, paged=True), query, base_dir)


def list_rows(catalog: Catalog, query: VideoQuery, *, base_dir: Path) -> list[dict[str, Any]]:
    """:func:`iter_rows` as a list (for a page of results; stream big exports with :func:`iter_rows`)."""
    return list(iter_rows(catalog, query, base_dir=base_dir))


def count_rows(catalog: Catalog, query: VideoQuery, *, base_dir: Path) -> int:
    """How many rows ``query`` matches, ignoring ``limit`` and ``offset``."""
    from sqlalchemy import func, select

    if query.missing or query.ids is not None:
        unpaged = dataclasses.replace(query, limit=None, offset=0)
        return sum(1 for _ in iter_rows(catalog, unpaged, base_dir=base_dir))
    counted = select(func.count()).select_from(_select(query, paged=False, ordered=False).subquery())
    with _engine(catalog).connect() as connection:
        return int(connection.scalar(counted) or 0)


def list_page(catalog: Catalog, query: VideoQuery, *, base_dir: Path) -> tuple[list[dict[str, Any]], int]:
    """One page of ``query`` and how many rows match in all (what ``/api/videos`` answers).

    With ``missing`` or ``ids`` the rows are filtered in Python, so they are read once, unpaged, and the page cut
    from them: :func:`list_rows` then :func:`count_rows` would check every file on disk twice.
    """
    if query.missing or query.ids is not None:
        every = list(iter_rows(catalog, dataclasses.replace(query, limit=None, offset=0), base_dir=base_dir))
        return list(_page(every, query)), len(every)
    return list_rows(catalog, query, base_dir=base_dir), count_rows(catalog, query, base_dir=base_dir)


def jsonable(row: Mapping[Any, Any]) -> dict[str, Any]:
    """``row`` with datetimes as ISO 8601 text (UTC, ``+00:00``): what json.dumps accepts."""
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in row.items()}


def _select(query: VideoQuery, *, paged: bool, ordered: bool = True) -> Select[Any]:
    from sqlalchemy import select

    from taobao_video.store.schema import Item, Video

    videos = Video.__table__.c
    items = Item.__table__.c
    if query.states is None:
        statement = select(*(videos[name] for name in VIDEO_COLUMNS))
    else:
        columns = [items.num_iid, *(videos[name] for name in VIDEO_COLUMNS[1:]), items.state]
        columns += [items.error_kind, items.last_error]
        joined = Item.__table__.outerjoin(Video.__table__, videos.num_iid == items.num_iid)
        statement = select(*columns).select_from(joined).where(items.state.in_(query.states))
    statement = statement.where(*_conditions(query))
    if ordered:
        statement = statement.order_by(*_order(query))
    if paged:
        statement = statement.limit(query.limit).offset(query.offset or None)
    return statement


def _conditions(query: VideoQuery) -> list[ColumnElement[bool]]:
    from sqlalchemy import and_, false, or_

    from taobao_video.store.schema import Item, Video

    videos = Video.__table__.c
    key = Item.__table__.c.num_iid if query.states is not None else videos.num_iid
    conditions: list[ColumnElement[bool]] = []
    if query.min_duration is not None:
        conditions.append(videos.duration >= query.min_duration)
    if query.max_duration is not None:
        conditions.append(videos.duration <= query.max_duration)
    if query.since is not None:
        conditions.append(videos.downloaded_at >= query.since)
    if query.until is not None:
        conditions.append(videos.downloaded_at < query.until)
    if query.id_prefix is not None:
        ranges = [and_(key >= low, key <= high) for low, high in prefix_ranges(query.id_prefix)]
        conditions.append(or_(*ranges) if ranges else false())
    if query.missing:
        conditions.append(videos.video_path.is_not(None))
    if query.min_height is not None:
        conditions.append(videos.height >= query.min_height)
    if query.codec is not None:
        conditions.append(videos.codec == query.codec)
    if query.video_id is not None:
        conditions.append(videos.video_id == query.video_id)
    if query.has_audio is not None:
        conditions.append(videos.has_audio.is_(query.has_audio))
    return conditions


def prefix_ranges(prefix: str) -> list[tuple[int, int]]:
    """The num_iid ranges (inclusive) whose decimal text starts with ``prefix``: one per possible length.

    "52" is 52, 520-529, 5200-5299, …: up to 19 index range scans instead of casting every id to text.
    """
    if prefix.startswith("0"):
        return []  # no num_iid is written with a leading zero
    ranges = []
    value = int(prefix)
    for extra in range(0, 20 - len(prefix)):
        low, high = value * 10**extra, (value + 1) * 10**extra - 1
        if low > MAX_NUM_IID:
            break
        ranges.append((low, min(high, MAX_NUM_IID)))
    return ranges


def _order(query: VideoQuery) -> list[ColumnElement[Any]]:
    from taobao_video.store.schema import Item, Video

    videos = Video.__table__.c
    key = Item.__table__.c.num_iid if query.states is not None else videos.num_iid
    column = key if query.sort == "num_iid" else videos[_SORT_COLUMN[query.sort]]
    # A missing duration sorts as the smallest, as SQLite does by itself; said out loud for PostgreSQL.
    order: list[ColumnElement[Any]] = [column.desc().nulls_last() if query.desc else column.asc().nulls_first()]
    if query.sort != "num_iid":
        order.append(key.desc() if query.desc else key.asc())
    return order


def _stream(catalog: Catalog, statement: Select[Any], query: VideoQuery, base_dir: Path) -> Iterator[dict[str, Any]]:
    names = query.columns
    with _engine(catalog).connect() as connection:
        for row in connection.execution_options(yield_per=1000).execute(statement):
            record = dict(zip(names, row, strict=True))
            if not query.missing or _gone(base_dir, record["video_path"]):
                yield record


def _id_rows(catalog: Catalog, query: VideoQuery, base_dir: Path) -> Iterator[dict[str, Any]]:
    from taobao_video.store.dialects import SQLITE_IN_CHUNK
    from taobao_video.store.schema import Item, Video

    assert query.ids is not None
    key = Item.__table__.c.num_iid if query.states is not None else Video.__table__.c.num_iid
    ids = sorted(query.ids)
    names = query.columns
    base = _select(query, paged=False, ordered=False)
    with _engine(catalog).connect() as connection:
        for start in range(0, len(ids), SQLITE_IN_CHUNK):
            for row in connection.execute(base.where(key.in_(ids[start : start + SQLITE_IN_CHUNK]))):
                record = dict(zip(names, row, strict=True))
                if not query.missing or _gone(base_dir, record["video_path"]):
                    yield record


def _sorted(rows: Iterable[dict[str, Any]], query: VideoQuery) -> list[dict[str, Any]]:
    """The SQL order in Python: the sort column (None smallest), then num_iid, both in the asked direction."""
    column = _SORT_COLUMN[query.sort]

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        value = row[column]
        return (value is not None, value if value is not None else 0, row["num_iid"])

    return sorted(rows, key=key, reverse=query.desc)


def _engine(catalog: Catalog) -> Engine:
    from taobao_video.store.catalog import engine_of

    return engine_of(catalog)


def _page(rows: Iterable[dict[str, Any]], query: VideoQuery) -> Iterator[dict[str, Any]]:
    taken = 0
    for index, row in enumerate(rows):
        if index < query.offset:
            continue
        if query.limit is not None and taken >= query.limit:
            return
        taken += 1
        yield row


def _gone(base_dir: Path, video_path: str | None) -> bool:
    """A file gone from disk; an object in a bucket (``s3://…``) is not looked at here: `catalog verify` does."""
    if video_path is None or is_object_url(video_path):
        return False
    return not (base_dir / video_path).exists()
