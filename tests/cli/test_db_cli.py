"""`taobao-video db check` and `db rebuild` through ``cli.main`` on real SQLite files: good, old, damaged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from helpers.cli import run, write_settings
from helpers.damage import DAMAGES

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
    assert "schema: at revision 0001, this taobao-video reads 0004: run `taobao-video db upgrade`" in out


def test_check_without_a_catalog_is_a_configuration_error(
    tmp_path: Path, live: Sandbox, capsys: Any, monkeypatch: Any
) -> None:
    config = write_settings(tmp_path, live)
    code, _, err = run(db(config, "check"), capsys, monkeypatch)
    assert code == 78 and "no catalog at" in err
