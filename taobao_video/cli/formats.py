"""Rows out as text: csv, json, jsonl, and the lookup mapping of ``catalog export --format json``. Streaming.

Rows are tuples in the order of ``columns`` (what a query or a SQL cursor gives); every writer consumes them one
at a time, so a million-row export never holds more than a row. Values: None is ``null`` in JSON and an empty
field in csv; datetimes are ISO 8601 text (``2026-11-22T10:00:00+00:00``); everything else as Python writes it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TextIO


def unique_names(columns: Sequence[str]) -> list[str]:
    """Column names made unique for JSON keys: a repeated ``x`` becomes ``x_2``, ``x_3``…"""
    seen: dict[str, int] = {}
    names = []
    for name in columns:
        count = seen.get(name, 0) + 1
        seen[name] = count
        names.append(name if count == 1 else f"{name}_{count}")
    return names


def _value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.hex()
    return _value(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()  # a BLOB from `catalog sql`; the catalog's own columns hold none
    return _value(value)


def write_csv(out: TextIO, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """A header line, then one line per row (RFC 4180 quoting, ``\\n`` line ends); returns the row count."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow([_csv_value(value) for value in row])
        count += 1
    return count


def write_jsonl(out: TextIO, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """One JSON object per line, keyed by column name."""
    names = unique_names(columns)
    count = 0
    for row in rows:
        out.write(_dumps(dict(zip(names, map(_json_value, row), strict=True))))
        out.write("\n")
        count += 1
    return count


def write_json(out: TextIO, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """A JSON array of objects, one per line inside the brackets."""
    names = unique_names(columns)
    count = 0
    out.write("[")
    for row in rows:
        out.write(",\n" if count else "\n")
        out.write(_dumps(dict(zip(names, map(_json_value, row), strict=True))))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def write_mapping(out: TextIO, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """A JSON object keyed by the first column (as text: JSON keys are strings), each value the other columns:
    ``{"520813250866": {"video_path": …, "duration": …}, …}``, for tools that want a lookup file."""
    names = unique_names(columns)[1:]
    count = 0
    out.write("{")
    for row in rows:
        out.write(",\n" if count else "\n")
        out.write(_dumps(str(row[0])))
        out.write(": ")
        out.write(_dumps(dict(zip(names, map(_json_value, row[1:]), strict=True))))
        count += 1
    out.write("\n}\n" if count else "}\n")
    return count


def write_rows(out: TextIO, fmt: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Rows in ``fmt`` (csv, json, jsonl); returns how many were written."""
    writers = {"csv": write_csv, "json": write_json, "jsonl": write_jsonl}
    if fmt not in writers:
        raise ValueError(f"unknown format {fmt!r}; use {', '.join(writers)}")
    return writers[fmt](out, columns, rows)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)
