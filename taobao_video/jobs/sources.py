"""Where a run's work comes from, claimed a batch at a time: a list of ids given now, or the queue.

Several workers may share the catalog (``store/claims.py``), so a run never decides what to do with an id it has not
claimed: it claims a batch, plans the batch from the catalog as it now stands (another worker may have finished
some of it meanwhile), works through it, and claims the next. Both sources hand out work that needs no call
(a stored URL to download) separately from lookups, so the harvester can keep its download threads busy while
the quota, the run's cap or a stop decides whether any more lookups are taken.

:class:`ListSource` is ``harvest IDS``: the ids given, in the order given, downloads first. Ids another live
worker holds are left to it and reported. :class:`QueueSource` is the daily run: resolved ids first (no call
needed), then pending ones in queue order, never more than the calls left; when nothing is claimable but other
workers hold ids this run could do, it waits for them rather than finish early, and picks up the ids of a worker
that died once their lease runs out.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable
from datetime import datetime

from taobao_video.jobs.plan import Plan
from taobao_video.model import ItemState
from taobao_video.store.claims import Holder, WorkClaims

Planner = Callable[[list[int]], Plan]

# A run with nothing to claim that waits on other workers' claims looks again at least this often (seconds): a
# holder that finishes its ids or releases them on a stop is noticed within it. One indexed query per look.
POLL_S = 0.5


@dataclasses.dataclass
class Batch:
    """Claimed work, planned: what to download, look up or skip, and the ids other workers hold."""

    plan: Plan
    held: dict[int, Holder] = dataclasses.field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.plan.downloads or self.plan.lookups or self.plan.skipped or self.held)

    @property
    def size(self) -> int:
        return len(self.plan.downloads) + len(self.plan.lookups) + len(self.plan.skipped) + len(self.held)


class ListSource:
    """The ids of ``harvest``: those the first plan downloads, then those it looks up, claimed as they come.

    ``replan`` None: the run is alone on the catalog and the first plan stands for every claimed id. Otherwise each
    claimed batch is planned again (another worker may have done some of it since the first plan).
    """

    def __init__(self, plan: Plan, *, claims: WorkClaims, replan: Planner | None) -> None:
        self.claims, self.replan = claims, replan
        self._jobs = {job.num_iid: job for job in plan.downloads}
        self._downloads, self._lookups = deque(self._jobs), deque(plan.lookups)

    def take_downloads(self, limit: int) -> Batch:
        return self._take(self._downloads, limit)

    def take_lookups(self, limit: int) -> Batch:
        return self._take(self._lookups, limit)

    def _take(self, ids: deque[int], limit: int) -> Batch:
        wanted = [ids.popleft() for _ in range(min(limit, len(ids)))]
        if not wanted:
            return Batch(Plan())
        taken, held = self.claims.claim_ids(wanted)
        if self.replan is not None:
            return Batch(self.replan(taken), held)
        downloads = [self._jobs[num_iid] for num_iid in taken if num_iid in self._jobs]
        lookups = [num_iid for num_iid in taken if num_iid not in self._jobs]
        return Batch(Plan(lookups=lookups, downloads=downloads), held)

    def untaken(self) -> list[int]:
        """The ids never claimed (what a stopped run leaves)."""
        return [*self._downloads, *self._lookups]

    def wait_s(self, *, lookups: bool) -> float | None:
        """A list run never waits for other workers: it reports what they hold."""
        return None


class QueueSource:
    """The queue: resolved ids, then pending ones while ``calls_left()`` allows; ``clock`` judges the leases."""

    def __init__(
        self,
        *,
        claims: WorkClaims,
        planner: Planner,
        calls_left: Callable[[], int],
        clock: Callable[[], datetime],
        ids_for: Callable[[int], int] = lambda calls: calls,
    ) -> None:
        self.claims, self.planner, self.calls_left, self.clock = claims, planner, calls_left, clock
        self.ids_for = ids_for  # how many ids N calls resolve with the run's provider

    def take_downloads(self, limit: int) -> Batch:
        return Batch(self.planner(self.claims.claim(ItemState.RESOLVED, limit)))

    def take_lookups(self, limit: int) -> Batch:
        limit = min(limit, self.ids_for(self.calls_left()))
        return Batch(self.planner(self.claims.claim(ItemState.PENDING, limit) if limit > 0 else []))

    def untaken(self) -> list[int]:
        return []  # what is not claimed stays in the queue, for another worker or the next run

    def wait_s(self, *, lookups: bool) -> float | None:
        """How long to wait before claiming again, when other workers hold ids this run could still do (pending
        ones only while it takes ``lookups`` and has calls left); None when they hold none: the run is finished."""
        states = [ItemState.RESOLVED] + ([ItemState.PENDING] if lookups and self.calls_left() > 0 else [])
        expiries = [at for state in states if (at := self.claims.others_expire_at(state)) is not None]
        if not expiries:
            return None
        until = (min(expiries) - self.clock()).total_seconds()
        return min(max(until, 0.05), POLL_S)
