"""A full disk under the catalog is one line with exit 75, not SQLAlchemy's traceback: SQLite's SQLITE_FULL (met
here through PRAGMA max_page_count, which SQLite reports with the very same error) and PostgreSQL's SQLSTATE
53100. What was committed before stays, and the same catalog works again once there is room."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import event

from taobao_video.errors import EXIT_TEMPFAIL, CatalogFull, DiskFull
from taobao_video.store.catalog import Catalog, engine_of
from taobao_video.store.dialects import _postgres_errors

NOW = datetime(2026, 12, 3, tzinfo=UTC)


def test_a_full_sqlite_disk_is_catalog_full_and_loses_nothing_committed(tmp_path):
    url = f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    with Catalog.open(url) as catalog:
        catalog.add_items(list(range(1, 101)), now=NOW)
        engine = engine_of(catalog)
        with engine.connect() as connection:
            pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
        cap = f"PRAGMA max_page_count={pages + 2}"  # the file may not grow: "database or disk is full"
        event.listen(engine, "connect", lambda connection, record: connection.execute(cap))
        engine.dispose()
        with pytest.raises(CatalogFull) as full:
            catalog.add_items(list(range(1_000, 60_000)), now=NOW)
    error = full.value
    assert isinstance(error, DiskFull) and error.exit_code == EXIT_TEMPFAIL
    assert str(error).startswith(f"the catalog's disk is full ({tmp_path / 'catalog.sqlite3'}, ")
    assert "free space there and run again" in str(error)
    with Catalog.open(url) as catalog:  # room again (a new engine has no cap): what was committed is there
        assert catalog.queue_stats()["pending"] == 100
        catalog.add_items([1_000], now=NOW)
        assert catalog.queue_stats()["pending"] == 101


def test_postgresql_disk_full_is_catalog_full_naming_the_server_without_its_password():
    engine = SimpleNamespace(url="postgresql+psycopg://harvester:s3cret@db.example:5432/taobao")
    context = SimpleNamespace(original_exception=SimpleNamespace(sqlstate="53100"), engine=engine)
    with pytest.raises(CatalogFull) as full:
        _postgres_errors(context)
    assert "db.example" in str(full.value) and "s3cret" not in str(full.value)
    other = SimpleNamespace(original_exception=SimpleNamespace(sqlstate="40001"), engine=engine)
    assert _postgres_errors(other) is None  # others pass: SQLAlchemy raises the original error
