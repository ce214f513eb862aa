"""The catalog: migrations, SQLite connection settings, every repository method and state transition."""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from helpers.rows import video_row
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, inspect, text
from sqlalchemy.exc import IntegrityError

from taobao_video.errors import ConfigError
from taobao_video.model import ItemState
from taobao_video.store.catalog import Catalog, engine_of
from taobao_video.store.migrate import (
    SCHEMA_REVISION,
    alembic_config,
    current_revision,
    head_revision,
    stored_revision,
    upgrade,
)
from taobao_video.store.records import ItemRow
from taobao_video.store.schema import Base
from taobao_video.top.client import CallRecord

NOW = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'catalog.sqlite3'}"


def resolve(cat: Catalog, num_iid: int, *, now: datetime = NOW) -> None:
    cat.mark_resolved(
        num_iid,
        video_url=f"https://cloud.video.taobao.com/play/{num_iid}.mp4",
        cover_url="https://img.alicdn.com/c.jpg",
        api_duration=12.0,
        width=720,
        height=1280,
        api_method="taobao.item_video",
        now=now,
    )


# ------------------------------------------------------------------------------------------------ migrations


def test_open_creates_the_folder_the_file_and_the_schema(tmp_path: Path) -> None:
    file = tmp_path / "deep" / "er" / "catalog.sqlite3"
    with Catalog.open(f"sqlite:///{file}") as cat:
        assert file.is_file()
        assert set(inspect(engine_of(cat)).get_table_names()) == {
            "alembic_version",
            "videos",
            "items",
            "calls",
            "quota_days",
            "video_totals",
            "video_history",
        }
        assert current_revision(engine_of(cat)) == head_revision()


def test_reopen_is_a_no_op(catalog_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with Catalog.open(catalog_url) as cat:
        cat.add_items([1, 2], now=NOW)

    def must_not_run(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("upgrade ran on an up-to-date catalog")

    monkeypatch.setattr("alembic.command.upgrade", must_not_run)
    with Catalog.open(catalog_url) as cat:
        assert set(cat.items([1, 2])) == {1, 2}
        assert current_revision(engine_of(cat)) == head_revision()


def test_upgrade_returns_the_head_and_is_idempotent(catalog_url: str) -> None:
    head = head_revision()
    assert head == SCHEMA_REVISION == "0008"
    assert upgrade(catalog_url) == head
    assert upgrade(catalog_url) == head
    with Catalog.open(catalog_url, migrate=False) as cat:
        assert current_revision(engine_of(cat)) == head


def test_stored_revision_reads_the_schema_version_without_alembic(
    catalog_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Catalog.open(catalog_url, migrate=False) as cat:
        assert stored_revision(engine_of(cat)) is None  # an empty database: no alembic_version table yet
    upgrade(catalog_url)

    def must_not_run(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("stored_revision asked Alembic")

    monkeypatch.setattr("alembic.runtime.migration.MigrationContext.configure", must_not_run)
    with Catalog.open(catalog_url, migrate=False) as cat:
        assert stored_revision(engine_of(cat)) == SCHEMA_REVISION


def test_engine_of_is_the_catalogs_engine_and_passes_an_engine_through(cat: Catalog) -> None:
    engine = engine_of(cat)
    assert isinstance(engine, Engine) and engine_of(engine) is engine
    assert not hasattr(cat, "engine"), "the engine stays private to store/"


def test_upgrade_refuses_a_catalog_from_a_newer_version(catalog_url: str) -> None:
    with Catalog.open(catalog_url) as cat, engine_of(cat).begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(ConfigError, match="newer taobao-video"):
        Catalog.open(catalog_url)


def test_concurrent_first_opens_migrate_once(catalog_url: str) -> None:
    barrier = threading.Barrier(6)

    def open_it(_: int) -> str | None:
        barrier.wait()
        with Catalog.open(catalog_url) as cat:
            return current_revision(engine_of(cat))

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(open_it, range(6))) == [head_revision()] * 6


def test_the_migrations_render_for_postgresql() -> None:
    config = alembic_config("postgresql://user@localhost/catalog")
    config.output_buffer = io.StringIO()
    command.upgrade(config, "head", sql=True)  # offline: SQL text only, no server needed
    sql = config.output_buffer.getvalue()
    assert "id BIGSERIAL NOT NULL" in sql
    assert "downloaded_at TIMESTAMP WITH TIME ZONE NOT NULL" in sql
    assert "CONSTRAINT ck_items_state CHECK" in sql


def test_the_migrated_schema_equals_the_models(cat: Catalog) -> None:
    with engine_of(cat).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        assert compare_metadata(context, Base.metadata) == []


def test_the_migrations_ship_in_the_package() -> None:
    folder = resources.files("taobao_video.store") / "migrations"
    for name in ("env.py", "script.py.mako", "versions/0001_initial.py", "__init__.py", "versions/__init__.py"):
        assert (folder / name).is_file(), name
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"taobao_video.store.migrations" = ["script.py.mako"]' in pyproject


def test_items_state_is_checked(cat: Catalog) -> None:
    checked = "CHECK constraint failed|violates check constraint"  # SQLite's words, PostgreSQL's
    with pytest.raises(IntegrityError, match=checked), engine_of(cat).begin() as connection:
        connection.execute(
            text(
                "INSERT INTO items (num_iid, state, added_at, updated_at, seq) "
                "VALUES (1, 'bogus', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1)"
            )
        )


# ------------------------------------------------------------------------------------------------ connections


def _pragmas(cat: Catalog) -> dict[str, Any]:
    with engine_of(cat).connect() as connection:
        return {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "busy_timeout", "synchronous", "foreign_keys")
        }


def test_sqlite_pragmas_are_set_on_every_connection(sqlite_url: str) -> None:
    expected = {"journal_mode": "wal", "busy_timeout": 30_000, "synchronous": 1, "foreign_keys": 1}
    with Catalog.open(sqlite_url) as cat:
        assert _pragmas(cat) == expected
        with ThreadPoolExecutor(4) as pool:  # other threads, other pooled connections
            assert list(pool.map(lambda _: _pragmas(cat), range(8))) == [expected] * 8


def test_an_in_memory_catalog_works_across_threads() -> None:
    with Catalog.open("sqlite://") as cat:
        cat.add_items([5], now=NOW)
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(cat.item, 5).result() is not None


def test_many_threads_write_at_once(cat: Catalog) -> None:
    ids = list(range(1, 201))

    def work(num_iid: int) -> None:
        cat.add_items(ids[:50], now=NOW)  # the same ids from every thread: races on insert-if-absent
        resolve(cat, num_iid)
        cat.record_video(video_row(num_iid), now=LATER)

    with ThreadPoolExecutor(64) as pool:
        list(pool.map(work, ids))
    assert cat.counts_by_state()["done"] == 200
    assert len(cat.videos(ids)) == 200


# ------------------------------------------------------------------------------------------------ items


def test_add_items_inserts_new_ids_as_pending(cat: Catalog) -> None:
    assert cat.add_items([3, 1, 2, 3, 1], priority=5, now=NOW) == 3
    assert cat.add_items([2, 4], now=LATER) == 1
    item = cat.item(1)
    assert item == ItemRow(
        num_iid=1,
        state=ItemState.PENDING,
        video_url=None,
        cover_url=None,
        api_duration=None,
        width=None,
        height=None,
        api_method=None,
        attempts=0,
        lookups=0,
        last_error=None,
        error_kind=None,
        priority=5,
        added_at=NOW,
        updated_at=NOW,
        checked_at=None,
        seq=2,
        deferred_at=None,
    )
    assert cat.item(2) is not None and cat.item(2).added_at == NOW  # type: ignore[union-attr]
    assert cat.item(4) is not None and cat.item(4).priority == 0  # type: ignore[union-attr]
    assert cat.item(99) is None


def test_add_items_200k_ids_quickly_from_a_generator(cat: Catalog) -> None:
    started = time.perf_counter()
    assert cat.add_items((500_000_000_000 + i % 200_000 for i in range(400_000)), now=NOW) == 200_000
    assert cat.add_items(range(500_000_000_000, 500_000_000_000 + 200_001), now=NOW) == 1
    elapsed = time.perf_counter() - started
    assert cat.counts_by_state()["pending"] == 200_001
    assert elapsed < 10, f"add_items took {elapsed:.1f} s"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.lists(st.integers(1, 3000)), second=st.lists(st.integers(1, 3000)))
def test_add_items_counts_exactly_the_new_ids(tmp_path: Path, first: list[int], second: list[int]) -> None:
    with Catalog.open("sqlite://") as cat:
        assert cat.add_items(first, now=NOW) == len(set(first))
        assert cat.add_items(second, now=NOW) == len(set(second) - set(first))
        assert set(cat.items(range(1, 3001))) == set(first) | set(second)


@pytest.mark.parametrize("bad", [0, -1, 2**63, True, "12", 1.5])
def test_add_items_rejects_what_is_not_an_id(cat: Catalog, bad: Any) -> None:
    with pytest.raises(ValueError, match="num_iid"):
        cat.add_items([1, bad], now=NOW)


def test_add_items_rejects_a_priority_that_is_not_an_integer(cat: Catalog) -> None:
    with pytest.raises(TypeError, match="priority"):
        cat.add_items([1], priority="1; DROP TABLE items", now=NOW)  # type: ignore[arg-type]


def test_items_reads_in_chunks_and_skips_unknown_ids(cat: Catalog) -> None:
    cat.add_items(range(1, 2501), now=NOW)
    found = cat.items([*range(1, 2501), 9_999_999, 1, 2])
    assert len(found) == 2500
    assert all(isinstance(row, ItemRow) and row.num_iid == key for key, row in found.items())
    assert cat.items([]) == {}


def test_naive_times_are_refused(cat: Catalog) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        cat.add_items([1], now=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        cat.mark_no_video(1, api_method="taobao.item_video", now=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        cat.record_video(video_row(downloaded_at=datetime(2026, 1, 1)), now=NOW)


@settings(max_examples=40, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.sampled_from([UTC])
    ),
    offset_minutes=st.integers(-14 * 60, 14 * 60),
)
def test_times_round_trip_as_aware_utc(moment: datetime, offset_minutes: int) -> None:
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    with Catalog.open("sqlite://") as cat:
        cat.add_items([7], now=local)
        cat.record_video(video_row(7, downloaded_at=local), now=local)
        item, video = cat.item(7), cat.video(7)
    assert item is not None and video is not None
    for value in (item.added_at, item.updated_at, video.downloaded_at):
        assert value == moment and value.tzinfo is UTC


# ------------------------------------------------------------------------------------------------ transitions


def test_mark_resolved(cat: Catalog) -> None:
    cat.add_items([1], now=NOW)
    cat.mark_failed(1, error_kind="truncated", error="short body", now=NOW)
    resolve(cat, 1, now=LATER)
    item = cat.item(1)
    assert item is not None
    assert item.state is ItemState.RESOLVED
    assert (item.video_url, item.cover_url, item.api_duration) == (
        "https://cloud.video.taobao.com/play/1.mp4",
        "https://img.alicdn.com/c.jpg",
        12.0,
    )
    assert (item.width, item.height, item.api_method) == (720, 1280, "taobao.item_video")
    assert (item.lookups, item.attempts, item.checked_at, item.updated_at) == (1, 1, LATER, LATER)
    assert (item.last_error, item.error_kind) == (None, None)
    assert item.added_at == NOW


def test_mark_no_video(cat: Catalog) -> None:
    cat.add_items([1], now=NOW)
    resolve(cat, 1)
    cat.mark_no_video(1, api_method="taobao.item.get", now=LATER)
    item = cat.item(1)
    assert item is not None
    assert (item.state, item.video_url, item.api_method) == (ItemState.NO_VIDEO, None, "taobao.item.get")
    assert (item.lookups, item.checked_at) == (2, LATER)


def test_mark_not_found(cat: Catalog) -> None:
    cat.add_items([1], now=NOW)
    cat.mark_not_found(1, detail="isv.item-not-exist", api_method="taobao.item_video", now=LATER)
    item = cat.item(1)
    assert item is not None
    assert (item.state, item.last_error, item.lookups, item.checked_at) == (
        ItemState.NOT_FOUND,
        "isv.item-not-exist",
        1,
        LATER,
    )


def test_mark_failed_keeps_the_url_for_a_retry_without_a_call(cat: Catalog) -> None:
    cat.add_items([1], now=NOW)
    resolve(cat, 1)
    cat.mark_failed(1, error_kind="not_mp4", error="HTML page", now=LATER)
    cat.mark_failed(1, error_kind="truncated", error="x" * 5000, now=LATER)
    item = cat.item(1)
    assert item is not None
    assert (item.state, item.error_kind, item.attempts, item.lookups) == (ItemState.FAILED, "truncated", 2, 1)
    assert item.video_url == "https://cloud.video.taobao.com/play/1.mp4"
    assert item.last_error is not None and len(item.last_error) == 2000
    assert item.checked_at == NOW  # a download failure is not a lookup


def test_url_expired_clears_the_url_so_the_planner_asks_again(cat: Catalog) -> None:
    cat.add_items([1], now=NOW)
    resolve(cat, 1)
    cat.mark_failed(1, error_kind="url_expired", error="403 from the CDN", now=LATER)
    item = cat.item(1)
    assert item is not None
    assert (item.state, item.error_kind, item.video_url, item.attempts) == (ItemState.FAILED, "url_expired", None, 1)
    assert item.cover_url == "https://img.alicdn.com/c.jpg"


def test_mark_lookup_failed(cat: Catalog) -> None:
    cat.add_items([1], now=NOW)
    cat.mark_lookup_failed(1, error="TOP error 15 [isp.remote-service-timeout]", now=LATER)
    item = cat.item(1)
    assert item is not None
    assert (item.state, item.error_kind, item.lookups, item.attempts, item.checked_at) == (
        ItemState.FAILED,
        "lookup",
        1,
        0,
        LATER,
    )
    assert item.last_error == "TOP error 15 [isp.remote-service-timeout]"


def test_marking_an_id_never_added_adds_it(cat: Catalog) -> None:
    resolve(cat, 42, now=LATER)
    cat.mark_failed(43, error_kind="truncated", error="short", now=LATER)
    first, second = cat.item(42), cat.item(43)
    assert first is not None and (first.state, first.lookups, first.added_at) == (ItemState.RESOLVED, 1, LATER)
    assert second is not None and (second.state, second.attempts, second.lookups) == (ItemState.FAILED, 1, 0)


def test_counts_by_state_lists_every_state(cat: Catalog) -> None:
    assert cat.counts_by_state() == dict.fromkeys(ItemState, 0)
    cat.add_items([1, 2, 3, 4], now=NOW)
    resolve(cat, 1)
    cat.mark_no_video(2, api_method="taobao.item_video", now=NOW)
    cat.record_video(video_row(3), now=NOW)
    assert cat.counts_by_state() == {
        "pending": 1,
        "resolved": 1,
        "no_video": 1,
        "not_found": 0,
        "not_visible": 0,
        "done": 1,
        "failed": 0,
    }


# ------------------------------------------------------------------------------------------------ videos


def test_record_video_stores_the_row_and_marks_the_item_done(cat: Catalog) -> None:
    cat.add_items([101], now=NOW)
    resolve(cat, 101)
    cat.mark_failed(101, error_kind="truncated", error="short", now=NOW)
    cat.record_video(video_row(101), now=LATER)
    assert cat.video(101) == video_row(101)
    item = cat.item(101)
    assert item is not None
    assert (item.state, item.error_kind, item.last_error, item.updated_at) == (ItemState.DONE, None, None, LATER)
    assert cat.videos([101, 102]) == {101: video_row(101)}
    assert cat.video(102) is None


def test_record_videos_writes_a_batch_in_one_transaction(cat: Catalog) -> None:
    cat.add_items([101, 102], now=NOW)
    resolve(cat, 101)
    cat.record_video(video_row(102, sha256="00" * 32), now=NOW)  # replaced by the batch
    commits: list[object] = []
    engine, count = engine_of(cat), commits.append
    event.listen(engine, "commit", count)
    rows = [video_row(101), video_row(102), video_row(103)]
    cat.record_videos(rows, now=LATER)
    event.remove(engine, "commit", count)
    assert len(commits) == 1
    assert cat.videos([101, 102, 103]) == {row.num_iid: row for row in rows}
    states = {num_iid: item.state for num_iid, item in cat.items([101, 102, 103]).items()}
    assert states == dict.fromkeys([101, 102, 103], ItemState.DONE)
    cat.record_videos([], now=LATER)
    with pytest.raises(ValueError, match="distinct"):
        cat.record_videos([video_row(104), video_row(104)], now=LATER)
    assert cat.video(104) is None


def test_record_videos_is_all_or_nothing(cat: Catalog) -> None:
    cat.record_video(video_row(201), now=NOW)
    newer = video_row(201, sha256="cd" * 32)
    bad = video_row(202, sha256=None)  # type: ignore[arg-type]  # NOT NULL: fails inside the transaction
    with pytest.raises(IntegrityError):
        cat.record_videos([newer, bad], now=LATER)
    assert cat.videos([201, 202]) == {201: video_row(201)}  # the batch's DELETE was rolled back too
    with pytest.raises(ValueError):  # a naive time is refused before anything is written
        cat.record_videos([video_row(203, downloaded_at=datetime(2026, 1, 1))], now=LATER)


def test_video_ids_after_pages_through_the_videos_in_id_order(cat: Catalog) -> None:
    ids = [9, 3, 12, 5, 7]
    for num_iid in ids:
        cat.record_video(video_row(num_iid), now=NOW)
    cat.add_items([4, 6], now=NOW)  # items without a video are not videos
    assert cat.video_ids_after(0, limit=2) == [3, 5]
    assert cat.video_ids_after(5, limit=2) == [7, 9]
    assert cat.video_ids_after(9, limit=2) == [12]
    assert cat.video_ids_after(12, limit=2) == []
    assert cat.video_ids_after(0, limit=100) == sorted(ids)
    assert cat.video_ids_after(0, limit=0) == []
    with pytest.raises(ValueError, match="limit"):
        cat.video_ids_after(0, limit=-1)


def test_record_video_replaces_an_earlier_row(cat: Catalog) -> None:
    cat.record_video(video_row(101), now=NOW)
    newer = video_row(101, video_path="data/videos/again.mp4", sha256="cd" * 32, duration=None, cover_url=None)
    cat.record_video(newer, now=LATER)
    assert cat.video(101) == newer
    with engine_of(cat).connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM videos")).scalar() == 1


def test_record_video_for_an_unknown_id_adds_the_item_done(cat: Catalog) -> None:
    cat.record_video(video_row(7), now=LATER)
    item = cat.item(7)
    assert item is not None
    assert (item.state, item.video_url, item.api_method, item.added_at) == (
        ItemState.DONE,
        "https://cloud.video.taobao.com/play/7.mp4",
        "taobao.item_video",
        LATER,
    )


def test_record_video_is_one_transaction(cat: Catalog) -> None:
    cat.add_items([101], now=NOW)
    resolve(cat, 101)

    def fail_on_item_update(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("UPDATE items"):
            raise RuntimeError("crash between the two writes")

    event.listen(engine_of(cat), "before_cursor_execute", fail_on_item_update)
    try:
        with pytest.raises(RuntimeError, match="crash"):
            cat.record_video(video_row(101), now=LATER)
    finally:
        event.remove(engine_of(cat), "before_cursor_execute", fail_on_item_update)
    assert cat.video(101) is None
    item = cat.item(101)
    assert item is not None and item.state is ItemState.RESOLVED


# ------------------------------------------------------------------------------------------------ call log


def test_log_call_and_call_count(cat: Catalog) -> None:
    at = datetime(2026, 11, 22, 12, 0, tzinfo=timezone(timedelta(hours=8)))
    cat.log_call(CallRecord("taobao.item_video", 101, "ok", "req-1", 0.1234, at), app_key="A", quota_day="2026-11-22")
    cat.log_call(CallRecord("taobao.item_video", None, "transport", "", 1.0, at), app_key="A", quota_day="2026-11-23")
    cat.log_call(CallRecord("taobao.item.get", 5, "error:15", "r", 0.0, at), app_key="B", quota_day="2026-11-22")
    assert cat.call_count() == 3
    assert cat.call_count(app_key="A") == 2
    assert cat.call_count(day="2026-11-22") == 2
    assert cat.call_count(app_key="A", day="2026-11-23") == 1
    assert cat.call_count(app_key="C") == 0
    cat.log_call(CallRecord("taobao.item_video", 101, "unsent", "", 0.0, at), app_key="A", quota_day="2026-11-22")
    assert cat.call_count() == 3 and cat.call_count(app_key="A", day="2026-11-22") == 1  # never left: not a call
    with engine_of(cat).connect() as connection:
        first = connection.execute(text("SELECT * FROM calls ORDER BY id")).mappings().first()
    assert first is not None
    assert (first["id"], first["method"], first["num_iid"], first["outcome"]) == (1, "taobao.item_video", 101, "ok")
    assert (first["request_id"], first["elapsed_ms"]) == ("req-1", 123)
    if engine_of(cat).dialect.name == "sqlite":  # no time zones there: UTC, stored naive
        assert first["at"] == "2026-11-22 04:00:00.000000"
    else:
        assert first["at"] == NOW


def test_log_call_from_many_threads(cat: Catalog) -> None:
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        barrier.wait()
        for i in range(25):
            record = CallRecord("taobao.item_video", n * 100 + i, "ok", "", 0.01, NOW)
            cat.log_call(record, app_key="A", quota_day="2026-11-22")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    assert cat.call_count(app_key="A", day="2026-11-22") == 200
