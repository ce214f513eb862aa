"""Work claims on the queue (claims.py), on SQLite and on PostgreSQL: order, leases, renewals, releases, contention."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import select

from conftest import START
from taobao_video.model import ItemState
from taobao_video.sandbox import FakeClock
from taobao_video.store.catalog import Catalog, engine_of
from taobao_video.store.claims import Holder, LeaseKeeper, WorkClaims, new_worker_id
from taobao_video.store.records import VideoRow
from taobao_video.store.schema import Item

LEASE = timedelta(minutes=10)


def worker(cat: Catalog, clock: FakeClock, name: str) -> WorkClaims:
    return WorkClaims(cat, lease=LEASE, clock=clock.now, worker=name)


def claimed_by(cat: Catalog, ids: list[int]) -> dict[int, str | None]:
    with engine_of(cat).connect() as connection:
        rows = connection.execute(select(Item.num_iid, Item.claimed_by).where(Item.num_iid.in_(ids)))
        return {num_iid: holder for num_iid, holder in rows}


def test_claims_follow_the_queue_order_and_never_overlap(cat, clock):
    cat.enqueue(range(1, 11), now=clock.now())
    cat.enqueue([20, 21], priority=5, now=clock.now())
    a, b = worker(cat, clock, "a"), worker(cat, clock, "b")
    assert a.claim(ItemState.PENDING, 4) == [20, 21, 1, 2]
    assert b.claim(ItemState.PENDING, 3) == [3, 4, 5]
    assert a.claim(ItemState.PENDING, 100) == [6, 7, 8, 9, 10]
    assert b.claim(ItemState.PENDING, 100) == []
    assert claimed_by(cat, [20, 3, 10]) == {20: "a", 3: "b", 10: "a"}
    assert a.claim(ItemState.RESOLVED, 5) == [] and a.claim(ItemState.PENDING, 0) == []


def test_an_expired_lease_frees_the_ids_and_renewal_keeps_them(cat, clock):
    cat.enqueue(range(1, 7), now=clock.now())
    a, b = worker(cat, clock, "a"), worker(cat, clock, "b")
    a.claim(ItemState.PENDING, 3)
    clock.advance(LEASE.total_seconds() - 1)
    assert a.renew() == 3  # live: renewed for a full lease from now
    clock.advance(LEASE.total_seconds() - 1)
    assert b.claim(ItemState.PENDING, 10) == [4, 5, 6], "renewed claims still hold"
    clock.advance(2)
    assert a.renew() == 0, "run out: not renewed, another worker may hold them by now"
    assert b.claim(ItemState.PENDING, 10) == [1, 2, 3]
    assert b.holders([1, 4]) == {
        1: Holder("b", clock.now() + LEASE),
        4: Holder("b", START + 3 * LEASE - timedelta(seconds=2)),
    }


def test_a_recorded_outcome_ends_the_claim_but_a_resolved_id_stays_with_its_worker(cat, clock):
    cat.enqueue([1, 2, 3, 4], now=clock.now())
    a = worker(cat, clock, "a")
    a.claim(ItemState.PENDING, 4)
    now = clock.now()
    cat.mark_resolved(1, video_url="u", cover_url=None, api_duration=1.0, width=1, height=1, api_method="m", now=now)
    cat.mark_no_video(2, api_method="m", now=now)
    cat.mark_failed(3, error_kind="truncated", error="short", now=now)
    row = VideoRow(4, "videos/4.mp4", 1.0, 10, "0" * 64, "u", None, 1, 1, "m", now)
    cat.record_video(row, now=now)
    assert claimed_by(cat, [1, 2, 3, 4]) == {1: "a", 2: None, 3: None, 4: None}
    assert worker(cat, clock, "b").claim(ItemState.RESOLVED, 5) == [], "its worker downloads it"
    assert a.claim(ItemState.RESOLVED, 5) == [], "held already"


def test_claiming_a_given_list_skips_and_names_what_others_hold(cat, clock):
    cat.enqueue(range(1, 7), now=clock.now())
    a, b = worker(cat, clock, "a"), worker(cat, clock, "b")
    assert a.claim_ids([2, 3]) == ([2, 3], {})
    taken, held = b.claim_ids([6, 3, 1, 2, 6])
    assert taken == [6, 1]
    assert held == {3: Holder("a", clock.now() + LEASE), 2: Holder("a", clock.now() + LEASE)}
    clock.advance(60)
    assert a.claim_ids([3, 4]) == ([3, 4], {}), "its own ids are taken again, with a fresh lease"
    assert a.holders([3])[3].lease_until == clock.now() + LEASE
    assert a.claim_ids([999]) == ([], {}), "unknown ids are in neither"


def test_release_release_all_and_clear_all(cat, clock):
    cat.enqueue(range(1, 9), now=clock.now())
    a, b = worker(cat, clock, "a"), worker(cat, clock, "b")
    a.claim(ItemState.PENDING, 4)
    b.claim(ItemState.PENDING, 4)
    assert a.release([1, 2, 5]) == 2, "only its own"
    assert b.claim(ItemState.PENDING, 10) == [1, 2]
    assert a.release_all() == 2
    assert claimed_by(cat, list(range(1, 9))) == {1: "b", 2: "b", 3: None, 4: None, 5: "b", 6: "b", 7: "b", 8: "b"}
    assert a.clear_all() == 6
    assert set(claimed_by(cat, list(range(1, 9))).values()) == {None}


def test_others_expire_at_sees_only_other_workers_live_claims(cat, clock):
    cat.enqueue(range(1, 5), now=clock.now())
    a, b = worker(cat, clock, "a"), worker(cat, clock, "b")
    assert a.others_expire_at(ItemState.PENDING) is None
    a.claim(ItemState.PENDING, 1)
    assert a.others_expire_at(ItemState.PENDING) is None
    clock.advance(30)
    b.claim(ItemState.PENDING, 1)
    assert a.others_expire_at(ItemState.PENDING) == clock.now() + LEASE
    assert a.others_expire_at(ItemState.RESOLVED) is None
    assert b.others_expire_at(ItemState.PENDING) == START + LEASE
    clock.advance(LEASE.total_seconds())
    assert b.others_expire_at(ItemState.PENDING) is None, "a's claim ran out"


def test_concurrent_claimers_share_a_queue_without_overlap(cat):
    cat.enqueue(range(1, 2001), now=START)
    real = FakeClock(START)
    barrier = threading.Barrier(8)

    def drain(name: str) -> list[int]:
        claims = WorkClaims(cat, lease=LEASE, clock=real.now, worker=name)
        barrier.wait()
        got = claims.claim(ItemState.PENDING, 7)
        # Everyone holds a first batch before anyone takes a second: a thread the scheduler starves (SQLite's busy
        # handler sleeps) would otherwise find the queue drained, and "every claimer got some" would be luck.
        barrier.wait()
        while batch := claims.claim(ItemState.PENDING, 7):
            got += batch
        return got

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(drain, [f"w{i}" for i in range(8)]))
    everything = [num_iid for got in results for num_iid in got]
    assert sorted(everything) == list(range(1, 2001)), "every id once, none twice"
    assert all(got for got in results), "every claimer got some"
    holders = claimed_by(cat, everything)
    for index, got in enumerate(results):
        assert {holders[num_iid] for num_iid in got} == {f"w{index}"}


def test_the_lease_keeper_renews_while_the_block_runs(cat, clock):
    cat.enqueue([1, 2], now=clock.now())
    claims = worker(cat, clock, "a")
    claims.claim(ItemState.PENDING, 2)
    with LeaseKeeper(claims, every=0.02) as keeper:
        clock.advance(300)
        deadline = time.monotonic() + 10
        while keeper.beats < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert keeper.beats >= 2
    assert claims.holders([1])[1].lease_until == clock.now() + LEASE
    beats = keeper.beats
    time.sleep(0.1)
    assert keeper.beats == beats, "stopped with the block"


def test_a_worker_id_names_host_and_process():
    import os
    import socket

    first, second = new_worker_id(), new_worker_id()
    assert first.startswith(f"{socket.gethostname()}:{os.getpid()}:") and first != second


def test_a_lease_must_be_positive(cat, clock):
    with pytest.raises(ValueError, match="positive"):
        WorkClaims(cat, lease=timedelta(0), clock=clock.now)
