"""Prometheus metrics: what a monitor needs to alert on a scheduled run nobody watches.

Rendered with prometheus-client in its text format, both for node_exporter's textfile collector (``[metrics]
textfile``, rewritten atomically at the end of every harvest and daily run) and for ``serve``'s ``/metrics``.
Two kinds of numbers: the last run's (start, end, exit code, items by outcome, bytes, calls), kept per command
(``harvest``, ``daily``), and the state now (queue depth by state, API calls used and left today per app, token
expiry per app). The time of the last successful run of each command is carried over from the file itself, so a
failing run does not erase when the last good one was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from taobao_video.errors import AuthError
from taobao_video.fsutil import atomic_write_text
from taobao_video.model import STATE_NAMES, Outcome, utc_now
from taobao_video.top.tokens import TokenStore, authorisation_ends

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


def render(settings: Settings, catalog: Catalog, pool: AppPool, *, run: RunRecord | None = None) -> str:
    """The metrics text: ``run``'s numbers when given, the state of ``catalog`` and the apps' quotas (``pool``,
    a ``top.apps.AppPool`` that reads the quota), and the last success per command carried over from the file."""
    registry = CollectorRegistry()
    _state(registry, settings, catalog, pool)
    last_success = _previous_successes(settings.metrics.textfile)
    if run is not None:
        _run(registry, run)
        if run.succeeded:
            last_success[run.command] = run.ended.timestamp()
    gauge = Gauge(
        LAST_SUCCESS, "When each command last finished its job (exit 0; 75 for daily).", ["command"], registry=registry
    )
    for command, at in last_success.items():
        gauge.labels(command).set(at)
    return generate_latest(registry).decode("utf-8")


def write_textfile(path: Path, text: str) -> None:
    """Replace the textfile atomically: the collector never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text, mode=0o644)


def _run(registry: CollectorRegistry, run: RunRecord) -> None:
    labels = ["command"]
    Gauge(f"{PREFIX}_last_run_start_timestamp_seconds", "When the last run began.", labels, registry=registry).labels(
        run.command
    ).set(run.started.timestamp())
    Gauge(f"{PREFIX}_last_run_end_timestamp_seconds", "When the last run ended.", labels, registry=registry).labels(
        run.command
    ).set(run.ended.timestamp())
    Gauge(f"{PREFIX}_last_run_exit_code", "The last run's exit code.", labels, registry=registry).labels(
        run.command
    ).set(run.exit_code)
    items = Gauge(
        f"{PREFIX}_last_run_items", "Ids of the last run by outcome.", ["command", "outcome"], registry=registry
    )
    for outcome in Outcome:
        items.labels(run.command, outcome.value).set(run.summary.get(outcome.value, 0))
    Gauge(f"{PREFIX}_last_run_bytes", "Bytes the last run fetched.", labels, registry=registry).labels(run.command).set(
        run.summary.get("bytes", 0)
    )
    Gauge(f"{PREFIX}_last_run_api_calls", "API calls the last run spent.", labels, registry=registry).labels(
        run.command
    ).set(run.summary.get("api_calls", 0))


def _state(registry: CollectorRegistry, settings: Settings, catalog: Catalog, pool: AppPool) -> None:
    queue = Gauge(f"{PREFIX}_queue_items", "Items in the catalog by state.", ["state"], registry=registry)
    counts = catalog.counts_by_state()
    for state in STATE_NAMES:
        queue.labels(state).set(counts.get(state, 0))
    used = Gauge(f"{PREFIX}_api_calls_used_today", "Calls reserved today by the ledger.", ["app"], registry=registry)
    left = Gauge(f"{PREFIX}_api_calls_left_today", "Calls the ledger still grants today.", ["app"], registry=registry)
    for name, status in pool.statuses().items():
        used.labels(name).set(status.used)
        left.labels(name).set(status.remaining)
    expiry = Gauge(
        f"{PREFIX}_token_expiry_timestamp_seconds",
        "When each app's authorisation runs out for good (the refresh token's end when it can be refreshed).",
        ["app"],
        registry=registry,
    )
    now = utc_now()
    for spec in settings.apps(with_secrets=False):
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


def _previous_successes(path: Path | None) -> dict[str, float]:
    """The last success per command from the textfile as it stands (none, unreadable or foreign: nothing)."""
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
        families = list(text_string_to_metric_families(text))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return {
        sample.labels["command"]: float(sample.value)
        for family in families
        if family.name == LAST_SUCCESS
        for sample in family.samples
        if "command" in sample.labels
    }
