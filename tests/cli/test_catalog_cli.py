"""`taobao-video catalog …` end to end through ``cli.main``: formats, filters, show, stats, export, verify --fix
followed by a daily run that spends no call, read-only SQL, old or missing catalogs, and what a read imports."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from helpers.catalog import VIDEOS, build_known
from helpers.cli import run, write_settings

from taobao_video.errors import ConfigError
from taobao_video.sandbox import Sandbox
from taobao_video.store import query as query_module
from taobao_video.store.catalog import Catalog
from taobao_video.store.filters import VideoQuery
from taobao_video.store.migrate import alembic_config
from taobao_video.store.query import jsonable, list_rows

ALL_IDS = sorted(spec[0] for spec in VIDEOS)


def write_config(folder: Path) -> Path:
    path = folder / "settings.toml"
    path.write_text(
        '[download]\ndir = "videos"\n[harvest]\nlock_file = "harvest.lock"\n[database]\nurl = "sqlite:///catalog.sqlite3"\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def known(tmp_path: Path) -> Iterator[Path]:
    """A settings file beside the known catalog (tests/helpers/catalog.py) and its files."""
    with Catalog.open(f"sqlite:///{tmp_path / 'catalog.sqlite3'}") as cat:
        build_known(cat, tmp_path)
    yield write_config(tmp_path)


def catalog(config: Path, *args: str) -> list[str]:
    return ["--config", str(config), "catalog", *args]


# ------------------------------------------------------------------------------------------------ list


def test_csv_is_the_default_when_piped_and_parses_back_to_the_rows(known: Path, capsys: Any, monkeypatch: Any) -> None:
    code, out, err = run(catalog(known, "list"), capsys, monkeypatch)
    assert code == 0, err
    parsed = list(csv.DictReader(io.StringIO(out)))
    with Catalog.open(f"sqlite:///{known.parent / 'catalog.sqlite3'}") as cat:
        rows = [jsonable(row) for row in list_rows(cat, VideoQuery(), base_dir=known.parent)]
    assert parsed == [{key: "" if value is None else str(value) for key, value in row.items()} for row in rows]


def test_json_and_jsonl_with_filters_and_order(known: Path, capsys: Any, monkeypatch: Any) -> None:
    args = ["--min-duration", "10", "--sort", "duration", "--desc"]
    code, out, _ = run(catalog(known, "list", *args, "--limit", "4", "--format", "json"), capsys, monkeypatch)
    rows = json.loads(out)
    assert code == 0 and [(row["num_iid"], row["duration"]) for row in rows] == [
        (610000000006, 61.0),
        (530000000004, 30.0),
        (52, 20.0),
        (520000000003, 12.5),
    ]
    code, out, _ = run(
        catalog(known, "list", *args, "--offset", "1", "--limit", "3", "--format", "jsonl"), capsys, monkeypatch
    )
    assert code == 0 and [json.loads(line) for line in out.splitlines()] == rows[1:]


def test_the_table_and_its_note(known: Path, capsys: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr("taobao_video.cli.catalog.TABLE_ROWS", 2)
    code, out, err = run(catalog(known, "list", "--format", "table"), capsys, monkeypatch)
    assert code == 0
    assert "num_iid" in out and "520000000001" in out and "520000000002" not in out
    assert "2 of 7 rows shown" in err
    code, out, _ = run(catalog(known, "list", "--format", "table", "--min-duration", "1000"), capsys, monkeypatch)
    assert code == 0 and "No rows match." in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--since", "2026-11-02", "--until", "2026-11-03"], [520000000002, 520000000003, 530000000004]),
        (["--since", "2026-11-03T00:00:00Z", "--until", "2026-11-03T12:00:00+00:00"], [520000000003]),
        (["--max-duration", "10", "--min-duration", "3"], [520000000001, 520000000002]),
        (["--missing"], [520000000002, 530000000005]),
        (["--state", "failed,pending", "--state", "no_video"], [1001, 1002, 2001, 3001]),
        (["--sort", "size", "--desc", "--limit", "2"], [530000000004, 610000000006]),
    ],
)
def test_filters(known: Path, capsys: Any, monkeypatch: Any, args: list[str], expected: list[int]) -> None:
    monkeypatch.setenv("TZ", "UTC")  # bare dates are local time
    code, out, err = run(catalog(known, "list", *args, "--format", "jsonl"), capsys, monkeypatch)
    assert code == 0, err
    assert [json.loads(line)["num_iid"] for line in out.splitlines()] == expected


def test_ids_file_reports_bad_lines_by_number(known: Path, capsys: Any, monkeypatch: Any) -> None:
    ids = known.parent / "ids.txt"
    ids.write_text("52\nnot an id\nhttps://item.taobao.com/item.htm?id=610000000006\n# comment\n", encoding="utf-8")
    code, out, err = run(catalog(known, "list", "--ids", str(ids), "--format", "jsonl"), capsys, monkeypatch)
    assert code == 2
    assert [json.loads(line)["num_iid"] for line in out.splitlines()] == [52, 610000000006]
    assert f"{ids}:2:" in err


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--since", "soon"], "--since"),
        (["--until", "2026-13-01"], "--until"),
        (["--state", "downloaded"], "--state"),
        (["--min-duration", "20", "--max-duration", "5"], "--min-duration"),
        (["--min-duration", "-3"], "--min-duration"),
        (["--sort", "title"], "--sort"),
        (["--ids", "/nonexistent/ids.txt"], "no such file"),
    ],
)
def test_bad_options_are_usage_errors(known: Path, capsys: Any, monkeypatch: Any, args: list[str], said: str) -> None:
    code, out, err = run(catalog(known, "list", *args), capsys, monkeypatch)
    assert code == 2 and said in err and out == ""
    assert "Traceback" not in err


def test_read_commands_never_create_or_migrate(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    config = write_config(tmp_path)
    code, _, err = run(catalog(config, "list"), capsys, monkeypatch)
    assert code == 78 and "no catalog at" in err and not (tmp_path / "catalog.sqlite3").exists()
    command.upgrade(alembic_config(f"sqlite:///{tmp_path / 'catalog.sqlite3'}"), "0002")
    for args in (["list"], ["stats"], ["show", "52"], ["export"], ["verify"]):
        code, _, err = run(catalog(config, *args), capsys, monkeypatch)
        assert code == 78 and "revision 0002" in err and "taobao-video db upgrade" in err, args


# ------------------------------------------------------------------------------------------------ show, stats


def test_show(known: Path, capsys: Any, monkeypatch: Any) -> None:
    code, out, _ = run(catalog(known, "show", "520000000001"), capsys, monkeypatch)
    assert code == 0 and "state:        done" in out and "API calls:    2" in out and "duration:     3.000 s" in out
    code, out, _ = run(catalog(known, "show", "520000000002"), capsys, monkeypatch)
    assert "(MISSING on disk)" in out
    code, out, _ = run(catalog(known, "show", "3001", "--json"), capsys, monkeypatch)
    report = json.loads(out)
    assert code == 0 and (report["state"], report["last_error"], report["video"]) == ("failed", "HTTP 404", None)
    code, out, _ = run(catalog(known, "show", "https://detail.tmall.com/item.htm?id=777"), capsys, monkeypatch)
    assert code == 1 and "777: not in the catalog" in out
    code, _, err = run(catalog(known, "show", "abc"), capsys, monkeypatch)
    assert code == 2 and "NUM_IID" in err


def test_stats(known: Path, capsys: Any, monkeypatch: Any) -> None:
    code, out, _ = run(catalog(known, "stats", "--json", "--days", "3"), capsys, monkeypatch)
    report = json.loads(out)
    assert code == 0
    assert report["items"]["total"] == 13 and report["videos"] == 7 and report["bytes"] == 29_000
    assert len(report["downloads_per_day"]) == 3
    code, out, _ = run(catalog(known, "stats"), capsys, monkeypatch)
    assert code == 0 and "Videos:   7, 28.3 KiB" in out and "10-15 s" in out and "unknown" in out


# ------------------------------------------------------------------------------------------------ export


def test_export_json_is_a_lookup_mapping(known: Path, capsys: Any, monkeypatch: Any) -> None:
    target = known.parent / "out" / "videos.json"
    target.parent.mkdir()
    code, _, err = run(catalog(known, "export", "--format", "json", "--output", str(target)), capsys, monkeypatch)
    mapping = json.loads(target.read_text(encoding="utf-8"))
    assert code == 0 and "wrote 7 rows" in err
    assert sorted(map(int, mapping)) == ALL_IDS
    assert mapping["52"]["duration"] == 20.0 and "num_iid" not in mapping["52"]
    assert mapping["530000000005"]["duration"] is None
    code, _, _ = run(
        catalog(known, "export", "-o", str(known.parent / "v.csv"), "--min-duration", "30"), capsys, monkeypatch
    )
    lines = (known.parent / "v.csv").read_text(encoding="utf-8").splitlines()
    assert code == 0 and lines[0].startswith("num_iid,video_path,duration") and len(lines) == 3
    code, out, _ = run(catalog(known, "export", "--format", "jsonl"), capsys, monkeypatch)
    assert code == 0 and len(out.splitlines()) == 7


def test_export_is_all_or_nothing(known: Path, capsys: Any, monkeypatch: Any) -> None:
    target = known.parent / "videos.json"
    real = query_module.iter_rows

    def failing(*args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        rows = real(*args, **kwargs)
        yield next(rows)
        raise ConfigError("cannot connect to the catalog: the server went away")

    monkeypatch.setattr(query_module, "iter_rows", failing)
    code, _, err = run(catalog(known, "export", "--output", str(target)), capsys, monkeypatch)
    assert code == 78 and "server went away" in err
    assert not target.exists() and not [p for p in known.parent.iterdir() if p.name.startswith(".videos.json")]


# ------------------------------------------------------------------------------------------------ sql


def test_sql_formats(known: Path, capsys: Any, monkeypatch: Any) -> None:
    statement = "SELECT state, count(*) AS n FROM items GROUP BY state ORDER BY state"
    code, out, _ = run(catalog(known, "sql", statement, "--format", "json"), capsys, monkeypatch)
    assert code == 0 and {row["state"]: row["n"] for row in json.loads(out)}["done"] == 7
    code, out, _ = run(catalog(known, "sql", statement), capsys, monkeypatch)
    assert code == 0 and out.splitlines()[0] == "state,n"
    code, out, _ = run(catalog(known, "sql", "SELECT 1 AS x, 2 AS x", "--format", "jsonl"), capsys, monkeypatch)
    assert json.loads(out) == {"x": 1, "x_2": 2}


@pytest.mark.parametrize(
    "statement", ["DELETE FROM videos", "ATTACH DATABASE 'x.db' AS x", "PRAGMA writable_schema=1", "VACUUM"]
)
def test_sql_refuses_and_changes_nothing(known: Path, capsys: Any, monkeypatch: Any, statement: str) -> None:
    file = known.parent / "catalog.sqlite3"
    before = hashlib.sha256(file.read_bytes()).hexdigest()
    code, out, err = run(catalog(known, "sql", statement), capsys, monkeypatch)
    assert code == 2 and "refused" in err and "read-only" in err and out == ""
    assert hashlib.sha256(file.read_bytes()).hexdigest() == before
    assert not (known.parent / "x.db").exists()


def test_bad_sql_is_one_line(known: Path, capsys: Any, monkeypatch: Any) -> None:
    code, _, err = run(catalog(known, "sql", "SELECT * FROM nowhere"), capsys, monkeypatch)
    assert code == 2 and err.strip() == "taobao-video: the database refused the statement: no such table: nowhere"


# ------------------------------------------------------------------------------------------------ verify


def test_verify_fix_then_daily_downloads_again_without_a_call(
    live: Sandbox, tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    config = write_settings(tmp_path, live)
    ids = live.catalogue.sample("video", 5)
    code, _, err = run(["--config", str(config), "harvest", "--json", *map(str, ids)], capsys, monkeypatch)
    assert code == 0, err
    folder = tmp_path / "videos"
    before = {i: hashlib.sha256((folder / f"{i}.mp4").read_bytes()).hexdigest() for i in ids}
    truncated, deleted, replaced = ids[:3]
    (folder / f"{truncated}.mp4").write_bytes((folder / f"{truncated}.mp4").read_bytes()[:5000])
    (folder / f"{deleted}.mp4").unlink()
    data = bytearray((folder / f"{replaced}.mp4").read_bytes())
    data[-100:] = bytes(100)
    (folder / f"{replaced}.mp4").write_bytes(bytes(data))

    code, out, _ = run(catalog(config, "verify"), capsys, monkeypatch)
    assert code == 1
    assert f"{truncated}  truncated" in out and f"{deleted}  missing" in out and f"{replaced}  changed" in out
    assert "checked 5: 2 good, 3 bad" in out
    code, out, _ = run(catalog(config, "verify", "--fix", "--json"), capsys, monkeypatch)
    report = json.loads(out)
    assert code == 0 and (report["bad"], report["fixed"]) == (3, 3)
    code, out, _ = run(catalog(config, "list", "--state", "resolved", "--format", "jsonl"), capsys, monkeypatch)
    assert sorted(json.loads(line)["num_iid"] for line in out.splitlines()) == sorted(ids[:3])

    live.reset_stats()
    code, out, err = run(["--config", str(config), "daily", "--json"], capsys, monkeypatch)
    summary = json.loads(out.splitlines()[-1])
    assert code == 0, err
    assert (summary["downloaded"], summary["api_calls"]) == (3, 0)
    assert live.stats()["gateway"]["calls"] == 0
    assert {i: hashlib.sha256((folder / f"{i}.mp4").read_bytes()).hexdigest() for i in ids} == before
    code, out, _ = run(catalog(config, "verify"), capsys, monkeypatch)
    assert code == 0 and "checked 5: 5 good, 0 bad" in out


# ------------------------------------------------------------------------------------------------ start-up


def test_a_read_imports_only_what_it_needs(known: Path) -> None:
    """The start-up target (issue 6) depends on what a read does not import: no pydantic (the settings are
    peeked at), no rich for json, no Alembic (no migration), no tenacity, sandbox or web server."""
    probe = (
        "import sys\n"
        "from taobao_video.cli.main import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit as done:\n"
        "    assert not done.code, done.code\n"
        "heavy = ['pydantic', 'rich', 'alembic', 'tenacity', 'requests', 'taobao_video.sandbox']\n"
        "heavy += ['taobao_video.web.server', 'xlsxwriter']\n"
        "print(sorted(name for name in heavy if name in sys.modules), file=sys.stderr)\n"
    )
    for args in (["list", "--min-duration", "10", "--limit", "100", "--format", "json"], ["stats"]):
        done = subprocess.run(
            [sys.executable, "-c", probe, *catalog(known, *args)], capture_output=True, text=True, check=True
        )
        assert done.stderr.strip().splitlines()[-1] == "[]", (args, done.stderr)


@pytest.mark.parametrize("name", ["list", "show", "stats", "export", "verify", "sql"])
def test_every_help_has_an_example(name: str, capsys: Any, monkeypatch: Any) -> None:
    code, out, _ = run(["catalog", name, "--help"], capsys, monkeypatch)
    assert code == 0 and "Example" in out and "taobao-video catalog " + name in out
