"""PostgreSQL as the catalog: every command through the CLI against a real server, the errors a user can meet
(server down, driver missing), and what only PostgreSQL stores differently (time zones).

The catalog, queue, quota, harvest and daily tests run on both databases through the ``catalog_url`` fixture;
this file holds what is specific to PostgreSQL.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from helpers.cli import run, write_settings
from helpers.pgserver import PgServer
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from conftest import CANARY_SECRET
from taobao_video.errors import EXIT_CONFIG, ConfigError
from taobao_video.sandbox import Sandbox
from taobao_video.store import dialects as dialects_module
from taobao_video.store.catalog import Catalog, engine_of
from taobao_video.store.migrate import current_revision, head_revision
from taobao_video.store.records import VideoRow

pytestmark = pytest.mark.slow

NOW = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


def with_password(url: str, password: str) -> str:
    """``url`` with a password for its user (the test server trusts loopback, so any password is accepted)."""
    return url.replace("postgres@", f"postgres:{password}@", 1)


# ------------------------------------------------------------------------------------------------ the CLI


def test_every_command_works_on_postgresql_through_the_cli(
    pg_url: str, live: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_settings(tmp_path, live, database_url=None)
    monkeypatch.setenv("TAOBAO_VIDEO__DATABASE__URL", with_password(pg_url, CANARY_SECRET))
    cli = ["--config", str(config)]

    code, out, err = run([*cli, "db", "upgrade"], capsys, monkeypatch)
    assert code == 0, err
    assert out == f"Catalog at revision {head_revision()}: {with_password(pg_url, '***')}\n"

    queued = live.catalogue.sample("video", 4) + live.catalogue.sample("no_video", 2)
    code, out, err = run([*cli, "queue", "add", *map(str, queued)], capsys, monkeypatch)
    assert (code, out) == (0, "added 6, reprioritised 0, already queued 0, already done 0 (0 lines not ids)\n"), err
    code, out, _ = run([*cli, "queue", "list", "--json"], capsys, monkeypatch)
    assert code == 0 and [json.loads(line)["num_iid"] for line in out.splitlines()] == queued

    code, out, err = run([*cli, "daily", "--json"], capsys, monkeypatch)
    summary = json.loads(out.splitlines()[-1])
    assert code == 0, err
    assert (summary["downloaded"], summary["no_video"], summary["api_calls"]) == (4, 2, 6)

    direct = live.catalogue.sample("video", 6)[4:]
    code, out, err = run([*cli, "harvest", "--json", *map(str, direct)], capsys, monkeypatch)
    assert code == 0 and json.loads(out.splitlines()[-1])["downloaded"] == 2, err

    code, out, _ = run([*cli, "queue", "stats", "--json"], capsys, monkeypatch)
    stats = json.loads(out)
    assert (code, stats["done"], stats["no_video"], stats["pending"]) == (0, 6, 2, 0)
    code, out, _ = run([*cli, "quota", "status", "--json"], capsys, monkeypatch)
    assert code == 0 and '"used": 8' in out
    assert live.stats()["gateway"]["calls"] == 8
    assert CANARY_SECRET not in out + err

    with Catalog.open(pg_url) as cat:  # the files are where the rows say, on the PostgreSQL side too
        videos = cat.videos(queued + direct)
        assert len(videos) == 6 and all((tmp_path / row.video_path).is_file() for row in videos.values())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("command", [["db", "upgrade"], ["queue", "stats"], ["harvest", "12345"], ["daily"]])
def test_an_unreachable_server_is_exit_78_naming_the_catalog_without_its_password(
    command: list[str],
    live: Sandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = write_settings(tmp_path, live, database_url=None)
    url = f"postgresql+psycopg://harvester:{CANARY_SECRET}@127.0.0.1:{_free_port()}/catalog"
    monkeypatch.setenv("TAOBAO_VIDEO__DATABASE__URL", url)
    code, out, err = run(["--config", str(config), *command], capsys, monkeypatch)
    assert code == EXIT_CONFIG
    assert "cannot connect to the catalog at postgresql+psycopg://harvester:***@127.0.0.1:" in err
    assert "Connection refused" in err or "connection failed" in err
    assert CANARY_SECRET not in out + err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_without_psycopg_the_message_says_what_to_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` now fails as if it were not installed
    config = tmp_path / "settings.toml"
    config.write_text('[database]\nurl = "postgresql+psycopg://harvester@db.example/catalog"\n')
    code, _, err = run(["--config", str(config), "queue", "stats"], capsys, monkeypatch)
    assert code == EXIT_CONFIG
    assert err.strip() == (
        "taobao-video: database.url postgresql+psycopg://harvester@db.example/catalog: the driver is not installed "
        "(psycopg); pip install 'taobao-video[postgres]'"
    )


def test_a_database_that_does_not_exist_is_exit_78(pg: PgServer) -> None:
    with pytest.raises(ConfigError, match=r'cannot connect to the catalog at .*/no_such_db: .*"no_such_db" does not'):
        Catalog.open(pg.url("no_such_db"))


def test_a_plain_postgresql_url_uses_psycopg(pg_url: str) -> None:
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with Catalog.open(plain) as cat:  # SQLAlchemy's own default would be psycopg2, which is not a dependency
        assert engine_of(cat).dialect.driver == "psycopg"
        assert current_revision(engine_of(cat)) == head_revision()


# ------------------------------------------------------------------------------------------------ storage


@pytest.fixture(scope="module")
def pg_catalog(pg: PgServer) -> Iterator[Catalog]:
    with pg.database() as url, Catalog.open(url) as cat:
        yield cat


@settings(max_examples=40, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.sampled_from([UTC])
    ),
    offset_minutes=st.integers(-14 * 60, 14 * 60),
)
def test_times_round_trip_as_aware_utc_in_timestamptz(
    pg_catalog: Catalog, moment: datetime, offset_minutes: int
) -> None:

    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    cat = pg_catalog
    with engine_of(cat).begin() as connection:
        connection.execute(text("DELETE FROM videos"))
        connection.execute(text("DELETE FROM items"))
    cat.add_items([7], now=local)
    row = VideoRow(7, "videos/7.mp4", 1.0, 10, "ab" * 32, "https://v/7.mp4", None, None, None, "m", local)
    cat.record_video(row, now=local)
    item, video = cat.item(7), cat.video(7)
    assert item is not None and video is not None
    for value in (item.added_at, item.updated_at, video.downloaded_at):
        assert value == moment and value.tzinfo is UTC
    with engine_of(cat).connect() as connection:  # stored as the instant, whatever the session's zone
        connection.exec_driver_sql("SET TIME ZONE 'Asia/Shanghai'")
        assert connection.execute(text("SELECT added_at FROM items")).scalar() == moment


def test_no_dialect_checks_outside_dialects_py() -> None:
    """Issue 7: dialect differences live in one place; the repository, the queue, the item state machine, the
    claims, the ledger and the queries only write portable SQL. (``readonly_sql.py`` opens its own read-only
    connection per database: that is its job; ``health.py`` and ``salvage.py`` read a SQLite *file* with sqlite3
    itself — its integrity check, its readable rows — because a damaged file must not go through the engine.)"""
    store = Path(dialects_module.__file__ or "").parent
    own_connections = {"dialects.py", "readonly_sql.py", "health.py", "salvage.py"}
    modules = sorted(path for path in store.glob("*.py") if path.name not in own_connections)
    assert {"catalog.py", "queue.py", "items.py", "claims.py", "quota.py", "query.py"} <= {m.name for m in modules}
    for module in modules:
        source = module.read_text()
        assert "dialect.name" not in source and "PRAGMA" not in source and "BEGIN IMMEDIATE" not in source, module
