"""The queue: the ``items`` table read in queue order, ``priority`` DESC, then ``seq`` (insertion order, unique,
given out here by :meth:`CatalogQueue.enqueue` and by the outcomes in ``items.py`` that add an unknown id).

Adding ids, reading the queue and its figures, removing ids. What happens to a queued item afterwards (looked up,
downloaded, failed, claimed) is ``items.py`` and ``claims.py``. :class:`~taobao_video.store.catalog.Catalog`
inherits these methods; callers use them on it.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, exists, func, not_, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from taobao_video.model import STATE_NAMES, WAITING_STATES, ItemState
from taobao_video.store.common import READ_CHUNK, chunks, count_arg, num_iid_arg, priority_arg, retry_on_race, slices
from taobao_video.store.dialects import insert_rows, lock_for_writing, require_aware, select_by_ids
from taobao_video.store.records import EnqueueResult, ItemRow, RemoveResult
from taobao_video.store.schema import ITEM_ROW_COLUMNS, QUEUE_ORDER, Item, Video, item_row

# Ids per enqueue/add_items transaction. Ids in a user's (random) order each land on a random page of the
# primary-key index, and every commit writes the pages it touched: on a 2-vCPU VM a million such ids took 33 s in
# batches of 5,000, 18 s of 20,000, 11-17 s of 50,000 (a batch holds about 20 MB of Python objects at most).
ADD_BATCH = 50_000
UNKNOWN_SHOWN = 10  # ids `queue remove` names when some were not in the queue (a file may hold a million)
QUEUE_LOCK = 7307163802  # a PostgreSQL advisory lock key: any constant of our own
_WAITING = tuple(state.value for state in WAITING_STATES)


def next_seq() -> ColumnElement[int]:
    """The next ``seq`` as a subquery, for the single-row inserts of an id never enqueued.

    Run it after :func:`~taobao_video.store.dialects.lock_after_writing` with :data:`QUEUE_LOCK`: the inserting
    transactions then wait for each other, and each sees the numbers the others committed (SQLite: its one write
    lock; PostgreSQL: the advisory lock, under which the unique index on ``seq`` would otherwise turn most
    concurrent inserts into a retry).
    """
    return select(func.coalesce(func.max(Item.seq), 0) + 1).scalar_subquery()


class CatalogQueue:
    """The queue methods of the catalog. Each is one short transaction (a batch, for the streaming ones)."""

    _engine: Engine

    # ---- adding

    def enqueue(self, ids: Iterable[int], *, priority: int = 0, now: datetime) -> EnqueueResult:
        """Put ``ids`` in the queue: new ids become ``pending`` at the end of their priority, in the order given.

        An id already waiting (pending, resolved, failed) with a lower priority is raised to ``priority``
        (reprioritised) and keeps its place among its new peers; one waiting at this priority or a higher one is
        left alone (already_queued); a finished one (done, no_video, not_found) is counted and untouched
        (already_done). An id given twice counts as already_queued (or already_done) the second time.

        Streams: ``ids`` (any iterable, a generator of a million is fine) is consumed in batches of
        :data:`ADD_BATCH`, each its own transaction, so memory stays flat and a crash keeps the batches done.
        Enqueuers wait for each other batch by batch, so every new id gets a distinct, increasing ``seq``.
        """
        return self._enqueue(ids, priority=priority, now=now, raise_priority=True)

    def add_items(self, ids: Iterable[int], *, priority: int = 0, now: datetime) -> int:
        """Add the ids not yet known as ``pending``; returns how many were new. Known ids are left as they are.

        :meth:`enqueue` without the reprioritising; streams ``ids`` in batches the same way.
        """
        return self._enqueue(ids, priority=priority, now=now, raise_priority=False).added

    def _enqueue(self, ids: Iterable[int], *, priority: int, now: datetime, raise_priority: bool) -> EnqueueResult:
        require_aware(now)
        priority_arg(priority)
        result = EnqueueResult()
        iterator = iter(ids)
        while batch := [num_iid_arg(i) for i in itertools.islice(iterator, ADD_BATCH)]:
            result += self._enqueue_batch(batch, priority, now, raise_priority)
        return result

    @retry_on_race
    def _enqueue_batch(self, batch: list[int], priority: int, now: datetime, raise_priority: bool) -> EnqueueResult:
        given = collections.Counter(batch)  # the unique ids in first-seen order, with how often each was given
        with self._engine.begin() as connection:
            lock_for_writing(connection, QUEUE_LOCK)
            known = _queue_places(connection, list(given))
            new = [num_iid for num_iid in given if num_iid not in known]
            raised = [
                num_iid
                for num_iid, (state, old) in known.items()
                if raise_priority and state in _WAITING and old < priority
            ]
            for chunk in slices(raised, READ_CHUNK):
                connection.execute(
                    update(Item).where(Item.num_iid.in_(chunk)).values(priority=priority, updated_at=now)
                )
            if new:
                _insert_pending(connection, new, priority, now)
        finished = {num_iid for num_iid, (state, _) in known.items() if state not in _WAITING}
        repeats_done = sum(given[num_iid] - 1 for num_iid in finished)
        return EnqueueResult(
            added=len(new),
            reprioritised=len(raised),
            already_queued=len(known) - len(finished) - len(raised) + len(batch) - len(given) - repeats_done,
            already_done=len(finished) + repeats_done,
        )

    # ---- reading

    def queue_page(self, *, states: Sequence[str] | None = None, limit: int = 50, offset: int = 0) -> list[ItemRow]:
        """Items in queue order (priority DESC, then insertion order), optionally only those in ``states``."""
        query = select(*ITEM_ROW_COLUMNS).order_by(*QUEUE_ORDER).limit(count_arg("limit", limit))
        query = query.offset(count_arg("offset", offset))
        if states is not None:
            query = query.where(Item.state.in_([ItemState(state).value for state in states]))
        with self._engine.connect() as connection:
            return [item_row(row._mapping) for row in connection.execute(query)]

    def counts_by_state(self) -> dict[str, int]:
        """How many items are in each state (every state present, zeros included)."""
        counts = {state.value: 0 for state in ItemState}
        with self._engine.connect() as connection:
            for state, count in connection.execute(select(Item.state, func.count()).group_by(Item.state)):
                counts[state] = count
        return counts

    def queue_stats(self) -> dict[str, int]:
        """Items per state, ``deferred`` (waiting rows a run left for later: pending or resolved with
        ``deferred_at`` set) and ``total``, in that order."""
        counts = self.counts_by_state()
        waiting = Item.state.in_([ItemState.PENDING.value, ItemState.RESOLVED.value])
        query = select(func.count()).select_from(Item).where(waiting, Item.deferred_at.is_not(None))
        with self._engine.connect() as connection:
            deferred = int(connection.scalar(query) or 0)
        return {**{state: counts[state] for state in STATE_NAMES}, "deferred": deferred, "total": sum(counts.values())}

    def next_lookups(self, limit: int) -> list[int]:
        """The first ``limit`` pending ids in queue order: the only ones a run must spend a call on."""
        return self._ids_in_state(ItemState.PENDING, count_arg("limit", limit))

    def awaiting_download(self, limit: int | None = None) -> list[int]:
        """Resolved ids (looked up, not downloaded yet) in queue order; all of them unless ``limit``."""
        return self._ids_in_state(ItemState.RESOLVED, None if limit is None else count_arg("limit", limit))

    def _ids_in_state(self, state: ItemState, limit: int | None) -> list[int]:
        query = select(Item.num_iid).where(Item.state == state.value).order_by(*QUEUE_ORDER).limit(limit)
        with self._engine.connect() as connection:
            return list(connection.scalars(query))

    # ---- removing

    def remove_items(self, ids: Iterable[int]) -> RemoveResult:
        """Delete these ids from the queue; says how many were removed, kept and not in the queue at all.

        Items with a downloaded video (state ``done``, or a ``videos`` row after a failed forced re-download) are
        kept: their files stay on disk and the catalog keeps describing them.
        """
        removed = kept = unknown = 0
        shown: list[int] = []
        downloaded = or_(
            Item.state == ItemState.DONE.value, exists().where(Video.num_iid == Item.num_iid).correlate(Item)
        )
        for batch in chunks(ids, ADD_BATCH):
            with self._engine.begin() as connection:
                for chunk in slices(list(dict.fromkeys(batch)), READ_CHUNK):
                    mine = Item.num_iid.in_(chunk)
                    present = set(connection.scalars(select(Item.num_iid).where(mine)))
                    gone = connection.execute(delete(Item).where(mine, not_(downloaded))).rowcount
                    removed, kept = removed + gone, kept + len(present) - gone
                    missing = [num_iid for num_iid in chunk if num_iid not in present]
                    unknown += len(missing)
                    shown += missing[: UNKNOWN_SHOWN - len(shown)]
        return RemoveResult(removed, kept, unknown, tuple(shown))


def _queue_places(connection: Connection, ids: list[int]) -> dict[int, tuple[str, int]]:
    """State and priority of the known ids among ``ids``."""
    rows = select_by_ids(connection, (Item.num_iid, Item.state, Item.priority), Item.__table__.c.num_iid, ids)
    return {row[0]: (row[1], row[2]) for row in rows}


def _insert_pending(connection: Connection, ids: list[int], priority: int, now: datetime) -> None:
    # max(seq) once per batch, under the queue lock: one probe of the unique index on seq.
    last = int(connection.scalar(select(func.coalesce(func.max(Item.seq), 0))) or 0)
    # In the order given: seq then grows with the table, so the two indexes on it are appended to; only the
    # primary key takes the ids where they fall (sorting by id would scatter both seq indexes instead).
    rows = list(zip(ids, range(last + 1, last + 1 + len(ids)), strict=True))
    shared = {
        "state": ItemState.PENDING.value,
        "priority": priority,
        "attempts": 0,
        "lookups": 0,
        "added_at": now,
        "updated_at": now,
    }
    insert_rows(connection, Item.__table__, shared, ("num_iid", "seq"), rows)
