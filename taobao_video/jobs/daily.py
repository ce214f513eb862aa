"""The daily run: work through the queue a quota's worth at a time.

Ids looked up earlier but not yet downloaded are downloaded first; they cost no call, so they proceed even when
no call is left. Then pending ids, in priority then insertion order, as many as today's calls allow (what the
ledger has left after ``quota.reserve``, capped by ``--max-calls``). The pipeline does the rest, claiming the
ids a batch at a time (``sources.QueueSource``), so several daily runs on different machines can share one queue.
"""

from __future__ import annotations

from taobao_video.jobs.pipeline import Harvester
from taobao_video.jobs.report import DailyReport


def run_daily(job: Harvester, *, max_calls: int | None = None) -> DailyReport:
    """Harvest from the queue until this run can do no more; the report says how much is left and how many days
    that is. Other workers may share the queue: the calls left are the app ledgers' (shared), capped by what the
    run's own cap (``job.book``, built with ``max_calls``) still allows."""

    def calls_left() -> int:
        left = job.apps.remaining()
        cap = job.book.left()
        return left if cap is None else min(left, cap)

    report = job.run_queue(calls_left=calls_left)
    stats = job.catalog.queue_stats()
    status = job.apps.status()  # summed over the apps; --max-calls caps this run only, not the days ahead
    per_day = status.daily_limit - status.reserve
    return DailyReport(
        report,
        pending=stats["pending"],
        awaiting_download=stats["resolved"],
        calls_per_day=per_day,
        ids_per_day=job.provider.ids_for(per_day),  # the seller lists 20 ids a call
    )
