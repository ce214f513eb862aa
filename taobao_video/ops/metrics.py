"""Prometheus metrics: what a monitor needs to alert on a scheduled run nobody watches.

Rendered with prometheus-client in its text format, both for node_exporter's textfile collector (``[metrics]
textfile``, rewritten atomically at the end of every harvest and daily run) and for ``serve``'s ``/metrics``.
Two kinds of numbers: the last run's (start, end, exit code, items by outcome, bytes, calls), kept per command
(``harvest``, ``daily``), and the state now (queue depth by state, API calls used and left today per app, token
expiry per app). The time of the last successful run of each command is carried over from the file itself, so a
failing run does not erase when the last good one was.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from taobao_video.errors import AuthError, ConfigError
from taobao_video.fsutil import atomic_write_text
from taobao_video.model import STATE_NAMES, Outcome, utc_now
from taobao_video.top.tokens import TokenStore, authorisation_ends

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from taobao_video.config.models import Settings
    from taobao_video.store.catalog import Catalog
    from taobao_video.top.apps import AppPool

PREFIX = "taobao_video"
LAST_SUCCESS = f"{PREFIX}_last_success_timestamp_seconds"


@dataclass(frozen=True)
class RunRecord:
    """One finished run as the metrics tell it: which command, when, how it ended, and its summary."""

    command: str  # "harvest" | "daily"
    started: datetime
    ended: datetime
    exit_code: int
    summary: dict[str, Any]

    @property
    def succeeded(self) -> bool:
        """Exit 0, or 75 ("more tomorrow") for the scheduled run: both are a run that did its job."""
        return self.exit_code == 0 or (self.command == "daily" and self.exit_code == 75)


def render(settings: Settings, catalog: Catalog, pool: AppPool | None, *, run: RunRecord | None = None) -> str:
    """The metrics text: ``run``'s numbers when given, the state of ``catalog`` and the apps' quotas (``pool``,
    a ``top.apps.AppPool`` that reads the quota), and, carried over from the textfile as it stands, the last run
    of every other command and the last success per command (``serve``'s ``/metrics`` passes no run: it shows the
    last runs the file holds, with the state as it is now)."""
    registry = CollectorRegistry()
    _state(registry, settings, catalog, pool)
    previous = _previous(settings.metrics.textfile)
    last_success = {
        sample.labels["command"]: sample.value
        for sample in previous.get(LAST_SUCCESS, [])
        if "command" in sample.labels
    }
    runs = _run_gauges(registry)
    for name, samples in previous.items():
        for sample in samples:
            command = sample.labels.get("command")
            if name in runs and command is not None and (run is None or command != run.command):
                runs[name].labels(**sample.labels).set(sample.value)
    if run is not None:
        _run(runs, run)
        if run.succeeded:
            last_success[run.command] = run.ended.timestamp()
    gauge = Gauge(
        LAST_SUCCESS, "When each command last finished its job (exit 0; 75 for daily).", ["command"], registry=registry
    )
    for command, at in last_success.items():
        gauge.labels(command).set(at)
    return generate_latest(registry).decode("utf-8")


def current(settings: Settings, catalog: Catalog) -> str:
    """The metrics as ``serve`` shows them at ``/metrics``: the state now and the last runs from the textfile."""
    from taobao_video import wiring

    try:
        pool = wiring.quota_pool(settings, catalog)
    except ConfigError:
        pool = None  # no app key where serve runs: the catalog's numbers without the quota's
    return render(settings, catalog, pool)


def write_textfile(path: Path, text: str) -> None:
    """Replace the textfile atomically: the collector never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text, mode=0o644)


_RUN_GAUGES = {  # name suffix -> (help, labels)
    "last_run_start_timestamp_seconds": ("When the last run began.", ("command",)),
    "last_run_end_timestamp_seconds": ("When the last run ended.", ("command",)),
    "last_run_exit_code": ("The last run's exit code.", ("command",)),
    "last_run_items": ("Ids of the last run by outcome.", ("command", "outcome")),
    "last_run_bytes": ("Bytes the last run fetched.", ("command",)),
    "last_run_api_calls": ("API calls the last run spent.", ("command",)),
}


def _run_gauges(registry: CollectorRegistry) -> dict[str, Gauge]:
    return {
        f"{PREFIX}_{suffix}": Gauge(f"{PREFIX}_{suffix}", text, list(labels), registry=registry)
        for suffix, (text, labels) in _RUN_GAUGES.items()
    }


def _run(gauges: dict[str, Gauge], run: RunRecord) -> None:
    def gauge(suffix: str) -> Gauge:
        return gauges[f"{PREFIX}_{suffix}"]

    gauge("last_run_start_timestamp_seconds").labels(run.command).set(run.started.timestamp())
    gauge("last_run_end_timestamp_seconds").labels(run.command).set(run.ended.timestamp())
    gauge("last_run_exit_code").labels(run.command).set(run.exit_code)
    for outcome in Outcome:
        gauge("last_run_items").labels(run.command, outcome.value).set(run.summary.get(outcome.value, 0))
    gauge("last_run_bytes").labels(run.command).set(run.summary.get("bytes", 0))
    gauge("last_run_api_calls").labels(run.command).set(run.summary.get("api_calls", 0))


def _state(registry: CollectorRegistry, settings: Settings, catalog: Catalog, pool: AppPool | None) -> None:
    queue = Gauge(f"{PREFIX}_queue_items", "Items in the catalog by state.", ["state"], registry=registry)
    counts = catalog.counts_by_state()
    for state in STATE_NAMES:
        queue.labels(state).set(counts.get(state, 0))
    used = Gauge(f"{PREFIX}_api_calls_used_today", "Calls reserved today by the ledger.", ["app"], registry=registry)
    left = Gauge(f"{PREFIX}_api_calls_left_today", "Calls the ledger still grants today.", ["app"], registry=registry)
    for name, status in pool.statuses().items() if pool is not None else ():
        used.labels(name).set(status.used)
        left.labels(name).set(status.remaining)
    expiry = Gauge(
        f"{PREFIX}_token_expiry_timestamp_seconds",
        "When each app's authorisation runs out for good (the refresh token's end when it can be refreshed).",
        ["app"],
        registry=registry,
    )
    now = utc_now()
    try:
        specs = settings.apps(with_secrets=False)
    except ConfigError:
        specs = ()
    for spec in specs:
        try:
            token = TokenStore(spec.token_file).load()
        except AuthError:
            continue
        if token is not None:
            ends, _ = authorisation_ends(token, now=now)
            expiry.labels(spec.name).set(ends.timestamp())
    if settings.notify.urls:
        from taobao_video.ops.notify import notifier_counts

        counts = notifier_counts(settings)
        sends = Gauge(
            f"{PREFIX}_notifications", "End-of-run messages by result, all runs so far.", ["result"], registry=registry
        )
        sends.labels("sent").set(counts["sent"])
        sends.labels("failed").set(counts["failed"])


def _previous(path: Path | None) -> dict[str, list[Sample]]:
    """The samples of the textfile as it stands, by family name (none, unreadable or foreign: nothing)."""
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError:  # a line someone added by hand: keep what still parses, so no last success is lost
        kept = [line for line in text.splitlines() if line.startswith("#") or _parses(line)]
        log.warning("%s: %d lines are not Prometheus text; they are dropped", path, len(text.splitlines()) - len(kept))
        try:
            families = list(text_string_to_metric_families("\n".join(kept) + "\n"))
        except ValueError:
            return {}
    return {family.name: list(family.samples) for family in families}


def _parses(line: str) -> bool:
    try:
        list(text_string_to_metric_families(line + "\n"))
    except ValueError:
        return False
    return True
