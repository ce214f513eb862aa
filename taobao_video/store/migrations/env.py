"""Alembic environment for the catalog.

``taobao_video.store.migrate`` passes an open connection (already holding the migration lock) in
``config.attributes["connection"]``; without one, ``sqlalchemy.url`` from the config is used.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection

from taobao_video.store.dialects import UtcDateTime, create_catalog_engine
from taobao_video.store.schema import Base

config = context.config
target_metadata = Base.metadata


def render_item(kind: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Frozen migrations name plain SQLAlchemy types, never this package's TypeDecorators."""
    if kind == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**options: Any) -> None:
    # Batch mode lets later migrations ALTER tables on SQLite (it recreates the table under the hood).
    context.configure(target_metadata=target_metadata, render_as_batch=True, render_item=render_item, **options)


def _run(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection and no sqlalchemy.url given to the catalog migrations")
    engine = create_catalog_engine(url)
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
