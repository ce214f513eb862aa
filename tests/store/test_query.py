"""The catalog's query library: filters, order and paging, from_params, show, stats and their running totals,
verify with --fix, read-only SQL, the output formats and atomic export. On SQLite and PostgreSQL where the
database matters (tests/conftest.py ``catalog_url``)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from helpers.catalog import SHANGHAI, T0, VIDEOS, build_known, video_row
from helpers.harvest import harvest, log_in, opened, sandbox_settings
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

import taobao_video.store.report as report_module
from conftest import make_sandbox
from taobao_video.cli import catalog as catalog_cli
from taobao_video.cli import queue as queue_cli
from taobao_video.cli.formats import write_csv, write_json, write_jsonl, write_mapping
from taobao_video.fsutil import atomic_text_file
from taobao_video.jobs.verify import check_file, verify
from taobao_video.model import ItemState
from taobao_video.store.catalog import Catalog, engine_of
from taobao_video.store.filters import SORT_KEYS, STATES, VIDEO_COLUMNS, QueryError, VideoQuery, parse_moment
from taobao_video.store.query import count_rows, jsonable, list_rows, prefix_ranges
from taobao_video.store.readonly_sql import SqlError, run
from taobao_video.store.report import day_bounds, show, stats
from taobao_video.store.schema import Video, VideoTotal
from taobao_video.top.client import CallRecord


@pytest.fixture
def known(catalog_url: str, tmp_path: Path) -> Iterator[Catalog]:
    with Catalog.open(catalog_url) as cat:
        build_known(cat, tmp_path)
        yield cat


def ids_of(cat: Catalog, query: VideoQuery, base: Path) -> list[int]:
    return [row["num_iid"] for row in list_rows(cat, query, base_dir=base)]


# ------------------------------------------------------------------------------------------------ listing


def test_the_plain_listing_is_the_videos_columns_in_id_order(known: Catalog, tmp_path: Path) -> None:
    rows = list_rows(known, VideoQuery(), base_dir=tmp_path)
    assert [row["num_iid"] for row in rows] == sorted(spec[0] for spec in VIDEOS)
    assert all(tuple(row) == VIDEO_COLUMNS for row in rows)
    first = rows[0]
    assert first == {**video_row(*VIDEOS[-1]).__dict__}
    assert first["downloaded_at"].tzinfo is not None and first["downloaded_at"].utcoffset() == timedelta(0)


def test_duration_filters_are_inclusive_and_skip_unknown(known: Catalog, tmp_path: Path) -> None:
    assert ids_of(known, VideoQuery(min_duration=10, max_duration=30), tmp_path) == [
        52,
        520000000002,
        520000000003,
        530000000004,
    ]
    assert ids_of(known, VideoQuery(min_duration=61), tmp_path) == [610000000006]
    assert ids_of(known, VideoQuery(max_duration=3), tmp_path) == [520000000001]


def test_date_filters_take_since_inclusive_until_exclusive(known: Catalog, tmp_path: Path) -> None:
    query = VideoQuery(since=T0 + timedelta(days=1), until=T0 + timedelta(days=2, hours=12))
    assert ids_of(known, query, tmp_path) == [520000000002, 520000000003]
    # a bare date means midnight in the zone given; --until DATE includes that whole day
    since = parse_moment("since", "2026-11-03", tz=SHANGHAI)
    until = parse_moment("until", "2026-11-03", tz=SHANGHAI, end_of_day=True)
    assert since == datetime(2026, 11, 2, 16, 0, tzinfo=UTC) and until == since + timedelta(days=1)
    assert ids_of(known, VideoQuery(since=since, until=until), tmp_path) == [520000000003]  # 22:00 UTC is the 4th


def test_id_prefix_ids_and_missing(known: Catalog, tmp_path: Path) -> None:
    assert ids_of(known, VideoQuery(id_prefix="52"), tmp_path) == [52, 520000000001, 520000000002, 520000000003]
    assert ids_of(known, VideoQuery(id_prefix="5300"), tmp_path) == [530000000004, 530000000005]
    assert ids_of(known, VideoQuery(id_prefix="0"), tmp_path) == []
    wanted = frozenset({520000000002, 610000000006, 999, 1001})
    assert ids_of(known, VideoQuery(ids=wanted), tmp_path) == [520000000002, 610000000006]
    assert ids_of(known, VideoQuery(missing=True), tmp_path) == [520000000002, 530000000005]
    assert ids_of(known, VideoQuery(missing=True, ids=wanted), tmp_path) == [520000000002]
    assert count_rows(known, VideoQuery(missing=True, limit=1), base_dir=tmp_path) == 2


@pytest.mark.parametrize("sort", SORT_KEYS)
@pytest.mark.parametrize("desc", [False, True])
def test_every_order_and_page_is_the_same_in_sql_and_in_python(
    known: Catalog, tmp_path: Path, sort: str, desc: bool
) -> None:
    position = ("num_iid", "duration", "size", "downloaded_at").index(sort)  # in a VIDEOS spec
    expected = sorted(VIDEOS, key=lambda spec: (spec[position] is not None, spec[position] or 0, spec[0]), reverse=desc)
    every = frozenset(spec[0] for spec in VIDEOS)
    assert ids_of(known, VideoQuery(sort=sort, desc=desc), tmp_path) == [spec[0] for spec in expected]
    # the ids path sorts and pages in Python: the same order and the same pages
    for offset, limit in ((0, 3), (3, 3), (6, 3), (2, 0)):
        sql = ids_of(known, VideoQuery(sort=sort, desc=desc, limit=limit, offset=offset), tmp_path)
        python = ids_of(known, VideoQuery(sort=sort, desc=desc, limit=limit, offset=offset, ids=every), tmp_path)
        assert sql == python == [spec[0] for spec in expected][offset : offset + limit]
    assert count_rows(known, VideoQuery(sort=sort, desc=desc, limit=2, offset=1), base_dir=tmp_path) == len(VIDEOS)


def test_a_state_listing_adds_the_item_columns(known: Catalog, tmp_path: Path) -> None:
    query = VideoQuery(states=("failed", "not_found", "pending"))
    rows = list_rows(known, query, base_dir=tmp_path)
    assert query.columns == (*VIDEO_COLUMNS, "state", "error_kind", "last_error")
    assert [(r["num_iid"], r["state"], r["error_kind"]) for r in rows] == [
        (1001, "pending", None),
        (1002, "pending", None),
        (2002, "not_found", None),
        (3001, "failed", "gone"),
    ]
    assert rows[3]["last_error"] == "HTTP 404" and rows[3]["video_path"] is None
    done = list_rows(known, VideoQuery(states=("done",), min_duration=20), base_dir=tmp_path)
    assert [(r["num_iid"], r["duration"]) for r in done] == [(52, 20.0), (530000000004, 30.0), (610000000006, 61.0)]
    assert count_rows(known, VideoQuery(states=("pending", "resolved")), base_dir=tmp_path) == 3


def test_prefix_ranges_match_the_decimal_text() -> None:
    @given(st.integers(1, 2**63 - 1), st.text("0123456789", min_size=1, max_size=19))
    @settings(max_examples=300, deadline=None)
    def check(num_iid: int, prefix: str) -> None:
        inside = any(low <= num_iid <= high for low, high in prefix_ranges(prefix))
        assert inside == str(num_iid).startswith(prefix)

    check()
    assert prefix_ranges("52")[:3] == [(52, 52), (520, 529), (5200, 5299)]


# ------------------------------------------------------------------------------------------------ from_params


def test_from_params_reads_every_option() -> None:
    query = VideoQuery.from_params(
        {
            "min_duration": "10",
            "max_duration": "30.5",
            "since": "2026-11-01T08:00:00+08:00",
            "until": "2026-11-03",
            "state": "done, failed,done",
            "ids": "5,6",
            "q": "52",
            "missing": "true",
            "sort": "size",
            "desc": "1",
            "limit": "20",
            "offset": "40",
        },
        tz=UTC,
    )
    assert query == VideoQuery(
        min_duration=10.0,
        max_duration=30.5,
        since=datetime(2026, 11, 1, 0, 0, tzinfo=UTC),
        until=datetime(2026, 11, 4, 0, 0, tzinfo=UTC),
        states=("done", "failed"),
        ids=frozenset({5, 6}),
        id_prefix="52",
        missing=True,
        sort="size",
        desc=True,
        limit=20,
        offset=40,
    )
    assert VideoQuery.from_params({}) == VideoQuery()
    assert VideoQuery.from_params({"min_duration": " ", "missing": "0", "desc": ""}) == VideoQuery()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"min_duration": "ten"}, "min_duration"),
        ({"max_duration": "-1"}, "max_duration"),
        ({"min_duration": "nan"}, "min_duration"),
        ({"min_duration": "20", "max_duration": "10"}, "min_duration"),
        ({"since": "2026-02-30"}, "since"),
        ({"until": "yesterday"}, "until"),
        ({"since": "2026-11-05", "until": "2026-11-01"}, "since"),
        ({"state": "downloaded"}, "state"),
        ({"state": ","}, "state"),
        ({"ids": "5,x"}, "ids"),
        ({"ids": "0"}, "ids"),
        ({"q": "52a"}, "q"),
        ({"missing": "maybe"}, "missing"),
        ({"sort": "title"}, "sort"),
        ({"limit": "-5"}, "limit"),
        ({"offset": "1.5"}, "offset"),
        ({"min_durration": "5"}, "min_durration"),
    ],
)
def test_from_params_names_the_bad_parameter(params: dict[str, str], field: str) -> None:
    with pytest.raises(QueryError) as caught:
        VideoQuery.from_params(params)
    assert caught.value.field == field and caught.value.exit_code == 2
    assert str(caught.value).startswith(f"{field}: ")


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False))
def test_durations_read_back_exactly(seconds: float) -> None:
    assert VideoQuery.from_params({"min_duration": repr(seconds)}).min_duration == seconds


# A wall time skipped by a DST jump names no instant (it prints an offset it never had): not an input to round-trip.
@given(
    st.datetimes(
        min_value=datetime(1971, 1, 2),
        max_value=datetime(9998, 12, 30),
        timezones=st.timezones(),
        allow_imaginary=False,
    )
)
def test_iso_datetimes_with_an_offset_keep_their_instant(moment: datetime) -> None:
    text = moment.isoformat()
    parsed = VideoQuery.from_params({"since": text}).since
    # Against the instant in UTC: Python never calls a wall time that a zone repeats (fold) equal to another zone's.
    assert parsed == moment.astimezone(UTC) and parsed is not None and parsed.utcoffset() == timedelta(0)


@given(
    st.dates(min_value=date(1971, 1, 2), max_value=date(9998, 12, 30)),
    st.sampled_from([UTC, SHANGHAI, ZoneInfo("America/New_York"), timezone(timedelta(hours=5, minutes=45))]),
)
def test_bare_dates_are_midnight_in_the_zone_and_until_takes_the_whole_day(day: date, zone: Any) -> None:
    query = VideoQuery.from_params({"since": day.isoformat(), "until": day.isoformat()}, tz=zone)
    assert (query.since, query.until) == day_bounds(day, zone)


@given(st.text(max_size=40))
def test_any_text_is_a_date_or_a_query_error(text: str) -> None:
    try:
        parsed = VideoQuery.from_params({"since": text, "min_duration": text})
    except QueryError:
        return
    assert parsed.since is None or parsed.since.utcoffset() == timedelta(0)


def test_the_spelt_out_names_match_the_library() -> None:
    assert STATES == catalog_cli.STATES == queue_cli.STATES
    assert set(STATES) == {state.value for state in ItemState}
    assert SORT_KEYS == catalog_cli.SORT_KEYS
    assert VIDEO_COLUMNS == tuple(column.name for column in Video.__table__.columns)


def test_jsonable_writes_utc_iso_times() -> None:
    assert jsonable({"a": T0, "b": None, "c": 1.5}) == {"a": "2026-11-01T10:00:00+00:00", "b": None, "c": 1.5}


# ------------------------------------------------------------------------------------------------ show and stats


def test_show_tells_everything_about_one_id(known: Catalog) -> None:
    report = show(known, 520000000001)
    assert report is not None
    assert report["state"] == "done" and report["video"]["duration"] == 3.0
    assert report["video"]["downloaded_at"] == "2026-11-01T10:00:00+00:00"
    assert report["calls"]["total"] == 2 and [c["outcome"] for c in report["calls"]["latest"]] == ["error", "ok"]
    failed = show(known, 3001)
    assert failed is not None and failed["video"] is None and failed["item"]["attempts"] == 1
    assert (failed["state"], failed["last_error"], failed["error_kind"]) == ("failed", "HTTP 404", "gone")
    assert show(known, 2001)["calls"]["total"] == 1  # type: ignore[index]
    assert show(known, 777) is None
    json.dumps(report)


def test_show_counts_no_attempt_that_never_left(known: Catalog) -> None:
    known.log_call(CallRecord("taobao.item_video", 2001, "unsent", "", 0.0, T0), app_key="A", quota_day="2026-11-01")
    calls = show(known, 2001)["calls"]  # type: ignore[index]
    assert (calls["total"], calls["unsent"]) == (1, 1)
    assert "unsent" in [c["outcome"] for c in calls["latest"]]  # listed, so the user sees what happened
    assert show(known, 520000000001)["calls"]["unsent"] == 0  # type: ignore[index]


def test_stats_on_a_known_catalog(known: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    now = T0 + timedelta(days=5, hours=2)
    result = stats(known, now=now, tz=UTC, days=7, quota_tz=SHANGHAI)
    assert result["items"] == {
        "pending": 2,
        "resolved": 1,
        "done": 7,
        "no_video": 1,
        "not_found": 1,
        "not_visible": 0,
        "failed": 1,
        "total": 13,
    }
    assert result["videos"] == 7 and result["bytes"] == sum(spec[2] for spec in VIDEOS)
    assert result["seconds"] == pytest.approx(3 + 10 + 12.5 + 30 + 61 + 20)
    assert result["hours"] == round(136.5 / 3600, 2)
    assert [b["videos"] for b in result["duration_histogram"]] == [1, 0, 2, 1, 1, 1, 0, 0, 1]
    assert result["duration_histogram"][2] == {"from": 10, "to": 15, "videos": 2}
    per_day = {d["day"]: d["videos"] for d in result["downloads_per_day"]}
    assert per_day == {
        "2026-10-31": 0,
        "2026-11-01": 1,
        "2026-11-02": 1,
        "2026-11-03": 2,
        "2026-11-04": 0,
        "2026-11-05": 1,
        "2026-11-06": 2,
    }
    assert [(q["day"], q["used"], q["daily_limit"]) for q in result["quota_days"]] == [
        ("2026-11-02", 1, 1000),
        ("2026-11-01", 2, 1000),
    ]
    json.dumps(result)
    # Counting by state in rounds gives the same numbers whichever state is the biggest.
    monkeypatch.setattr(report_module, "_SMALL", 1)
    assert stats(known, now=now, tz=UTC, days=7)["items"] == result["items"]


def test_downloads_per_day_follow_the_zone_given(known: Catalog) -> None:
    result = stats(known, now=T0 + timedelta(days=5, hours=2), tz=SHANGHAI, days=7)
    per_day = {d["day"]: d["videos"] for d in result["downloads_per_day"]}
    # 10:00 UTC is 18:00 in Shanghai; 22:00 UTC (the 2.5-day video) is already the next day there.
    assert per_day["2026-11-03"] == 1 and per_day["2026-11-04"] == 1


def totals_by_query(cat: Catalog) -> tuple[int, int, float]:
    with engine_of(cat).connect() as connection:
        direct = connection.execute(
            select(
                func.count(), func.coalesce(func.sum(Video.size_bytes), 0), func.coalesce(func.sum(Video.duration), 0)
            )
        ).one()
        kept = connection.execute(
            select(func.sum(VideoTotal.videos), func.sum(VideoTotal.bytes), func.sum(VideoTotal.seconds))
        ).one()
    assert (kept[0], kept[1]) == (direct[0], direct[1]) and kept[2] == pytest.approx(direct[2])
    return int(direct[0]), int(direct[1]), float(direct[2])


def test_the_running_totals_follow_every_write(known: Catalog) -> None:
    assert totals_by_query(known) == (7, 29_000, 136.5)
    # replacing a row (record_video deletes then inserts), an UPDATE by hand, deleting one
    known.record_video(video_row(520000000001, 4000.0, 9_000, T0), now=T0)
    with engine_of(known).begin() as connection:
        connection.execute(Video.__table__.update().where(Video.num_iid == 52).values(duration=None, size_bytes=1))
    assert known.requeue_download(610000000006, reason="test", now=T0)
    assert totals_by_query(known) == (6, 29_000 - 1_000 + 9_000 - 3_000 + 1 - 7_000, 136.5 - 3 + 4000 - 20 - 61)
    with engine_of(known).connect() as connection:
        buckets = {second: n for second, n in connection.execute(select(VideoTotal.duration_s, VideoTotal.videos))}
    assert buckets[3600] == 1 and buckets[-1] == 2 and buckets[3] == 0 and buckets[61] == 0


# ------------------------------------------------------------------------------------------------ verify


@pytest.fixture
def harvested(clock: Any, tmp_path: Path) -> Iterator[tuple[Any, Any, list[int]]]:
    """A sandbox catalog with six downloaded videos (real MP4 files)."""
    with make_sandbox(clock, daily_limit=1000, video_bytes=(40_000, 90_000)) as sb:
        settings = sandbox_settings(sb, tmp_path)
        log_in(sb, settings, clock)
        ids = sb.catalogue.sample("video", 6)
        report, _ = harvest(settings, clock, ids)
        assert report.downloaded == 6
        yield sb, settings, ids


def test_verify_finds_truncated_deleted_replaced_and_foreign_files(harvested: Any, clock: Any) -> None:
    _, settings, ids = harvested
    folder = settings.base_dir / "videos"
    truncated, deleted, replaced, html, grown, good = ids
    data = (folder / f"{truncated}.mp4").read_bytes()
    (folder / f"{truncated}.mp4").write_bytes(data[: len(data) // 2])
    (folder / f"{deleted}.mp4").unlink()
    other = (folder / f"{replaced}.mp4").read_bytes()
    (folder / f"{replaced}.mp4").write_bytes(other[:-64] + bytes(64))  # same size, the tail changed
    size = (folder / f"{html}.mp4").stat().st_size
    (folder / f"{html}.mp4").write_bytes((b"<!DOCTYPE html><html>" + b" " * size)[:size])
    with (folder / f"{grown}.mp4").open("ab") as handle:
        handle.write(b"junk")
    with opened(settings) as cat:
        result = verify(cat, settings.base_dir, now=clock.now)
    problems = {bad.num_iid: bad.problem for bad in result.bad}
    assert problems == {
        truncated: "truncated",
        deleted: "missing",
        replaced: "changed",
        html: "not_mp4",
        grown: "grown",
    }
    assert (result.checked, result.ok, result.fixed, result.exit_code) == (6, 1, 0, 1)
    assert "an HTML page" in next(bad.detail for bad in result.bad if bad.num_iid == html)
    assert good not in problems


def test_verify_sample_checks_that_many(harvested: Any, clock: Any) -> None:
    _, settings, ids = harvested
    seen: list[int] = []
    with opened(settings) as cat:
        result = verify(
            cat,
            settings.base_dir,
            sample=4,
            now=clock.now,
            rng=random.Random(3),
            on_checked=lambda i, b: seen.append(i),
        )
    assert result.checked == 4 == len(set(seen)) and set(seen) <= set(ids) and result.exit_code == 0


def test_check_file_says_unreadable_for_a_broken_movie(tmp_path: Path) -> None:
    broken = tmp_path / "x.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(200))
    digest = hashlib.sha256(b"something else").hexdigest()
    problem = check_file(broken, size=broken.stat().st_size, sha256=digest)
    assert problem is not None and problem[0] == "unreadable_mp4"


def test_fix_puts_bad_files_back_to_download_without_a_call(harvested: Any, clock: Any) -> None:
    sb, settings, ids = harvested
    folder = settings.base_dir / "videos"
    before = {i: (folder / f"{i}.mp4").read_bytes() for i in ids}
    (folder / f"{ids[0]}.mp4").unlink()
    (folder / f"{ids[1]}.mp4").write_bytes(before[ids[1]][:1000])
    with opened(settings) as cat:
        result = verify(cat, settings.base_dir, fix=True, now=clock.now)
        assert (len(result.bad), result.fixed, result.exit_code) == (2, 2, 0)
        assert set(cat.videos(ids)) == set(ids[2:])
        items = cat.items(ids[:2])
        assert {item.state for item in items.values()} == {ItemState.RESOLVED}
        assert all(item.last_error and item.last_error.startswith("catalog verify: ") for item in items.values())
        assert set(cat.awaiting_download()) == set(ids[:2])
        assert not cat.requeue_download(ids[0], reason="again", now=clock.now())  # nothing left to requeue
    sb.reset_stats()
    report, _ = harvest(settings, clock, ids)
    assert (report.downloaded, report.skipped, report.api_calls) == (2, 4, 0)
    assert sb.stats()["gateway"]["calls"] == 0
    assert {i: (folder / f"{i}.mp4").read_bytes() for i in ids} == before


# ------------------------------------------------------------------------------------------------ read-only SQL


def test_sql_reads(known: Catalog, catalog_url: str) -> None:
    with run(catalog_url, "SELECT num_iid, duration FROM videos WHERE duration > 25 ORDER BY num_iid") as (cols, rows):
        assert cols == ["num_iid", "duration"] and list(rows) == [(530000000004, 30.0), (610000000006, 61.0)]


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM videos",
        "UPDATE items SET state = 'done'",
        "INSERT INTO calls (at) VALUES ('x')",
        "DROP TABLE videos",
        "CREATE TABLE t (x int)",
    ],
)
def test_sql_refuses_writes(known: Catalog, catalog_url: str, statement: str) -> None:
    with pytest.raises(SqlError) as caught, run(catalog_url, statement):
        pass
    assert caught.value.exit_code == 2
    assert count_rows(known, VideoQuery(), base_dir=Path()) == 7


@pytest.mark.parametrize(
    ("statement", "said"),
    [
        ("ATTACH DATABASE 'other.db' AS other", "refused: ATTACH"),
        ("PRAGMA writable_schema=1", "refused: PRAGMA writable_schema = 1"),
        ("PRAGMA journal_mode=DELETE", "refused: PRAGMA journal_mode"),
        ("DELETE FROM videos", "refused: DELETE videos"),
        ("SELECT 1; DELETE FROM videos", "one statement"),
        ("SELEC 1", "syntax error"),
        ("   ", "give one SQL statement"),
    ],
)
def test_sqlite_sql_refusals_leave_the_file_byte_identical(tmp_path: Path, statement: str, said: str) -> None:
    file = tmp_path / "catalog.sqlite3"
    with Catalog.open(f"sqlite:///{file}") as cat:
        build_known(cat, tmp_path)
    before = hashlib.sha256(file.read_bytes()).hexdigest()
    with pytest.raises(SqlError) as caught, run(f"sqlite:///{file}", statement):
        pass
    assert said in str(caught.value)
    assert hashlib.sha256(file.read_bytes()).hexdigest() == before
    assert not (tmp_path / "other.db").exists()
    with run(f"sqlite:///{file}", "PRAGMA table_info(videos)") as (cols, rows):
        assert "name" in cols and [row[1] for row in rows] == list(VIDEO_COLUMNS)


# ------------------------------------------------------------------------------------------------ formats


ROWS = [
    (1, "a,b", 1.5, None, T0),
    (2, 'quote "x"\nnew line', None, "", T0 + timedelta(seconds=1)),
]
COLUMNS = ["num_iid", "text", "duration", "empty", "at"]


def test_csv_parses_back_to_the_rows() -> None:
    out = io.StringIO()
    assert write_csv(out, COLUMNS, ROWS) == 2
    parsed = list(csv.reader(io.StringIO(out.getvalue())))
    assert parsed[0] == COLUMNS
    assert parsed[1:] == [
        ["" if v is None else (v.isoformat() if isinstance(v, datetime) else str(v)) for v in r] for r in ROWS
    ]


def test_json_jsonl_and_the_mapping() -> None:
    out = io.StringIO()
    write_json(out, COLUMNS, ROWS)
    assert json.loads(out.getvalue())[1]["text"] == 'quote "x"\nnew line'
    out = io.StringIO()
    write_jsonl(out, COLUMNS, ROWS)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and json.loads(lines[0]) == {
        "num_iid": 1,
        "text": "a,b",
        "duration": 1.5,
        "empty": None,
        "at": "2026-11-01T10:00:00+00:00",
    }
    out = io.StringIO()
    write_mapping(out, COLUMNS, ROWS)
    assert json.loads(out.getvalue())["2"]["at"] == "2026-11-01T10:00:01+00:00"
    for writer, nothing in ((write_json, []), (write_mapping, {})):
        empty = io.StringIO()
        assert writer(empty, COLUMNS, []) == 0
        assert json.loads(empty.getvalue()) == nothing


def test_an_atomic_file_is_all_or_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old", encoding="utf-8")

    def rows() -> Iterator[tuple[Any, ...]]:
        yield ROWS[0]
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError), atomic_text_file(target, mode=0o644) as handle:
        write_mapping(handle, COLUMNS, rows())
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    with atomic_text_file(target, mode=0o640) as handle:
        write_mapping(handle, COLUMNS, ROWS)
    assert json.loads(target.read_text(encoding="utf-8"))["1"]["text"] == "a,b"
    assert target.stat().st_mode & 0o777 == 0o640
