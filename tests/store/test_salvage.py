"""Reading what is left of a damaged SQLite catalog, row by row, past its damaged pages."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from helpers.damage import overwrite_pages

from taobao_video.store.catalog import Catalog
from taobao_video.store.salvage import read_rows

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def items_of(file: Path) -> dict[int, tuple]:
    db = sqlite3.connect(file)
    try:
        return {row[0]: row for row in db.execute("SELECT num_iid, state, seq, added_at FROM items")}
    finally:
        db.close()


def test_the_walk_skips_damaged_pages_and_keeps_every_readable_row(tmp_path: Path) -> None:
    file = tmp_path / "catalog.sqlite3"
    with Catalog.open(f"sqlite:///{file}") as catalog:
        catalog.enqueue(range(10_000, 13_000), now=NOW)
    original = items_of(file)
    size = file.stat().st_size // 4096
    overwrite_pages(file, [size // 3, size // 2])  # two pages in the middle of the file

    found = read_rows(file, ("items",))
    rows = {row["num_iid"]: (row["num_iid"], row["state"], row["seq"], row["added_at"]) for row in found.rows("items")}
    assert found.damaged_places >= 1 and not found.unreadable
    assert len(original) // 2 < len(rows) < len(original)
    assert all(original[num_iid] == row for num_iid, row in rows.items())  # nothing garbled is kept


def test_a_file_that_is_not_a_database_yields_nothing(tmp_path: Path) -> None:
    file = tmp_path / "catalog.sqlite3"
    file.write_bytes(b"not a database\n" * 1000)
    found = read_rows(file)
    assert found.tables == {} and found.unreadable == ["the whole file (file is not a database)"]
