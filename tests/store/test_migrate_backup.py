"""A SQLite catalog at an older revision is copied beside itself before a migration changes it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command

from taobao_video.store.catalog import Catalog
from taobao_video.store.migrate import SCHEMA_REVISION, alembic_config


def test_an_old_catalog_is_copied_before_it_is_migrated(tmp_path: Path) -> None:
    file = tmp_path / "catalog.sqlite3"
    url = f"sqlite:///{file}"
    command.upgrade(alembic_config(url), "0001")
    db = sqlite3.connect(file)
    db.execute(
        "INSERT INTO items (num_iid, state, added_at, updated_at) VALUES (7, 'pending', '2026-01-01', '2026-01-01')"
    )
    db.commit()
    db.close()

    Catalog.open(url).close()

    copies = list(tmp_path.glob(f"catalog.sqlite3.before-{SCHEMA_REVISION}-*Z"))
    assert len(copies) == 1
    copy = sqlite3.connect(copies[0])
    try:
        assert copy.execute("SELECT version_num FROM alembic_version").fetchall() == [("0001",)]
        assert copy.execute("SELECT num_iid, state FROM items").fetchall() == [(7, "pending")]
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        copy.close()
    Catalog.open(url).close()  # now at the head: nothing more to keep
    assert len(list(tmp_path.glob("catalog.sqlite3.before-*"))) == 1


def test_a_new_catalog_is_not_copied(tmp_path: Path) -> None:
    Catalog.open(f"sqlite:///{tmp_path / 'catalog.sqlite3'}").close()
    assert list(tmp_path.glob("*.before-*")) == []
