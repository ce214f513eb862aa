"""The harvest job: plan → resolve (API) → download → record, pipelined, with a graceful stop.

Planning spends nothing: ids already in ``videos`` are skipped, ids known to have no video (or to be gone) are
not asked again until ``no_video_ttl`` passes, and ids resolved earlier whose download failed are downloaded from
their stored URL without a call. Lookups then run on this thread, paced to ``qps``, each reserving its call in the
quota ledger first; videos go to a bounded pool of download threads as soon as they resolve. A row is written to
``videos`` only after its file is complete, verified and renamed into place.

The run stops taking work when the quota is spent, on a frequency ban too long to wait, on an error that needs
the user (authorisation, configuration), or when ``stop`` is set (Ctrl-C, SIGTERM): what was not done is
counted as deferred and stays in the catalog for the next run.

Several harvesters may share the catalog: a run claims each id before it works on it (``claims.py``), a batch at a
time (``worklist.py``), keeps its claims alive while it works and releases what it leaves, so no id is looked up
or downloaded by two of them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from taobao_video.errors import (
    CallCapReached,
    DownloadError,
    DownloadStopped,
    GatewayUnreachable,
    QuotaExceeded,
    QuotaExhausted,
    RateLimited,
    TaobaoVideoError,
    UrlExpired,
)
from taobao_video.fetch.downloader import Downloader
from taobao_video.fetch.media import mp4_duration
from taobao_video.jobs.sources import Batch, ListSource, QueueSource
from taobao_video.model import UNSENT_CALL, ItemState, StopReason
from taobao_video.store.catalog import Catalog, ItemRow, VideoRow
from taobao_video.store.claims import LeaseKeeper, WorkClaims
from taobao_video.store.quota import QuotaLedger, QuotaStatus
from taobao_video.top.client import CallRecord
from taobao_video.top.lookup import Lookup

log = logging.getLogger(__name__)

# Lookups claimed at a time: about ten seconds' worth at the run's pace (20 at the default 2 per second), at most
# 50, so that workers sharing the queue take turns and a dead worker's batch is small.
_LOOKUP_BATCH_S = 10
_MAX_LOOKUP_BATCH = 50
_DOWNLOAD_RECHECK_S = 1.0  # while lookups go on, look for stored URLs to download no more often than this

Event = dict[str, Any]


@dataclass(frozen=True)
class Job:
    """A video to download: where from, and what the API said about it."""

    num_iid: int
    url: str
    cover_url: str | None
    api_duration: float | None
    width: int | None
    height: int | None
    api_method: str
    looked_up_now: bool = False


@dataclass
class Plan:
    lookups: list[int] = field(default_factory=list)
    downloads: list[Job] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class HarvestReport:
    """The run summary; the names of the fields are the ``--json`` summary's keys (design.md)."""

    requested: int = 0
    downloaded: int = 0
    skipped: int = 0
    no_video: int = 0
    not_found: int = 0
    failed: int = 0
    deferred: int = 0
    api_calls: int = 0
    quota_remaining: int | None = None
    bytes: int = 0
    seconds: float = 0.0
    stopped: str | None = None  # "quota", "max_calls", "rate_limited", "gateway_unreachable", "signal", "fatal"
    quota_resets_at: datetime | None = None
    unreachable_since: datetime | None = None  # stopped "gateway_unreachable": the first attempt without an answer
    bad_lines: int = 0
    held: int = 0  # ids another worker was on: left to it (counted in deferred too)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        data["quota_resets_at"] = self.quota_resets_at.isoformat() if self.quota_resets_at else None
        data["unreachable_since"] = self.unreachable_since.isoformat() if self.unreachable_since else None
        return data

    @property
    def exit_code(self) -> int:
        try_later = ("quota", "max_calls", "rate_limited", "gateway_unreachable", "signal")
        if (self.stopped in try_later and self.deferred) or self.held:
            return 75
        if self.bad_lines:
            return 2
        return 1 if self.failed else 0


@dataclass(frozen=True)
class HarvestOptions:
    force: bool = False
    qps: float = 2.0
    no_video_ttl: timedelta = timedelta(days=30)
    duration_tolerance_s: float = 1.5
    workers: int = 8


class CallBook:
    """The run's call accounting, hooked into each app's client: every attempt is reserved in that app's quota
    ledger before it is sent and written to the call log after; one that never left this machine (outcome
    ``unsent``) gets its reservation back and is not counted. The run's own cap (``--max-calls``) and count span
    every app. The hooks run on the one lookup thread, so the count needs no lock."""

    def __init__(self, catalog: Catalog, *, cap: int | None = None) -> None:
        self.catalog = catalog
        self.cap = cap  # the run's own limit (--max-calls), on top of the ledgers'
        self.calls = 0  # attempts that may have reached the platform; the call log has the unsent ones too

    def hooks(self, ledger: QuotaLedger) -> tuple[Callable[[str, object], None], Callable[[CallRecord], None]]:
        """The ``before_call`` and ``after_call`` hooks for the client of the app whose quota ``ledger`` counts."""
        day = ""

        def before_call(method: str, params: object) -> None:
            nonlocal day
            if self.cap is not None and self.calls >= self.cap:
                raise CallCapReached(f"this run may make at most {self.cap} calls (--max-calls)")
            day = ledger.reserve()
            self.calls += 1

        def after_call(record: CallRecord) -> None:
            if record.outcome == UNSENT_CALL:
                ledger.release(day)
                self.calls -= 1
            self.catalog.log_call(record, app_key=ledger.app_key, quota_day=day)

        return before_call, after_call

    def left(self) -> int | None:
        """Calls the run's own cap still allows (None: no cap)."""
        return None if self.cap is None else max(0, self.cap - self.calls)


class Apps(Protocol):
    """The app keys a run spends (``apps.AppPool``): lookups through them, and their quota together."""

    def lookup(self, num_iid: int) -> Lookup: ...

    def remaining(self) -> int: ...

    def status(self) -> QuotaStatus: ...


def make_plan(ids: Iterable[int], catalog: Catalog, *, now: datetime, base_dir: Path, options: HarvestOptions) -> Plan:
    """Decide per id: skip, download from a stored URL, or look up (the only choice that costs a call)."""
    ids = list(ids)
    items, videos = catalog.items(ids), catalog.videos(ids)
    plan = Plan()
    for num_iid in ids:
        video, item = videos.get(num_iid), items.get(num_iid)
        if video is not None:
            if not options.force and _file_intact(base_dir / video.video_path, video.size_bytes):
                plan.skipped.append((num_iid, "in the catalog"))
            else:
                plan.downloads.append(_job_from_video(video))
        elif item is not None and item.state in (ItemState.NO_VIDEO, ItemState.NOT_FOUND) and not options.force:
            if item.checked_at is not None and now - item.checked_at < options.no_video_ttl:
                plan.skipped.append((num_iid, f"{item.state.value} (checked {item.checked_at:%Y-%m-%d})"))
            else:
                plan.lookups.append(num_iid)
        elif item is not None and item.video_url and item.error_kind != "url_expired":
            plan.downloads.append(_job_from_item(item))
        else:
            plan.lookups.append(num_iid)
    return plan


def record_lookup(catalog: Catalog, result: Lookup, *, now: datetime) -> None:
    """Remember what a lookup found, so no later run pays for it again."""
    if result.outcome == "video" and result.video is not None:
        v = result.video
        catalog.mark_resolved(
            v.num_iid,
            video_url=v.url,
            cover_url=v.cover_url,
            api_duration=v.duration,
            width=v.width,
            height=v.height,
            api_method=v.api_method,
            now=now,
        )
    elif result.outcome == "no_video":
        catalog.mark_no_video(result.num_iid, api_method=result.api_method, now=now)
    else:
        catalog.mark_not_found(result.num_iid, detail=result.detail, api_method=result.api_method, now=now)


def _file_intact(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except OSError:
        return False


def _job_from_video(video: VideoRow) -> Job:
    return Job(
        video.num_iid, video.video_url, video.cover_url, video.duration, video.width, video.height, video.api_method
    )


def _job_from_item(item: ItemRow) -> Job:
    assert item.video_url is not None
    return Job(
        item.num_iid, item.video_url, item.cover_url, item.api_duration, item.width, item.height, item.api_method or ""
    )


class Harvester:
    """Runs one harvest over a list of ids. Build it with ``wiring.harvester``; call ``run`` once."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        apps: Apps,
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
    ) -> None:
        self.catalog, self.apps, self.downloader = catalog, apps, downloader
        self.book, self.claims, self.base_dir, self.options = book, claims, base_dir, options
        self.exclusive = exclusive  # the caller holds the per-catalog lock (SQLite): no other worker is alive
        self.clock, self.sleep, self.monotonic = clock, sleep, monotonic
        self.stop = stop or threading.Event()
        self.on_event, self.on_bytes = on_event, on_bytes
        self.report = HarvestReport()
        self.fatal: TaobaoVideoError | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._relookups: deque[int] = deque()
        self._deferred: list[int] = []
        self._next_lookup_at = 0.0
        self._taken = 0

    # -- the run ----------------------------------------------------------------------------------------------

    def run(self, ids: list[int]) -> HarvestReport:
        """Harvest the ids given (``harvest``), each claimed first; ids another worker is on are left to it."""
        started = self.monotonic()
        self.report.requested = len(ids)
        self.catalog.add_items(ids, now=self.clock())
        plan = self._plan(ids)
        self._announce(len(ids), downloads=len(plan.downloads), lookups=len(plan.lookups), skipped=len(plan.skipped))
        for num_iid, reason in plan.skipped:
            self._count("skipped", num_iid, detail=reason)
        downloads = [job.num_iid for job in plan.downloads]
        return self._run(ListSource(downloads, plan.lookups, claims=self.claims, planner=self._plan), started)

    def run_queue(self, *, calls_left: Callable[[], int]) -> HarvestReport:
        """Work through the queue (the daily run): resolved ids first, then pending ones while ``calls_left()``
        allows, claimed a batch at a time alongside any other workers."""
        started = self.monotonic()
        stats = self.catalog.queue_stats()
        lookups = min(stats["pending"], calls_left())
        self._announce(stats["resolved"] + lookups, downloads=stats["resolved"], lookups=lookups, skipped=0)
        source = QueueSource(claims=self.claims, planner=self._plan, calls_left=calls_left, clock=self.clock)
        report = self._run(source, started)
        report.requested = self._taken
        return report

    def _plan(self, ids: list[int]) -> Plan:
        if not ids:
            return Plan()
        return make_plan(ids, self.catalog, now=self.clock(), base_dir=self.base_dir, options=self.options)

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

    def _run(self, source: ListSource | QueueSource, started: float) -> HarvestReport:
        if self.exclusive:
            self.claims.clear_all()  # left by a run that was killed: the lock proves no other run is alive
        keeper = LeaseKeeper(self.claims, every=self.claims.lease.total_seconds() / 3, on_error=self._renewal_failed)
        try:
            with keeper, ThreadPoolExecutor(self.options.workers, thread_name_prefix="download") as pool:
                self._work(source, pool)
            for num_iid in source.untaken():
                self._count("deferred", num_iid, detail=self.report.stopped or "signal")
            if self._deferred:
                self.catalog.mark_deferred(self._deferred, now=self.clock())
        finally:
            self.claims.release_all()
        if self.stop.is_set() and self.report.deferred and self.report.stopped is None:
            self.report.stopped = "signal"
        self.report.api_calls = self.book.calls
        self.report.quota_remaining = self.apps.remaining()
        self.report.seconds = self.monotonic() - started
        return self.report

    def _work(self, source: ListSource | QueueSource, pool: ThreadPoolExecutor) -> None:
        """Claim, look up and hand downloads to the pool until the source has nothing left for this run.

        Lookups run here, one at a time at the run's pace; a new batch of them is claimed when the last is done.
        Downloads (stored URLs) are claimed whenever the pool runs short, at most every ``_DOWNLOAD_RECHECK_S``
        while lookups are going on. Only a stop request ends the downloads; a spent quota, the run's cap, a
        frequency ban or a fatal error end the lookups.
        """
        lookups: deque[int] = deque()
        batch_size = max(1, min(_MAX_LOOKUP_BATCH, int(self.options.qps * _LOOKUP_BATCH_S)))
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
                self._resolve(lookups.popleft(), pool)
                continue
            if lookups:
                self.report.stopped = self.report.stopped or "signal"
                while lookups:
                    self._count("deferred", lookups.popleft(), detail=self.report.stopped)
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
                "deferred", num_iid, held=True, detail=f"another worker ({holder.worker}) is on it until {until}"
            )
        if batch.plan.skipped:
            self.claims.release([num_iid for num_iid, _ in batch.plan.skipped])
            for num_iid, reason in batch.plan.skipped:
                self._count("skipped", num_iid, detail=reason)
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
            self._count("deferred", num_iid, held=True, detail=f"another worker ({holder.worker}) is on it")

    def _renewal_failed(self, exc: Exception) -> None:
        self.on_event({"event": "warning", "detail": f"renewing this worker's claims failed, retrying: {exc}"})

    # -- lookups ----------------------------------------------------------------------------------------------

    def _pace(self) -> None:
        now = self.monotonic()
        if self._next_lookup_at > now:
            self.sleep(self._next_lookup_at - now)
        self._next_lookup_at = max(now, self._next_lookup_at) + 1.0 / self.options.qps

    def _resolve(self, num_iid: int, pool: ThreadPoolExecutor) -> None:
        self._pace()
        try:
            result = self.apps.lookup(num_iid)
        except CallCapReached:
            self._halt("max_calls", num_iid, None)
        except (QuotaExhausted, QuotaExceeded) as exc:  # the pool has already recorded which app is spent
            self._halt("quota", num_iid, exc.reset_at)
        except RateLimited as exc:
            self._halt("rate_limited", num_iid, None, detail=str(exc))
        except GatewayUnreachable as exc:  # the breaker opened: nothing more is sent this run
            self.report.unreachable_since = self.report.unreachable_since or exc.since
            self._halt(StopReason.UNREACHABLE.value, num_iid, None, detail=str(exc))
        except TaobaoVideoError as exc:
            if exc.exit_code in (77, 78):
                self.fatal = exc
                self._halt("fatal", num_iid, None, detail=str(exc))
            else:
                self.catalog.mark_lookup_failed(num_iid, error=str(exc), now=self.clock())
                self._count("failed", num_iid, error_kind="lookup", detail=str(exc))
        else:
            self._record_lookup(result, pool)

    def _record_lookup(self, result: Lookup, pool: ThreadPoolExecutor) -> None:
        record_lookup(self.catalog, result, now=self.clock())
        if result.outcome == "video" and result.video is not None:
            v = result.video
            self._submit(
                pool,
                Job(v.num_iid, v.url, v.cover_url, v.duration, v.width, v.height, v.api_method, looked_up_now=True),
            )
        else:
            self._count(result.outcome, result.num_iid, detail=result.detail)

    def _halt(self, why: str, num_iid: int, resets_at: datetime | None, detail: str = "") -> None:
        if self.report.stopped is None:
            self.report.stopped = why
            self.report.quota_resets_at = resets_at
            self.on_event(
                {
                    "event": "stop",
                    "reason": why,
                    "resets_at": resets_at.isoformat() if resets_at else None,
                    "detail": detail,
                }
            )
        self._count("deferred", num_iid, detail=why)

    # -- downloads --------------------------------------------------------------------------------------------

    def _submit(self, pool: ThreadPoolExecutor, job: Job) -> None:
        with self._lock:
            self._in_flight += 1
        pool.submit(self._download, job)

    def _download(self, job: Job) -> None:
        try:
            self._fetch_and_record(job)
        except Exception as exc:  # a bug or a database failure must not vanish in a worker thread
            log.exception("download of %s failed unexpectedly", job.num_iid)
            self._count("failed", job.num_iid, error_kind="internal", detail=f"{type(exc).__name__}: {exc}")
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
            duration = self._checked_duration(job, result.path)
        except DownloadStopped:
            self._count("deferred", job.num_iid, detail="stopped mid-download; partial file kept")
            return
        except UrlExpired as exc:
            self.catalog.mark_failed(job.num_iid, error_kind="url_expired", error=str(exc), now=self.clock())
            if job.looked_up_now:
                self._count("failed", job.num_iid, error_kind="url_expired", detail=str(exc))
            else:
                with self._lock:
                    self._relookups.append(job.num_iid)  # a fresh lookup gives a fresh signed URL
            return
        except DownloadError as exc:
            self.catalog.mark_failed(job.num_iid, error_kind=exc.reason, error=str(exc), now=self.clock())
            self._count("failed", job.num_iid, error_kind=exc.reason, detail=str(exc))
            return
        row = VideoRow(
            num_iid=job.num_iid,
            video_path=os.path.relpath(result.path, self.base_dir),
            duration=duration,
            size_bytes=result.size,
            sha256=result.sha256,
            video_url=job.url,
            cover_url=job.cover_url,
            width=job.width,
            height=job.height,
            api_method=job.api_method,
            downloaded_at=self.clock(),
        )
        self.catalog.record_video(row, now=row.downloaded_at)
        with self._lock:
            self.report.bytes += result.bytes_fetched
        self._count("downloaded", job.num_iid, bytes=result.size, duration=duration, video_path=row.video_path)

    def _checked_duration(self, job: Job, path: Path) -> float | None:
        """The API's duration, else the file's; the file must parse as MP4 and agree with the API."""
        try:
            from_file = mp4_duration(path)
        except DownloadError:
            path.unlink(missing_ok=True)
            raise
        if job.api_duration is None:
            return round(from_file, 3)
        if abs(job.api_duration - from_file) > self.options.duration_tolerance_s:
            self.on_event(
                {
                    "event": "warning",
                    "num_iid": job.num_iid,
                    "detail": f"the API says {job.api_duration:.1f} s but the file lasts {from_file:.1f} s; "
                    "recording the file's duration",
                }
            )
            return round(from_file, 3)
        return job.api_duration

    # -- accounting -------------------------------------------------------------------------------------------

    def _count(self, outcome: str, num_iid: int, *, held: bool = False, **details: Any) -> None:
        """Count one id's outcome and tell the listener; ``held``: deferred because another worker is on it
        (which is not this run's "later", so the catalog does not mark it)."""
        with self._lock:
            setattr(self.report, outcome, getattr(self.report, outcome) + 1)
            if held:
                self.report.held += 1
            elif outcome == "deferred":
                self._deferred.append(num_iid)
        self.on_event(
            {
                "event": "item",
                "num_iid": num_iid,
                "outcome": outcome,
                **{k: v for k, v in details.items() if v not in (None, "")},
            }
        )
