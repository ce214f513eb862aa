"""Everything that differs between the catalog's databases (SQLite, PostgreSQL), in one place.

The rest of ``store/`` (the repository, the queue, the item state machine, the claims, the quota ledger, the
queries) writes portable SQL through SQLAlchemy; what cannot be portable lives here:

- engines: SQLite's pragmas and pool, PostgreSQL's pool; a missing driver or an unreachable server as a
  :class:`~taobao_video.errors.ConfigError` (exit 78) naming the catalog with its password masked; a damaged
  SQLite file as :class:`~taobao_video.errors.CatalogDamaged` (exit 78), on whichever statement meets it; a SQLite
  catalog in a folder nobody may write (read-only media) opened read-only and immutable, so it can be read;
- :class:`UtcDateTime`: SQLite has no time zones, so UTC is stored naive there;
- :func:`lock_for_writing`, :func:`lock_after_writing`: SQLite's one database write lock, PostgreSQL's advisory
  locks; :func:`one_run_at_a_time`: whether runs need the per-catalog run lock (SQLite) or claim work instead;
- bulk reads and inserts by id (:func:`select_by_ids`, :func:`insert_rows`): PostgreSQL binds a whole list as
  one array, SQLite takes short IN lists and executemany.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Dialect,
    Engine,
    Integer,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    literal,
    literal_column,
    make_url,
    select,
)
from sqlalchemy.engine import URL, CursorResult
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement, ColumnElement
from sqlalchemy.sql.expression import FromClause, TableClause
from sqlalchemy.types import TypeDecorator, TypeEngine

from taobao_video.errors import CatalogDamaged, CatalogFull, ConfigError
from taobao_video.fsutil import free_bytes, make_parent
from taobao_video.store.damage import damage_reason

BUSY_TIMEOUT_S = (
    30  # SQLite: how long a writer waits for the write lock; both: how long a thread waits for a connection
)
SQLITE_CACHE_KIB = 32 * 1024
# Connections per process on PostgreSQL: a server allows 100 by default, and several harvesters share it. Threads
# beyond this wait for a connection (transactions are short) instead of opening more.
PG_POOL_SIZE = 8
PG_MAX_OVERFLOW = 8
PG_CONNECT_TIMEOUT_S = 10  # a host that drops packets: fail after this instead of the OS's minutes (URL may override)
SQLITE_IN_CHUNK = 900  # bound parameters per IN (...): below SQLite's historical limit of 999
PG_ARRAY_CHUNK = 50_000  # ids per bound array on PostgreSQL
POSTGRES_EXTRA = "pip install 'taobao-video[postgres]'"

# SQLite autoincrements only an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
AUTOINCREMENT_ID: TypeEngine[int] = BigInteger().with_variant(Integer, "sqlite")


def require_aware(moment: datetime) -> datetime:
    """``moment`` if it is timezone-aware; ValueError if naive."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is required, got naive {moment.isoformat()}")
    return moment


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; naive UTC on SQLite (no zone support), ``timestamptz`` elsewhere."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = require_aware(value).astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# ------------------------------------------------------------------------------------------------ engines


def masked(url: str | URL) -> str:
    """``url`` for messages: the password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable database URL>"


def sqlite_file(url: str | URL) -> Path | None:
    """The database file of a SQLite URL, or None for other databases and in-memory ones."""
    url = make_url(url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if url.database.startswith("file:") or url.query.get("mode") == "memory":
        return None
    return Path(url.database)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; busy_timeout makes writers queue instead of failing; NORMAL
    # is durable across application crashes in WAL mode (only an OS crash may lose the last commits). A page
    # cache of up to 32 MB (default 2 MB) holds the primary-key index of a million-item queue: enqueueing ids in
    # a user's (random) order took about 15 % less time. It grows only as pages are read.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


SQLITE_FULL = 13  # "database or disk is full": the disk, or PRAGMA max_page_count
PG_DISK_FULL = "53100"  # SQLSTATE disk_full


def _sqlite_errors(context: Any) -> None:
    # One place for every statement of every command: a damaged file or a full disk becomes one line naming it and
    # the way out, not SQLAlchemy's traceback. Raising here replaces the error SQLAlchemy would raise (its
    # handle_error event).
    exc = context.original_exception
    engine = context.engine
    file = sqlite_file(engine.url) if engine is not None else None
    where = str(file) if file is not None else "in memory"
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF == SQLITE_FULL:
        raise CatalogFull(where, free_bytes(file.parent) if file is not None else None) from None
    reason = damage_reason(exc)
    if reason is not None:
        raise CatalogDamaged(where, reason) from None


def _postgres_errors(context: Any) -> None:
    if getattr(context.original_exception, "sqlstate", None) == PG_DISK_FULL:
        where = masked(context.engine.url) if context.engine is not None else "PostgreSQL"
        raise CatalogFull(f"the PostgreSQL server of {where}") from None


def create_catalog_engine(url: str | URL) -> Engine:
    """An engine for the catalog at ``url``, configured for many threads (SQLite: WAL, busy timeout).

    Raises ConfigError when the URL names a database or driver that is not installed (psycopg for PostgreSQL).
    Nothing is connected yet: :func:`check_reachable` does that.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):  # SQLAlchemy's default driver would be psycopg2
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed)
        connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": PG_CONNECT_TIMEOUT_S}
        engine = create_engine(
            parsed,
            connect_args=connect_args,
            pool_pre_ping=True,
            pool_size=PG_POOL_SIZE,
            max_overflow=PG_MAX_OVERFLOW,
            pool_timeout=BUSY_TIMEOUT_S,
        )
        event.listen(engine, "handle_error", _postgres_errors)
        return engine
    except ImportError as exc:  # the driver module (psycopg) is missing
        extra = f"; {POSTGRES_EXTRA}" if parsed.get_backend_name() == "postgresql" else ""
        raise ConfigError(
            f"database.url {masked(parsed)}: the driver is not installed ({exc.name or exc}){extra}"
        ) from None
    except NoSuchModuleError:
        raise ConfigError(
            f"database.url {masked(parsed)}: unknown database or driver (use sqlite:///… or postgresql+psycopg://…)"
        ) from None


def _sqlite_engine(parsed: URL) -> Engine:
    file = sqlite_file(parsed)
    options: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": BUSY_TIMEOUT_S}}
    if file is None:
        options["poolclass"] = StaticPool  # one in-memory database shared by every thread
    else:
        options.update(pool_size=8, max_overflow=64, pool_timeout=BUSY_TIMEOUT_S)
    if file is not None and on_read_only_media(file):
        uri = sqlite_read_only_uri(file)
        options["creator"] = lambda: sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
        engine = create_engine(parsed, **options)
        event.listen(engine, "connect", _sqlite_read_only_pragmas)
        return engine
    if file is not None:
        make_parent(file, setting=f"database.url {masked(parsed)}")
    engine = create_engine(parsed, **options)
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "handle_error", _sqlite_errors)
    return engine


def on_read_only_media(file: Path) -> bool:
    """A catalog file in a folder this process may not write (a read-only mount, a DVD, a snapshot)."""
    return file.is_file() and not os.access(file.parent, os.W_OK)


def sqlite_read_only_uri(file: Path) -> str:
    """The URI that opens ``file`` without writing anything, not even a side file.

    ``mode=ro`` always; on read-only media also ``immutable=1``: a WAL database wants its ``-shm`` file, which
    cannot be created there, so SQLite would refuse to open it at all. Immutable means nobody writes it
    meanwhile, which a folder no one may write makes true.
    """
    immutable = "&immutable=1" if on_read_only_media(file) else ""
    return f"file:{quote(str(file.resolve()))}?mode=ro{immutable}"


def _sqlite_read_only_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA query_only=1")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    finally:
        cursor.close()


def check_reachable(engine: Engine) -> None:
    """Open one connection now, so that a server that is down, refuses us or does not know the database is one
    ConfigError naming the catalog (password masked) instead of a driver traceback later."""
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        lines = str(exc.orig if exc.orig is not None else exc).strip().splitlines()
        reason = lines[0] if lines else type(exc.orig).__name__
        raise ConfigError(f"cannot connect to the catalog at {masked(engine.url)}: {reason}") from None


# ------------------------------------------------------------------------------------------------ locking


def one_run_at_a_time(url: str | URL) -> bool:
    """Whether harvest and daily runs on this catalog take the per-catalog run lock (``lock.py``).

    SQLite: yes, the file lives on one machine and has one writer at a time. PostgreSQL: no, many workers share
    the queue and each claims the ids it works on (``claims.py``).
    """
    return make_url(url).get_backend_name() == "sqlite"


def lock_for_writing(connection: Connection, key: int) -> None:
    """Make transactions that read, then write what they read, wait for each other until commit.

    ``key`` names what is being serialised on PostgreSQL (a transaction-scoped advisory lock); SQLite has one
    write lock for the whole database. Call it first thing in the transaction.
    """
    if connection.dialect.name == "sqlite":
        # pysqlite opens no transaction before a SELECT or DDL by itself; take the write lock now so the reads
        # and writes are one transaction and a second writer waits (busy_timeout), then sees the first's work.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({int(key)})")


def lock_after_writing(connection: Connection, key: int) -> None:
    """:func:`lock_for_writing` in a transaction that has already written: the same serialisation from here on.

    On SQLite the first write took the database's write lock already (nothing to do); on PostgreSQL this takes
    the advisory lock ``key`` until commit.
    """
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({int(key)})")


# ------------------------------------------------------------------------------------------------ bulk statements


def inline_literal(connection: Connection, value: Any, type_: TypeEngine[Any]) -> ColumnElement[Any]:
    """``value`` as a SQL literal of the connection's dialect (rendered by SQLAlchemy, so quoted safely)."""
    compiled = literal(value, type_).compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
    return literal_column(str(compiled), type_)


class DriverStatement:
    """A statement compiled once for the connection's dialect and run straight through the driver.

    SQLAlchemy processes every bound value of every execution in Python (about 2 µs each): that was a third of
    a million-id enqueue. Only for statements binding plain ints and strings (or lists of them), which drivers
    take as they are; ``names`` are the bound parameters, in the order the rows give their values. Works with
    positional (SQLite's qmark) and named (psycopg's pyformat) parameter styles.
    """

    def __init__(self, connection: Connection, statement: ClauseElement, names: tuple[str, ...]) -> None:
        compiled = statement.compile(dialect=connection.dialect)
        assert isinstance(compiled, SQLCompiler)
        self.connection, self.sql, self.names = connection, compiled.string, names
        self.order: list[int] | None = None  # None: the rows are the driver's parameters as they are
        if not compiled.positional:
            self.order = []
        elif tuple(compiled.positiontup or ()) != names:
            self.order = [names.index(name) for name in compiled.positiontup or ()]

    def _params(self, row: tuple[Any, ...]) -> tuple[Any, ...] | dict[str, Any]:
        if self.order is None:
            return row
        if not self.order:
            return dict(zip(self.names, row, strict=True))
        return tuple(row[i] for i in self.order)

    def execute(self, row: tuple[Any, ...]) -> CursorResult[Any]:
        return self.connection.exec_driver_sql(self.sql, self._params(row))

    def executemany(self, rows: list[tuple[Any, ...]]) -> None:
        self.connection.exec_driver_sql(self.sql, rows if self.order is None else [self._params(r) for r in rows])


def select_by_ids(
    connection: Connection, columns: Sequence[Any], key: ColumnElement[int], ids: list[int]
) -> Iterator[Any]:
    """The rows of ``SELECT columns WHERE key IN ids`` for any number of ids, as plain driver rows.

    PostgreSQL binds the ids as one array (``key = ANY(:ids)``): an IN list of 900 parameters made psycopg parse
    a 14 kB statement on every execution, 10 s for 400,000 ids against 0.9 s this way. SQLite takes IN lists of
    :data:`SQLITE_IN_CHUNK` parameters, each length compiled once.
    """
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY  # imported only where used: SQLite users never load it

        query = select(*columns).where(key == func.any(bindparam("ids", type_=ARRAY(key.type))))
        statement = DriverStatement(connection, query, ("ids",))
        for start in range(0, len(ids), PG_ARRAY_CHUNK):
            yield from statement.execute((ids[start : start + PG_ARRAY_CHUNK],))
        return
    statements: dict[int, DriverStatement] = {}  # by chunk length: the full one, and the rest
    for start in range(0, len(ids), SQLITE_IN_CHUNK):
        chunk = ids[start : start + SQLITE_IN_CHUNK]
        if (size := len(chunk)) not in statements:
            names = tuple(f"id_{i}" for i in range(size))
            query = select(*columns).where(key.in_([bindparam(name) for name in names]))
            statements[size] = DriverStatement(connection, query, names)
        yield from statements[size].execute(tuple(chunk))


def insert_rows(
    connection: Connection,
    table: FromClause,
    shared: dict[str, Any],
    names: tuple[str, ...],
    rows: list[tuple[Any, ...]],
) -> None:
    """Insert one row per tuple of ``rows`` (values of the columns ``names``), all with the ``shared`` values.

    The shared values are rendered into the statement once, as the dialect writes them: binding them per row made
    SQLAlchemy process 2 timestamps per id (3x slower). PostgreSQL gets each column as one array and inserts
    ``FROM unnest(...)`` (200,000 rows in 1 s, 8 s through executemany); SQLite runs an executemany.
    """
    assert isinstance(table, TableClause), table
    inline = {name: inline_literal(connection, value, table.c[name].type) for name, value in shared.items()}
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        arrays = [bindparam(name, type_=ARRAY(table.c[name].type)) for name in names]
        given = func.unnest(*arrays).table_valued(*names).render_derived()
        query = select(*inline.values(), *(given.c[name] for name in names))
        statement = insert(table).from_select([*inline, *names], query)
        for start in range(0, len(rows), PG_ARRAY_CHUNK):
            columns = tuple(list(values) for values in zip(*rows[start : start + PG_ARRAY_CHUNK], strict=True))
            DriverStatement(connection, statement, names).execute(columns)
        return
    statement = insert(table).values({**inline, **{name: bindparam(name) for name in names}})
    DriverStatement(connection, statement, names).executemany(rows)
