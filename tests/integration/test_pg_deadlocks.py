"""Two writers on one PostgreSQL catalog that lock the same rows in other orders: two workers' group commits (the
per-second video_totals rows, locked in the order downloads finished) and a group commit against the lease renewal
of its own worker. PostgreSQL breaks each deadlock by rolling one transaction back; the loser tries again, and no
batch of recorded videos is lost."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import OperationalError

from taobao_video.model import ItemState
from taobao_video.store.catalog import Catalog
from taobao_video.store.claims import WorkClaims
from taobao_video.store.records import VideoRow

pytestmark = pytest.mark.slow

NOW = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


def row(num_iid: int, duration: float = 1.0) -> VideoRow:
    return VideoRow(num_iid, f"videos/{num_iid}.mp4", duration, 4, "ab" * 32, f"http://127.0.0.1/{num_iid}.mp4",
                    None, None, None, "taobao.item_video", NOW)  # fmt: skip


@pytest.mark.timeout(120)
def test_two_workers_committing_batches_at_once_never_lose_one(pg_url):
    Catalog.open(pg_url).close()
    errors: list[Exception] = []
    for round_ in range(10):  # before the fix, one of the first few rounds lost its batch
        go = threading.Barrier(2)

        def worker(first: int, durations: list[float], go: threading.Barrier = go) -> None:
            with Catalog.open(pg_url, migrate=False) as catalog:  # another machine: its own pool
                go.wait()
                try:
                    catalog.record_videos([row(first + n, d) for n, d in enumerate(durations)], now=NOW)
                except Exception as exc:  # any exception, not only a deadlock: asserted in the test's thread
                    errors.append(exc)

        durations = [10.0 + n for n in range(30)]  # finished in either order
        base = 1_000_000 * (round_ + 1)
        threads = [
            threading.Thread(target=worker, args=(base, durations)),
            threading.Thread(target=worker, args=(base + 1000, durations[::-1])),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, f"round {round_}: a batch was lost: {errors[0]!r}"
        expected = {
            **{base + n: d for n, d in enumerate(durations)},
            **{base + 1000 + n: d for n, d in enumerate(durations[::-1])},
        }
        with Catalog.open(pg_url, migrate=False) as catalog:
            recorded = catalog.videos(expected)
        assert {i: v.duration for i, v in recorded.items()} == expected, f"round {round_}"


@pytest.mark.timeout(300)
def test_recording_a_batch_never_deadlocks_with_the_lease_renewal(pg_url):
    errors: list[Exception] = []
    with Catalog.open(pg_url) as catalog:
        claims = WorkClaims(catalog, lease=timedelta(seconds=600), clock=lambda: NOW, worker="me:1:abc")
        for round_ in range(40):  # before the fix, about one round in ten lost its batch
            ids = [10_000 * (round_ + 1) + n for n in range(1, 65)]
            catalog.enqueue(ids, now=NOW)
            assert len(claims.claim(ItemState.PENDING, 64)) == 64
            go = threading.Barrier(2)

            def commit(go: threading.Barrier = go, ids: list[int] = ids) -> None:
                go.wait()
                try:  # the batch in the order its downloads finished: here, the last queued first
                    catalog.record_videos([row(i) for i in reversed(ids)], now=NOW)
                except Exception as exc:  # any exception, not only a deadlock: asserted in the test's thread
                    errors.append(exc)

            def renew(go: threading.Barrier = go) -> None:
                go.wait()
                try:
                    for _ in range(5):
                        try:
                            claims.renew()
                        except OperationalError:
                            pass  # the keeper logs it and tries again at the next beat
                except Exception as exc:  # anything else is a defect: asserted in the test's thread
                    errors.append(exc)

            threads = [threading.Thread(target=commit), threading.Thread(target=renew)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if errors:
                break
            assert sorted(catalog.videos(ids)) == ids, f"round {round_}: the batch was not all recorded"
        assert not errors, f"round {round_}: the batch was lost: {errors[0]!r}"
