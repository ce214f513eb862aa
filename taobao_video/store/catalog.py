"""The catalog: SQLAlchemy models and the repository API. Never touches the network.

Tables (the README documents them for users):

    videos      one row per downloaded, verified video (design.md contract: the column names are fixed)
    items       each id's lookup and download state: the queue and what has been learnt about it
    calls       the call log: one row per gateway attempt, failed ones included
    quota_days  the quota ledger: calls reserved per app key and quota day (see ``quota.py``)

Every operation runs in its own short transaction on a pooled connection, so the lookup thread and dozens of
download threads can share one :class:`Catalog`. The SQL is portable (SQLite now, PostgreSQL later): writes are
plain UPDATE/INSERT/DELETE, "insert if absent" is SELECT-then-INSERT with a retry on IntegrityError, and what
differs between databases (engines, locks, bulk statements, time zones) lives in ``dialects.py``.

The queue is the ``items`` table read in queue order: ``priority`` DESC, then ``seq`` (insertion order, unique,
given out by :meth:`Catalog.enqueue` and by the marks that add an unknown id).

The schema is owned by the Alembic migrations in ``taobao_video/store/migrations`` and applied by :meth:`Catalog.open`
and :func:`upgrade`; a test keeps them equal to the models below. To write a new migration::

    from alembic import command
    from taobao_video.store.catalog import alembic_config
    command.revision(alembic_config("sqlite:///scratch.sqlite3"), message="...", autogenerate=True, rev_id="0002")
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    and_,
    delete,
    exists,
    func,
    insert,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from taobao_video.errors import ConfigError
from taobao_video.model import MAX_NUM_IID, MAX_PRIORITY, MIN_PRIORITY, UNSENT_CALL, WAITING_STATES, ItemState
from taobao_video.retry import retrying
from taobao_video.store.dialects import (
    AUTOINCREMENT_ID,
    SQLITE_IN_CHUNK,
    UtcDateTime,
    check_reachable,
    create_catalog_engine,
    insert_rows,
    lock_after_writing,
    lock_for_writing,
    masked,
    require_aware,
    select_by_ids,
    sqlite_file,
)

if TYPE_CHECKING:
    from alembic.config import Config

    from taobao_video.top.client import CallRecord

T = TypeVar("T")
P = ParamSpec("P")

# Ids per enqueue/add_items transaction. Ids in a user's (random) order each land on a random page of the
# primary-key index, and every commit writes the pages it touched: on a 2-vCPU VM a million such ids took 33 s in
# batches of 5,000, 18 s of 20,000, 11-17 s of 50,000 (a batch holds about 20 MB of Python objects at most).
ADD_BATCH = 50_000
READ_CHUNK = SQLITE_IN_CHUNK  # ids per IN (...) list
MAX_ERROR_CHARS = 2000
_MIGRATION_LOCK = 7307163801  # PostgreSQL advisory lock keys: any constants of our own
_QUEUE_LOCK = 7307163802


# ------------------------------------------------------------------------------------------------ the models


# "state = 'pending' OR ...", not "state IN (...)": SQLite builds a temporary b-tree for an IN list of more than two
# values each time it checks a row, which made inserting a million items 3 s slower (migration 0002).
_STATE_CHECK = " OR ".join(f"state = '{state.value}'" for state in ItemState)
_WAITING = tuple(state.value for state in WAITING_STATES)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Video(Base):
    """One downloaded, verified video. The column names are a contract (design.md)."""

    __tablename__ = "videos"

    num_iid: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    video_path: Mapped[str] = mapped_column(Text)  # relative to the settings folder
    duration: Mapped[float | None] = mapped_column(Float)  # seconds, from the file
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    video_url: Mapped[str] = mapped_column(Text)
    cover_url: Mapped[str | None] = mapped_column(Text)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    api_method: Mapped[str] = mapped_column(String(64))
    downloaded_at: Mapped[datetime] = mapped_column(UtcDateTime)


# `catalog list` filters and sorts walk these in the listing's order, sort column then num_iid (migration 0004).
Index("ix_videos_duration", Video.duration, Video.num_iid)
Index("ix_videos_downloaded_at", Video.downloaded_at, Video.num_iid)
Index("ix_videos_size_bytes", Video.size_bytes, Video.num_iid)


class Item(Base):
    """What is known about one id: its place in the queue and the outcome of lookups and downloads."""

    __tablename__ = "items"
    __table_args__ = (
        CheckConstraint(_STATE_CHECK, name="state"),
        Index(None, "seq", unique=True),
    )

    num_iid: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    state: Mapped[str] = mapped_column(String(16), default=ItemState.PENDING.value, server_default="pending")
    video_url: Mapped[str | None] = mapped_column(Text)
    cover_url: Mapped[str | None] = mapped_column(Text)
    api_duration: Mapped[float | None] = mapped_column(Float)  # seconds, as the API stated it
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    api_method: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # download attempts
    lookups: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # API lookups spent on it
    last_error: Mapped[str | None] = mapped_column(Text)
    error_kind: Mapped[str | None] = mapped_column(String)  # url_expired, not_mp4, truncated, lookup, ...
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    added_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    checked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # last API lookup
    seq: Mapped[int] = mapped_column(BigInteger)  # insertion order: the queue's tie-break after priority
    deferred_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # a run had to leave it for later
    claimed_by: Mapped[str | None] = mapped_column(Text)  # the worker on it (claims.py), until lease_until
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)


# The daily selection walks this index in queue order and stops after a quota's worth (see migration 0002).
Index("ix_items_queue", Item.state, Item.priority.desc(), Item.seq)
# Only claimed rows, a few hundred at a time (migration 0003): a worker's renewals and releases find its own; a
# worker with nothing left to claim finds when the others' leases run out.
# Partial on PostgreSQL too (migration 0003 gives postgresql_where); the models leave that out because naming a
# postgresql_* option imports SQLAlchemy's PostgreSQL dialect on every start, 30-50 ms of a read command's budget.
_CLAIMED = Item.claimed_by.is_not(None)
Index("ix_items_claimed_by", Item.claimed_by, sqlite_where=_CLAIMED)
Index("ix_items_leases", Item.state, Item.lease_until, sqlite_where=_CLAIMED)
QUEUE_ORDER = (Item.priority.desc(), Item.seq)  # the queue's order, for every reader and claims.py


class Call(Base):
    """One gateway attempt (``client.CallRecord``): no secret, no signature, no token."""

    __tablename__ = "calls"
    __table_args__ = (Index(None, "app_key", "quota_day"),)

    id: Mapped[int] = mapped_column(AUTOINCREMENT_ID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    app_key: Mapped[str] = mapped_column(String(64))
    quota_day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD in the quota time zone
    method: Mapped[str] = mapped_column(String(64))
    num_iid: Mapped[int | None] = mapped_column(BigInteger)
    outcome: Mapped[str] = mapped_column(String)
    request_id: Mapped[str | None] = mapped_column(String)
    elapsed_ms: Mapped[int] = mapped_column(Integer)


Index("ix_calls_num_iid", Call.num_iid)  # `catalog show`: the calls spent on one id (migration 0004)


class QuotaDay(Base):
    """Calls reserved by one app key on one quota day; ``banned_until`` is set when the platform says 'spent'."""

    __tablename__ = "quota_days"

    app_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD in the quota time zone
    used: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    daily_limit: Mapped[int] = mapped_column(Integer)
    banned_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class VideoTotal(Base):
    """Running totals of ``videos`` per whole second of duration, for ``catalog stats``: kept by database
    triggers (migration 0004), never written by this package. ``duration_s`` 3600 holds an hour or more, -1
    the videos of unknown duration."""

    __tablename__ = "video_totals"

    duration_s: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    videos: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    seconds: Mapped[float] = mapped_column(Float)


# ------------------------------------------------------------------------------------------------ the records


@dataclasses.dataclass(frozen=True)
class VideoRow:
    """A ``videos`` row as a plain record."""

    num_iid: int
    video_path: str
    duration: float | None
    size_bytes: int
    sha256: str
    video_url: str
    cover_url: str | None
    width: int | None
    height: int | None
    api_method: str
    downloaded_at: datetime


@dataclasses.dataclass(frozen=True)
class ItemRow:
    """An ``items`` row as a plain record."""

    num_iid: int
    state: ItemState
    video_url: str | None
    cover_url: str | None
    api_duration: float | None
    width: int | None
    height: int | None
    api_method: str | None
    attempts: int
    lookups: int
    last_error: str | None
    error_kind: str | None
    priority: int
    added_at: datetime
    updated_at: datetime
    checked_at: datetime | None
    seq: int
    deferred_at: datetime | None


@dataclasses.dataclass(frozen=True)
class EnqueueResult:
    """What :meth:`Catalog.enqueue` did; every id given is counted once, repeats included."""

    added: int = 0  # new, pending
    reprioritised: int = 0  # waiting with a lower priority: raised to the one given
    already_queued: int = 0  # waiting with this priority or a higher one (or given again in this call)
    already_done: int = 0  # done, no_video or not_found: untouched

    def __add__(self, other: EnqueueResult) -> EnqueueResult:
        pairs = zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)
        return EnqueueResult(*(a + b for a, b in pairs))

    @property
    def total(self) -> int:
        return self.added + self.reprioritised + self.already_queued + self.already_done


_ITEM_COLUMNS = tuple(Item.__table__.c[f.name] for f in dataclasses.fields(ItemRow))
_VIDEO_COLUMNS = tuple(Video.__table__.c[f.name] for f in dataclasses.fields(VideoRow))


def _item_row(mapping: Any) -> ItemRow:
    return ItemRow(**{**mapping, "state": ItemState(mapping["state"])})


# ------------------------------------------------------------------------------------------------ helpers


_aware = require_aware


def _num_iid(value: int) -> int:
    if type(value) is int and 0 < value <= MAX_NUM_IID:  # the common case first: a million ids per enqueue
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_NUM_IID:
        raise ValueError(f"num_iid must be a positive 64-bit integer, got {value!r}")
    return value


def _priority(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"priority must be an integer, got {value!r}")
    if not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise ValueError(f"priority must fit in 32 bits, got {value}")
    return value


def _count_arg(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    return value


def _slices(values: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _next_seq() -> ColumnElement[int]:
    """The next ``seq`` as a subquery, for the single-row inserts of an id never enqueued.

    Run it after :func:`lock_after_writing` with ``_QUEUE_LOCK``: the inserting transactions then wait for each
    other, and each sees the numbers the others committed (SQLite: its one write lock; PostgreSQL: the advisory
    lock, under which the unique index on ``seq`` would otherwise turn most concurrent inserts into a retry).
    """
    return select(func.coalesce(func.max(Item.seq), 0) + 1).scalar_subquery()


def _chunks(ids: Iterable[int], size: int) -> Iterator[list[int]]:
    """Validated ids in lists of at most ``size``, duplicates within a chunk removed, order kept."""
    iterator = iter(ids)
    while chunk := list(dict.fromkeys(_num_iid(i) for i in itertools.islice(iterator, size))):
        yield chunk


def _error_text(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def _retry_on_race(work: Callable[P, T]) -> Callable[P, T]:
    """Two threads may both find an id absent and both insert it; the loser retries at once and now finds it.

    The package's one retry shape (``retry.py``), which imports tenacity on the first write, not with the
    module: the read-only commands never need it.
    """

    @functools.wraps(work)
    def attempt(*args: P.args, **kwargs: P.kwargs) -> T:
        race = retrying(
            "catalog",
            attempts=3,
            should_retry=lambda exc: isinstance(exc, IntegrityError),
            backoff_initial_s=0.0,
            backoff_max_s=0.0,
            log_level=logging.DEBUG,  # an expected race, not news
        )
        return race(work, *args, **kwargs)

    return attempt


# ------------------------------------------------------------------------------------------------ migrations


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic config for the migrations shipped in the package; no alembic.ini needed."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("taobao_video.store") / "migrations"))
    if url is not None:
        text = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        config.set_main_option("sqlalchemy.url", text.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest migration shipped with this version of the package."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found in taobao_video/store/migrations")
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the database at ``engine`` is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _migrate(engine: Engine) -> str:
    from alembic import command
    from alembic.util import CommandError

    head = head_revision()
    check_reachable(engine)
    current = current_revision(engine)
    if current == head:
        return head
    config = alembic_config()
    where = masked(engine.url)
    with engine.begin() as connection:
        lock_for_writing(connection, _MIGRATION_LOCK)
        config.attributes["connection"] = connection
        try:
            command.upgrade(config, "head")
        except CommandError as exc:
            raise ConfigError(
                f"cannot upgrade the catalog at {where} (at revision {current}): {exc}; "
                "was it created by a newer taobao-video?"
            ) from None
    return head


def upgrade(url: str | URL | Engine) -> str:
    """Bring the catalog at ``url`` to the newest schema (creating it if needed); returns the head revision.

    What ``taobao-video db upgrade`` runs; :meth:`Catalog.open` does the same on every open.
    """
    if isinstance(url, Engine):
        return _migrate(url)
    engine = create_catalog_engine(url)
    try:
        return _migrate(engine)
    finally:
        engine.dispose()


# The newest migration shipped: what the read-only commands expect to find without loading Alembic (a test keeps
# it equal to head_revision()). Update it with every new migration.
SCHEMA_REVISION = "0004"


def open_existing(url: str | URL) -> Catalog:
    """The catalog at ``url`` for the commands that only read it (``catalog list``, ``show``, ``stats``, …).

    Nothing is created and nothing is migrated: ConfigError (exit 78) when there is no catalog there yet, or when
    its schema is not :data:`SCHEMA_REVISION`, saying what to run. Reads one row of ``alembic_version`` instead
    of loading Alembic's scripts, which would cost a read command more time than its query.
    """
    where = masked(url)
    file = sqlite_file(url)
    if file is not None and not file.is_file():
        raise ConfigError(f"no catalog at {file} yet: harvest something first, or run `taobao-video db upgrade`")
    catalog = Catalog.open(url, migrate=False)
    try:
        with catalog.engine.connect() as connection:
            revision = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    except DBAPIError:
        revision = None
    if revision != SCHEMA_REVISION:
        catalog.close()
        if revision is None:
            raise ConfigError(f"the catalog at {where} has no schema yet: run `taobao-video db upgrade`")
        raise ConfigError(
            f"the catalog at {where} is at schema revision {revision}, this taobao-video reads {SCHEMA_REVISION}: "
            "run `taobao-video db upgrade` (or, if a newer taobao-video wrote it, upgrade taobao-video)"
        )
    return catalog


# ------------------------------------------------------------------------------------------------ the API


class Catalog:
    """The repository: plain records in, plain records out, one short transaction per call.

    Thread-safe: every method takes its own pooled connection. Times (``now``) must be timezone-aware; they are
    stored as UTC and come back as aware UTC datetimes.

    ``deferred_at``: :meth:`mark_deferred` sets it when a run has to leave an item for later; every recorded
    outcome (each ``mark_*`` method and :meth:`record_video`) clears it, because the item has been worked on
    since. So it is set exactly on the items whose last word was "later".

    ``claimed_by``/``lease_until``: a worker's claim on the item (``claims.py`` takes and renews them). The same
    recorded outcomes end it, except :meth:`mark_resolved`: the worker that looked an item up downloads it.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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
        self.engine.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ---- the queue

    def enqueue(self, ids: Iterable[int], *, priority: int = 0, now: datetime) -> EnqueueResult:
        """Put ``ids`` in the queue: new ids become ``pending`` at the end of their priority, in the order given.

        An id already waiting (pending, resolved, failed) with a lower priority is raised to ``priority``
        (reprioritised) and keeps its place among its new peers; one waiting at this priority or a higher one is
        left alone (already_queued); a finished one (done, no_video, not_found) is counted and untouched
        (already_done). An id given twice counts as already_queued (or already_done) the second time.

        Streams: ``ids`` (any iterable, a generator of a million is fine) is consumed in batches of
        :data:`ADD_BATCH`, each its own transaction, so memory stays flat and a crash keeps the batches done.
        Enqueuers wait for each other batch by batch, so every new id gets a distinct, increasing ``seq``.
        """
        return self._enqueue(ids, priority=priority, now=now, raise_priority=True)

    def add_items(self, ids: Iterable[int], *, priority: int = 0, now: datetime) -> int:
        """Add the ids not yet known as ``pending``; returns how many were new. Known ids are left as they are.

        :meth:`enqueue` without the reprioritising; streams ``ids`` in batches the same way.
        """
        return self._enqueue(ids, priority=priority, now=now, raise_priority=False).added

    def _enqueue(self, ids: Iterable[int], *, priority: int, now: datetime, raise_priority: bool) -> EnqueueResult:
        _aware(now)
        _priority(priority)
        result = EnqueueResult()
        iterator = iter(ids)
        while batch := [_num_iid(i) for i in itertools.islice(iterator, ADD_BATCH)]:
            result += self._enqueue_batch(batch, priority, now, raise_priority)
        return result

    @_retry_on_race
    def _enqueue_batch(self, batch: list[int], priority: int, now: datetime, raise_priority: bool) -> EnqueueResult:
        given = collections.Counter(batch)  # the unique ids in first-seen order, with how often each was given
        with self.engine.begin() as connection:
            lock_for_writing(connection, _QUEUE_LOCK)
            known = self._queue_places(connection, list(given))
            new = [num_iid for num_iid in given if num_iid not in known]
            raised = [
                num_iid
                for num_iid, (state, old) in known.items()
                if raise_priority and state in _WAITING and old < priority
            ]
            for chunk in _slices(raised, READ_CHUNK):
                connection.execute(
                    update(Item).where(Item.num_iid.in_(chunk)).values(priority=priority, updated_at=now)
                )
            if new:
                self._insert_pending(connection, new, priority, now)
        finished = {num_iid for num_iid, (state, _) in known.items() if state not in _WAITING}
        repeats_done = sum(given[num_iid] - 1 for num_iid in finished)
        return EnqueueResult(
            added=len(new),
            reprioritised=len(raised),
            already_queued=len(known) - len(finished) - len(raised) + len(batch) - len(given) - repeats_done,
            already_done=len(finished) + repeats_done,
        )

    @staticmethod
    def _queue_places(connection: Connection, ids: list[int]) -> dict[int, tuple[str, int]]:
        """State and priority of the known ids among ``ids``."""
        rows = select_by_ids(connection, (Item.num_iid, Item.state, Item.priority), Item.__table__.c.num_iid, ids)
        return {row[0]: (row[1], row[2]) for row in rows}

    @staticmethod
    def _insert_pending(connection: Connection, ids: list[int], priority: int, now: datetime) -> None:
        # max(seq) once per batch, under the queue lock: one probe of the unique index on seq.
        last = int(connection.scalar(select(func.coalesce(func.max(Item.seq), 0))) or 0)
        # In the order given: seq then grows with the table, so the two indexes on it are appended to; only the
        # primary key takes the ids where they fall (sorting by id would scatter both seq indexes instead).
        rows = list(zip(ids, range(last + 1, last + 1 + len(ids)), strict=True))
        shared = {
            "state": ItemState.PENDING.value,
            "priority": priority,
            "attempts": 0,
            "lookups": 0,
            "added_at": now,
            "updated_at": now,
        }
        insert_rows(connection, Item.__table__, shared, ("num_iid", "seq"), rows)

    def queue_page(self, *, states: Sequence[str] | None = None, limit: int = 50, offset: int = 0) -> list[ItemRow]:
        """Items in queue order (priority DESC, then insertion order), optionally only those in ``states``."""
        query = select(*_ITEM_COLUMNS).order_by(*QUEUE_ORDER).limit(_count_arg("limit", limit))
        query = query.offset(_count_arg("offset", offset))
        if states is not None:
            query = query.where(Item.state.in_([ItemState(state).value for state in states]))
        with self.engine.connect() as connection:
            return [_item_row(row._mapping) for row in connection.execute(query)]

    def queue_stats(self) -> dict[str, int]:
        """Items per state, ``deferred`` (waiting rows a run left for later: pending or resolved with
        ``deferred_at`` set) and ``total``, in that order."""
        counts = self.counts_by_state()
        waiting = Item.state.in_([ItemState.PENDING.value, ItemState.RESOLVED.value])
        query = select(func.count()).select_from(Item).where(waiting, Item.deferred_at.is_not(None))
        with self.engine.connect() as connection:
            deferred = int(connection.scalar(query) or 0)
        order = ("pending", "resolved", "done", "no_video", "not_found", "failed")
        return {**{state: counts[state] for state in order}, "deferred": deferred, "total": sum(counts.values())}

    def next_lookups(self, limit: int) -> list[int]:
        """The first ``limit`` pending ids in queue order: the only ones a run must spend a call on."""
        return self._ids_in_state(ItemState.PENDING, _count_arg("limit", limit))

    def awaiting_download(self, limit: int | None = None) -> list[int]:
        """Resolved ids (looked up, not downloaded yet) in queue order; all of them unless ``limit``."""
        return self._ids_in_state(ItemState.RESOLVED, None if limit is None else _count_arg("limit", limit))

    def _ids_in_state(self, state: ItemState, limit: int | None) -> list[int]:
        query = select(Item.num_iid).where(Item.state == state.value).order_by(*QUEUE_ORDER).limit(limit)
        with self.engine.connect() as connection:
            return list(connection.scalars(query))

    def mark_deferred(self, ids: Iterable[int], *, now: datetime) -> None:
        """A run had to leave these items for later: ``deferred_at`` = ``now`` (done items are not touched).

        The next recorded outcome of the item (any ``mark_*`` or :meth:`record_video`) clears it again.
        """
        _aware(now)
        for batch in _chunks(ids, ADD_BATCH):
            with self.engine.begin() as connection:
                for chunk in _slices(batch, READ_CHUNK):
                    query = update(Item).where(Item.num_iid.in_(chunk), Item.state != ItemState.DONE.value)
                    connection.execute(query.values(deferred_at=now))

    def remove_items(self, ids: Iterable[int]) -> tuple[int, int]:
        """Delete these ids from the queue; returns (removed, kept). Unknown ids count in neither.

        Items with a downloaded video (state ``done``, or a ``videos`` row after a failed forced re-download) are
        kept: their files stay on disk and the catalog keeps describing them.
        """
        removed = kept = 0
        downloaded = or_(
            Item.state == ItemState.DONE.value, exists().where(Video.num_iid == Item.num_iid).correlate(Item)
        )
        for batch in _chunks(ids, ADD_BATCH):
            with self.engine.begin() as connection:
                for chunk in _slices(batch, READ_CHUNK):
                    mine = Item.num_iid.in_(chunk)
                    removed += connection.execute(delete(Item).where(mine, not_(downloaded))).rowcount
                    kept += int(connection.scalar(select(func.count()).select_from(Item).where(mine)) or 0)
        return removed, kept

    def retry_failed(self, *, now: datetime) -> int:
        """Put every ``failed`` item back in the queue; returns how many.

        One whose download failed but whose URL is still usable (kept, and the failure was not ``url_expired``)
        goes back to ``resolved``: downloaded again without a call. The others (expired URL, failed lookup) go
        back to ``pending``: one new lookup. ``last_error`` and ``error_kind`` are cleared.
        """
        _aware(now)
        failed = Item.state == ItemState.FAILED.value
        usable = and_(Item.video_url.is_not(None), or_(Item.error_kind.is_(None), Item.error_kind != "url_expired"))
        cleared = {"last_error": None, "error_kind": None, "updated_at": now}
        with self.engine.begin() as connection:
            resolved = connection.execute(
                update(Item).where(failed, usable).values(state=ItemState.RESOLVED.value, **cleared)
            ).rowcount
            pending = connection.execute(
                update(Item).where(failed).values(state=ItemState.PENDING.value, **cleared)
            ).rowcount
        return int(resolved) + int(pending)

    # ---- items

    def items(self, ids: Iterable[int]) -> dict[int, ItemRow]:
        """The known items among ``ids``, by id."""
        found: dict[int, ItemRow] = {}
        with self.engine.connect() as connection:
            for chunk in _chunks(ids, READ_CHUNK):
                query = select(*_ITEM_COLUMNS).where(Item.num_iid.in_(chunk))
                found.update((row.num_iid, _item_row(row._mapping)) for row in connection.execute(query))
        return found

    def item(self, num_iid: int) -> ItemRow | None:
        return self.items([num_iid]).get(num_iid)

    def counts_by_state(self) -> dict[str, int]:
        """How many items are in each state (every state present, zeros included)."""
        counts = {state.value: 0 for state in ItemState}
        with self.engine.connect() as connection:
            for state, count in connection.execute(select(Item.state, func.count()).group_by(Item.state)):
                counts[state] = count
        return counts

    def _set_item(
        self, num_iid: int, now: datetime, *, bump: tuple[str, ...] = (), release: bool = True, **values: Any
    ) -> None:
        """Update one item (``bump`` columns + 1); an id never added is inserted with these values. ``release``
        ends the item's work claim (``claims.py``): the outcome is recorded, nobody is on it any more."""
        _num_iid(num_iid)
        _aware(now)
        columns = Item.__table__.c
        changes = {**values, "updated_at": now, "deferred_at": None, **{name: columns[name] + 1 for name in bump}}
        if release:
            changes.update(claimed_by=None, lease_until=None)

        @_retry_on_race
        def attempt() -> None:
            with self.engine.begin() as connection:
                self._upsert_item(connection, num_iid, now, changes, {name: 1 for name in bump})

        attempt()

    @staticmethod
    def _upsert_item(
        connection: Connection, num_iid: int, now: datetime, changes: dict[str, Any], fresh: dict[str, Any]
    ) -> None:
        if connection.execute(update(Item).where(Item.num_iid == num_iid).values(changes)).rowcount:
            return
        lock_after_writing(connection, _QUEUE_LOCK)  # a new seq: wait for the other inserts (see _next_seq)
        plain = {name: value for name, value in changes.items() if name not in fresh}
        connection.execute(insert(Item).values(num_iid=num_iid, added_at=now, seq=_next_seq(), **plain, **fresh))

    def mark_resolved(
        self,
        num_iid: int,
        *,
        video_url: str,
        cover_url: str | None,
        api_duration: float | None,
        width: int | None,
        height: int | None,
        api_method: str,
        now: datetime,
    ) -> None:
        """The API gave a video URL: state ``resolved``, one more lookup, errors cleared. A work claim on the item
        stays: whoever looked it up downloads it next."""
        self._set_item(
            num_iid,
            now,
            bump=("lookups",),
            release=False,
            state=ItemState.RESOLVED.value,
            video_url=video_url,
            cover_url=cover_url,
            api_duration=api_duration,
            width=width,
            height=height,
            api_method=api_method,
            checked_at=now,
            last_error=None,
            error_kind=None,
        )

    def mark_no_video(self, num_iid: int, *, api_method: str, now: datetime) -> None:
        """The item exists but has no main-image video."""
        self._set_item(
            num_iid,
            now,
            bump=("lookups",),
            state=ItemState.NO_VIDEO.value,
            video_url=None,
            api_duration=None,
            width=None,
            height=None,
            api_method=api_method,
            checked_at=now,
            last_error=None,
            error_kind=None,
        )

    def mark_not_found(self, num_iid: int, *, detail: str, api_method: str, now: datetime) -> None:
        """The item is gone; ``detail`` (e.g. the sub_code) is kept in ``last_error``."""
        self._set_item(
            num_iid,
            now,
            bump=("lookups",),
            state=ItemState.NOT_FOUND.value,
            video_url=None,
            api_method=api_method,
            checked_at=now,
            last_error=_error_text(detail),
            error_kind=None,
        )

    def mark_failed(self, num_iid: int, *, error_kind: str, error: str, now: datetime) -> None:
        """A download failed: one more attempt. The URL is kept for a retry without a call, except when it
        expired (``error_kind == "url_expired"``): then it is cleared so the planner looks the item up again.
        """
        extra: dict[str, Any] = {"video_url": None} if error_kind == "url_expired" else {}
        self._set_item(
            num_iid,
            now,
            bump=("attempts",),
            state=ItemState.FAILED.value,
            error_kind=error_kind,
            last_error=_error_text(error),
            **extra,
        )

    def mark_lookup_failed(self, num_iid: int, *, error: str, now: datetime) -> None:
        """A lookup ended in an error that says nothing about the item: one more lookup, ``error_kind`` lookup."""
        self._set_item(
            num_iid,
            now,
            bump=("lookups",),
            state=ItemState.FAILED.value,
            error_kind="lookup",
            last_error=_error_text(error),
            checked_at=now,
        )

    # ---- videos

    def record_video(self, row: VideoRow, *, now: datetime) -> None:
        """Store (or replace) the video row and mark its item ``done``, in one transaction.

        Call it only once the file is complete, verified and renamed into place.
        """
        _num_iid(row.num_iid)
        _aware(now)
        _aware(row.downloaded_at)
        done = {
            "state": ItemState.DONE.value,
            "updated_at": now,
            "last_error": None,
            "error_kind": None,
            "deferred_at": None,
            "claimed_by": None,
            "lease_until": None,
        }
        first_seen = {
            "video_url": row.video_url,
            "cover_url": row.cover_url,
            "api_method": row.api_method,
            "seq": _next_seq(),
        }

        @_retry_on_race
        def attempt() -> None:
            with self.engine.begin() as connection:
                # Delete then insert: a portable "insert or replace" (the DELETE also takes the write lock first).
                connection.execute(delete(Video).where(Video.num_iid == row.num_iid))
                connection.execute(insert(Video).values(dataclasses.asdict(row)))
                if not connection.execute(update(Item).where(Item.num_iid == row.num_iid).values(done)).rowcount:
                    lock_after_writing(connection, _QUEUE_LOCK)  # a new seq (see _next_seq)
                    connection.execute(insert(Item).values(num_iid=row.num_iid, added_at=now, **done, **first_seen))

        attempt()

    def requeue_download(self, num_iid: int, *, reason: str, now: datetime) -> bool:
        """The video's file is gone or damaged (``catalog verify --fix``): download it again, without a call.

        In one transaction the ``videos`` row is deleted (that table holds downloaded, verified videos only) and
        the item goes back to ``resolved`` with the row's URL, so the next run's plan downloads it from there;
        ``last_error`` keeps ``reason``. Returns False when the id has no video row (nothing to do).
        """
        _num_iid(num_iid)
        _aware(now)
        columns = (Video.video_url, Video.cover_url, Video.duration, Video.width, Video.height, Video.api_method)

        @_retry_on_race
        def attempt() -> bool:
            with self.engine.begin() as connection:
                video = connection.execute(select(*columns).where(Video.num_iid == num_iid)).first()
                if video is None or not connection.execute(delete(Video).where(Video.num_iid == num_iid)).rowcount:
                    return False
                changes = {
                    "state": ItemState.RESOLVED.value,
                    "video_url": video.video_url,
                    "cover_url": video.cover_url,
                    "last_error": _error_text(reason),
                    "error_kind": None,
                    "updated_at": now,
                    "deferred_at": None,
                }
                # Only for an item row that was missing: what the API said is unknown, the video's values stand in.
                fresh = {"api_duration": video.duration, "width": video.width, "height": video.height}
                self._upsert_item(connection, num_iid, now, changes, {**fresh, "api_method": video.api_method})
                return True

        return attempt()

    def videos(self, ids: Iterable[int]) -> dict[int, VideoRow]:
        """The downloaded videos among ``ids``, by id."""
        found: dict[int, VideoRow] = {}
        with self.engine.connect() as connection:
            for chunk in _chunks(ids, READ_CHUNK):
                query = select(*_VIDEO_COLUMNS).where(Video.num_iid.in_(chunk))
                found.update((row.num_iid, VideoRow(**row._mapping)) for row in connection.execute(query))
        return found

    def video(self, num_iid: int) -> VideoRow | None:
        return self.videos([num_iid]).get(num_iid)

    # ---- the call log

    def log_call(self, record: CallRecord, *, app_key: str, quota_day: str) -> None:
        """Append one gateway attempt to ``calls``."""
        values = {
            "at": _aware(record.at),
            "app_key": app_key,
            "quota_day": quota_day,
            "method": record.method,
            "num_iid": record.num_iid,
            "outcome": record.outcome,
            "request_id": record.request_id or None,
            "elapsed_ms": round(record.elapsed_s * 1000),
        }
        with self.engine.begin() as connection:
            connection.execute(insert(Call).values(values))

    def call_count(self, *, app_key: str | None = None, day: str | None = None) -> int:
        """Calls logged that the platform may have counted (not the ``unsent`` attempts), optionally for one app key
        and/or one quota day."""
        query = select(func.count()).select_from(Call).where(Call.outcome != UNSENT_CALL)
        if app_key is not None:
            query = query.where(Call.app_key == app_key)
        if day is not None:
            query = query.where(Call.quota_day == day)
        with self.engine.connect() as connection:
            return int(connection.scalar(query) or 0)
