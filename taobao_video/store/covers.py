"""The covers' columns of ``videos``: what a cover fetch found, and which videos still lack their cover.

A cover never decides its video's state: these writes touch only ``cover_path``, ``cover_width``,
``cover_height`` and ``cover_error`` of a row that exists (a row replaced meanwhile keeps what its own run wrote).
"""

from __future__ import annotations

from sqlalchemy import and_, or_, select, update

from taobao_video.store.catalog import Catalog, engine_of
from taobao_video.store.common import count_arg
from taobao_video.store.schema import Video


def record_cover(
    catalog: Catalog,
    num_iid: int,
    *,
    cover_url: str,
    path: str | None,
    width: int | None = None,
    height: int | None = None,
    error: str | None = None,
) -> bool:
    """Store a cover's outcome on the video row of ``num_iid`` while its ``cover_url`` is still ``cover_url``:
    ``path`` (relative, like ``video_path``) and its pixel size, or ``error`` with the path cleared. False when
    there is no such row (gone, or replaced with another cover URL)."""
    values = {"cover_path": path, "cover_width": width, "cover_height": height, "cover_error": error}
    if path is None:
        values = {"cover_path": None, "cover_width": None, "cover_height": None, "cover_error": error}
    statement = update(Video).where(Video.num_iid == num_iid, Video.cover_url == cover_url).values(values)
    with engine_of(catalog).begin() as connection:
        return bool(connection.execute(statement).rowcount)


def missing_covers(catalog: Catalog, *, limit: int, ids: list[int] | None = None) -> list[tuple[int, str]]:
    """(num_iid, cover_url) of videos with a cover URL but no cover on record, oldest failure first, at most
    ``limit``; only among ``ids`` when given."""
    query = select(Video.num_iid, Video.cover_url).where(
        Video.cover_url.is_not(None), Video.cover_url != "", Video.cover_path.is_(None)
    )
    if ids is not None:
        if not ids:
            return []
        query = query.where(Video.num_iid.in_(ids[:10_000]))
    query = query.order_by(Video.downloaded_at, Video.num_iid).limit(count_arg("limit", limit))
    with engine_of(catalog).connect() as connection:
        return [(row.num_iid, row.cover_url) for row in connection.execute(query)]


def cover_paths(catalog: Catalog) -> list[tuple[int, str, int | None, int | None]]:
    """(num_iid, cover_path, width, height) of every cover on record, by id (for ``catalog verify``)."""
    query = select(Video.num_iid, Video.cover_path, Video.cover_width, Video.cover_height).where(
        and_(Video.cover_path.is_not(None), or_(Video.cover_path != ""))
    )
    with engine_of(catalog).connect() as connection:
        return [tuple(row) for row in connection.execute(query.order_by(Video.num_iid))]  # type: ignore[misc]
