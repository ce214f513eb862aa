"""The item state machine (store/items.py), on SQLite and on PostgreSQL: every method moves an item exactly as its
row of ``TRANSITIONS`` says (state, counter, claim, ``deferred_at``), and the claim rule is the one stated."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from conftest import START
from taobao_video.model import ItemState
from taobao_video.store.catalog import Catalog
from taobao_video.store.claims import WorkClaims
from taobao_video.store.items import CLAIM_ENDED, TRANSITIONS
from taobao_video.store.records import VideoRow
from taobao_video.store.schema import Item

LATER = START + timedelta(minutes=5)
N = 41
Step = Callable[[Catalog], object]


def video(num_iid: int = N) -> VideoRow:
    return VideoRow(
        num_iid, f"videos/{num_iid}.mp4", 9.0, 10, "ab" * 32, f"https://v/{num_iid}.mp4", None, 720, 1280, "m", START
    )


def resolve(cat: Catalog, num_iid: int = N, *, now: datetime = START) -> None:
    cat.mark_resolved(
        num_iid,
        video_url=f"https://v/{num_iid}.mp4",
        cover_url=None,
        api_duration=9.0,
        width=720,
        height=1280,
        api_method="m",
        now=now,
    )


# transition -> (bring the item to a state it leaves by this transition, the event itself at LATER)
EVENTS: dict[str, tuple[Step, Step]] = {
    "resolved": (lambda cat: None, lambda cat: resolve(cat, now=LATER)),
    "no_video": (lambda cat: None, lambda cat: cat.mark_no_video(N, api_method="m", now=LATER)),
    "not_found": (lambda cat: None, lambda cat: cat.mark_not_found(N, detail="gone", api_method="m", now=LATER)),
    "not_visible": (lambda cat: None, lambda cat: cat.mark_not_visible(N, api_method="m", now=LATER)),
    "lookup_failed": (lambda cat: None, lambda cat: cat.mark_lookup_failed(N, error="timeout", now=LATER)),
    "download_failed": (
        resolve,
        lambda cat: cat.mark_failed(N, error_kind="truncated", error="short", now=LATER),
    ),
    "downloaded": (resolve, lambda cat: cat.record_video(video(), now=LATER)),
    # A forced re-download that failed: a video row, a failed item a run then left for later.
    "requeued": (
        lambda cat: (cat.record_video(video(), now=START), cat.mark_failed(N, error_kind="x", error="y", now=START)),
        lambda cat: cat.requeue_download(N, reason="verify: missing", now=LATER),
    ),
    "retry_download": (
        lambda cat: (resolve(cat), cat.mark_failed(N, error_kind="truncated", error="short", now=START)),
        lambda cat: cat.retry_failed(now=LATER),
    ),
    "retry_lookup": (
        lambda cat: cat.mark_lookup_failed(N, error="timeout", now=START),
        lambda cat: cat.retry_failed(now=LATER),
    ),
}


def test_every_transition_has_a_case_here() -> None:
    assert set(EVENTS) == set(TRANSITIONS)


@pytest.mark.parametrize("name", sorted(TRANSITIONS))
def test_each_method_moves_the_item_as_its_transition_says(cat: Catalog, clock, name: str) -> None:
    move = TRANSITIONS[name]
    prepare, event = EVENTS[name]
    cat.enqueue([N], now=START)
    prepare(cat)
    worker = WorkClaims(cat, lease=timedelta(minutes=10), clock=clock.now, worker="w")
    assert worker.claim_ids([N])[0] == [N]
    cat.mark_deferred([N], now=START)
    before = cat.item(N)
    assert before is not None and before.deferred_at == START

    event(cat)

    after = cat.item(N)
    assert after is not None
    assert after.state is move.to and after.updated_at == LATER
    assert (N in worker.holders([N])) is not move.ends_claim
    assert (after.deferred_at is None) is move.clears_deferred
    counters = {"lookups": after.lookups - before.lookups, "attempts": after.attempts - before.attempts}
    assert counters == {name: int(name == move.counts) for name in counters}


def test_the_claim_rule() -> None:
    """A worker's outcome ends its claim, except resolved (the same worker downloads next); the user's rewinds
    never end one (a worker may be on the item)."""
    ends = {name for name, move in TRANSITIONS.items() if move.ends_claim}
    assert ends == {"no_video", "not_found", "not_visible", "lookup_failed", "download_failed", "downloaded"}
    assert not any(move.ends_claim for move in TRANSITIONS.values() if not move.by_worker)
    assert set(CLAIM_ENDED) == {"claimed_by", "lease_until"} and set(CLAIM_ENDED.values()) == {None}
    assert set(CLAIM_ENDED) <= set(Item.__table__.c.keys())


@pytest.mark.parametrize("name", sorted(name for name, move in TRANSITIONS.items() if move.by_worker))
def test_an_outcome_for_an_unknown_id_adds_it_at_the_end_of_the_queue(cat: Catalog, name: str) -> None:
    cat.enqueue([1, 2], now=START)
    EVENTS[name][1](cat)
    item = cat.item(N)
    move = TRANSITIONS[name]
    assert item is not None and item.state is move.to and item.seq == 3 and item.added_at == item.updated_at
    assert (item.lookups, item.attempts) == (int(move.counts == "lookups"), int(move.counts == "attempts"))


def test_the_rewinds_leave_unknown_ids_alone(cat: Catalog) -> None:
    assert cat.requeue_download(N, reason="verify", now=LATER) is False
    assert cat.retry_failed(now=LATER) == 0
    assert cat.item(N) is None


def test_mark_deferred_touches_no_state_and_no_done_item(cat: Catalog) -> None:
    cat.enqueue([1, 2], now=START)
    cat.record_video(video(2), now=START)
    cat.mark_deferred([1, 2, 404], now=LATER)
    items = cat.items([1, 2, 404])
    assert set(items) == {1, 2}
    assert (items[1].state, items[1].deferred_at) == (ItemState.PENDING, LATER)
    assert (items[2].state, items[2].deferred_at) == (ItemState.DONE, None)
