"""The quota ledger: arithmetic, refusals, the Beijing day, the platform's ban, and atomicity under contention."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from conftest import START
from taobao_video.errors import EXIT_TEMPFAIL, QuotaExhausted
from taobao_video.sandbox import FakeClock
from taobao_video.store.catalog import Catalog, engine_of
from taobao_video.store.dialects import create_catalog_engine
from taobao_video.store.quota import QuotaLedger, QuotaStatus
from taobao_video.store.schema import QuotaDay

BEIJING = ZoneInfo("Asia/Shanghai")
NOON = START.astimezone(BEIJING)  # 12:00: where the `clock` fixture (conftest.py) starts
MIDNIGHT = datetime(2026, 11, 23, 0, 0, tzinfo=BEIJING)


def ledger_for(cat: Catalog, clock: FakeClock, *, limit: int = 5, reserve: int = 0, app_key: str = "A") -> QuotaLedger:
    return QuotaLedger(cat, app_key=app_key, daily_limit=limit, reserve=reserve, tz=BEIJING, clock=clock.now)


def row(cat: Catalog, day: str, app_key: str = "A") -> Any:
    """The day's ledger row (``.used``, ``.daily_limit``, ``.banned_until``) or None."""
    query = select(QuotaDay.__table__).where(QuotaDay.app_key == app_key, QuotaDay.day == day)
    with engine_of(cat).connect() as connection:
        return connection.execute(query).first()


# ------------------------------------------------------------------------------------------------ arithmetic


def test_reserve_counts_up_to_the_limit_less_the_reserve(cat: Catalog, clock: FakeClock) -> None:
    ledger = ledger_for(cat, clock, limit=5, reserve=2)
    assert ledger.status() == QuotaStatus("2026-11-22", 0, 5, 2, 3, MIDNIGHT, None)
    assert [ledger.reserve() for _ in range(3)] == ["2026-11-22"] * 3
    assert ledger.remaining() == 0
    with pytest.raises(QuotaExhausted):
        ledger.reserve()
    assert ledger.status() == QuotaStatus("2026-11-22", 3, 5, 2, 0, MIDNIGHT, None)
    found = row(cat, "2026-11-22")
    assert found is not None and (found.used, found.daily_limit) == (3, 5)


def test_status_writes_nothing(cat: Catalog, clock: FakeClock) -> None:
    ledger_for(cat, clock).status()
    assert row(cat, "2026-11-22") is None


def test_the_refusal_names_the_numbers_and_the_next_beijing_midnight(cat: Catalog, clock: FakeClock) -> None:
    ledger = ledger_for(cat, clock, limit=3, reserve=1)
    ledger.reserve()
    ledger.reserve()
    with pytest.raises(QuotaExhausted) as caught:
        ledger.reserve()
    error = caught.value
    assert error.exit_code == EXIT_TEMPFAIL
    assert error.reset_at == MIDNIGHT
    assert error.reset_at is not None and error.reset_at.utcoffset() == timedelta(hours=8)
    text = str(error)
    assert "2 of 3 calls used" in text and "1 kept in reserve" in text
    assert "app A on 2026-11-22" in text
    assert "resets at 2026-11-23 00:00 Asia/Shanghai" in text


@settings(max_examples=30, deadline=None)
@given(limit=st.integers(1, 12), reserve=st.integers(0, 11), attempts=st.integers(0, 15))
def test_never_more_than_limit_less_reserve(
    tmp_path_factory: pytest.TempPathFactory, limit: int, reserve: int, attempts: int
) -> None:
    reserve = min(reserve, limit - 1)
    with Catalog.open("sqlite://") as cat:
        ledger = QuotaLedger(cat, app_key="A", daily_limit=limit, reserve=reserve, clock=lambda: NOON)
        granted = 0
        for _ in range(attempts):
            try:
                ledger.reserve()
                granted += 1
            except QuotaExhausted:
                pass
        assert granted == min(attempts, limit - reserve)
        assert ledger.remaining() == limit - reserve - granted


def test_app_keys_count_apart(cat: Catalog, clock: FakeClock) -> None:
    first, second = ledger_for(cat, clock, limit=2), ledger_for(cat, clock, limit=2, app_key="B")
    first.reserve()
    first.reserve()
    assert second.reserve() == "2026-11-22"
    assert (first.remaining(), second.remaining()) == (0, 1)


def test_the_stored_limit_follows_the_settings(cat: Catalog, clock: FakeClock) -> None:
    ledger_for(cat, clock, limit=2).reserve()
    ledger_for(cat, clock, limit=2).reserve()
    with pytest.raises(QuotaExhausted):
        ledger_for(cat, clock, limit=2).reserve()
    raised = ledger_for(cat, clock, limit=4)
    assert raised.reserve() == "2026-11-22"
    found = row(cat, "2026-11-22")
    assert found is not None and (found.used, found.daily_limit) == (3, 4)
    with pytest.raises(QuotaExhausted):
        ledger_for(cat, clock, limit=3).reserve()  # lowered below what is used: refused, and stored
    found = row(cat, "2026-11-22")
    assert found is not None and (found.used, found.daily_limit) == (3, 3)


def test_the_ledger_takes_an_engine_too(cat: Catalog, clock: FakeClock) -> None:
    ledger = QuotaLedger(engine_of(cat), app_key="A", daily_limit=2, clock=clock.now)
    assert ledger.reserve() == "2026-11-22"
    assert ledger.tz.key == "Asia/Shanghai"


@pytest.mark.parametrize(("limit", "reserve"), [(0, 0), (5, 5), (5, -1)])
def test_nonsense_limits_are_refused(cat: Catalog, limit: int, reserve: int) -> None:
    with pytest.raises(ValueError, match=r"daily_limit|reserve"):
        QuotaLedger(cat, app_key="A", daily_limit=limit, reserve=reserve)


def test_a_naive_clock_is_refused(cat: Catalog) -> None:
    ledger = QuotaLedger(cat, app_key="A", daily_limit=5, clock=lambda: datetime(2026, 11, 22, 12))
    with pytest.raises(ValueError, match="aware"):
        ledger.reserve()


def test_release_gives_one_call_back_and_never_goes_below_zero(cat: Catalog, clock: FakeClock) -> None:
    ledger = ledger_for(cat, clock, limit=2)
    day = ledger.reserve()
    ledger.reserve()
    assert ledger.remaining() == 0
    assert ledger.release(day) is True
    assert ledger.status().used == 1 and ledger.remaining() == 1
    assert ledger.release(day) is True
    assert ledger.release(day) is False  # nothing left to give back
    assert ledger.status().used == 0
    assert ledger.release("2026-01-01") is False  # a day without a row
    assert row(cat, "2026-01-01") is None


def test_release_touches_only_its_app_and_day(cat: Catalog, clock: FakeClock) -> None:
    a, b = ledger_for(cat, clock, app_key="A"), ledger_for(cat, clock, app_key="B")
    day = a.reserve()
    b.reserve()
    clock.advance(86400)
    a.reserve()
    assert a.release(day)
    assert row(cat, day, "A").used == 0 and row(cat, day, "B").used == 1
    assert a.status().used == 1


# ------------------------------------------------------------------------------------------------ the day


def test_a_run_across_midnight_counts_each_call_in_its_own_day(cat: Catalog, clock: FakeClock) -> None:
    ledger = ledger_for(cat, clock, limit=2)
    clock.set(datetime(2026, 11, 22, 23, 59, 59, tzinfo=BEIJING))
    assert ledger.reserve() == "2026-11-22"
    assert ledger.reserve() == "2026-11-22"
    with pytest.raises(QuotaExhausted) as caught:
        ledger.reserve()
    assert caught.value.reset_at == MIDNIGHT
    clock.advance(1)  # 00:00:00 Beijing, still 16:00 on 22 November in UTC
    assert clock.now().date().isoformat() == "2026-11-22"
    assert ledger.reserve() == "2026-11-23"
    assert ledger.status() == QuotaStatus("2026-11-23", 1, 2, 0, 1, MIDNIGHT + timedelta(days=1), None)
    assert row(cat, "2026-11-22").used == 2


def test_the_day_is_taken_in_the_ledger_zone(cat: Catalog) -> None:
    at = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)  # 04:00 on the 23rd in Beijing
    beijing = QuotaLedger(cat, app_key="A", daily_limit=5, clock=lambda: at)
    utc = QuotaLedger(cat, app_key="B", daily_limit=5, tz=ZoneInfo("UTC"), clock=lambda: at)
    assert (beijing.reserve(), utc.reserve()) == ("2026-11-23", "2026-11-22")
    assert beijing.status().resets_at == datetime(2026, 11, 24, tzinfo=BEIJING)


# ------------------------------------------------------------------------------------------------ the ban


def test_mark_spent_refuses_until_the_reset_then_allows(cat: Catalog, clock: FakeClock) -> None:
    ledger = ledger_for(cat, clock, limit=1000)
    ledger.reserve()
    reset_at = clock.now() + timedelta(hours=1)
    ledger.mark_spent(reset_at)
    status = ledger.status()
    assert (status.used, status.remaining, status.banned_until) == (1, 0, reset_at)
    with pytest.raises(QuotaExhausted) as caught:
        ledger.reserve()
    assert caught.value.reset_at == reset_at
    assert "the platform reports the daily call quota of app A spent" in str(caught.value)
    assert "calls resume at 2026-11-22 13:00:00 Asia/Shanghai" in str(caught.value)
    clock.set(reset_at)
    assert ledger.reserve() == "2026-11-22"
    assert ledger.status() == QuotaStatus("2026-11-22", 2, 1000, 0, 998, MIDNIGHT, None)


def test_mark_spent_on_a_fresh_day_creates_the_row(cat: Catalog, clock: FakeClock) -> None:
    ledger = ledger_for(cat, clock)
    ledger.mark_spent(MIDNIGHT)
    found = row(cat, "2026-11-22")
    assert found is not None and (found.used, found.banned_until) == (0, MIDNIGHT)
    assert row(cat, "2026-11-23") is None  # the ban ends exactly at midnight: tomorrow is free
    clock.set(MIDNIGHT)
    assert ledger.reserve() == "2026-11-23"


def test_a_ban_past_midnight_covers_the_next_day_too(cat: Catalog, clock: FakeClock) -> None:
    ledger = ledger_for(cat, clock)
    until = MIDNIGHT + timedelta(hours=2)
    ledger.mark_spent(until)
    clock.set(MIDNIGHT + timedelta(hours=1))
    with pytest.raises(QuotaExhausted) as caught:
        ledger.reserve()
    assert caught.value.reset_at == until
    clock.set(until)
    assert ledger.reserve() == "2026-11-23"


# ------------------------------------------------------------------------------------------------ contention


def reservations_granted(ledger: QuotaLedger, tries: int) -> int:
    """Try to reserve ``tries`` calls as fast as possible; how many the ledger granted."""
    granted = 0
    for _ in range(tries):
        try:
            ledger.reserve()
            granted += 1
        except QuotaExhausted:
            pass
    return granted


def test_threads_never_reserve_more_than_the_limit(cat: Catalog, clock: FakeClock) -> None:
    limit, threads, tries = 300, 8, 60
    barrier = threading.Barrier(threads)

    def work(_: int) -> int:
        ledger = ledger_for(cat, clock, limit=limit)
        barrier.wait()
        return reservations_granted(ledger, tries)

    with ThreadPoolExecutor(threads) as pool:
        granted = sum(pool.map(work, range(threads)))
    assert granted == limit
    assert row(cat, "2026-11-22").used == limit


def _reserve_in_a_process(url: str, tries: int, start: Any) -> int:
    engine = create_catalog_engine(url)
    ledger = QuotaLedger(engine, app_key="A", daily_limit=150, tz=BEIJING, clock=lambda: NOON)
    start.wait()
    granted = reservations_granted(ledger, tries)
    engine.dispose()
    return granted


def test_processes_never_reserve_more_than_the_limit(cat: Catalog, catalog_url: str) -> None:
    context = multiprocessing.get_context("spawn")  # no engine or pool state inherited from this process
    with context.Manager() as manager, context.Pool(4) as pool:
        start = manager.Barrier(4)
        results = [pool.apply_async(_reserve_in_a_process, (catalog_url, 60, start)) for _ in range(4)]
        granted = [result.get(timeout=60) for result in results]
    assert sum(granted) == 150
    assert row(cat, "2026-11-22").used == 150
