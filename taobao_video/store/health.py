"""``taobao-video db check``: is the catalog readable, at this version's schema, and consistent?

SQLite: the file's own ``PRAGMA integrity_check`` first, on a read-only connection (a damaged file is never
written by a check); then, if it passed, the checks both databases share. PostgreSQL keeps its own pages
consistent (and says so itself), so it gets only the shared checks:

- schema: ``alembic_version`` holds :data:`~taobao_video.store.migrate.SCHEMA_REVISION`, and every table and
  column of ``schema.py`` exists;
- consistency: every ``done`` item has its ``videos`` row (``record_video`` writes both in one transaction).

Nothing here fixes anything: the report says what was found and what to run (``db upgrade``, ``db rebuild``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine, exists, func, inspect, select
from sqlalchemy.engine import URL

from taobao_video.errors import CatalogDamaged, ConfigError
from taobao_video.model import ItemState
from taobao_video.store.dialects import check_reachable, create_catalog_engine, masked, sqlite_file
from taobao_video.store.migrate import SCHEMA_REVISION, stored_revision
from taobao_video.store.schema import Base, Item, Video

MAX_INTEGRITY_LINES = 20  # SQLite lists every bad page; the first ones say enough


@dataclass
class CatalogCheck:
    """What ``db check`` found: ``found`` lines to show, ``problems`` (empty: all good), and the way out."""

    where: str
    found: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    damaged: bool = False  # the file itself is bad: only `db rebuild` helps

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def advice(self) -> str:
        if self.damaged:
            return f"the catalog {self.where} is damaged: run `taobao-video db rebuild` (the file is kept as a backup)"
        return f"the catalog {self.where} has problems: see above"


def check_catalog(url: str | URL) -> CatalogCheck:
    """Check the catalog at ``url`` (see the module docstring); ConfigError when there is no catalog there."""
    file = sqlite_file(url)
    if file is not None:
        if not file.is_file():
            raise ConfigError(f"no catalog at {file} yet: harvest something first, or run `taobao-video db upgrade`")
        report = CatalogCheck(str(file))
        _sqlite_integrity(file, report)
        if report.damaged:
            return report
    else:
        report = CatalogCheck(masked(url))
    engine = create_catalog_engine(url)
    try:
        check_reachable(engine)
        _schema(engine, report)
        if report.ok:
            _consistency(engine, report)
    except CatalogDamaged as exc:  # what integrity_check missed (or a server's own report of damage)
        report.problems.append(f"damage: {exc.reason}")
        report.damaged = True
    finally:
        engine.dispose()
    return report


def _sqlite_integrity(file: Path, report: CatalogCheck) -> None:
    try:
        db = sqlite3.connect(f"file:{quote(str(file.resolve()))}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        report.problems.append(f"SQLite cannot open the file: {exc}")
        report.damaged = True
        return
    try:
        lines = [str(row[0]) for row in db.execute(f"PRAGMA integrity_check({MAX_INTEGRITY_LINES})")]
    except sqlite3.Error as exc:
        lines = [f"SQLite cannot read the file: {exc}"]
        _per_table(db, report)
    finally:
        db.close()
    if lines == ["ok"]:
        report.found.append("integrity_check: ok")
        return
    report.problems[:0] = [f"integrity_check: {line}" for line in lines]
    report.damaged = True


def _per_table(db: sqlite3.Connection, report: CatalogCheck) -> None:
    """When the whole-file check gives up at the first unreadable page, say which tables are readable."""
    try:
        tables = [str(row[0]) for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    except sqlite3.Error:
        return  # the schema itself is unreadable: the whole-file message says all there is
    for table in tables:
        try:
            lines = [str(row[0]) for row in db.execute(f'PRAGMA integrity_check("{table}")')]
        except sqlite3.Error as exc:
            lines = [str(exc)]
        if lines == ["ok"]:
            report.found.append(f"integrity_check: table {table}: ok")
        else:
            report.problems.extend(f"integrity_check: table {table}: {line}" for line in lines[:MAX_INTEGRITY_LINES])


def _schema(engine: Engine, report: CatalogCheck) -> None:
    revision = stored_revision(engine)
    if revision != SCHEMA_REVISION:
        said = "none yet" if revision is None else f"at revision {revision}"
        report.problems.append(
            f"schema: {said}, this taobao-video reads {SCHEMA_REVISION}: run `taobao-video db upgrade`"
        )
        return
    inspector = inspect(engine)
    for table in Base.metadata.sorted_tables:
        if not inspector.has_table(table.name):
            report.problems.append(f"schema: table {table.name} is missing")
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        missing = [column.name for column in table.columns if column.name not in present]
        if missing:
            report.problems.append(f"schema: {table.name} lacks {', '.join(missing)}")
    if report.ok:
        report.found.append(f"schema: revision {revision}, every table and column present")


def _consistency(engine: Engine, report: CatalogCheck) -> None:
    has_video = exists().where(Video.num_iid == Item.num_iid)
    orphans = select(func.count()).select_from(Item).where(Item.state == ItemState.DONE.value, ~has_video)
    with engine.connect() as connection:
        videos = int(connection.scalar(select(func.count()).select_from(Video)) or 0)
        items = int(connection.scalar(select(func.count()).select_from(Item)) or 0)
        missing = int(connection.scalar(orphans) or 0)
    report.found.append(f"rows: {videos:,} videos, {items:,} items")
    if missing:
        report.problems.append(
            f"consistency: {missing:,} items are done without their videos row "
            "(`taobao-video catalog sql` finds them; SQLite: `taobao-video db rebuild` rebuilds from the files)"
        )


__all__ = ["CatalogCheck", "check_catalog"]
