"""What ``db rebuild`` keeps of a damaged SQLite catalog: its readable rows, and a fresh catalog built from them.

Reading (:func:`read_rows`): the old file is opened read-only and each table walked in ``rowid`` order, one row
at a time. A damaged page makes SQLite fail the statement; the walk then probes further and further ahead
(``rowid >= after + 1, + 2, + 4, …``) for a place it can read again, narrows that down by halving, and resumes
there: the rows in between (those of the damaged pages) are lost, the rest are kept. A table whose root page is
damaged, or a file whose schema is, yields nothing.

Writing (:func:`restore_rows`, :func:`settle_items`): the readable rows go into a new catalog as SQLite stored
them (same dialect, same text for times), each row on its own so that one the new schema refuses is counted,
not fatal.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import exists, update
from sqlalchemy.exc import DBAPIError

from taobao_video.model import ItemState
from taobao_video.store.catalog import Catalog, engine_of
from taobao_video.store.records import VideoRow
from taobao_video.store.schema import Base, Item, Video

# What is copied from the old file as it was. `videos` is rebuilt from the files; `video_totals` is kept by
# triggers on `videos`; `alembic_version` belongs to the new file.
KEPT_TABLES = ("items", "calls", "quota_days")
_LAST_ROWID = 2**63 - 1


@dataclass
class OldRows:
    """The readable rows of the old file, by table, as column → value mappings."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    damaged_places: int = 0  # stretches of rows skipped over (each one or more damaged pages)
    unreadable: list[str] = field(default_factory=list)  # tables (or "the schema") nothing could be read of

    def rows(self, table: str) -> list[dict[str, Any]]:
        return self.tables.get(table, [])


def read_rows(file: Path, tables: tuple[str, ...] = ("videos", *KEPT_TABLES)) -> OldRows:
    """Every readable row of ``tables`` in the SQLite ``file`` (which may be damaged, or not a database)."""
    found = OldRows()
    try:
        db = sqlite3.connect(f"file:{quote(str(file.resolve()))}?mode=ro", uri=True)
    except sqlite3.Error:
        found.unreadable.append("the whole file")
        return found
    try:
        for table in tables:
            try:
                columns = [row[1] for row in db.execute(f'PRAGMA table_info("{table}")')]
            except sqlite3.Error as exc:
                found.unreadable = [f"the whole file ({exc})"]
                return found
            if not columns:
                found.unreadable.append(table)
                continue
            rows, skipped = _walk(db, table, columns)
            found.tables[table] = rows
            found.damaged_places += skipped
            if skipped and not rows:
                found.unreadable.append(table)
    finally:
        db.close()
    return found


def _walk(db: sqlite3.Connection, table: str, columns: list[str]) -> tuple[list[dict[str, Any]], int]:
    names = ", ".join(f'"{column}"' for column in columns)
    sql = f'SELECT rowid, {names} FROM "{table}" WHERE rowid >= ? ORDER BY rowid'
    rows: list[dict[str, Any]] = []
    skipped = 0
    start = -_LAST_ROWID
    while True:
        last = None
        try:
            for row in _rows(db, sql, start):
                last = row[0]
                rows.append(dict(zip(columns, row[1:], strict=True)))
            return rows, skipped
        except sqlite3.DatabaseError:
            after = start if last is None else last  # past what was read, or past where this walk began
        resume = _readable_after(db, sql, after)
        skipped += 1
        if resume is None:
            return rows, skipped
        start = resume


def _rows(db: sqlite3.Connection, sql: str, start: int) -> Iterator[tuple[Any, ...]]:
    cursor = db.execute(sql, (start,))
    while (row := cursor.fetchone()) is not None:
        yield row


def _reads(db: sqlite3.Connection, sql: str, start: int) -> bool:
    try:
        db.execute(sql + " LIMIT 1", (start,)).fetchall()
    except sqlite3.DatabaseError:
        return False
    return True


def _readable_after(db: sqlite3.Connection, sql: str, after: int) -> int | None:
    """The smallest rowid past ``after`` from which the table reads again (None: nowhere), found by probing
    exponentially further ahead, then halving the gap."""
    step = 1
    while not _reads(db, sql, probe := min(after + step, _LAST_ROWID)):
        if probe == _LAST_ROWID:
            return None
        step *= 2
    bad, good = after, probe  # reads from `good`, not (known) from just past `bad`
    while good - bad > 1:
        middle = (bad + good) // 2
        if _reads(db, sql, middle):
            good = middle
        else:
            bad = middle
    return good


def restore_rows(catalog: Catalog, table: str, rows: list[dict[str, Any]]) -> int:
    """Insert ``rows`` (read from an older file of the same dialect) into ``table``, each on its own; the count
    the new schema accepted. Columns the table no longer has are dropped."""
    known = set(Base.metadata.tables[table].columns.keys())
    kept = 0
    with engine_of(catalog).begin() as connection:
        for row in rows:
            values = {name: value for name, value in row.items() if name in known}
            names = ", ".join(f'"{name}"' for name in values)
            marks = ", ".join("?" * len(values))
            try:  # SQLite undoes only the refused statement, never the transaction
                connection.exec_driver_sql(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', tuple(values.values()))
            except DBAPIError:  # a duplicate key or a value the schema refuses: that row is lost
                continue
            kept += 1
    return kept


def settle_items(catalog: Catalog) -> int:
    """After the videos are recorded: items the old file called ``done`` whose file did not survive go back to
    be downloaded (``resolved`` with their URL, else ``pending``), and no item stays claimed by a worker of the
    old file. Returns how many were put back."""
    lost = (Item.state == ItemState.DONE.value) & ~exists().where(Video.num_iid == Item.num_iid)
    with engine_of(catalog).begin() as connection:
        again = connection.execute(
            update(Item).where(lost, Item.video_url.is_not(None)).values(state=ItemState.RESOLVED.value)
        ).rowcount
        again += connection.execute(
            update(Item).where(lost).values(state=ItemState.PENDING.value, video_url=None)
        ).rowcount
        connection.execute(update(Item).where(Item.claimed_by.is_not(None)).values(claimed_by=None, lease_until=None))
    return int(again)


def video_rows(rows: list[dict[str, Any]]) -> dict[int, VideoRow]:
    """The old ``videos`` rows that still make sense as records, by id (a row with garbage in it is skipped)."""
    found: dict[int, VideoRow] = {}
    for row in rows:
        try:
            # the columns an older schema lacks (title, covers, probe facts: later migrations) stay empty
            values = {
                name: row[name] if spec.default is dataclasses.MISSING else row.get(name, spec.default)
                for name, spec in VideoRow.__dataclass_fields__.items()
            }
            at = values["downloaded_at"]
            moment = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
            values["downloaded_at"] = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
            record = VideoRow(**values)
        except (KeyError, TypeError, ValueError):
            continue
        if isinstance(record.num_iid, int):
            found[record.num_iid] = record
    return found
