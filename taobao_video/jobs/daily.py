"""The daily run: work through the queue a quota's worth at a time.

Ids looked up earlier but not yet downloaded are downloaded first; they cost no call, so they proceed even when
no call is left. Then pending ids, in priority then insertion order, as many as today's calls allow (what the
ledger has left after ``quota.reserve``, capped by ``--max-calls``). The harvest job does the rest, claiming the
ids a batch at a time (``worklist.QueueSource``), so several daily runs on different machines can share one queue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from taobao_video.jobs.harvest import Harvester, HarvestReport
from taobao_video.store.catalog import Catalog


@dataclass
class DailyReport:
    """The harvest's report plus where the queue stands afterwards."""

    harvest: HarvestReport
    pending: int
    awaiting_download: int
    calls_per_day: int

    @property
    def remaining(self) -> int:
        return self.pending + self.awaiting_download

    @property
    def days_left(self) -> int | None:
        """Quota days still needed for the pending ids at this pace (None when no call is allowed per day)."""
        if self.pending == 0:
            return 0
        return math.ceil(self.pending / self.calls_per_day) if self.calls_per_day > 0 else None

    @property
    def exit_code(self) -> int:
        if self.remaining and self.harvest.stopped != "fatal":
            return 75
        if self.harvest.failed:
            return 1
        return 0 if not self.harvest.bad_lines else 2

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.harvest.as_dict(),
            "remaining": self.remaining,
            "pending": self.pending,
            "awaiting_download": self.awaiting_download,
            "days_left": self.days_left,
        }


def run_daily(job: Harvester, catalog: Catalog, *, max_calls: int | None = None) -> DailyReport:
    """Harvest from the queue until this run can do no more; the report says how much is left and how many days
    that is. Other workers may share the queue: the calls left are the app ledgers' (shared), capped by what
    ``max_calls`` still allows this run."""
    if max_calls is not None:
        job.book.cap = max_calls

    def calls_left() -> int:
        left = job.apps.remaining()
        cap = job.book.left()
        return left if cap is None else min(left, cap)

    report = job.run_queue(calls_left=calls_left)
    stats = catalog.queue_stats()
    status = job.apps.status()
    per_day = status.daily_limit - status.reserve
    if max_calls is not None:
        per_day = min(per_day, max_calls)
    return DailyReport(report, pending=stats["pending"], awaiting_download=stats["resolved"], calls_per_day=per_day)
