"""`taobao-video db check` and `db rebuild` through ``cli.main`` on real SQLite files: good, old, damaged."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from helpers.cli import run, write_settings
from helpers.damage import DAMAGES, overwrite_tables

from taobao_video.sandbox import Sandbox
from taobao_video.store.migrate import alembic_config


@pytest.fixture
def harvested(live: Sandbox, tmp_path: Path, capsys: Any, monkeypatch: Any) -> tuple[Path, list[int]]:
    """A settings file beside a catalog and videos folder a real harvest against the sandbox made."""
    config = write_settings(tmp_path, live)
    ids = live.catalogue.sample("video", 6)
    code, _, err = run(["--config", str(config), "harvest", *map(str, ids)], capsys, monkeypatch)
    assert code == 0, err
    return config, ids


def db(config: Path, *args: str) -> list[str]:
    return ["--config", str(config), "db", *args]


# ------------------------------------------------------------------------------------------------ check


def test_check_a_good_catalog_is_ok(harvested: tuple[Path, list[int]], capsys: Any, monkeypatch: Any) -> None:
    config, _ = harvested
    code, out, err = run(db(config, "check"), capsys, monkeypatch)
    assert code == 0, err
    assert out.splitlines()[-1] == "ok" and "integrity_check: ok" in out and "rows: 6 videos, 6 items" in out


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_check_a_damaged_catalog_says_what_sqlite_found(
    harvested: tuple[Path, list[int]], damage: str, capsys: Any, monkeypatch: Any
) -> None:
    config, _ = harvested
    file = config.parent / "catalog.sqlite3"
    DAMAGES[damage](file)
    code, out, err = run(db(config, "check"), capsys, monkeypatch)
    assert code == 78
    assert "integrity_check: " in out and ("malformed" in out or "not a database" in out), out
    assert err.strip() == (
        f"taobao-video: the catalog {file} is damaged: run `taobao-video db rebuild` (the file is kept as a backup)"
    )


def test_check_an_old_schema_says_upgrade(tmp_path: Path, live: Sandbox, capsys: Any, monkeypatch: Any) -> None:
    config = write_settings(tmp_path, live)
    command.upgrade(alembic_config(f"sqlite:///{tmp_path / 'catalog.sqlite3'}"), "0001")
    code, out, _ = run(db(config, "check"), capsys, monkeypatch)
    assert code == 78 and "integrity_check: ok" in out
    assert "schema: at revision 0001, this taobao-video reads 0008: run `taobao-video db upgrade`" in out


def test_check_without_a_catalog_is_a_configuration_error(
    tmp_path: Path, live: Sandbox, capsys: Any, monkeypatch: Any
) -> None:
    config = write_settings(tmp_path, live)
    code, _, err = run(db(config, "check"), capsys, monkeypatch)
    assert code == 78 and "no catalog at" in err


# ------------------------------------------------------------------------------------------------ rebuild


def calls_spent(config: Path, ids: list[int], capsys: Any, monkeypatch: Any) -> int:
    code, out, err = run(["--config", str(config), "harvest", "--json", *map(str, ids)], capsys, monkeypatch)
    assert code == 0, err
    return int(json.loads(out.splitlines()[-1])["api_calls"])


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_rebuild_from_the_files_then_verify_and_harvest_again_for_free(
    harvested: tuple[Path, list[int]], damage: str, capsys: Any, monkeypatch: Any
) -> None:
    config, ids = harvested
    folder = config.parent
    file = folder / "catalog.sqlite3"
    broken = folder / "videos" / f"{ids[-1]}.mp4"
    broken.write_bytes(b"<html>not a video</html>" + broken.read_bytes()[25:])  # same size, not an MP4
    DAMAGES[damage](file)
    damaged = file.read_bytes()

    code, out, err = run(db(config, "rebuild"), capsys, monkeypatch)
    assert code == 0, err
    assert f"lost: {broken}: the file is an HTML page, not an MP4" in out
    assert "Recovered 5 videos (0 with their source URL)" in out and "1 file that failed verification" in out
    backups = list(folder.glob("catalog.sqlite3.damaged-*Z"))
    assert len(backups) == 1 and backups[0].read_bytes() == damaged and f"kept as {backups[0]}." in out

    code, out, err = run(db(config, "check"), capsys, monkeypatch)
    assert code == 0 and "rows: 5 videos, 5 items" in out, out + err
    code, out, err = run(["--config", str(config), "catalog", "verify"], capsys, monkeypatch)
    assert code == 0 and "checked 5: 5 good, 0 bad" in out, out + err
    code, out, _ = run(["--config", str(config), "catalog", "list", "--format", "json"], capsys, monkeypatch)
    rows = {row["num_iid"]: row for row in json.loads(out)}
    assert sorted(rows) == sorted(ids[:-1])
    assert all(row["api_method"] == "recovered" and row["duration"] > 0 for row in rows.values())
    assert calls_spent(config, ids[:-1], capsys, monkeypatch) == 0


def test_readable_rows_keep_urls_and_the_queue(
    harvested: tuple[Path, list[int]], live: Sandbox, capsys: Any, monkeypatch: Any
) -> None:
    config, ids = harvested
    waiting = live.catalogue.sample("video", 9)[6:]
    code, _, err = run(["--config", str(config), "queue", "add", *map(str, waiting)], capsys, monkeypatch)
    assert code == 0, err
    file = config.parent / "catalog.sqlite3"
    before = sqlite3.connect(file)
    urls = dict(before.execute("SELECT num_iid, video_url FROM videos"))
    facts = before.execute("SELECT num_iid, title, nick, video_id FROM videos ORDER BY 1").fetchall()
    before.close()
    overwrite_tables(file, ("videos",))  # the items (with each video's URL) and the call log stay readable

    code, out, err = run(db(config, "rebuild"), capsys, monkeypatch)
    assert code == 0, err
    assert "Recovered 6 videos (6 with their source URL), 3 queue items, 6 logged calls, 1 quota day" in out
    after = sqlite3.connect(file)
    assert dict(after.execute("SELECT num_iid, video_url FROM videos")) == urls
    assert after.execute("SELECT num_iid, title, nick, video_id FROM videos ORDER BY 1").fetchall() == facts
    states = dict(after.execute("SELECT num_iid, state FROM items"))
    after.close()
    assert states == {**dict.fromkeys(ids, "done"), **dict.fromkeys(waiting, "pending")}
    code, out, _ = run(["--config", str(config), "quota", "status", "--json"], capsys, monkeypatch)
    assert code == 0 and json.loads(out)["used"] == 6, out  # the ledger survived: no day's quota spent twice


def test_readable_video_rows_keep_every_column(
    harvested: tuple[Path, list[int]], capsys: Any, monkeypatch: Any
) -> None:
    config, _ = harvested
    file = config.parent / "catalog.sqlite3"
    columns = "num_iid, title, video_id, cover_path, cover_width, codec, bitrate, fps, has_audio, container, sha256"
    before = sqlite3.connect(file)
    rows = before.execute(f"SELECT {columns} FROM videos ORDER BY 1").fetchall()
    before.close()
    assert rows and all(row[1] and row[3] and row[5] for row in rows)  # titles, covers and probe facts to keep
    overwrite_tables(file, ("items",))  # the videos rows stay readable, the queue does not

    code, _, err = run(db(config, "rebuild"), capsys, monkeypatch)
    assert code == 0, err
    after = sqlite3.connect(file)
    assert after.execute(f"SELECT {columns} FROM videos ORDER BY 1").fetchall() == rows
    after.close()


def test_rebuild_refuses_postgresql(tmp_path: Path, live: Sandbox, capsys: Any, monkeypatch: Any) -> None:
    config = write_settings(tmp_path, live, database_url="postgresql+psycopg://u@127.0.0.1:1/none")
    code, _, err = run(db(config, "rebuild"), capsys, monkeypatch)
    assert code == 2 and "SQLite catalog file" in err


def test_rebuild_json_says_the_same(harvested: tuple[Path, list[int]], capsys: Any, monkeypatch: Any) -> None:
    config, ids = harvested
    DAMAGES["not_a_database"](config.parent / "catalog.sqlite3")
    code, out, err = run(db(config, "rebuild", "--json"), capsys, monkeypatch)
    assert code == 0, err
    report = json.loads(out)
    assert report["videos"] == len(ids) and report["with_url"] == 0 and report["lost_files"] == []
    assert report["unreadable"] == ["the whole file (file is not a database)"]
    assert Path(report["backup"]).name.startswith("catalog.sqlite3.damaged-")


def test_check_names_the_damaged_table(harvested: tuple[Path, list[int]], capsys: Any, monkeypatch: Any) -> None:
    config, _ = harvested
    overwrite_tables(config.parent / "catalog.sqlite3", ("items",))
    code, out, _ = run(db(config, "check"), capsys, monkeypatch)
    assert code == 78
    assert "integrity_check: table videos: ok" in out and "integrity_check: table items: " in out, out
