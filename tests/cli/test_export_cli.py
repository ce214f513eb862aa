"""`catalog export`: the format from --format or the extension, a real xlsx, and OS errors as one line (exit 1)."""

from __future__ import annotations

import csv
import errno
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from helpers.catalog import VIDEOS, known_settings
from helpers.cli import run
from helpers.disk import mount_tmpfs, unmount

from taobao_video import fsutil

ALL_IDS = sorted(spec[0] for spec in VIDEOS)


@pytest.fixture
def known(tmp_path: Path) -> Iterator[Path]:
    yield known_settings(tmp_path)


def export(config: Path, *args: str) -> list[str]:
    return ["--config", str(config), "catalog", "export", *args]


def _one_clean_line(out: str, err: str) -> None:
    assert "Traceback" not in out + err
    assert len(err.strip().splitlines()) == 1, err


def test_xlsx_is_one_sheet_with_the_csv_columns_numbers_and_dates(known, capsys, monkeypatch) -> None:
    code, out, _ = run(export(known, "--format", "csv"), capsys, monkeypatch)
    header = next(csv.reader(io.StringIO(out)))
    target = known.parent / "videos.xlsx"
    code, _, err = run(export(known, "-o", str(target)), capsys, monkeypatch)
    assert code == 0 and "wrote 7 rows" in err
    book = openpyxl.load_workbook(target, read_only=True)
    assert len(book.worksheets) == 1
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    assert list(rows[0]) == header and len(rows) == 8
    by_id = {row[0]: dict(zip(header, row, strict=True)) for row in rows[1:]}
    assert sorted(by_id) == ALL_IDS and all(isinstance(key, int) for key in by_id)
    first = by_id[520000000001]
    assert first["duration"] == 3.0 and first["size_bytes"] == 1000
    assert first["downloaded_at"] == datetime(2026, 11, 1, 10, 0)  # UTC, as a spreadsheet date
    assert by_id[530000000005]["duration"] is None
    assert oct(target.stat().st_mode & 0o777) == "0o644"


def test_text_is_never_a_formula_in_xlsx(tmp_path) -> None:
    from taobao_video.cli.formats import write_xlsx

    count = write_xlsx(tmp_path / "t.xlsx", ["a", "b"], [("=1+1", "http://x/y"), ("00123", None)])
    rows = list(openpyxl.load_workbook(tmp_path / "t.xlsx").active.iter_rows(values_only=True))
    assert count == 2 and rows[1:] == [("=1+1", "http://x/y"), ("00123", None)]


@pytest.mark.parametrize("name", ["videos.txt", "videos.xls", "videos.JSONX"])
def test_an_unknown_extension_is_refused(known, capsys, monkeypatch, name) -> None:
    target = known.parent / name
    code, out, err = run(export(known, "-o", str(target)), capsys, monkeypatch)
    assert code == 2 and name in err and "--format" in err and ".xlsx" in err
    _one_clean_line(out, err)
    assert not target.exists()


def test_format_wins_over_the_extension_and_no_extension_is_json(known, capsys, monkeypatch) -> None:
    code, _, _ = run(export(known, "--format", "csv", "-o", str(known.parent / "videos.txt")), capsys, monkeypatch)
    assert code == 0 and (known.parent / "videos.txt").read_text().startswith("num_iid,")
    code, _, _ = run(export(known, "-o", str(known.parent / "all-videos")), capsys, monkeypatch)
    assert code == 0 and (known.parent / "all-videos").read_text().startswith("{")
    code, _, _ = run(export(known, "-o", str(known.parent / "V.CSV")), capsys, monkeypatch)
    assert code == 0 and (known.parent / "V.CSV").read_text().startswith("num_iid,")


def test_a_missing_folder_is_an_error_not_created(known, capsys, monkeypatch) -> None:
    target = known.parent / "no-such-folder" / "videos.csv"
    code, out, err = run(export(known, "-o", str(target)), capsys, monkeypatch)
    assert code == 1 and str(target) in err and "does not exist" in err
    _one_clean_line(out, err)
    assert not target.parent.exists()


@pytest.mark.parametrize("name", ["videos.csv", "videos.xlsx"])
def test_a_read_only_folder_is_one_line_naming_the_path(known, capsys, monkeypatch, name) -> None:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(errno.EACCES, "Permission denied", kwargs.get("dir"))

    monkeypatch.setattr(fsutil.tempfile, "mkstemp", refused)
    target = known.parent / name
    code, out, err = run(export(known, "-o", str(target)), capsys, monkeypatch)
    assert code == 1 and str(target) in err and "Permission denied" in err
    _one_clean_line(out, err)


def test_a_really_read_only_folder(known, capsys, monkeypatch) -> None:
    folder = known.parent / "ro"
    if os.geteuid() == 0:  # root writes through permission bits: only a read-only mount refuses it
        mount_tmpfs(folder, "ro,size=1m")
    else:
        folder.mkdir(mode=0o555)
    try:
        code, out, err = run(export(known, "-o", str(folder / "videos.csv")), capsys, monkeypatch)
    finally:
        if os.geteuid() == 0:
            unmount(folder)
    assert code == 1 and ("Permission denied" in err or "Read-only file system" in err), err
    _one_clean_line(out, err)


@pytest.mark.parametrize("name", ["videos.json", "videos.xlsx"])
def test_a_full_disk_leaves_the_old_file_and_no_temp_file(known, capsys, monkeypatch, name) -> None:
    target = known.parent / name
    target.write_text("the old export")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fsutil.os, "fsync", full)
    code, out, err = run(export(known, "-o", str(target)), capsys, monkeypatch)
    assert code == 1 and str(target) in err and "No space left on device" in err
    _one_clean_line(out, err)
    assert target.read_text() == "the old export"
    assert not [p for p in known.parent.iterdir() if p.name.startswith(f".{name}.")]


def test_xlsx_to_a_pipe(known) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "taobao_video", *export(known, "--format", "xlsx")], capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr
    book = openpyxl.load_workbook(io.BytesIO(done.stdout), read_only=True)
    assert len(list(book.worksheets[0].iter_rows(values_only=True))) == 8


def test_more_rows_than_a_sheet_holds_is_refused_and_nothing_is_left(known, capsys, monkeypatch) -> None:
    from taobao_video.cli import formats

    monkeypatch.setattr(formats, "XLSX_MAX_ROWS", 3)
    target = known.parent / "videos.xlsx"
    code, out, err = run(export(known, "-o", str(target)), capsys, monkeypatch)
    assert code == 2 and "do not fit one xlsx sheet" in err and "csv" in err
    _one_clean_line(out, err)
    assert not target.exists() and not [p for p in known.parent.iterdir() if p.name.startswith(".videos.xlsx.")]
