"""The catalog's schema version: the Alembic migrations shipped in ``taobao_video/store/migrations``, applied.

:meth:`Catalog.open` runs :func:`migrate` on every open; ``taobao-video db upgrade`` runs :func:`upgrade`. Before a
migration changes a SQLite file at an older revision, :func:`backup_before_upgrade` copies it beside itself. Alembic
is imported inside the functions that need it: the read-only commands check :data:`SCHEMA_REVISION` with one
query instead (:func:`stored_revision`), since loading Alembic's scripts would cost them more than their query.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from taobao_video.errors import CatalogDamaged, ConfigError
from taobao_video.store.damage import damage_reason
from taobao_video.store.dialects import (
    check_reachable,
    create_catalog_engine,
    lock_for_writing,
    masked,
    sqlite_file,
)

if TYPE_CHECKING:
    from alembic.config import Config

# The newest migration shipped: what the read-only commands expect to find without loading Alembic (a test keeps
# it equal to head_revision()). Update it with every new migration.
SCHEMA_REVISION = "0008"
_MIGRATION_LOCK = 7307163801  # a PostgreSQL advisory lock key: any constant of our own


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


def stored_revision(engine: Engine) -> str | None:
    """:func:`current_revision` without loading Alembic: one row of ``alembic_version`` (None: no schema yet)."""
    try:
        with engine.connect() as connection:
            revision = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    except DBAPIError:
        return None
    return None if revision is None else str(revision)


def migrate(engine: Engine) -> str:
    """Bring the database at ``engine`` to :func:`head_revision`, one migrator at a time; returns the head."""
    check_reachable(engine)
    if stored_revision(engine) == SCHEMA_REVISION:  # up to date: one query, not Alembic's import and scripts
        return SCHEMA_REVISION
    from alembic import command
    from alembic.util import CommandError

    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return head
    config = alembic_config()
    where = masked(engine.url)
    with engine.begin() as connection:
        lock_for_writing(connection, _MIGRATION_LOCK)
        backup_before_upgrade(connection, head)
        config.attributes["connection"] = connection
        try:
            command.upgrade(config, "head")
        except CommandError as exc:
            raise ConfigError(
                f"cannot upgrade the catalog at {where} (at revision {current}): {exc}; "
                "was it created by a newer taobao-video?"
            ) from None
    return head


def backup_before_upgrade(connection: Connection, head: str) -> Path | None:
    """Copy a SQLite catalog that has tables at an older revision to ``<file>.before-<head>-<UTC time>`` before a
    migration changes it (a migration that fails halfway, or a newer version the user wants to leave, then has a
    way back). Run it under the migration lock; returns the copy, or None when there is nothing to keep."""
    from alembic.runtime.migration import MigrationContext

    file = sqlite_file(connection.engine.url)
    if file is None or not file.is_file():
        return None
    current = MigrationContext.configure(connection).get_current_revision()
    if current is None or current == head:
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = file.with_name(f"{file.name}.before-{head}-{stamp}")
    # SQLite's backup API copies a consistent snapshot page by page, WAL included, while we hold the write lock.
    try:
        source = sqlite3.connect(f"file:{quote(str(file.resolve()))}?mode=ro", uri=True)
        try:
            copy = sqlite3.connect(target)
            try:
                source.backup(copy)
            finally:
                copy.close()
        finally:
            source.close()
    except (sqlite3.Error, OSError) as exc:
        target.unlink(missing_ok=True)
        reason = damage_reason(exc) if isinstance(exc, sqlite3.Error) else None
        if reason is not None and "disk i/o" not in reason.lower():
            raise CatalogDamaged(str(file), reason) from None
        raise ConfigError(f"cannot copy the catalog {file} to {target.name} before upgrading it: {exc}") from None
    return target


def upgrade(url: str | URL | Engine) -> str:
    """Bring the catalog at ``url`` to the newest schema (creating it if needed); returns the head revision.

    What ``taobao-video db upgrade`` runs; :meth:`Catalog.open` does the same on every open.
    """
    if isinstance(url, Engine):
        return migrate(url)
    engine = create_catalog_engine(url)
    try:
        return migrate(engine)
    finally:
        engine.dispose()
