"""The harvest pipeline: claimed work → lookups (paced, on this thread) → downloads (a pool of threads) → rows.

Lookups run on the calling thread, paced to ``qps``, each reserving its call in the quota ledger first; videos go
to a bounded pool of download threads as soon as they resolve. A row is written to ``videos`` only after its file
is complete, verified, renamed into place and durable: the download threads hand finished files to a group commit
(``commit.py``: the files and their folder synced, the rows recorded, a batch at a time in one transaction).

The run stops taking lookups when the quota is spent, on a frequency ban too long to wait, when the gateway cannot
be reached, on an error that needs the user (authorisation, configuration: the report carries it), or when ``stop``
is set (Ctrl-C, SIGTERM): what was not done is counted as deferred and stays in the catalog for the next run. Once
``stop`` is set, transfers in flight are cut off and parked. A full disk (or less free space than
``min_free_bytes`` before a lookup) sets ``stop`` too: no call is spent on a video that could not be stored.

Several harvesters may share the catalog: a run claims each id before it works on it (``store/claims.py``), a batch
at a time (``sources.py``), keeps its claims alive while it works and releases what it leaves, so no id is looked up
or downloaded by two of them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from taobao_video.errors import (
    BadResponseError,
    CallCapReached,
    ConfigError,
    DiskFull,
    DownloadError,
    DownloadStopped,
    GatewayUnreachable,
    QuotaExceeded,
    QuotaExhausted,
    RateLimited,
    StorageError,
    TaobaoVideoError,
    UrlExpired,
)
from taobao_video.fetch.downloader import Downloader
from taobao_video.fetch.space import check_room
from taobao_video.jobs.accounting import CallBook
from taobao_video.jobs.commit import GroupCommit
from taobao_video.jobs.interrupt import Abandoned, unless_stopped
from taobao_video.jobs.keep import Keeper
from taobao_video.jobs.media import Covers, checked_duration
from taobao_video.jobs.pace import Pace
from taobao_video.jobs.plan import Job, Plan, PlanOptions, make_plan, record_lookup
from taobao_video.jobs.record import Recorder
from taobao_video.jobs.report import HarvestReport
from taobao_video.jobs.sharing import Sharing
from taobao_video.jobs.sources import Batch, ListSource, QueueSource
from taobao_video.model import FailureKind, Outcome, StopReason
from taobao_video.storage import Storage
from taobao_video.store.catalog import Catalog
from taobao_video.store.claims import LeaseKeeper, WorkClaims
from taobao_video.top.apps import AppPool
from taobao_video.top.lookup import LookupResult
from taobao_video.top.providers.base import Provider
from taobao_video.top.providers.item import ItemProvider

log = logging.getLogger(__name__)

# Lookups claimed at a time: about ten seconds' worth at the run's pace (20 at the default 2 per second), at most
# 50, so that workers sharing the queue take turns and a dead worker's batch is small.
_LOOKUP_BATCH_S = 10
_MAX_LOOKUP_BATCH = 50
_DOWNLOAD_RECHECK_S = 1.0  # while lookups go on, look for stored URLs to download no more often than this
_CUT_OFF_EVERY_S = 0.1  # how often the stop watcher looks for a stop, and cuts off answers that arrive after it

Event = dict[str, Any]


@dataclass(frozen=True)
class HarvestOptions:
    plan: PlanOptions = field(default_factory=PlanOptions)
    qps: float = 2.0
    duration_tolerance_s: float = 1.5
    workers: int = 8
    min_free_bytes: int = 0  # no lookup while the videos folder has less free space than this


class Harvester:
    """Runs one harvest over a list of ids or the queue. Build it with ``wiring.harvester``; call ``run`` or
    ``run_queue`` once."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        apps: AppPool,
        downloader: Downloader,
        book: CallBook,
        claims: WorkClaims,
        base_dir: Path,
        options: HarvestOptions,
        clock: Callable[[], datetime],
        exclusive: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        stop: threading.Event | None = None,
        on_event: Callable[[Event], None] = lambda event: None,
        on_bytes: Callable[[int], None] = lambda n: None,
        provider: Provider | None = None,
        covers: Covers | None = None,
        sharing: Sharing | None = None,
        storage: Storage | None = None,
    ) -> None:
        self.catalog, self.apps, self.downloader = catalog, apps, downloader
        # how ids are resolved (a batch per call for the seller channel); ``apps`` is the quota it spends
        self.provider: Provider = provider or ItemProvider(apps)
        self.covers = covers  # None: no cover is fetched (covers/ lives beside the videos folder)
        self.book, self.claims, self.base_dir, self.options = book, claims, base_dir, options
        self.exclusive = exclusive  # the caller holds the per-catalog lock (SQLite): no other worker is alive
        self.clock, self.sleep, self.monotonic = clock, sleep, monotonic
        self.stop = stop or threading.Event()
        self.on_event, self.on_bytes = on_event, on_bytes
        self.report = HarvestReport()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._relookups: deque[int] = deque()  # ids whose URL expired, to look up again in this run
        self._relooked: set[int] = set()  # ids already looked up again in this run
        self._deferred: list[int] = []
        self._pace = Pace(self.options.qps, sleep, monotonic)
        self._taken = 0
        self.storage = storage  # object storage (download.dir = "s3://…"); None: the folder is the home
        self.recorder = Recorder(
            base_dir=base_dir, dest_dir=downloader.dest_dir, clock=clock, count=self._count, add_bytes=self._add_bytes,
            covers=covers, sharing=sharing,
        )  # fmt: skip

    # -- the run ----------------------------------------------------------------------------------------------

    def run(self, ids: list[int]) -> HarvestReport:
        """Harvest the ids given (``harvest``), each claimed first; ids another worker is on are left to it."""
        started = self.monotonic()
        ids = list(dict.fromkeys(ids))
        self.report.requested = len(ids)
        self.catalog.add_items(ids, now=self.clock())
        plan = self._plan(ids)
        self._announce(len(ids), downloads=len(plan.downloads), lookups=len(plan.lookups), skipped=len(plan.skipped))
        for num_iid, reason in plan.skipped:
            self._count(Outcome.SKIPPED, num_iid, detail=reason)
        # Alone on the catalog (the lock), the plan stands; shared, each claimed batch is planned again, as another
        # worker may have done some of it since.
        source = ListSource(plan, claims=self.claims, replan=None if self.exclusive else self._plan)
        return self._run(source, started, cover_ids=ids)

    def run_queue(self, *, calls_left: Callable[[], int]) -> HarvestReport:
        """Work through the queue (the daily run): resolved ids first, then pending ones while ``calls_left()``
        allows, claimed a batch at a time alongside any other workers."""
        started = self.monotonic()
        stats = self.catalog.queue_stats()
        lookups = min(stats["pending"], self.provider.ids_for(calls_left()))
        self._announce(stats["resolved"] + lookups, downloads=stats["resolved"], lookups=lookups, skipped=0)
        ids_for, plan = self.provider.ids_for, self._plan  # how many ids the calls left resolve
        source = QueueSource(claims=self.claims, planner=plan, calls_left=calls_left, clock=self.clock, ids_for=ids_for)
        report = self._run(source, started)
        report.requested = self._taken
        return report

    def _plan(self, ids: list[int]) -> Plan:
        if not ids:
            return Plan()
        return make_plan(ids, self.catalog, now=self.clock(), base_dir=self.base_dir, options=self.options.plan)

    def _announce(self, ids: int, *, downloads: int, lookups: int, skipped: int) -> None:
        self.on_event(
            {
                "event": "plan",
                "ids": ids,
                "lookups": lookups,
                "downloads": downloads,
                "skipped": skipped,
                "quota_remaining": self.apps.remaining(),
            }
        )

    def _run(
        self, source: ListSource | QueueSource, started: float, cover_ids: list[int] | None = None
    ) -> HarvestReport:
        if self.storage is not None:  # a killed run's unfinished uploads; alone on the catalog, all of them
            self.storage.clean_debris(older_than_s=0 if self.exclusive else self.claims.lease.total_seconds())
        if self.exclusive:
            self.claims.clear_all()  # left by a run that was killed: the lock proves no other run is alive
        keeper = LeaseKeeper(self.claims, every=self.claims.lease.total_seconds() / 3, on_error=self._renewal_failed)
        done = threading.Event()
        threading.Thread(target=self._cut_off_on_stop, args=(done,), name="stop-watch", daemon=True).start()
        try:
            pool = ThreadPoolExecutor(self.options.workers, thread_name_prefix="download")
            commits = GroupCommit(lambda rows: self.catalog.record_videos(rows, now=self.clock()))
            self.recorder.keeper = Keeper(commits, self.storage)
            try:
                with keeper:
                    self._work(source, pool)
                    if self.covers is not None:  # covers still missing, from their stored URL: no call
                        self.covers.submit_backlog(
                            pool, cover_ids, self.recorder.covered, self.stop, self.on_event, self.claims
                        )
            except BaseException:  # a second Ctrl-C or a failure: leave, without waiting for the transfers
                pool.shutdown(wait=False, cancel_futures=True)
                commits.close()  # the files already finished are still recorded
                raise
            finally:
                done.set()
            pool.shutdown()
            commits.close()
            for num_iid in source.untaken():
                self._count(Outcome.DEFERRED, num_iid, detail=self.report.stopped or StopReason.SIGNAL)
            if self._deferred:
                self.catalog.mark_deferred(self._deferred, now=self.clock())
        finally:
            self.claims.release_all()
        if self.stop.is_set() and self.report.deferred and self.report.stopped is None:
            self.report.stopped = StopReason.SIGNAL
        self.report.api_calls = self.book.calls
        self.report.quota_remaining = self.apps.remaining()
        self.report.seconds = self.monotonic() - started
        return self.report

    def _work(self, source: ListSource | QueueSource, pool: ThreadPoolExecutor) -> None:
        """Claim, look up and hand downloads to the pool until the source has nothing left for this run.

        Lookups run here, one at a time at the run's pace; a new batch of them is claimed when the last is done.
        Downloads (stored URLs) are claimed whenever the pool runs short, at most every ``_DOWNLOAD_RECHECK_S``
        while lookups are going on. Only a stop request ends the downloads; a spent quota, the run's cap, a
        frequency ban, an unreachable gateway or a fatal error end the lookups.
        """
        lookups: deque[int] = deque()
        per_call = self.provider.batch_size
        calls = max(1, min(_MAX_LOOKUP_BATCH, int(self.options.qps * _LOOKUP_BATCH_S)))
        batch_size = max(1, self.provider.ids_for(calls))
        next_download_claim = 0.0
        while True:
            self._reclaim_relookups(lookups)
            took = False
            if not self.stop.is_set():
                if not lookups and self.report.stopped is None:
                    took |= self._take(source.take_lookups(batch_size), pool, lookups)
                room = 2 * self.options.workers - self._in_flight
                if self._in_flight < self.options.workers and (not lookups or time.monotonic() >= next_download_claim):
                    took |= self._take(source.take_downloads(room), pool, lookups)
                    next_download_claim = time.monotonic() + _DOWNLOAD_RECHECK_S
            if lookups and self.report.stopped is None and not self.stop.is_set():
                # one id at a time, or the whole claimed batch when a call resolves many: the provider groups them
                take = 1 if per_call == 1 else len(lookups)
                self._resolve([lookups.popleft() for _ in range(take)], pool)
                continue
            if lookups:
                self.report.stopped = self.report.stopped or StopReason.SIGNAL
                while lookups:
                    self._count(Outcome.DEFERRED, lookups.popleft(), detail=self.report.stopped)
            if took:
                continue
            with self._idle:
                if self._in_flight or self._relookups:
                    self._idle.wait(timeout=0.2)
                    continue
            wait = None if self.stop.is_set() else source.wait_s(lookups=self.report.stopped is None)
            if wait is None:
                return
            self.stop.wait(wait)

    def _take(self, batch: Batch, pool: ThreadPoolExecutor, lookups: deque[int]) -> bool:
        """Start on a claimed batch; False when it is empty."""
        if batch.empty:
            return False
        self._taken += batch.size
        for num_iid, holder in batch.held.items():
            until = holder.lease_until.strftime("%H:%M:%S UTC")
            self._count(
                Outcome.DEFERRED,
                num_iid,
                held=True,
                detail=f"another worker ({holder.worker}) is on it until {until}",
            )
        if batch.plan.skipped:
            self.claims.release([num_iid for num_iid, _ in batch.plan.skipped])
            for num_iid, reason in batch.plan.skipped:
                self._count(Outcome.SKIPPED, num_iid, detail=reason)
        for job in batch.plan.downloads:
            self._submit(pool, job)
        lookups.extend(batch.plan.lookups)
        return True

    def _reclaim_relookups(self, lookups: deque[int]) -> None:
        """Ids whose stored URL expired go back to the lookups, claimed again (recording the failure ended the
        claim, and another worker may have taken the id since)."""
        with self._lock:
            ids = list(self._relookups)
            self._relookups.clear()
        if not ids:
            return
        taken, held = self.claims.claim_ids(ids)
        lookups.extend(taken)
        for num_iid, holder in held.items():
            self._count(Outcome.DEFERRED, num_iid, held=True, detail=f"another worker ({holder.worker}) is on it")

    def _cut_off_on_stop(self, done: threading.Event) -> None:
        """Beside the run: once a stop is asked, cut off the transfers in flight (again and again, for answers
        that arrive meanwhile), so a stalled CDN cannot hold the stop for a read timeout and its retries."""
        while not done.wait(_CUT_OFF_EVERY_S):
            if self.stop.is_set():
                self.downloader.abort()

    def _renewal_failed(self, exc: Exception) -> None:
        self.on_event({"event": "warning", "detail": f"renewing this worker's claims failed, retrying: {exc}"})

    # -- lookups ----------------------------------------------------------------------------------------------

    def _pace_unless_stopped(self) -> None:
        """The provider's pace, on the thread that makes the call: a stop asked meanwhile sends nothing more."""
        self._pace()
        if self.stop.is_set():
            raise Abandoned

    def _resolve(self, ids: list[int], pool: ThreadPoolExecutor) -> None:
        """Resolve a batch through the provider, recording each result as it comes; what an error or a stop
        leaves unresolved is deferred (or failed, for an error that says nothing about the items)."""
        left = dict.fromkeys(ids)  # the ids still without an outcome, in order
        results = self.provider.resolve(ids, pace=self._pace_unless_stopped)
        try:
            while left:
                check_room(self.downloader.dest_dir, self.options.min_free_bytes)
                # a stop never waits on the gateway
                result = unless_stopped(lambda: next(results, None), self.stop)
                if result is None:
                    raise BadResponseError(f"the {self.provider.name} provider gave no answer for some ids")
                if left.pop(result.num_iid, 0) is None:  # each id once, whatever the provider says
                    self._record_result(result, pool)
        except Abandoned:  # the call may have reached the platform: the ledger keeps it counted
            for num_iid in left:
                self._count(Outcome.DEFERRED, num_iid, detail="stopped while waiting for the gateway")
        except DiskFull as exc:
            self._stop_for(exc, StopReason.DISK_FULL, *left)
        except CallCapReached:
            self._halt(StopReason.MAX_CALLS, *left)
        except (QuotaExhausted, QuotaExceeded) as exc:  # the pool has already recorded which app is spent
            self._halt(StopReason.QUOTA, *left, resets_at=exc.reset_at)
        except RateLimited as exc:
            self._halt(StopReason.RATE_LIMITED, *left, detail=str(exc))
        except GatewayUnreachable as exc:  # the breaker opened: nothing more is sent this run
            self.report.unreachable_since = self.report.unreachable_since or exc.since
            self._halt(StopReason.UNREACHABLE, *left, detail=str(exc))
        except TaobaoVideoError as exc:
            if exc.needs_user:
                self.report.error = exc
                self._halt(StopReason.FATAL, *left, detail=str(exc))
            else:
                for num_iid in left:
                    self.catalog.mark_lookup_failed(num_iid, error=str(exc), now=self.clock())
                    self._count(Outcome.FAILED, num_iid, error_kind=FailureKind.LOOKUP, detail=str(exc))

    def _record_result(self, result: LookupResult, pool: ThreadPoolExecutor) -> None:
        job = record_lookup(self.catalog, result, now=self.clock())
        if job is not None:
            self._submit(pool, job)
        else:
            self._count(Outcome(result.outcome), result.num_iid, detail=result.detail)

    def _halt(self, why: StopReason, *ids: int, resets_at: datetime | None = None, detail: str = "") -> None:
        """Stop taking lookups; ``ids`` (those of the batch still without an outcome) are deferred."""
        with self._lock:  # a download thread may halt the run (a full disk) while the lookups do
            first = self.report.stopped is None
            if first:
                self.report.stopped = why
                self.report.quota_resets_at = resets_at
        if first:
            self.on_event(
                {
                    "event": "stop",
                    "reason": why.value,
                    "resets_at": resets_at.isoformat() if resets_at else None,
                    "detail": detail,
                }
            )
        for num_iid in ids:
            self._count(Outcome.DEFERRED, num_iid, detail=why)

    def _stop_for(self, exc: TaobaoVideoError, reason: StopReason, *ids: int) -> None:
        """Stop as Ctrl-C would (no more lookups, transfers parked) because of ``exc``: no room for videos
        (DiskFull, 75), or an upload failed (StorageError, 75; ConfigError, 78). The report carries the error, whose
        exit code is the run's; ``ids`` keep their state and URL: the next run, ``daily`` too, goes on without a
        call."""
        with self._lock:
            self.report.error = self.report.error or exc
        self.stop.set()
        self._halt(reason, *ids, detail=str(exc))

    # -- downloads --------------------------------------------------------------------------------------------

    def _submit(self, pool: ThreadPoolExecutor, job: Job) -> None:
        with self._lock:
            self._in_flight += 1
        pool.submit(self._download, job)

    def _download(self, job: Job) -> None:
        try:
            self.recorder.download(job, self._fetch_and_record)
        except Exception as exc:  # a bug or a database failure must not vanish in a worker thread
            log.exception("download of %s failed unexpectedly", job.num_iid)
            detail = f"{type(exc).__name__}: {exc}"
            self._count(Outcome.FAILED, job.num_iid, error_kind=FailureKind.INTERNAL, detail=detail)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _fetch_and_record(self, job: Job) -> None:
        try:
            result = self.downloader.fetch(
                job.url,
                num_iid=job.num_iid,
                name=f"{job.num_iid}.mp4",
                on_progress=self.on_bytes,
                should_stop=self.stop.is_set,
            )
            duration = checked_duration(job, result.path, self.options.duration_tolerance_s, self.on_event)
        except DownloadStopped as exc:
            self._parked(exc.bytes_fetched)
            self._count(Outcome.DEFERRED, job.num_iid, detail="stopped mid-download; partial file kept")
            return
        except DiskFull as exc:
            self._parked(exc.bytes_fetched)
            self._stop_for(exc, StopReason.DISK_FULL, job.num_iid)
            return
        except UrlExpired as exc:
            self.catalog.mark_failed(job.num_iid, error_kind=FailureKind.URL_EXPIRED, error=str(exc), now=self.clock())
            if job.video_id is not None:  # a URL the provider knew by its video: the fresh lookup must not reuse it
                self.provider.forget(job.video_id)
            with self._lock:
                again = job.num_iid not in self._relooked  # one fresh lookup per id per run, then it is a failure
                if again:
                    self._relooked.add(job.num_iid)
                    self._relookups.append(job.num_iid)  # a fresh lookup gives a fresh signed URL
            if not again:
                self._count(Outcome.FAILED, job.num_iid, error_kind=FailureKind.URL_EXPIRED, detail=str(exc))
            return
        except DownloadError as exc:
            with self._lock:
                self.report.bytes += exc.bytes_fetched
            self.catalog.mark_failed(job.num_iid, error_kind=exc.reason, error=str(exc), now=self.clock())
            self._count(Outcome.FAILED, job.num_iid, error_kind=exc.reason, detail=str(exc))
            return
        try:  # the row is committed once the file (or object) is durable, in a batch with others (jobs/commit.py)
            self.recorder.record(job, result, duration, warn=lambda detail: self._warn(job.num_iid, detail))
        except (StorageError, ConfigError) as exc:  # the bucket failed or refused us: stop; the item keeps its URL
            reason = StopReason.STORAGE if isinstance(exc, StorageError) else StopReason.FATAL
            self._stop_for(exc, reason, job.num_iid)

    def _warn(self, num_iid: int, detail: str) -> None:
        self.on_event({"event": "warning", "num_iid": num_iid, "detail": detail})

    def _add_bytes(self, count: int) -> None:
        with self._lock:
            self.report.bytes += count

    def _parked(self, count: int) -> None:
        """Bytes of a download parked in its ``.part``: fetched by this run, finished by a later one."""
        with self._lock:
            self.report.bytes += count
            self.report.partial_bytes += count

    # -- accounting -------------------------------------------------------------------------------------------

    def _count(self, outcome: Outcome, num_iid: int, *, held: bool = False, **details: Any) -> None:
        """Count one id's outcome and tell the listener; ``held``: deferred because another worker is on it
        (which is not this run's "later", so the catalog does not mark it)."""
        with self._lock:
            self.report.add(outcome)
            if held:
                self.report.held += 1
            elif outcome is Outcome.DEFERRED:
                self._deferred.append(num_iid)
        self.on_event(
            {
                "event": "item",
                "num_iid": num_iid,
                "outcome": outcome.value,
                **{k: str(v) if isinstance(v, str) else v for k, v in details.items() if v not in (None, "")},
            }
        )
