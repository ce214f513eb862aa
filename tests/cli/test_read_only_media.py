"""A catalog on read-only media can be read: the read commands open it read-only and immutable (no side files)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.catalog import build_known
from helpers.cli import run

from taobao_video.store import dialects
from taobao_video.store.catalog import Catalog

READS = [
    ["catalog", "list", "--format", "json"],
    ["catalog", "stats"],
    ["catalog", "show", "52"],
    ["catalog", "sql", "SELECT count(*) AS n FROM videos", "--format", "csv"],
    ["catalog", "export", "--format", "jsonl"],
]


@pytest.fixture
def media(tmp_path: Path) -> Iterator[Path]:
    with Catalog.open(f"sqlite:///{tmp_path / 'catalog.sqlite3'}") as cat:
        build_known(cat, tmp_path)
    (tmp_path / "settings.toml").write_text(
        '[download]\ndir = "videos"\n[database]\nurl = "sqlite:///catalog.sqlite3"\n', encoding="utf-8"
    )
    yield tmp_path


@pytest.mark.parametrize("args", READS, ids=[" ".join(a[:2]) for a in READS])
def test_reads_need_no_side_file_when_the_folder_is_read_only(media, capsys, monkeypatch, args) -> None:
    """The side files WAL wants cannot be made here (folders stand in their names), as on read-only media."""
    for side in ("catalog.sqlite3-wal", "catalog.sqlite3-shm"):
        (media / side).mkdir()
    real_access = os.access
    monkeypatch.setattr(
        dialects.os, "access", lambda path, mode: False if Path(path) == media else real_access(path, mode)
    )
    code, out, err = run(["--config", str(media / "settings.toml"), *args], capsys, monkeypatch)
    assert code == 0, err
    assert "Traceback" not in out + err and out.strip()


def test_a_writable_folder_keeps_wal(media) -> None:
    assert not dialects.on_read_only_media(media / "catalog.sqlite3")
    assert "immutable" not in dialects.sqlite_read_only_uri(media / "catalog.sqlite3")


@pytest.mark.skipif(shutil.which("unshare") is None or sys.platform != "linux", reason="needs unshare (Linux)")
def test_a_really_read_only_mount(media) -> None:
    """Where a user namespace may be made, bind-mount the folder read-only for real and read through the CLI."""
    folder = str(media)
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("user namespaces are not allowed here")
    script = (
        f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} && "
        f"! touch {folder}/probe 2>/dev/null && "
        f"{sys.executable} -m taobao_video --config {folder}/settings.toml catalog stats && "
        f"{sys.executable} -m taobao_video --config {folder}/settings.toml catalog sql 'SELECT count(*) FROM videos'"
    )
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "Videos:" in done.stdout and "Traceback" not in done.stderr
