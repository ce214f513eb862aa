"""The catalog repository: plain records in, plain records out, one short transaction per call. Never touches the
network.

:class:`Catalog` opens (and migrates, ``migrate.py``) the database, reads items and videos, and keeps the call log;
it inherits the queue (``queue.py``) and the item state machine (``items.py``), so callers find every operation on
one object. Work claims (``claims.py``) and the quota ledger (``quota.py``) are objects of their own over the same
catalog; listings and reports (``query.py``, ``report.py``) are functions taking it.

Every operation runs in its own short transaction on a pooled connection, so the lookup thread and dozens of
download threads can share one :class:`Catalog`. The SQL is portable (SQLite now, PostgreSQL later): writes are
plain UPDATE/INSERT/DELETE, "insert if absent" is SELECT-then-INSERT with a retry on IntegrityError, and what
differs between databases (engines, locks, bulk statements, time zones) lives in ``dialects.py``.

The engine stays inside ``store/``: :func:`engine_of` hands it to the store's own modules and to the tests, and a
test (tests/test_layout.py) keeps every other module off it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.engine import URL

from taobao_video.errors import ConfigError
from taobao_video.model import UNCHARGED_CALL, UNSENT_CALL
from taobao_video.store.common import READ_CHUNK, chunks, count_arg
from taobao_video.store.dialects import check_reachable, create_catalog_engine, masked, require_aware, sqlite_file
from taobao_video.store.items import ItemTransitions
from taobao_video.store.migrate import SCHEMA_REVISION, stored_revision
from taobao_video.store.migrate import migrate as _migrate  # Catalog.open's `migrate` flag shadows the name
from taobao_video.store.queue import CatalogQueue
from taobao_video.store.records import ItemRow, VideoRow
from taobao_video.store.schema import ITEM_ROW_COLUMNS, VIDEO_ROW_COLUMNS, Call, Item, Video, item_row, video_row

if TYPE_CHECKING:
    from taobao_video.top.client import CallRecord

# The records the repository's methods return, importable from here as before the split.
__all__ = ["Catalog", "engine_of", "open_existing"]


class Catalog(CatalogQueue, ItemTransitions):
    """The repository: plain records in, plain records out, one short transaction per call.

    Thread-safe: every method takes its own pooled connection. Times (``now``) must be timezone-aware; they are
    stored as UTC and come back as aware UTC datetimes.

    The queue's methods (``enqueue``, ``queue_stats``, ``next_lookups``, ``remove_items``, …) come from
    :class:`~taobao_video.store.queue.CatalogQueue`; the item state machine's (``mark_*``, ``record_video``,
    ``requeue_download``, ``retry_failed``, ``mark_deferred``), with the rules for ``deferred_at`` and for work
    claims, from :class:`~taobao_video.store.items.ItemTransitions`.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @classmethod
    def open(cls, url: str | URL, *, migrate: bool = True) -> Catalog:
        """Connect to the catalog at ``url`` (creating a SQLite file and its folder) and upgrade its schema."""
        engine = create_catalog_engine(url)
        try:
            if migrate:
                _migrate(engine)
            else:
                check_reachable(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ---- items

    def items(self, ids: Iterable[int]) -> dict[int, ItemRow]:
        """The known items among ``ids``, by id."""
        found: dict[int, ItemRow] = {}
        with self._engine.connect() as connection:
            for chunk in chunks(ids, READ_CHUNK):
                query = select(*ITEM_ROW_COLUMNS).where(Item.num_iid.in_(chunk))
                found.update((row.num_iid, item_row(row._mapping)) for row in connection.execute(query))
        return found

    def item(self, num_iid: int) -> ItemRow | None:
        return self.items([num_iid]).get(num_iid)

    # ---- videos

    def videos(self, ids: Iterable[int]) -> dict[int, VideoRow]:
        """The downloaded videos among ``ids``, by id."""
        found: dict[int, VideoRow] = {}
        with self._engine.connect() as connection:
            for chunk in chunks(ids, READ_CHUNK):
                query = select(*VIDEO_ROW_COLUMNS).where(Video.num_iid.in_(chunk))
                found.update((row.num_iid, video_row(row._mapping)) for row in connection.execute(query))
        return found

    def video(self, num_iid: int) -> VideoRow | None:
        return self.videos([num_iid]).get(num_iid)

    def video_ids_after(self, after: int, *, limit: int) -> list[int]:
        """The ids of downloaded videos greater than ``after``, ascending, at most ``limit``.

        One page of a walk over every video (``after`` = the last id of the page before, 0 to start): each page
        is its own short read, so a walk that takes hours holds no transaction open meanwhile.
        """
        query = select(Video.num_iid).where(Video.num_iid > after).order_by(Video.num_iid)
        with self._engine.connect() as connection:
            return list(connection.scalars(query.limit(count_arg("limit", limit))))

    # ---- the call log

    def log_call(self, record: CallRecord, *, app_key: str, quota_day: str) -> None:
        """Append one gateway attempt to ``calls``."""
        values = {
            "at": require_aware(record.at),
            "app_key": app_key,
            "quota_day": quota_day,
            "method": record.method,
            "num_iid": record.num_iid,
            "outcome": record.outcome,
            "request_id": record.request_id or None,
            "elapsed_ms": round(record.elapsed_s * 1000),
        }
        with self._engine.begin() as connection:
            connection.execute(insert(Call).values(values))

    def call_count(self, *, app_key: str | None = None, day: str | None = None) -> int:
        """Calls logged that the platform may have counted (not the ``unsent`` or ``uncharged`` attempts),
        optionally for one app key and/or one quota day."""
        query = (
            select(func.count())
            .select_from(Call)
            .where(Call.outcome != UNSENT_CALL, Call.outcome.not_like(f"{UNCHARGED_CALL}%"))
        )
        if app_key is not None:
            query = query.where(Call.app_key == app_key)
        if day is not None:
            query = query.where(Call.quota_day == day)
        with self._engine.connect() as connection:
            return int(connection.scalar(query) or 0)


def engine_of(store: Catalog | Engine) -> Engine:
    """The engine under ``store``: for the store's own modules (claims, quota ledger, queries, reports) and for
    tests that look at the database directly. Nothing else in the package may use it (tests/test_layout.py)."""
    return store._engine if isinstance(store, Catalog) else store


def open_existing(url: str | URL) -> Catalog:
    """The catalog at ``url`` for the commands that only read it (``catalog list``, ``show``, ``stats``, …).

    Nothing is created and nothing is migrated: ConfigError (exit 78) when there is no catalog there yet, or when
    its schema is not :data:`~taobao_video.store.migrate.SCHEMA_REVISION`, saying what to run. Reads one row of
    ``alembic_version`` instead of loading Alembic's scripts, which would cost a read command more time than its
    query.
    """
    where = masked(url)
    file = sqlite_file(url)
    if file is not None and not file.is_file():
        raise ConfigError(f"no catalog at {file} yet: harvest something first, or run `taobao-video db upgrade`")
    catalog = Catalog.open(url, migrate=False)
    revision = stored_revision(catalog._engine)
    if revision != SCHEMA_REVISION:
        catalog.close()
        if revision is None:
            raise ConfigError(f"the catalog at {where} has no schema yet: run `taobao-video db upgrade`")
        raise ConfigError(
            f"the catalog at {where} is at schema revision {revision}, this taobao-video reads {SCHEMA_REVISION}: "
            "run `taobao-video db upgrade` (or, if a newer taobao-video wrote it, upgrade taobao-video)"
        )
    return catalog
