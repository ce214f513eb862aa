"""``catalog sql``: run one statement of the user's SQL on the catalog, which the database itself keeps read-only.

Not a regex on the text: the connection is opened so that the database refuses every write.

* SQLite: the file is opened with ``mode=ro`` (the driver cannot write it), ``PRAGMA query_only=1``, and an
  authorizer that allows reading only (SELECT, reading columns, functions, recursive CTEs, and the PRAGMAs that
  only report, asked without a value). ATTACH, DETACH, ``PRAGMA writable_schema=1`` and every write are refused
  when the statement is prepared, before anything runs. One statement per call (the driver refuses more).
* PostgreSQL: a session whose transactions are read-only (``default_transaction_read_only``), the statement in a
  READ ONLY transaction that is rolled back; the server refuses writes, and refuses to make the transaction
  writable again.

:func:`read_only_connection` is the one function that knows the difference. Errors are
:class:`SqlError` (exit 2) with the database's own words, or ConfigError (exit 78) when there is no catalog.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from taobao_video.errors import CatalogDamaged, ConfigError, UsageError
from taobao_video.store.damage import damage_reason

_FETCH = 1000

# What a read needs (sqlite3's authorizer action codes).
_READ_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
# PRAGMAs that only report when asked without a value (with a value some of them change things).
_REPORTING_PRAGMAS = frozenset(
    {
        "application_id",
        "collation_list",
        "compile_options",
        "database_list",
        "encoding",
        "foreign_key_list",
        "freelist_count",
        "function_list",
        "index_info",
        "index_list",
        "index_xinfo",
        "integrity_check",
        "journal_mode",
        "module_list",
        "page_count",
        "page_size",
        "pragma_list",
        "quick_check",
        "schema_version",
        "table_info",
        "table_list",
        "table_xinfo",
        "user_version",
    }
)
# PRAGMAs whose argument names a table or index (table_info(videos)): reading, whatever the argument.
_PRAGMAS_WITH_A_NAME = frozenset({"table_info", "table_xinfo", "index_info", "index_list", "index_xinfo"})
_PRAGMAS_WITH_A_NAME |= {"foreign_key_list", "integrity_check", "quick_check"}
# The authorizer's action codes for what is refused, by name (sqlite3 also exports result codes with the same
# numbers, so the names cannot be looked up from the module).
_ACTIONS = (
    "CREATE_INDEX CREATE_TABLE CREATE_TEMP_INDEX CREATE_TEMP_TABLE CREATE_TEMP_TRIGGER CREATE_TEMP_VIEW "
    "CREATE_TRIGGER CREATE_VIEW DELETE DROP_INDEX DROP_TABLE DROP_TEMP_INDEX DROP_TEMP_TABLE DROP_TEMP_TRIGGER "
    "DROP_TEMP_VIEW DROP_TRIGGER DROP_VIEW INSERT PRAGMA READ SELECT TRANSACTION UPDATE ATTACH DETACH ALTER_TABLE "
    "REINDEX ANALYZE CREATE_VTABLE DROP_VTABLE FUNCTION SAVEPOINT RECURSIVE"
).split()
_ACTION_NAMES = {code: name.replace("_", " ") for code, name in enumerate(_ACTIONS, start=1)}


class SqlError(UsageError):
    """The statement was refused or failed (exit 2)."""


class _Guard:
    """The SQLite authorizer: remembers what it refused, so the message can say it plainly."""

    def __init__(self) -> None:
        self.refused: str | None = None

    def __call__(self, action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
        if action in _READ_ACTIONS:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA and arg1 is not None:
            name = arg1.lower()
            if name in _REPORTING_PRAGMAS and (arg2 is None or name in _PRAGMAS_WITH_A_NAME):
                return sqlite3.SQLITE_OK
            self.refused = f"PRAGMA {arg1}" + (f" = {arg2}" if arg2 is not None else "")
            return sqlite3.SQLITE_DENY
        what = _ACTION_NAMES.get(action, f"action {action}")
        self.refused = f"{what} {arg1}" if arg1 and action != sqlite3.SQLITE_TRANSACTION else what
        return sqlite3.SQLITE_DENY


class _Guarded(sqlite3.Connection):
    """A connection that carries its authorizer, to tell what it refused."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = _Guard()
        self.where = ""  # the file, for a message when it turns out to be damaged


@contextlib.contextmanager
def read_only_connection(url: str) -> Iterator[Any]:
    """A DB-API connection to the catalog at ``url`` on which the database refuses every write.

    SQLite: ``file:…?mode=ro`` + ``query_only`` + the read-only authorizer (see the module docstring); the file
    must exist. PostgreSQL: a read-only session. Anything else: ConfigError.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from taobao_video.store.dialects import BUSY_TIMEOUT_S, masked, sqlite_file, sqlite_read_only_uri

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"database.url: cannot parse {url!r}") from None
    backend = parsed.get_backend_name()
    path = sqlite_file(parsed)
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"no catalog at {path} yet: harvest something first, or run `taobao-video db upgrade`")
        connection = sqlite3.connect(sqlite_read_only_uri(path), uri=True, timeout=BUSY_TIMEOUT_S, factory=_Guarded)
        connection.where = str(path)
        try:
            try:
                connection.execute("PRAGMA query_only=1")
            except sqlite3.Error as exc:
                raise _sql_error(connection, exc) from None
            connection.set_authorizer(connection.guard)
            yield connection
        finally:
            connection.close()
        return
    if backend == "sqlite":
        raise ConfigError("database.url: catalog sql reads a SQLite file, not an in-memory database or a file: URI")
    if backend == "postgresql":
        from taobao_video.store.dialects import create_catalog_engine

        engine = create_catalog_engine(parsed.update_query_dict({"options": "-c default_transaction_read_only=on"}))
        try:
            raw = engine.raw_connection()
        except Exception as exc:
            raise ConfigError(f"cannot connect to the catalog at {masked(parsed)}: {_first_line(exc)}") from None
        try:
            raw.rollback()  # the pool's liveness check may have opened a transaction; read_only is set outside one
            raw.driver_connection.read_only = True  # type: ignore[union-attr]
            yield raw
        finally:
            raw.rollback()
            raw.close()
            engine.dispose()
        return
    raise ConfigError(f"database.url: catalog sql supports SQLite and PostgreSQL catalogs, not {backend}")


@contextlib.contextmanager
def run(url: str, sql: str) -> Iterator[tuple[list[str], Iterator[Sequence[Any]]]]:
    """Run ``sql`` read-only on the catalog at ``url``: (column names, rows streaming from the cursor).

    SqlError for an empty statement, a refused one (saying what was refused) or one the database rejects.
    """
    if not sql.strip():
        raise SqlError('give one SQL statement, e.g. "SELECT num_iid, duration FROM videos LIMIT 10"')
    with read_only_connection(url) as connection:
        cursor = connection.cursor()
        try:
            cursor.execute(sql)
        except Exception as exc:
            raise _sql_error(connection, exc) from None
        columns = [column[0] for column in cursor.description or ()]
        if not columns:
            raise SqlError("the statement returned no rows to show (catalog sql runs queries: SELECT, PRAGMA …)")
        yield columns, _fetch(connection, cursor)


def _fetch(connection: Any, cursor: Any) -> Iterator[Sequence[Any]]:
    while True:
        try:
            rows = cursor.fetchmany(_FETCH)
        except Exception as exc:
            raise _sql_error(connection, exc) from None
        if not rows:
            return
        yield from rows


def _sql_error(connection: Any, exc: Exception) -> Exception:
    guard = getattr(connection, "guard", None)
    if guard is not None and guard.refused:
        return SqlError(
            f"refused: {guard.refused}: catalog sql is read-only "
            "(SELECT, WITH … SELECT, EXPLAIN and reporting PRAGMAs such as table_info)"
        )
    if isinstance(exc, sqlite3.Error) and (reason := damage_reason(exc)) is not None:
        return CatalogDamaged(getattr(connection, "where", "") or "file", reason)
    if isinstance(exc, sqlite3.Error | sqlite3.Warning) and "one statement" in str(exc):
        return SqlError("give one statement at a time (catalog sql runs a single query)")
    if isinstance(exc, (sqlite3.Error, *_driver_errors())):
        return SqlError(f"the database refused the statement: {_first_line(exc)}")
    return exc


def _driver_errors() -> tuple[type[BaseException], ...]:
    try:
        import psycopg
    except ImportError:
        return ()
    return (psycopg.Error,)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
