"""Rows out as files: csv, json, jsonl, the lookup mapping of ``catalog export --format json``, and xlsx. Streaming.

Rows are tuples in the order of ``columns`` (what a query or a SQL cursor gives); every writer consumes them one
at a time, so a million-row export never holds more than a row. Values: None is ``null`` in JSON and an empty
field in csv; datetimes are ISO 8601 text (``2026-11-22T10:00:00+00:00``); everything else as Python writes it.
In xlsx (one sheet, the csv's columns) numbers are numbers, datetimes are spreadsheet dates in UTC and None an
empty cell; XlsxWriter is imported only when an xlsx is written.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO

from taobao_video.errors import UsageError

EXPORT_FORMATS = ("csv", "json", "jsonl", "xlsx")
XLSX_MAX_ROWS = 1_048_576 - 1  # a sheet's rows, less the header line


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


def export_format(fmt: str | None, output: str | None) -> str:
    """The format of an export: ``--format``, else the output's extension, else json; an unknown extension is a
    UsageError (a ``videos.xlsx`` silently holding JSON is worse than a refusal)."""
    if fmt is not None:
        return fmt
    suffix = Path(output).suffix.lower() if output else ""
    if not suffix:
        return "json"
    if suffix.lstrip(".") not in EXPORT_FORMATS:
        raise UsageError(
            f"cannot tell the format of {output} from its extension {suffix!r}: name it "
            f"{', '.join('.' + name for name in EXPORT_FORMATS)} or give --format {'|'.join(EXPORT_FORMATS)}"
        )
    return suffix.lstrip(".")


def write_xlsx(path: Path, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """One sheet at ``path``: a bold header of ``columns``, then the rows (constant memory: a row at a time).

    Text stays text (no formulas, numbers or links made from it, so a title starting with ``=`` is harmless);
    whole numbers show all their digits (a num_iid is never ``5.21E+11``). OSError when the file cannot be
    written; UsageError when the rows do not fit one sheet.
    """
    import xlsxwriter
    from xlsxwriter.exceptions import FileCreateError, FileSizeError

    options = {"constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False}
    workbook = xlsxwriter.Workbook(str(path), {**options, "strings_to_urls": False})
    sheet = workbook.add_worksheet("videos")
    styles = {
        "header": workbook.add_format({"bold": True}),
        "int": workbook.add_format({"num_format": "0"}),
        "datetime": workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
        "date": workbook.add_format({"num_format": "yyyy-mm-dd"}),
    }
    sheet.freeze_panes(1, 0)
    for number, name in enumerate(columns):
        sheet.set_column(number, number, max(12, min(len(name) + 2, 40)))
    sheet.write_row(0, 0, list(columns), styles["header"])
    count = 0
    try:
        for row in rows:
            if count == XLSX_MAX_ROWS:
                raise UsageError(f"more than {XLSX_MAX_ROWS} rows do not fit one xlsx sheet: export csv or filter")
            count += 1
            for number, value in enumerate(row):
                _xlsx_cell(sheet, styles, count, number, value)
        workbook.close()
    except FileCreateError as exc:
        raise exc.args[0] if exc.args and isinstance(exc.args[0], OSError) else OSError(str(exc)) from None
    except FileSizeError:
        raise UsageError("the xlsx would pass 4 GiB (a zip file's limit): export csv or filter") from None
    return count


def _xlsx_cell(sheet: Any, styles: dict[str, Any], row: int, column: int, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        sheet.write_boolean(row, column, value)
    elif isinstance(value, int):
        sheet.write_number(row, column, value, styles["int"])
    elif isinstance(value, float):
        sheet.write_number(row, column, value)
    elif isinstance(value, datetime):
        moment = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
        sheet.write_datetime(row, column, moment, styles["datetime"])
    elif isinstance(value, date):
        sheet.write_datetime(row, column, value, styles["date"])
    elif isinstance(value, bytes):
        sheet.write_string(row, column, value.hex())
    else:
        sheet.write_string(row, column, str(value))
