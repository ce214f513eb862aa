"""One harness for every run that writes the catalog (harvest, daily, lookup, verify --fix), and those runs.

The harness takes, in this order: the run lock when the catalog needs one (SQLite: one run at a time; PostgreSQL:
none, workers share the queue through claims), Ctrl-C/SIGTERM as a request to stop gracefully (on the main thread
only; a library caller on another thread passes its own ``stop`` event), and the catalog. Each run then tells its
listener everything through ``on_event`` (the records ``--json`` prints, the ``summary`` last) and returns its
report. An error that needs the user (or a full disk) and ends a harvest early is carried by the report, not raised,
so what the run did before it is still reported; errors before any work starts (settings, token, lock, a videos
folder that cannot take files: ``fetch/space.preflight``) are raised. Harvest and daily runs end with one
notification (``ops/notify.py``: nothing without ``[notify] urls``), sent before the metrics are written.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from taobao_video import wiring
from taobao_video.config.models import Settings
from taobao_video.errors import Interrupted, TaobaoVideoError
from taobao_video.fetch.space import preflight
from taobao_video.jobs.daily import run_daily
from taobao_video.jobs.interrupt import Abandoned, graceful_stop, unless_stopped
from taobao_video.jobs.lock import run_lock
from taobao_video.jobs.pipeline import Harvester
from taobao_video.jobs.plan import record_lookup
from taobao_video.jobs.report import DailyReport, HarvestReport
from taobao_video.jobs.verify import BadFile, VerifyReport, verify
from taobao_video.model import utc_now
from taobao_video.ops import notify
from taobao_video.store.catalog import Catalog, open_existing
from taobao_video.top.lookup import LookupResult

Event = dict[str, Any]
EventSink = Callable[[Event], None]


def _ignore(event: Event) -> None:
    """The default listener: events are optional."""


@dataclass(frozen=True)
class Run:
    """What a run works with: the settings, the open catalog, whether it is alone on it, and its stop event."""

    settings: Settings
    catalog: Catalog
    exclusive: bool  # the lock is held: no other run is alive on this catalog
    stop: threading.Event


@contextlib.contextmanager
def open_run(
    settings: Settings, *, purpose: str, stop: threading.Event | None = None, existing: bool = False
) -> Iterator[Run]:
    """Lock, graceful stop and catalog for one run; ``existing``: open the catalog without creating or migrating
    it (the read commands' rule, for ``catalog verify --fix``)."""
    stop = stop or threading.Event()
    with run_lock(settings.database.url, settings.harvest.lock_file, purpose=purpose) as exclusive:
        with graceful_stop(stop):
            opened = open_existing(settings.database.url) if existing else wiring.catalog(settings)
            with opened as catalog:
                yield Run(settings, catalog, exclusive, stop)


def harvest(
    settings: Settings,
    ids: Iterable[int],
    *,
    force: bool = False,
    workers: int | None = None,
    bad_lines: int = 0,
    on_event: EventSink = _ignore,
    on_bytes: Callable[[int], None] = lambda count: None,
    stop: threading.Event | None = None,
) -> HarvestReport:
    """Harvest ``ids`` now: plan, look up what needs it, download, record. ``bad_lines`` counts input lines the
    caller could not read as ids (they make the exit code 2 when nothing worse happened)."""
    started = utc_now()
    with notify.watch(settings, "harvest", on_event) as notifier:
        preflight(settings.download.dir, wiring.min_free_bytes(settings))
        with open_run(settings, purpose="harvest", stop=stop) as run:
            job = _harvester(run, on_event, on_bytes, force=force, workers=workers)
            report = job.run(list(ids))
            report.bad_lines = bad_lines
            summary = report.as_dict()
            notifier.finished(report.exit_code, summary, report.error, run.catalog, stop=run.stop)
            _write_metrics(run, "harvest", started, report.exit_code, summary, on_event)
    on_event({"event": "summary", **summary})
    return report


def daily(
    settings: Settings,
    *,
    max_calls: int | None = None,
    workers: int | None = None,
    on_event: EventSink = _ignore,
    on_bytes: Callable[[int], None] = lambda count: None,
    stop: threading.Event | None = None,
) -> DailyReport:
    """Work through the queue with what is left of today's quota (at most ``max_calls`` calls). The scheduled run
    is where an authorisation about to run out must be noticed: it says so first, as a ``warning`` event."""
    started = utc_now()
    with notify.watch(settings, "daily", on_event) as notifier:
        for warning in wiring.token_warnings(settings):
            on_event({"event": "warning", "detail": warning})
        preflight(settings.download.dir, wiring.min_free_bytes(settings))
        with open_run(settings, purpose="daily", stop=stop) as run:
            job = _harvester(run, on_event, on_bytes, workers=workers, max_calls=max_calls)
            report = run_daily(job, max_calls=max_calls)
            from taobao_video.jobs.refresh import refresh_after_daily  # refresh builds on this module

            refresh_after_daily(run, job, report, on_event=on_event)  # with what the queue did not need
            summary = report.as_dict()
            notifier.finished(report.exit_code, summary, report.harvest.error, run.catalog, stop=run.stop)
            _write_metrics(run, "daily", started, report.exit_code, summary, on_event)
    on_event({"event": "summary", **summary})
    return report


def _harvester(run: Run, on_event: EventSink, on_bytes: Callable[[int], None], **options: Any) -> Harvester:
    """The harvester of a run in the harness: its catalog, its stop, whether it is alone on the catalog."""
    return wiring.harvester(
        run.settings,
        run.catalog,
        exclusive=run.exclusive,
        stop=run.stop,
        on_event=on_event,
        on_bytes=on_bytes,
        **options,
    )


def _write_metrics(
    run: Run, command: str, started: datetime, exit_code: int, summary: Event, on_event: EventSink
) -> None:
    """Rewrite ``[metrics] textfile`` at the end of a run, from the run's own catalog; a failure to write it is a
    warning, never the run's failure."""
    path = run.settings.metrics.textfile
    if path is None:
        return
    from taobao_video.ops import metrics

    record = metrics.RunRecord(command, started, utc_now(), exit_code, summary)
    try:
        pool = wiring.quota_pool(run.settings, run.catalog)
        metrics.write_textfile(path, metrics.render(run.settings, run.catalog, pool, run=record))
    except (OSError, TaobaoVideoError) as exc:
        on_event({"event": "warning", "detail": f"the metrics file {path} was not written: {exc}"})


def lookup(settings: Settings, ids: Iterable[int], *, on_event: EventSink = _ignore) -> list[LookupResult]:
    """Resolve ``ids`` without downloading through the configured provider (one metered call each with ``item``),
    and what they find is kept in the catalog (a video found is queued for download: the next harvest or daily
    run fetches it without asking again)."""
    results: list[LookupResult] = []
    unique = list(dict.fromkeys(ids))
    with open_run(settings, purpose="lookup") as run:
        provider, _, _ = wiring.provider(settings, run.catalog)  # the seller's batches: one list call per 20 ids

        def pace() -> None:  # after a stop (Ctrl-C) nothing more is sent
            if run.stop.is_set():
                raise Abandoned

        answers = provider.resolve(unique, pace=pace)
        try:  # a stop never waits on the gateway: a call in flight is left (the ledger keeps it counted)
            while (result := unless_stopped(lambda: next(answers, None), run.stop)) is not None:
                record_lookup(run.catalog, result, now=utc_now())
                on_event({"event": "lookup", **lookup_record(result)})
                results.append(result)
        except Abandoned:
            left = len(unique) - len(results)
            raise Interrupted(f"stopped: {left} of {len(unique)} ids not looked up; what was found is kept") from None
    return results


def lookup_record(result: LookupResult) -> dict[str, Any]:
    """One lookup as plain data: the ``lookup --json`` line."""
    record: dict[str, Any] = {
        "num_iid": result.num_iid,
        "outcome": str(result.outcome),
        "api_method": result.api_method,
        "request_id": result.request_id,
    }
    video = result.video
    if video is not None:
        record.update(
            url=video.url, cover_url=video.cover_url, duration=video.duration, width=video.width, height=video.height
        )
    if result.detail:
        record["detail"] = result.detail
    return record


def verify_files(
    settings: Settings,
    *,
    sample: int | None = None,
    fix: bool = False,
    deep: bool = False,
    on_checked: Callable[[int, BadFile | None], None] = lambda num_iid, bad: None,
) -> VerifyReport:
    """Re-read the videos' files against the catalog; ``fix`` (under the run harness, so no harvest runs
    meanwhile) puts the bad ones back to be downloaded without a call. Objects: a HEAD each, ``deep`` re-reads."""
    storage = wiring.object_storage(settings)

    def check(catalog: Catalog) -> VerifyReport:
        return verify(
            catalog,
            settings.base_dir,
            sample=sample,
            fix=fix,
            now=utc_now,
            on_checked=on_checked,
            storage=storage,
            deep=deep,
        )

    if not fix:
        with open_existing(settings.database.url) as catalog:
            return check(catalog)
    with open_run(settings, purpose="catalog verify --fix", existing=True) as run:
        return check(run.catalog)
