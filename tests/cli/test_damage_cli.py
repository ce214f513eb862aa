"""A damaged catalog through ``cli.main``: every command that opens it says so in one line naming the file and
the way out (`db check`, `db rebuild`), exits 78, and never prints a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import ENV, run, write_settings
from helpers.damage import DAMAGES

from taobao_video.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]
COMMANDS = [
    ["catalog", "list"],
    ["catalog", "stats"],
    ["catalog", "show", "{id}"],
    ["catalog", "sql", "SELECT count(*) FROM videos"],
    ["catalog", "export", "--format", "json"],
    ["catalog", "verify"],
    ["queue", "stats"],
    ["queue", "list"],
    ["queue", "add", "{other}"],
    ["queue", "remove", "{id}"],
    ["queue", "retry-failed"],
    ["quota", "status"],
    ["db", "upgrade"],
    ["lookup", "{other}"],
    ["harvest", "{other}"],
    ["daily"],
]


@pytest.fixture
def good(live: Sandbox, tmp_path: Path, capsys: Any, monkeypatch: Any) -> tuple[Path, list[int], int]:
    config = write_settings(tmp_path, live)
    ids = live.catalogue.sample("video", 3)
    code, _, err = run(["--config", str(config), "harvest", *map(str, ids)], capsys, monkeypatch)
    assert code == 0, err
    other = live.catalogue.sample("video", 4)[-1]
    return config, ids, other


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_every_command_is_one_line_and_exit_78(
    good: tuple[Path, list[int], int], damage: str, capsys: Any, monkeypatch: Any
) -> None:
    config, ids, other = good
    file = config.parent / "catalog.sqlite3"
    DAMAGES[damage](file)
    kept = file.read_bytes()
    for command in COMMANDS:
        args = [part.format(id=ids[0], other=other) for part in command]
        code, out, err = run(["--config", str(config), *args], capsys, monkeypatch)
        said = f"{args}: exit {code}, stderr {err!r}"
        assert code == 78, said
        assert "Traceback" not in out + err, said
        lines = err.strip().splitlines()
        assert len(lines) == 1, said
        assert str(file) in lines[0] and "is damaged" in lines[0], said
        assert "taobao-video db check" in lines[0] and "taobao-video db rebuild" in lines[0], said
        if args[:2] == ["catalog", "list"]:
            assert out == "", f"{said}: no half listing (a csv header) on stdout: {out!r}"
    assert file.read_bytes() == kept  # nothing wrote over the evidence


def test_serve_refuses_to_start_on_a_file_that_is_not_a_database(
    good: tuple[Path, list[int], int], capsys: Any, monkeypatch: Any
) -> None:
    config, _, _ = good
    DAMAGES["not_a_database"](config.parent / "catalog.sqlite3")
    code, _, err = run(["--config", str(config), "serve", "--port", "0"], capsys, monkeypatch)
    assert code == 78 and "Traceback" not in err and "is damaged (file is not a database)" in err


def test_a_child_process_prints_no_traceback(good: tuple[Path, list[int], int]) -> None:
    config, _, _ = good
    DAMAGES["pages"](config.parent / "catalog.sqlite3")
    env = {**os.environ, **ENV, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "taobao_video", "--config", str(config), "catalog", "stats"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 78 and "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
