"""One copy per video, on the catalog's side: the row already holding a video (by ``video_id`` or ``sha256``), the
items that use one video, and the bytes on disk with each shared file counted once (migration 0008)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, bindparam, func, or_, select, update

from taobao_video.store.catalog import Catalog, engine_of
from taobao_video.store.records import VideoRow
from taobao_video.store.schema import VIDEO_ROW_COLUMNS, Video, video_row


def _holders_of(column: Any) -> Select[Any]:
    """The holders' query by one column, built once: every download asks it, and building a statement costs more
    than running it on an index."""
    order = (Video.shares_file.is_(True), Video.num_iid)
    return select(*VIDEO_ROW_COLUMNS).where(column == bindparam("wanted")).order_by(*order).limit(50)


_BY_VIDEO_ID = _holders_of(Video.video_id)
_BY_SHA256 = _holders_of(Video.sha256)


def holders(catalog: Catalog, *, video_id: str | None = None, sha256: str | None = None) -> list[VideoRow]:
    """The rows holding the video ``video_id`` (or the file ``sha256``): rows with a file of their own first."""
    if video_id is None and sha256 is None:
        return []
    query, wanted = (_BY_VIDEO_ID, video_id) if video_id is not None else (_BY_SHA256, sha256)
    with engine_of(catalog).connect() as connection:
        return [video_row(row._mapping) for row in connection.execute(query, {"wanted": wanted})]


def users_of(catalog: Catalog, num_iid: int) -> list[int]:
    """Every item whose video is ``num_iid``'s (the same ``video_id`` or the same file), ``num_iid`` included, by
    id; [] when it has no video."""
    with engine_of(catalog).connect() as connection:
        found = connection.execute(select(Video.video_id, Video.sha256).where(Video.num_iid == num_iid)).first()
        if found is None:
            return []
        same = Video.sha256 == found.sha256
        if found.video_id is not None:
            same = or_(same, Video.video_id == found.video_id)
        return list(connection.scalars(select(Video.num_iid).where(same).order_by(Video.num_iid)))


def others_at(catalog: Catalog, video_path: str, num_iid: int) -> list[int]:
    """The items other than ``num_iid`` whose row names the file ``video_path`` itself (a share where the file
    system had no hard links)."""
    query = select(Video.num_iid).where(Video.video_path == video_path, Video.num_iid != num_iid)
    with engine_of(catalog).connect() as connection:
        return list(connection.scalars(query.order_by(Video.num_iid)))


def repoint(catalog: Catalog, num_iid: int, *, video_path: str) -> None:
    """``num_iid``'s row names a file of its own now, at ``video_path`` (the same bytes: a copy)."""
    with engine_of(catalog).begin() as connection:
        connection.execute(
            update(Video).where(Video.num_iid == num_iid).values(video_path=video_path, shares_file=False)
        )


def shared_bytes(catalog: Catalog) -> int:
    """Bytes the ``videos`` rows count more than once: for each file shared by n rows, (n - 1) x its size.

    Only the groups of the rows marked ``shares_file`` are looked at (an index finds them), each counted whole
    by ``sha256``, so the figure stays right when the row that first held a file has gone since."""
    with engine_of(catalog).connect() as connection:
        hashes = list(connection.scalars(select(Video.sha256).where(Video.shares_file.is_(True)).distinct()))
        extra = 0
        for start in range(0, len(hashes), 500):
            groups = (
                select(func.count(), func.max(Video.size_bytes))
                .where(Video.sha256.in_(hashes[start : start + 500]))
                .group_by(Video.sha256)
            )
            extra += sum((n - 1) * (size or 0) for n, size in connection.execute(groups))
    return extra
