"""Work claims: which worker is on which queued id, and until when.

Several harvesters, on one machine or many, share one catalog. A worker claims ids before it looks them up or
downloads them: ``items.claimed_by`` names the worker and ``items.lease_until`` says until when the claim holds.
Other workers pass claimed ids by; a claim whose lease has run out is free again, so the ids of a worker that died
go to the others after at most one lease. A live worker keeps its claims by renewing them (:class:`LeaseKeeper`,
every third of the lease). Recording an id's outcome ends its claim, except ``resolved``: a resolved id is downloaded
next by the same worker (the claim rule, decided once in ``items.py``); a run releases whatever it leaves
unfinished. This module takes, renews and releases claims; a release and an outcome end a claim with the same
write, ``items.CLAIM_ENDED``.

Taking ids from the queue is one statement, atomic on both databases::

    WITH picked AS MATERIALIZED (
        SELECT num_iid FROM items WHERE state = :state AND (lease_until IS NULL OR lease_until <= :now)
        ORDER BY priority DESC, seq LIMIT :n FOR UPDATE SKIP LOCKED)
    UPDATE items SET claimed_by = :me, lease_until = :now + :lease
     WHERE num_iid IN (SELECT num_iid FROM picked) RETURNING num_iid, priority, seq

On PostgreSQL concurrent claimers skip the rows another claim is locking instead of waiting for them, a row claimed
and committed meanwhile is re-checked and left out, and the CTE runs once (MATERIALIZED), so the LIMIT bounds what
is taken. SQLite has no FOR UPDATE (SQLAlchemy leaves it out there) and needs none: a writing statement takes the
database's write lock before it reads, so claims run one after another.

Leases are judged by each worker's clock (the injected ``clock``): hosts that share a catalog need clocks that agree
to well within a lease, which NTP gives.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType

from sqlalchemy import BindParameter, ColumnElement, Engine, and_, bindparam, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from taobao_video.model import ItemState
from taobao_video.store.catalog import Catalog, engine_of
from taobao_video.store.common import READ_CHUNK
from taobao_video.store.items import CLAIM_ENDED
from taobao_video.store.schema import QUEUE_ORDER, Item

log = logging.getLogger(__name__)


def new_worker_id() -> str:
    """``host:pid:random``: names the worker in the catalog and in messages; the random part tells apart two
    runs that got the same pid (a container restarted, a pid reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Holder:
    """Who holds a claim, and until when (aware UTC)."""

    worker: str
    lease_until: datetime


def _free(now: datetime | BindParameter[datetime]) -> ColumnElement[bool]:
    """Nobody holds the item at ``now``: never claimed, released, or its lease ran out."""
    return or_(Item.lease_until.is_(None), Item.lease_until <= now)


# claim_ids' statement, built once: a run claims its list a few ids at a time, and building the statement each time
# cost more than running it
_CLAIM_IDS = (
    update(Item)
    .where(
        Item.num_iid.in_(bindparam("ids", expanding=True)),
        or_(_free(bindparam("now")), Item.claimed_by == bindparam("worker")),
    )
    .values(claimed_by=bindparam("worker"), lease_until=bindparam("until"))
    .returning(Item.num_iid)
)


class WorkClaims:
    """One worker's claims on the queue. Thread-safe: each method is one short transaction.

    ``lease`` is how long a claim holds without renewal; ``clock`` returns aware datetimes.
    """

    def __init__(
        self,
        store: Catalog | Engine,
        *,
        lease: timedelta,
        clock: Callable[[], datetime],
        worker: str | None = None,
    ) -> None:
        if lease <= timedelta(0):
            raise ValueError(f"the lease must be positive, got {lease}")
        self._engine = engine_of(store)
        self.lease = lease
        self.clock = clock
        self.worker = worker or new_worker_id()

    def claim(self, state: ItemState, limit: int) -> list[int]:
        """Take up to ``limit`` unclaimed (or expired) ids in ``state``, first in queue order; returns them in
        that order."""
        if limit <= 0:
            return []
        now = self.clock()
        picked = (
            select(Item.num_iid)
            .where(Item.state == ItemState(state).value, _free(now))
            .order_by(*QUEUE_ORDER)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("picked")
            .prefix_with("MATERIALIZED")
        )
        statement = (
            update(Item)
            .where(Item.num_iid.in_(select(picked.c.num_iid)))
            .values(claimed_by=self.worker, lease_until=now + self.lease)
            .returning(Item.num_iid, Item.priority, Item.seq)
        )
        with self._engine.begin() as connection:
            rows = connection.execute(statement).all()
        return [num_iid for num_iid, _, _ in sorted(rows, key=lambda row: (-row[1], row[2]))]

    def claim_ids(self, ids: Iterable[int]) -> tuple[list[int], dict[int, Holder]]:
        """Claim these ids, whatever their state: returns (taken, in the order given; held by other workers).

        An id this worker holds already is taken again (its lease renewed). Ids not in the catalog are in
        neither: add them first.
        """
        wanted = list(dict.fromkeys(ids))
        taken: set[int] = set()
        now = self.clock()
        values = {"worker": self.worker, "now": now, "until": now + self.lease}
        for start in range(0, len(wanted), READ_CHUNK):
            with self._engine.begin() as connection:
                taken.update(connection.scalars(_CLAIM_IDS, {**values, "ids": wanted[start : start + READ_CHUNK]}))
        others = [num_iid for num_iid in wanted if num_iid not in taken]
        return [num_iid for num_iid in wanted if num_iid in taken], self.holders(others) if others else {}

    def holders(self, ids: Iterable[int]) -> dict[int, Holder]:
        """The live claims among ``ids``, by id (whoever holds them, this worker included)."""
        found: dict[int, Holder] = {}
        now = self.clock()
        wanted = list(ids)
        with self._engine.connect() as connection:
            for start in range(0, len(wanted), READ_CHUNK):
                query = select(Item.num_iid, Item.claimed_by, Item.lease_until).where(
                    Item.num_iid.in_(wanted[start : start + READ_CHUNK]), Item.lease_until > now
                )
                for num_iid, worker, until in connection.execute(query):
                    if worker is not None and until is not None:  # a lease is only ever set with its worker
                        found[num_iid] = Holder(worker, until)
        return found

    def renew(self) -> int:
        """Extend every live claim of this worker by a lease from now; returns how many.

        A claim that has already run out is not renewed: another worker may have taken the id by now. On
        PostgreSQL the rows a transaction of this run is writing (its group commit recording them done) are passed
        by (``SKIP LOCKED``) rather than waited for: waiting locked the rows in another order than the commit's,
        a deadlock, and they are being finished anyway (a rolled-back commit's rows get the next beat's renewal).
        """
        now = self.clock()
        mine = (
            select(Item.num_iid)
            .where(Item.claimed_by == self.worker, Item.lease_until > now)
            .with_for_update(skip_locked=True)
        )
        statement = update(Item).where(Item.num_iid.in_(mine.scalar_subquery())).values(lease_until=now + self.lease)
        with self._engine.begin() as connection:
            return int(connection.execute(statement).rowcount)

    def release(self, ids: Iterable[int]) -> int:
        """End this worker's claims on ``ids`` (ids a run leaves unfinished); returns how many it held."""
        wanted = list(dict.fromkeys(ids))
        released = 0
        for start in range(0, len(wanted), READ_CHUNK):
            mine = and_(Item.claimed_by == self.worker, Item.num_iid.in_(wanted[start : start + READ_CHUNK]))
            released += self._clear(mine)
        return released

    def release_all(self) -> int:
        """End every claim of this worker (the end of a run); returns how many."""
        return self._clear(Item.claimed_by == self.worker)

    def clear_all(self) -> int:
        """End every claim in the catalog, whoever holds it; returns how many.

        Only for a run that holds the per-catalog lock (SQLite): the lock proves no other worker is alive, so
        every claim it finds was left by a run that was killed.
        """
        return self._clear(Item.claimed_by.is_not(None))

    def _clear(self, which: ColumnElement[bool]) -> int:
        statement = update(Item).where(which).values(CLAIM_ENDED)
        with self._engine.begin() as connection:
            return int(connection.execute(statement).rowcount)

    def others_expire_at(self, state: ItemState) -> datetime | None:
        """When the first live claim of another worker on an id in ``state`` runs out (None: there is none).

        A run with nothing left to claim waits that long at most: by then the holder has finished those ids,
        renewed its claim (it is alive), or lost it to whoever claims next (it died).
        """
        now = self.clock()
        query = select(Item.lease_until).where(
            Item.state == ItemState(state).value,
            Item.claimed_by.is_not(None),
            Item.claimed_by != self.worker,
            Item.lease_until > now,
        )
        with self._engine.connect() as connection:
            return connection.scalar(query.order_by(Item.lease_until).limit(1))


class LeaseKeeper:
    """``with LeaseKeeper(claims, every=s):`` renews the worker's claims every ``every`` seconds on a daemon
    thread until the block ends. A failed renewal (the database unreachable for a moment) is logged and tried
    again at the next beat; a third of the lease leaves two more beats before any claim runs out."""

    def __init__(
        self,
        claims: WorkClaims,
        *,
        every: float,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.claims = claims
        self.every = every
        self.on_error = on_error or (
            lambda exc: log.warning("renewing the claims of %s failed: %s", claims.worker, exc)
        )
        self.beats = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.claims.renew()
            except SQLAlchemyError as exc:
                self.on_error(exc)
            self.beats += 1
