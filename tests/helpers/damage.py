"""Damaging a real SQLite catalog the ways disks and people do: pages overwritten with garbage, a truncated file,
a file that is not a database at all."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

PAGE = 4096


def overwrite_pages(path: Path, pages: list[int] | None = None, *, seed: int = 7) -> None:
    """Write a page of random bytes over each of ``pages`` (0-based; default: every page after the first, which
    holds the header and the schema, so the file opens but every table is garbage)."""
    assert not path.with_name(path.name + "-wal").exists(), "checkpoint first: the WAL would hide the damage"
    count = path.stat().st_size // PAGE
    rng = random.Random(seed)
    with path.open("r+b") as handle:
        for page in range(1, count) if pages is None else pages:
            handle.seek(page * PAGE)
            handle.write(rng.randbytes(PAGE))


def overwrite_tables(path: Path, tables: tuple[str, ...] = ("videos", "items", "video_totals")) -> None:
    """Overwrite the root pages of ``tables`` only: the file opens and its schema revision reads, so a server
    already serving it meets the damage on its next query."""
    db = sqlite3.connect(path)
    try:
        marks = ",".join("?" * len(tables))
        roots = [row[0] for row in db.execute(f"SELECT rootpage FROM sqlite_master WHERE name IN ({marks})", tables)]
    finally:
        db.close()
    overwrite_pages(path, [root - 1 for root in roots])


def truncate(path: Path) -> None:
    """Cut the file after its first two pages, as a full disk or an interrupted copy leaves it."""
    with path.open("r+b") as handle:
        handle.truncate(2 * PAGE)


def not_a_database(path: Path) -> None:
    """Replace the file's first page (the header) with text, as a misdirected write would."""
    with path.open("r+b") as handle:
        handle.write(b"this is not a SQLite file\n" * (PAGE // 26))


DAMAGES = {"pages": overwrite_pages, "truncated": truncate, "not_a_database": not_a_database}
