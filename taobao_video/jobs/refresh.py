"""``taobao-video refresh``: re-check items already settled (``done``, ``no_video``), oldest check first, within a
budget, and follow what changed.

The budget never eats into what ``daily`` needs for new ids: it is ``harvest.refresh_share`` of the calls left
today after the queue's pending ids (:func:`refresh_budget`), capped by ``--max-calls``; ``daily`` runs a refresh
with that share of what it did not need. Each re-check is a lookup through the configured provider and
``record_lookup``, the harvest's own path: with the seller channel an item whose ``video_id`` is unchanged costs a
twentieth of a list call and no video query. Then:

=====================  ==================================================================================
unchanged              the same ``video_id`` (else the same URL path and duration): ``checked_at`` moves on,
                       nothing else happens (one call, or 1/20 with the seller channel; no download)
changed                another video: the old row moves to ``video_history`` (``replaced_at``), its file to
                       ``videos/history/<num_iid>-<sha256 prefix>.mp4`` (deleted with ``prune``), and the new
                       video is downloaded by a harvest of these ids from the URL just looked up (no call)
gained                 an item without a video has one now: downloaded the same way
gone                   the item lost its video, or the item itself: its video moves to the history (file kept,
                       or deleted with ``prune``) and the item records what the lookup said
=====================  ==================================================================================
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from taobao_video import wiring
from taobao_video.config.models import Settings
from taobao_video.errors import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TEMPFAIL,
    CallCapReached,
    GatewayUnreachable,
    QuotaExceeded,
    QuotaExhausted,
    RateLimited,
    TaobaoVideoError,
)
from taobao_video.fetch.space import preflight
from taobao_video.fsutil import fsync_dir
from taobao_video.jobs.pace import Pace
from taobao_video.jobs.pipeline import Harvester
from taobao_video.jobs.plan import record_lookup
from taobao_video.jobs.report import DailyReport
from taobao_video.jobs.runner import Run, open_run
from taobao_video.jobs.verify_objects import object_key
from taobao_video.model import ItemState, LookupOutcome, StopReason, utc_now
from taobao_video.storage.base import is_object_url
from taobao_video.store.catalog import Catalog
from taobao_video.store.claims import LeaseKeeper, WorkClaims
from taobao_video.store.history import count_due, due_for_refresh, mark_checked, retire_video
from taobao_video.store.records import ItemRow, VideoRow
from taobao_video.store.shares import others_at, repoint
from taobao_video.top.lookup import LookupResult, VideoInfo
from taobao_video.top.providers.base import Provider

Event = dict[str, Any]


@dataclasses.dataclass
class RefreshReport:
    budget: int = 0  # calls this refresh could spend
    due: int = 0  # items due for a re-check (all of them: the budget takes what it can, oldest check first)
    checked: int = 0
    unchanged: int = 0
    changed: int = 0
    gained: int = 0
    gone: int = 0
    failed: int = 0
    downloaded: int = 0  # new versions downloaded (changed and gained items)
    pruned: int = 0  # old files deleted (``prune``)
    api_calls: int = 0
    quota_remaining: int = 0
    stopped: StopReason | None = None  # why the re-checks ended early (max_calls: the budget, as planned)
    error: TaobaoVideoError | None = None
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """0 done (the budget spent is done too), 75 stopped by a ban, the quota, the gateway or Ctrl-C (the rest
        waits for the next refresh), 1 items failed, or the error's code."""
        if self.error is not None:
            return self.error.exit_code
        if self.stopped is not None and self.stopped is not StopReason.MAX_CALLS:
            return EXIT_TEMPFAIL
        return EXIT_FAILED if self.failed else EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["error"] = str(self.error) if self.error is not None else None
        values["stopped"] = str(self.stopped) if self.stopped is not None else None
        values["seconds"] = round(self.seconds, 3)
        values["exit_code"] = self.exit_code
        return values


def refresh_budget(remaining: int, pending: int, share: float, max_calls: int | None = None) -> int:
    """The calls a refresh may spend: ``share`` of what is left today once the queue's pending ids are counted
    out, capped by ``max_calls``."""
    spare = max(0, remaining - pending)
    budget = math.floor(spare * share + 1e-9)
    return budget if max_calls is None else max(0, min(budget, max_calls))


def video_changed(old: VideoRow, new: VideoInfo, *, tolerance_s: float) -> str | None:
    """What tells that ``new`` is not the stored video, or None: the platform's ``video_id`` when both sides
    have one; else the URL's path (a signed URL's query changes on every lookup) or the duration."""
    if old.video_id and new.video_id:
        return "video_id" if old.video_id != new.video_id else None
    if urlsplit(old.video_url).path != urlsplit(new.url).path:
        return "url"
    if old.duration is not None and new.duration is not None and abs(old.duration - new.duration) > tolerance_s:
        return "duration"
    return None


def refresh(
    settings: Settings,
    *,
    older_than_days: float | None = None,
    max_calls: int | None = None,
    prune: bool = False,
    on_event: Callable[[Event], None] = lambda event: None,
    stop: threading.Event | None = None,
    clock: Callable[[], datetime] = utc_now,
    sleep: Callable[[float], None] = time.sleep,
) -> RefreshReport:
    """The ``refresh`` command: lock, catalog, the re-checks, the downloads, the summary event last."""
    preflight(settings.download.dir, wiring.min_free_bytes(settings))
    with open_run(settings, purpose="refresh", stop=stop) as run:
        report = refresh_in_run(
            run, older_than_days=older_than_days, max_calls=max_calls, prune=prune, on_event=on_event,
            clock=clock, sleep=sleep,
        )  # fmt: skip
    on_event({"event": "summary", **report.as_dict()})
    return report


def refresh_in_run(
    run: Run,
    *,
    older_than_days: float | None = None,
    max_calls: int | None = None,
    prune: bool = False,
    on_event: Callable[[Event], None] = lambda event: None,
    clock: Callable[[], datetime] = utc_now,
    sleep: Callable[[float], None] = time.sleep,
    not_since: datetime | None = None,
) -> RefreshReport:
    """A refresh inside a run that holds the catalog (``refresh``, or ``daily`` after its queue); ``not_since``:
    items looked up from then on are not due (the daily run's own lookups)."""
    started = time.monotonic()
    settings, catalog = run.settings, run.catalog
    provider, apps, book = wiring.provider(settings, catalog, clock=clock, sleep=sleep)
    report = RefreshReport()
    report.budget = refresh_budget(
        apps.remaining(), catalog.queue_stats()["pending"], settings.harvest.refresh_share, max_calls
    )
    book.cap = report.budget
    days = settings.harvest.refresh_after_days if older_than_days is None else older_than_days
    checked_before = clock() - timedelta(days=days)
    if not_since is not None:
        checked_before = min(checked_before, not_since)
    due = due_for_refresh(catalog, checked_before=checked_before, limit=provider.ids_for(report.budget))
    report.due = count_due(catalog, checked_before=checked_before)
    # Other workers (PostgreSQL) may refresh, or look up, the same items meanwhile: each is claimed before its
    # re-check, as a harvest claims its ids, and the claims are kept alive until its new video is in.
    claims = WorkClaims(catalog, lease=timedelta(seconds=settings.harvest.lease_s), clock=clock)
    checker = _Checker(run, report, claims, checked_before, prune=prune, clock=clock, on_event=on_event)
    pace = Pace(settings.harvest.qps, sleep)
    try:
        with LeaseKeeper(claims, every=claims.lease.total_seconds() / 3):
            for start in range(0, len(due), provider.batch_size):  # the seller channel: 20 ids a list call
                if run.stop.is_set():
                    report.stopped = StopReason.SIGNAL
                    break
                if not checker.check(due[start : start + provider.batch_size], provider, pace):
                    break
            report.api_calls = book.calls
            if checker.downloads and not run.stop.is_set():
                left = max(0, report.budget - book.calls)  # an expired URL looked up again: the same budget
                job = wiring.harvester(
                    settings, catalog, exclusive=run.exclusive, stop=run.stop, on_event=on_event, clock=clock,
                    sleep=sleep, max_calls=left, claims=claims,
                )  # fmt: skip
                done = job.run(checker.downloads)
                report.downloaded, report.api_calls = done.downloaded, report.api_calls + done.api_calls
                report.failed += done.failed
    finally:
        claims.release_all()
    if run.stop.is_set() and report.stopped is None:  # Ctrl-C during the downloads: they are deferred
        report.stopped = StopReason.SIGNAL
    report.quota_remaining = apps.remaining()
    report.seconds = time.monotonic() - started
    return report


def refresh_after_daily(
    run: Run,
    job: Harvester,
    report: DailyReport,
    *,
    on_event: Callable[[Event], None] = lambda event: None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """The refresh that ends a daily run: ``harvest.refresh_share`` of the calls the queue did not need, within
    the daily's own ``--max-calls``; its report goes in the daily's (``report.refresh``)."""
    if run.settings.harvest.refresh_share <= 0 or report.harvest.error is not None or run.stop.is_set():
        return
    if report.harvest.stopped is not None:  # a ban, an unreachable gateway, a full disk: not the time for more calls
        return
    started = job.clock() - timedelta(seconds=report.harvest.seconds)  # what the queue just looked up is fresh
    done = refresh_in_run(
        run, max_calls=job.book.left(), on_event=on_event, clock=job.clock, sleep=sleep, not_since=started
    )
    report.refresh = done.as_dict()


_STOPS: dict[type[Exception], StopReason] = {
    CallCapReached: StopReason.MAX_CALLS,  # the refresh's budget: spent as planned
    RateLimited: StopReason.RATE_LIMITED,
    GatewayUnreachable: StopReason.UNREACHABLE,
}


class _Checker:
    """One re-check at a time: look up, compare, record, and note what to download."""

    def __init__(
        self,
        run: Run,
        report: RefreshReport,
        claims: WorkClaims,
        checked_before: datetime,
        *,
        prune: bool,
        clock: Callable[[], datetime],
        on_event: Callable[[Event], None],
    ) -> None:
        self.catalog: Catalog = run.catalog
        self.settings = run.settings
        self.report, self.prune, self.clock, self.on_event = report, prune, clock, on_event
        self.claims, self.checked_before = claims, checked_before  # each batch is claimed before its re-check
        self.downloads: list[int] = []
        self.storage = wiring.object_storage(run.settings)  # download.dir = "s3://…": old versions move in the bucket

    def check(self, ids: list[int], provider: Provider, pace: Callable[[], None]) -> bool:
        """Re-check a batch of items (one id, or a seller list call's 20); False when no further lookup can be
        made this run. An error on the batch's call fails the ids it left without an answer. Ids another worker
        holds, or re-checked since the due list was read, are passed by."""
        items = self._claimed(ids)
        if not items:
            return True
        videos = self.catalog.videos(items)
        before = {num_iid: (item, videos.get(num_iid)) for num_iid, item in items.items()}
        results = provider.resolve(list(items), pace=pace)
        while True:
            try:
                result = next(results, None)
            except (QuotaExhausted, QuotaExceeded, RateLimited, GatewayUnreachable) as exc:
                self.report.stopped = _STOPS.get(type(exc), StopReason.QUOTA)
                return False
            except TaobaoVideoError as exc:
                if exc.needs_user:
                    self.report.error, self.report.stopped = exc, StopReason.FATAL
                    return False
                for num_iid in before:
                    self.report.failed += 1
                    self._tell(num_iid, "failed", detail=str(exc))
                return True
            if result is None:
                return True
            item, video = before.pop(result.num_iid, (None, None))
            self.report.checked += 1
            was_video = item is not None and item.state == ItemState.DONE
            outcome = self._follow(result.num_iid, result, video, was_video=was_video)
            self._tell(result.num_iid, outcome, title=result.video.title if result.video else None)

    def _claimed(self, ids: list[int]) -> dict[int, ItemRow]:
        """The items of ``ids`` this run now holds and that are still due (none re-checked by another meanwhile),
        as read after claiming them: the state the re-check compares with."""
        taken, _ = self.claims.claim_ids(ids)
        found = self.catalog.items(taken)  # in the order claimed: the order the provider is asked
        due = {num_iid: found[num_iid] for num_iid in taken if num_iid in found and self._still_due(found[num_iid])}
        self.claims.release([num_iid for num_iid in taken if num_iid not in due])
        return due

    def _still_due(self, item: ItemRow) -> bool:
        if item.state not in (ItemState.DONE, ItemState.NO_VIDEO):
            return False
        return item.checked_at is None or item.checked_at < self.checked_before

    def _follow(self, num_iid: int, result: LookupResult, video: VideoRow | None, *, was_video: bool) -> str:
        now = self.clock()
        if result.outcome == LookupOutcome.VIDEO and result.video is not None:
            if video is not None:
                why = video_changed(video, result.video, tolerance_s=self.settings.harvest.duration_tolerance_s)
                if why is None:
                    mark_checked(self.catalog, num_iid, now=now, title=result.video.title, nick=result.video.nick)
                    self.report.unchanged += 1
                    return "unchanged"
                self._retire(video, now)
            record_lookup(self.catalog, result, now=now)
            self.downloads.append(num_iid)
            if video is None and not was_video:
                self.report.gained += 1
                return "gained"
            self.report.changed += 1
            return "changed"
        if video is not None:
            self._retire(video, now)
        record_lookup(self.catalog, result, now=now)
        if video is None and result.outcome == LookupOutcome.NO_VIDEO:
            self.report.unchanged += 1
            return "unchanged"
        self.report.gone += 1
        return "gone"

    def _retire(self, video: VideoRow, now: datetime) -> None:
        """The old version to ``video_history``: its file kept under ``videos/history/`` (or deleted with prune)."""
        if is_object_url(video.video_path):
            retire_video(self.catalog, video.num_iid, kept_path=self._retire_object(video), now=now)
            return
        base = self.settings.base_dir
        own = Path(os.path.relpath(Path(self.settings.download.dir) / f"{video.num_iid}.mp4", base)).as_posix()
        kept: str | None = video.video_path
        if video.video_path == own:  # its own name (maybe a hard link): another item's file is never touched
            source = base / own
            for sharer in others_at(self.catalog, own, video.num_iid):  # no hard links there: give each its copy
                self._own_copy(sharer, source)
            if self.prune:
                source.unlink(missing_ok=True)
                self.report.pruned += 1
                kept = None
            elif source.exists():
                name = f"{video.num_iid}-{video.sha256[:12]}.mp4"
                target = Path(self.settings.download.dir) / "history" / name
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)
                kept = Path(os.path.relpath(target, base)).as_posix()
            else:
                kept = None
        elif self.prune:
            kept = None
        retire_video(self.catalog, video.num_iid, kept_path=kept, now=now)

    def _own_copy(self, num_iid: int, source: Path) -> None:
        """A copy of ``source`` as ``num_iid``'s own file, synced, and its row pointed at it: the item shared the
        file by its path, and the file is about to be replaced by another video."""
        target = Path(self.settings.download.dir) / f"{num_iid}.mp4"
        part = target.with_name(target.name + ".copy")
        with source.open("rb") as reader, part.open("wb") as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)
            writer.flush()
            os.fsync(writer.fileno())
        os.replace(part, target)
        fsync_dir(target.parent)
        repoint(self.catalog, num_iid, video_path=Path(os.path.relpath(target, self.settings.base_dir)).as_posix())

    def _retire_object(self, video: VideoRow) -> str | None:
        """The old version's object moved to ``history/<num_iid>-<sha256 prefix>.mp4`` under the prefix (a copy
        inside the bucket), before the new one takes its key; deleted with prune. Where it is kept, or None."""
        key = None if self.storage is None else object_key(self.storage, video.video_path)
        if self.storage is None or key is None or key != f"{video.num_iid}.mp4":  # not ours to move: left as it is
            return None if self.prune else video.video_path
        if self.prune:
            self.storage.delete(key)
            self.report.pruned += 1
            return None
        if self.storage.stat(key) is None:
            return None
        kept = f"history/{video.num_iid}-{video.sha256[:12]}.mp4"
        self.storage.move(key, kept)
        return self.storage.location(kept)

    def _tell(self, num_iid: int, outcome: str, **details: Any) -> None:
        extra = {k: v for k, v in details.items() if v}
        self.on_event({"event": "refresh", "num_iid": num_iid, "outcome": outcome, **extra})
