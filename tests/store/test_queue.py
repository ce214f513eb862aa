"""The queue: enqueue order and counts, stats, the daily selection, remove, retry, migration 0002, `queue` CLI."""

from __future__ import annotations

import io
import json
import multiprocessing
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from helpers.rows import video_row
from sqlalchemy import BigInteger, String, column, insert, inspect, table, text
from sqlalchemy.exc import IntegrityError

from taobao_video.cli.main import main
from taobao_video.cli.queue import STATES, queue
from taobao_video.model import ItemState
from taobao_video.store import queue as queue_module
from taobao_video.store.catalog import Catalog, engine_of
from taobao_video.store.dialects import UtcDateTime, create_catalog_engine
from taobao_video.store.migrate import alembic_config, current_revision, head_revision
from taobao_video.store.records import EnqueueResult, RemoveResult
from taobao_video.store.schema import Base

NOW = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
ENV = {"TAOBAO_APP_KEY": "12345678", "TAOBAO_APP_SECRET": "not-used-by-queue"}


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(queue_module, "ADD_BATCH", 3)
    return 3


def order(cat: Catalog, *states: str) -> list[int]:
    return [row.num_iid for row in cat.queue_page(states=states or None, limit=1000)]


def resolve(cat: Catalog, num_iid: int, *, now: datetime = NOW) -> None:
    cat.mark_resolved(
        num_iid,
        video_url=f"https://cloud.video.taobao.com/play/{num_iid}.mp4",
        cover_url=None,
        api_duration=12.0,
        width=720,
        height=1280,
        api_method="taobao.item_video",
        now=now,
    )


def one_of_each_state(cat: Catalog) -> None:
    """1 pending, 2 resolved, 3 done, 4 no_video, 5 not_found, 6 failed (download, URL kept), all priority 0."""
    cat.enqueue([1, 2, 3, 4, 5, 6], now=NOW)
    resolve(cat, 2)
    resolve(cat, 3)
    cat.record_video(video_row(3, downloaded_at=NOW), now=NOW)
    cat.mark_no_video(4, api_method="taobao.item_video", now=NOW)
    cat.mark_not_found(5, detail="isv.item-not-exist", api_method="taobao.item_video", now=NOW)
    resolve(cat, 6)
    cat.mark_failed(6, error_kind="truncated", error="short body", now=NOW)


# ------------------------------------------------------------------------------------------------ enqueue


def test_queue_order_is_priority_then_insertion_across_batches_and_calls(cat: Catalog, small_batches: int) -> None:
    assert cat.enqueue([50, 10, 40, 20, 30], now=NOW) == EnqueueResult(added=5)
    assert cat.enqueue([5, 99], priority=2, now=LATER) == EnqueueResult(added=2)
    assert cat.enqueue([7, 8, 9, 1], now=LATER) == EnqueueResult(added=4)
    assert cat.enqueue([60], priority=-1, now=LATER) == EnqueueResult(added=1)
    assert order(cat) == [5, 99, 50, 10, 40, 20, 30, 7, 8, 9, 1, 60]
    seqs = [row.seq for row in cat.queue_page(limit=100)]
    assert len(set(seqs)) == len(seqs)
    assert [row.seq for row in sorted(cat.queue_page(limit=100), key=lambda r: r.seq)] == sorted(seqs)


def test_reprioritising_raises_waiting_ids_and_keeps_their_place(cat: Catalog) -> None:
    one_of_each_state(cat)
    cat.enqueue([7, 8], priority=5, now=NOW)
    result = cat.enqueue([1, 2, 3, 4, 5, 6, 7, 8, 9], priority=5, now=LATER)
    assert result == EnqueueResult(added=1, reprioritised=3, already_queued=2, already_done=3)
    items = cat.items(range(1, 10))
    assert {n: items[n].priority for n in items} == {1: 5, 2: 5, 3: 0, 4: 0, 5: 0, 6: 5, 7: 5, 8: 5, 9: 5}
    assert items[1].updated_at == LATER and items[3].updated_at == NOW  # done ones untouched
    assert (items[6].state, items[6].error_kind) == (ItemState.FAILED, "truncated")  # only the priority moved
    # Raised ids keep their insertion order among their new peers: 1, 2, 6 were added before 7, 8, 9.
    assert order(cat, "pending", "resolved", "failed") == [1, 2, 6, 7, 8, 9]


def test_a_lower_or_equal_priority_leaves_queued_ids_alone(cat: Catalog) -> None:
    cat.enqueue([1, 2], priority=3, now=NOW)
    assert cat.enqueue([1, 2], priority=3, now=LATER) == EnqueueResult(already_queued=2)
    assert cat.enqueue([1, 2], priority=-7, now=LATER) == EnqueueResult(already_queued=2)
    assert {row.priority for row in cat.items([1, 2]).values()} == {3}
    assert {row.updated_at for row in cat.items([1, 2]).values()} == {NOW}


def test_duplicates_within_and_across_batches_are_counted_once_each(cat: Catalog, small_batches: int) -> None:
    one_of_each_state(cat)
    # Batches of 3: [10, 10, 11] [3, 3, 10] [11, 4, 1]
    result = cat.enqueue([10, 10, 11, 3, 3, 10, 11, 4, 1], now=LATER)
    assert result == EnqueueResult(added=2, already_queued=4, already_done=3)
    assert result.total == 9
    assert order(cat, "pending") == [1, 10, 11]


def test_enqueue_streams_its_input_batch_by_batch(
    cat: Catalog, catalog_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue_module, "ADD_BATCH", 100)

    other = create_catalog_engine(catalog_url)  # another connection pool: sees only what was committed

    def ids() -> Iterator[int]:
        for n in range(1, 251):
            if n == 201:  # two batches are in and committed before the third is even read
                with other.connect() as connection:
                    assert connection.execute(text("SELECT count(*) FROM items")).scalar() == 200
            yield n

    try:
        assert cat.enqueue(ids(), now=NOW).added == 250
    finally:
        other.dispose()


def test_concurrent_enqueues_give_distinct_increasing_seqs(cat: Catalog, small_batches: int) -> None:
    barrier = threading.Barrier(4)

    def work(k: int) -> EnqueueResult:
        barrier.wait()
        return cat.enqueue(range(k * 1000 + 1, k * 1000 + 31), now=NOW)

    with ThreadPoolExecutor(4) as pool:
        assert sum(r.added for r in pool.map(work, range(4))) == 120
    rows = cat.queue_page(limit=200)
    assert len({row.seq for row in rows}) == 120
    for k in range(4):  # each caller's ids stay in the order it gave them
        mine = [row.num_iid for row in rows if row.num_iid // 1000 == k]
        assert mine == list(range(k * 1000 + 1, k * 1000 + 31))


def _enqueue_in_a_process(url: str, k: int, start: Any) -> int:
    queue_module.ADD_BATCH = 3  # a fresh (spawned) interpreter: small batches, so the processes interleave
    with Catalog.open(url) as cat:
        start.wait()
        return cat.enqueue(range(k * 1000 + 1, k * 1000 + 31), now=NOW).added


def test_concurrent_enqueues_from_processes_give_distinct_increasing_seqs(cat: Catalog, catalog_url: str) -> None:
    context = multiprocessing.get_context("spawn")  # no engine or pool state inherited from this process
    with context.Manager() as manager, context.Pool(4) as pool:
        start = manager.Barrier(4)
        results = [pool.apply_async(_enqueue_in_a_process, (catalog_url, k, start)) for k in range(4)]
        assert sum(result.get(timeout=60) for result in results) == 120
    rows = cat.queue_page(limit=200)
    assert sorted(row.seq for row in rows) == list(range(1, 121))
    for k in range(4):
        mine = [row.num_iid for row in rows if row.num_iid // 1000 == k]
        assert mine == list(range(k * 1000 + 1, k * 1000 + 31))


def test_marks_and_record_video_of_unknown_ids_join_the_end_of_the_queue(cat: Catalog) -> None:
    cat.enqueue([1, 2], now=NOW)
    resolve(cat, 9)
    cat.record_video(video_row(8, downloaded_at=NOW), now=NOW)
    items = cat.items([1, 2, 8, 9])
    assert items[9].seq == 3 and items[8].seq == 4


@pytest.mark.parametrize(("bad", "error"), [(True, TypeError), ("1", TypeError), (2**31, ValueError)])
def test_enqueue_refuses_a_bad_priority(cat: Catalog, bad: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="priority"):
        cat.enqueue([1], priority=bad, now=NOW)


def test_add_items_still_adds_only_new_ids_and_never_reprioritises(cat: Catalog) -> None:
    cat.enqueue([1], priority=-5, now=NOW)
    assert cat.add_items([1, 2, 2], now=LATER) == 1
    assert cat.items([1, 2])[1].priority == -5
    assert order(cat) == [2, 1]


# ------------------------------------------------------------------------------------------------ reading


def test_queue_stats_counts_each_state_and_the_deferred(cat: Catalog) -> None:
    one_of_each_state(cat)
    cat.enqueue([7], now=NOW)
    cat.mark_deferred([1, 2, 3, 4, 6, 404], now=LATER)  # done (3) is skipped; 4 and 6 are set but not counted
    assert cat.queue_stats() == {
        "pending": 2,
        "resolved": 1,
        "done": 1,
        "no_video": 1,
        "not_found": 1,
        "not_visible": 0,
        "failed": 1,
        "deferred": 2,
        "total": 7,
    }
    items = cat.items([1, 3, 7])
    assert (items[1].deferred_at, items[3].deferred_at, items[7].deferred_at) == (LATER, None, None)


def test_every_recorded_outcome_clears_deferred_at(cat: Catalog) -> None:
    cat.enqueue([1, 2, 3, 4, 5], now=NOW)
    cat.mark_deferred([1, 2, 3, 4, 5], now=NOW)
    resolve(cat, 1, now=LATER)
    cat.mark_no_video(2, api_method="taobao.item_video", now=LATER)
    cat.mark_not_found(3, detail="gone", api_method="taobao.item_video", now=LATER)
    cat.mark_lookup_failed(4, error="timeout", now=LATER)
    cat.record_video(video_row(5, downloaded_at=NOW), now=LATER)
    assert {row.deferred_at for row in cat.items(range(1, 6)).values()} == {None}
    cat.mark_deferred([1], now=LATER)
    cat.mark_failed(1, error_kind="truncated", error="short", now=LATER)
    assert cat.items([1])[1].deferred_at is None


def test_next_lookups_and_awaiting_download_follow_queue_order(cat: Catalog) -> None:
    cat.enqueue([11, 12, 13, 14, 15, 16], now=NOW)
    cat.enqueue([20, 21], priority=1, now=NOW)
    for num_iid in (12, 15, 21):
        resolve(cat, num_iid)
    assert cat.next_lookups(3) == [20, 11, 13]
    assert cat.next_lookups(100) == [20, 11, 13, 14, 16]
    assert cat.next_lookups(0) == []
    assert cat.awaiting_download() == [21, 12, 15]
    assert cat.awaiting_download(2) == [21, 12]


def test_queue_page_filters_pages_and_checks_its_arguments(cat: Catalog) -> None:
    one_of_each_state(cat)
    assert order(cat) == [1, 2, 3, 4, 5, 6]
    assert [r.num_iid for r in cat.queue_page(limit=2, offset=3)] == [4, 5]
    assert order(cat, "failed", "done") == [3, 6]
    assert cat.queue_page(states=[]) == []
    with pytest.raises(ValueError):
        cat.queue_page(states=["bogus"])
    with pytest.raises(ValueError, match="limit"):
        cat.queue_page(limit=-1)


def test_the_daily_selection_uses_the_queue_index(cat: Catalog) -> None:
    query = "SELECT num_iid FROM items WHERE state = 'pending' ORDER BY priority DESC, seq LIMIT 5"
    if engine_of(cat).dialect.name == "sqlite":
        with engine_of(cat).connect() as connection:
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}").all()
        details = " ".join(row[-1] for row in plan)
        assert "ix_items_queue" in details and "TEMP B-TREE" not in details
        return
    # PostgreSQL plans by statistics: on a handful of rows it would rightly scan the table.
    cat.enqueue(range(1, 20_001), now=NOW)
    cat.enqueue(range(20_001, 20_101), priority=5, now=NOW)
    with engine_of(cat).begin() as connection:
        connection.exec_driver_sql("ANALYZE items")
        details = " ".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {query}"))
    assert "ix_items_queue" in details and "Sort" not in details


# ------------------------------------------------------------------------------------------------ remove, retry


def test_remove_items_keeps_what_has_a_video(cat: Catalog) -> None:
    one_of_each_state(cat)
    cat.record_video(video_row(7, downloaded_at=NOW), now=NOW)
    cat.mark_failed(7, error_kind="network", error="reset", now=LATER)  # a forced re-download that failed
    assert cat.remove_items([1, 2, 3, 4, 5, 6, 7, 404]) == RemoveResult(5, 2, 1, (404,))
    assert set(cat.items(range(1, 8))) == {3, 7}
    assert cat.video(3) is not None and cat.video(7) is not None
    assert cat.remove_items([]) == RemoveResult()
    gone = cat.remove_items([1, *range(1000, 1030), 1000])
    assert (gone.removed, gone.unknown, gone.unknown_ids) == (0, 31, (1, *range(1000, 1009)))


def test_retry_failed_puts_items_back_where_they_cost_least(cat: Catalog) -> None:
    cat.enqueue([1, 2, 3, 4], now=NOW)
    resolve(cat, 1)
    cat.mark_failed(1, error_kind="truncated", error="short", now=NOW)  # URL kept: download again, no call
    resolve(cat, 2)
    cat.mark_failed(2, error_kind="url_expired", error="403", now=NOW)  # URL cleared: look it up again
    cat.mark_lookup_failed(3, error="timeout", now=NOW)
    assert cat.retry_failed(now=LATER) == 3
    items = cat.items([1, 2, 3, 4])
    assert [items[n].state for n in (1, 2, 3, 4)] == [
        ItemState.RESOLVED,
        ItemState.PENDING,
        ItemState.PENDING,
        ItemState.PENDING,
    ]
    assert {(items[n].last_error, items[n].error_kind, items[n].updated_at) for n in (1, 2, 3)} == {(None, None, LATER)}
    assert items[1].video_url is not None and items[1].attempts == 1
    assert cat.retry_failed(now=LATER) == 0


# ------------------------------------------------------------------------------------------------ migration 0002


_ITEMS_0001 = table(
    "items",
    column("num_iid", BigInteger()),
    column("added_at", UtcDateTime()),
    column("updated_at", UtcDateTime()),
    column("state", String()),
)


def _catalog_at_0001(url: str) -> None:
    command.upgrade(alembic_config(url), "0001")
    day = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        (30, day + timedelta(days=2), "pending"),
        (10, day, "done"),
        (25, day + timedelta(days=1), "failed"),
        (20, day + timedelta(days=1), "resolved"),  # same added_at as 25: num_iid breaks the tie
    ]
    engine = create_catalog_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(_ITEMS_0001),
                [{"num_iid": n, "added_at": at, "updated_at": at, "state": state} for n, at, state in rows],
            )
    finally:
        engine.dispose()


def _state_check(url: str) -> str:
    """The CHECK on items.state as the database keeps it."""
    engine = create_catalog_engine(url)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                query = "SELECT sql FROM sqlite_master WHERE name = 'items'"
            else:
                query = "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'ck_items_state'"
            return str(connection.exec_driver_sql(query).scalar())
    finally:
        engine.dispose()


def test_migration_0002_backfills_seq_in_added_order(catalog_url: str) -> None:
    _catalog_at_0001(catalog_url)
    with Catalog.open(catalog_url) as cat:
        assert current_revision(engine_of(cat)) == head_revision()
        items = cat.items([10, 20, 25, 30])
        assert {n: items[n].seq for n in items} == {10: 1, 20: 2, 25: 3, 30: 4}
        assert {row.deferred_at for row in items.values()} == {None}
        cat.enqueue([40], now=NOW)
        assert cat.items([40])[40].seq == 5
        with engine_of(cat).connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            assert compare_metadata(context, Base.metadata) == []
            names = {index["name"] for index in inspect(connection).get_indexes("items")}
            assert {"ix_items_queue", "ix_items_seq"} <= names
        checked = "CHECK constraint failed|violates check constraint"  # SQLite's words, PostgreSQL's
        with pytest.raises(IntegrityError, match=checked), engine_of(cat).begin() as connection:
            connection.execute(text("UPDATE items SET state = 'bogus' WHERE num_iid = 10"))
    check = _state_check(catalog_url)
    if catalog_url.startswith("sqlite"):
        assert "CONSTRAINT ck_items_state CHECK (state = 'pending' OR state = 'resolved' OR" in check
    else:
        assert "((state)::text = 'pending'::text) OR ((state)::text = 'resolved'::text) OR" in check


def test_migration_0002_downgrades_and_upgrades_again(catalog_url: str) -> None:
    _catalog_at_0001(catalog_url)
    config = alembic_config(catalog_url)
    command.upgrade(config, "0002")
    command.downgrade(config, "0001")
    engine = create_catalog_engine(catalog_url)
    try:
        with engine.connect() as connection:
            columns = {column["name"] for column in inspect(connection).get_columns("items")}
            indexes = {index["name"] for index in inspect(connection).get_indexes("items")}
            assert connection.execute(text("SELECT count(*) FROM items")).scalar() == 4
    finally:
        engine.dispose()
    assert "seq" not in columns and "deferred_at" not in columns
    check = _state_check(catalog_url)
    if catalog_url.startswith("sqlite"):
        assert "CONSTRAINT ck_items_state CHECK (state IN ('pending', 'resolved', 'no_video'" in check
    else:
        assert "(state)::text = ANY ((ARRAY['pending'::character varying, 'resolved'::character varying" in check
    assert indexes == {"ix_items_state_priority_added_at"}
    with Catalog.open(catalog_url) as cat:
        assert [row.num_iid for row in cat.queue_page()] == [10, 20, 25, 30]


def test_migration_0002_renders_for_postgresql() -> None:
    config = alembic_config("postgresql://user@localhost/catalog")
    config.output_buffer = io.StringIO()
    command.upgrade(config, "0001:0002", sql=True)
    sql = config.output_buffer.getvalue()
    assert "ALTER TABLE items ADD COLUMN seq BIGINT" in sql
    assert "UPDATE items SET seq=(SELECT count(*)" in sql
    assert "ALTER TABLE items ALTER COLUMN seq SET NOT NULL" in sql
    assert "CREATE INDEX ix_items_queue ON items (state, priority DESC, seq)" in sql
    assert "CREATE UNIQUE INDEX ix_items_seq ON items (seq)" in sql
    assert "ADD CONSTRAINT ck_items_state CHECK (state = 'pending' OR state = 'resolved' OR" in sql


# ------------------------------------------------------------------------------------------------ the CLI


@pytest.fixture
def settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, catalog_url: str) -> Path:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TAOBAO_VIDEO_CONFIG", raising=False)
    path = tmp_path / "settings.toml"
    path.write_text(f'[database]\nurl = "{catalog_url}"\n')
    return path


def run(
    args: list[str],
    settings: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    stdin: str = "",
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    with pytest.raises(SystemExit) as done:
        main(["--config", str(settings), *args])
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def opened(settings: Path) -> Catalog:
    return Catalog.open(tomllib.loads(settings.read_text())["database"]["url"])


def test_cli_add_from_a_file_reports_bad_lines_by_number(
    settings_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = settings_file.parent / "ids.txt"
    ids.write_text(
        "# my list\n520813250866\nnot-an-id\n\nhttps://item.taobao.com/item.htm?id=601234567890\n520813250866\n-5\n"
    )
    code, out, err = run(["queue", "add", "--file", str(ids)], settings_file, capsys, monkeypatch)
    assert code == 2
    assert out == "added 2, reprioritised 0, already queued 1, already done 0 (2 lines not ids)\n"
    assert f"taobao-video: skipping {ids}:3: not a number or an item URL: 'not-an-id'" in err
    assert f"taobao-video: skipping {ids}:7: not a positive number: '-5'" in err
    with opened(settings_file) as cat:
        assert [row.num_iid for row in cat.queue_page()] == [520813250866, 601234567890]


def test_cli_add_from_stdin_and_arguments_with_a_priority(
    settings_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(["queue", "add", "-", "7", "8"], settings_file, capsys, monkeypatch, stdin="9\n10\n7\n")
    assert (code, out) == (0, "added 4, reprioritised 0, already queued 1, already done 0 (0 lines not ids)\n")
    code, out, _ = run(["queue", "add", "--priority", "3", "10"], settings_file, capsys, monkeypatch)
    assert (code, out) == (0, "added 0, reprioritised 1, already queued 0, already done 0 (0 lines not ids)\n")
    with opened(settings_file) as cat:
        assert [row.num_iid for row in cat.queue_page()] == [10, 7, 8, 9]


def test_cli_add_without_any_id_is_a_usage_error(
    settings_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(["queue", "add"], settings_file, capsys, monkeypatch)
    assert code == 2 and "give ids as arguments" in err
    code, out, err = run(["queue", "add", "-"], settings_file, capsys, monkeypatch, stdin="# nothing\nabc\n")
    assert code == 2 and "(1 lines not ids)" in out and "no valid ids to queue" in err
    code, _, err = run(["queue", "add", "--file", "missing.txt"], settings_file, capsys, monkeypatch)
    assert code == 2 and "missing.txt: no such file" in err


def test_cli_list_and_stats(
    settings_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with opened(settings_file) as cat:
        one_of_each_state(cat)
        cat.mark_failed(6, error_kind="truncated", error="short body\n" + "x" * 200, now=NOW)
        cat.mark_deferred([1], now=NOW)
    code, out, _ = run(
        ["queue", "list", "--json", "--state", "failed", "--state", "pending"], settings_file, capsys, monkeypatch
    )
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [(r["num_iid"], r["state"]) for r in records] == [(1, "pending"), (6, "failed")]
    assert records[0]["deferred_at"] == NOW.isoformat() and records[0]["seq"] == 1
    code, out, _ = run(["queue", "list", "--limit", "2", "--offset", "4"], settings_file, capsys, monkeypatch)
    lines = out.splitlines()
    assert lines[0].split() == [
        "num_iid",
        "state",
        "priority",
        "added",
        "(UTC)",
        "lookups",
        "attempts",
        "last",
        "error",
    ]
    assert lines[1].split()[:2] == ["5", "not_found"]
    assert lines[2].split()[:7] == ["6", "failed", "0", "2026-11-22", "04:00", "1", "2"]
    assert lines[2].endswith("…") and "\n" not in lines[2] and len(lines) == 3
    code, out, _ = run(["queue", "stats", "--json"], settings_file, capsys, monkeypatch)
    assert json.loads(out) == {
        "pending": 1,
        "resolved": 1,
        "done": 1,
        "no_video": 1,
        "not_found": 1,
        "not_visible": 0,
        "failed": 1,
        "deferred": 1,
        "total": 6,
    }
    code, out, _ = run(["queue", "stats"], settings_file, capsys, monkeypatch)
    assert out.splitlines()[0].split() == ["pending", "1"] and out.splitlines()[-1].split() == ["total", "6"]
    code, out, err = run(["queue", "list", "--state", "bogus"], settings_file, capsys, monkeypatch)
    assert code == 2 and "bogus" in err


def test_cli_remove_and_retry_failed(
    settings_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with opened(settings_file) as cat:
        one_of_each_state(cat)
    code, out, _ = run(["queue", "retry-failed"], settings_file, capsys, monkeypatch)
    assert (code, out) == (0, "put back 1 failed items\n")
    code, out, _ = run(["queue", "remove", "1", "3", "x"], settings_file, capsys, monkeypatch)
    assert code == 2
    assert out.splitlines() == [
        "removed 1, kept 1 done, 0 not in the queue; 1 lines not ids",
        "Done items were kept: remove the videos with your own tools; the catalog keeps their rows.",
    ]
    with opened(settings_file) as cat:
        assert cat.items([6])[6].state is ItemState.RESOLVED
        assert set(cat.items(range(1, 7))) == {2, 3, 4, 5, 6}


def test_cli_remove_names_ids_not_in_the_queue(
    settings_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with opened(settings_file) as cat:
        one_of_each_state(cat)
    code, out, _ = run(["queue", "remove", "99999"], settings_file, capsys, monkeypatch)
    assert (code, out) == (0, "removed 0, kept 0 done, 1 not in the queue (99999)\n")
    code, out, _ = run(["queue", "remove", *map(str, range(500, 520))], settings_file, capsys, monkeypatch)
    shown = ", ".join(map(str, range(500, 510)))
    assert out == f"removed 0, kept 0 done, 20 not in the queue ({shown} and 10 more)\n"


def test_the_group_runs_on_its_own_with_clirunner(settings_file: Path) -> None:
    result = CliRunner().invoke(queue, ["add", "1", "2"], obj={"config_path": str(settings_file)})
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(queue, ["stats", "--json"], obj={"config_path": str(settings_file)})
    assert json.loads(result.output)["pending"] == 2


def test_cli_state_names_are_the_catalogs() -> None:
    assert set(STATES) == {state.value for state in ItemState} and len(STATES) == len(ItemState)


def test_cli_adds_200k_ids_in_a_few_seconds(
    settings_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = settings_file.parent / "ids.txt"
    # A user's list is in no particular order: ids spread over the range, like real num_iids.
    ids.write_text("".join(f"{500_000_000_000 + (n * 7_919_993) % 100_000_000_000}\n" for n in range(200_000)))
    started = time.perf_counter()
    code, out, _ = run(["queue", "add", "--file", str(ids)], settings_file, capsys, monkeypatch)
    elapsed = time.perf_counter() - started
    assert (code, out) == (0, "added 200000, reprioritised 0, already queued 0, already done 0 (0 lines not ids)\n")
    assert elapsed < 10, f"queue add of 200,000 ids took {elapsed:.1f} s"
    with opened(settings_file) as cat:
        assert cat.queue_stats()["pending"] == 200_000
        first = [500_000_000_000 + (n * 7_919_993) % 100_000_000_000 for n in range(3)]
        assert cat.next_lookups(3) == first


def test_item_rows_carry_seq_and_deferred_at(cat: Catalog) -> None:
    cat.enqueue([5], now=NOW)
    row = cat.items([5])[5]
    assert replace(row, seq=1, deferred_at=None) == row
