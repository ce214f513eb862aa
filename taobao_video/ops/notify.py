"""End-of-run notifications: a harvest or daily run sends ONE message, through Apprise, for the events that happened.

The events (``[notify] on`` picks which of them send a message):

- ``failure``: more ids failed than ``notify.failure_threshold``, or the run stopped on a full disk, an unreachable
  gateway, a failing object storage or a configuration problem (a damaged catalog included);
- ``auth``: the run needed a new authorisation (exit 77);
- ``quota_platform``: the platform itself answered that an app's daily quota is spent (the key is used elsewhere);
- ``token_expiring``: an app's authorisation runs out for good within ``taobao.token_warn_days``; sent at most once
  a quota day (the day is kept in ``notify-state.json`` beside the token file);
- ``summary``: every run, with nothing wrong too.

The message has the summary line, one paragraph per event with what to do, and the exit code. Sending has a
timeout and never changes the run's exit code: a URL that fails is a ``warning`` event, counted in the state file
(and so in the metrics), and reported in the run's ``notify`` event.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from taobao_video.errors import EXIT_CONFIG, EXIT_NOPERM, TaobaoVideoError
from taobao_video.model import StopReason, format_bytes, utc_now
from taobao_video.ops.sender import STATE_FILE, NotifyState, SendResult, send

if TYPE_CHECKING:
    from taobao_video.config.models import Settings
    from taobao_video.store.catalog import Catalog

Event = dict[str, Any]
_COUNTS = ("downloaded", "skipped", "no_video", "not_found", "not_visible", "failed", "deferred")


@dataclass
class RunEnd:
    """How a run ended, as the notifier tells it."""

    command: str
    exit_code: int = 0
    summary: dict[str, Any] | None = None  # None: the run raised before it had one
    error: str = ""
    platform_quota: list[str] = field(default_factory=list)  # the platform's own "quota spent", per app
    token_warnings: list[str] = field(default_factory=list)


def happened(end: RunEnd, *, failure_threshold: int, disk_dir: str = "") -> dict[str, str]:
    """Event → what to say about it and what to do, for the events this run had (every kind but ``summary``)."""
    events: dict[str, str] = {}
    summary = end.summary or {}
    stopped = summary.get("stopped")
    failures = []
    if int(summary.get("failed") or 0) > failure_threshold:
        failures.append(
            f"{summary['failed']} ids failed (more than notify.failure_threshold = {failure_threshold}); "
            "see them with `taobao-video queue list --state failed`, retry them with `taobao-video queue retry-failed`"
        )
    if stopped == StopReason.DISK_FULL:
        failures.append(f"the videos folder {disk_dir} is full: free space there; the next run resumes")
    elif stopped == StopReason.UNREACHABLE:
        failures.append(
            f"the gateway was unreachable (since {summary.get('unreachable_since')}): check the network and "
            "taobao.gateway_url (gateway.url for an item-data gateway); nothing is lost, the next run goes on"
        )
    elif stopped == StopReason.STORAGE:
        failures.append(
            f"the object storage failed ({summary.get('error') or end.error}): check the bucket, [s3] and the AWS "
            "credentials; nothing is lost, the next run uploads what is left without a call"
        )
    if end.exit_code == EXIT_CONFIG:
        failures.append(f"{end.error}: fix the setup, then check it with `taobao-video doctor`")
    elif end.error and end.exit_code != EXIT_NOPERM and not failures:
        failures.append(f"the run {'did not start' if end.summary is None else 'stopped'}: {end.error}")
    if failures:
        events["failure"] = "\n".join(failures)
    if end.exit_code == EXIT_NOPERM:
        events["auth"] = (
            f"authorisation needed: {end.error or 'the token was refused'}; run `taobao-video auth login`, "
            "then `taobao-video doctor`"
        )
    if end.platform_quota:
        events["quota_platform"] = (
            "\n".join(end.platform_quota) + "\nsomething else spends this app key's quota (another tool or machine): "
            "lower quota.daily_limit to what this tool may use, or give it its own app key"
        )
    if end.token_warnings:
        events["token_expiring"] = "\n".join(end.token_warnings)
    return events


def summary_line(summary: dict[str, Any] | None) -> str:
    """The run's counts in one line (the same numbers as the ``--json`` summary)."""
    if not summary:
        return "no summary: the run stopped before it began"
    counts = ", ".join(f"{name} {int(summary.get(name) or 0)}" for name in _COUNTS)
    left = summary.get("quota_remaining")
    quota = f", {left} left today" if left is not None else ""
    return (
        f"{counts}; {int(summary.get('api_calls') or 0)} API calls{quota}; "
        f"{format_bytes(int(summary.get('bytes') or 0))} in {float(summary.get('seconds') or 0):.1f} s"
    )


def compose(end: RunEnd, events: dict[str, str]) -> tuple[str, str, str]:
    """(title, body, Apprise notify type) of the one message."""
    worst = "failure" if {"failure", "auth"} & set(events) else "warning" if events else "success"
    named = ", ".join(kind for kind in events) or "summary"
    title = f"taobao-video {end.command}: exit {end.exit_code} ({named})"
    lines = [f"{end.command} ended with exit code {end.exit_code}.", summary_line(end.summary)]
    for kind, text in events.items():
        lines += ["", f"[{kind}]", text]
    return title, "\n".join(lines), worst


class Watch:
    """One run's notifier: collects how the run ends and sends the one message (see :func:`watch`)."""

    def __init__(self, settings: Settings, command: str, on_event: Callable[[Event], None], clock: Clock) -> None:
        self.settings, self.on_event, self.clock = settings, on_event, clock
        self.end = RunEnd(command)
        self.done = False
        self.stop: threading.Event | None = None
        self.state = NotifyState(settings.taobao.token_file.parent / STATE_FILE)

    def finished(
        self,
        exit_code: int,
        summary: dict[str, Any],
        error: Exception | None,
        catalog: Catalog | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        """The run ended with a report: send now (before the metrics are written, so they count this send); a
        ``stop`` (the run's Ctrl-C) cuts the send short."""
        self.stop = stop
        self.end.exit_code, self.end.summary = exit_code, summary
        self.end.error = str(error) if error is not None else ""
        if catalog is not None and summary.get("stopped") == StopReason.QUOTA:
            self.end.platform_quota = platform_quota_notes(self.settings, catalog)
        self.send()

    def failed(self, error: TaobaoVideoError) -> None:
        """The run raised before it had a report (a lock, a token, a full disk at the start)."""
        self.end.exit_code, self.end.error = error.exit_code, str(error)
        self.send()

    def send(self) -> None:
        if self.done:
            return
        self.done = True
        notify = self.settings.notify
        urls = [url.get_secret_value() for url in notify.urls]
        if not urls:
            return
        self.end.token_warnings = self._token_warnings_due()
        events = happened(
            self.end, failure_threshold=notify.failure_threshold, disk_dir=str(self.settings.download.dir)
        )
        chosen: dict[str, str] = {kind: text for kind, text in events.items() if kind in notify.on}
        if not chosen and "summary" not in notify.on:
            return
        title, body, kind = compose(self.end, chosen)
        result = send(urls, title, body, kind=kind, timeout_s=notify.timeout_s, stop=self.stop)
        self._record(result, "token_expiring" in chosen)
        for problem in result.problems:
            self.on_event({"event": "warning", "detail": f"{problem} (the run's exit code is unchanged)"})
        self.on_event(
            {"event": "notify", "events": list(chosen) or ["summary"], "sent": result.sent, "failed": result.failed}
        )

    def _token_warnings_due(self) -> list[str]:
        """The token warnings, unless ``token_expiring`` already went out this quota day."""
        from taobao_video import wiring

        today = self.clock().astimezone(self.settings.quota.tz).date().isoformat()
        if self.state.load().get("token_expiring_day") == today:
            return []
        try:
            return wiring.token_warnings(self.settings, now=self.clock())
        except TaobaoVideoError:
            return []  # no app configured well enough to read its token: the run says so itself

    def _record(self, result: SendResult, token_sent: bool) -> None:
        changes: dict[str, Any] = {}
        if token_sent and result.sent:
            changes["token_expiring_day"] = self.clock().astimezone(self.settings.quota.tz).date().isoformat()
        try:
            self.state.record(result, **changes)
        except OSError as exc:
            self.on_event({"event": "warning", "detail": f"the notify state {self.state.path} was not saved: {exc}"})


Clock = Callable[[], datetime]


@contextlib.contextmanager
def watch(
    settings: Settings, command: str, on_event: Callable[[Event], None], *, clock: Clock = utc_now
) -> Iterator[Watch]:
    """Around a run: the body calls ``finished`` with its report; an error the run raises instead is sent as it
    is (and raised on). Nothing is sent when ``[notify] urls`` is empty."""
    notifier = Watch(settings, command, on_event, clock)
    try:
        yield notifier
    except TaobaoVideoError as exc:
        notifier.failed(exc)
        raise


def platform_quota_notes(settings: Settings, catalog: Catalog) -> list[str]:
    """One line per app the platform itself declared spent today (the ledger's ban), else nothing."""
    from taobao_video import wiring

    pool = wiring.quota_pool(settings, catalog)
    notes = []
    for name, status in pool.statuses().items():
        if status.banned_until is not None:
            until = status.banned_until.astimezone(settings.quota.tz)
            notes.append(
                f"app {name}: the platform answered that its daily quota is spent after {status.used} calls "
                f"counted here (quota.daily_limit {status.daily_limit}); calls resume at {until:%Y-%m-%d %H:%M} "
                f"{settings.quota.tz.key}"
            )
    return notes


def notifier_counts(settings: Settings) -> dict[str, int]:
    """Messages sent and sends failed so far (the metrics show them)."""
    data = NotifyState(settings.taobao.token_file.parent / STATE_FILE).load()
    return {"sent": int(data.get("sent", 0)), "failed": int(data.get("failed", 0))}
