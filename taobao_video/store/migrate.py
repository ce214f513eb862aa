"""The catalog's schema version: the Alembic migrations shipped in ``taobao_video/store/migrations``, applied.

:meth:`Catalog.open` runs :func:`migrate` on every open; ``taobao-video db upgrade`` runs :func:`upgrade`. Alembic
is imported inside the functions that need it: the read-only commands check :data:`SCHEMA_REVISION` with one
query instead (:func:`stored_revision`), since loading Alembic's scripts would cost them more than their query.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from taobao_video.errors import ConfigError
from taobao_video.store.dialects import check_reachable, create_catalog_engine, lock_for_writing, masked

if TYPE_CHECKING:
    from alembic.config import Config

# The newest migration shipped: what the read-only commands expect to find without loading Alembic (a test keeps
# it equal to head_revision()). Update it with every new migration.
SCHEMA_REVISION = "0004"
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
        return migrate(url)
    engine = create_catalog_engine(url)
    try:
        return migrate(engine)
    finally:
        engine.dispose()
