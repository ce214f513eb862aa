"""What a run reports: the counts of the ``--json`` summary, why it stopped, and the exit code that follows.

The names of :class:`HarvestReport`'s fields are the summary's keys (design.md). The exit code is decided here
and only here, from the error that ended the run, the stop reason and the counts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from taobao_video.errors import EXIT_FAILED, EXIT_OK, EXIT_TEMPFAIL, EXIT_USAGE, TaobaoVideoError
from taobao_video.model import Outcome, StopReason


@dataclass
class HarvestReport:
    """The run summary. ``error`` is the error that stopped the run: one that needs the user (authorisation,
    configuration) or a full disk; the run still reports what it did before it, and the exit code is the error's."""

    requested: int = 0
    downloaded: int = 0
    skipped: int = 0
    no_video: int = 0
    not_found: int = 0
    not_visible: int = 0  # left out by the seller channel: another shop's item, or an unknown id
    failed: int = 0
    deferred: int = 0
    api_calls: int = 0
    quota_remaining: int | None = None
    bytes: int = 0  # fetched this run, partial downloads included
    partial_bytes: int = 0  # of ``bytes``, what went to .part files parked for the next run (a stop, a full disk)
    seconds: float = 0.0
    stopped: StopReason | None = None
    quota_resets_at: datetime | None = None
    unreachable_since: datetime | None = None  # stopped gateway_unreachable: the first attempt without an answer
    bad_lines: int = 0
    held: int = 0  # ids another worker was on: left to it (counted in deferred too)
    error: TaobaoVideoError | None = field(default=None, compare=False)

    def add(self, outcome: Outcome) -> None:
        """Count one id's outcome."""
        match outcome:
            case Outcome.DOWNLOADED:
                self.downloaded += 1
            case Outcome.SKIPPED:
                self.skipped += 1
            case Outcome.NO_VIDEO:
                self.no_video += 1
            case Outcome.NOT_FOUND:
                self.not_found += 1
            case Outcome.NOT_VISIBLE:
                self.not_visible += 1
            case Outcome.FAILED:
                self.failed += 1
            case Outcome.DEFERRED:
                self.deferred += 1

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["error"]
        data["seconds"] = round(self.seconds, 3)
        data["stopped"] = self.stopped.value if self.stopped else None
        data["quota_resets_at"] = self.quota_resets_at.isoformat() if self.quota_resets_at else None
        data["unreachable_since"] = self.unreachable_since.isoformat() if self.unreachable_since else None
        if self.error is not None:
            data["error"] = str(self.error)
        return data

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return self.error.exit_code
        if (self.stopped is not None and self.stopped.try_later and self.deferred) or self.held:
            return EXIT_TEMPFAIL
        if self.bad_lines:
            return EXIT_USAGE
        return EXIT_FAILED if self.failed else EXIT_OK


def days_to_drain(pending: int, calls_per_day: int) -> int | None:
    """Quota days the ``pending`` ids need at ``calls_per_day``: the real daily capacity (every app's daily limit
    less its reserve), not one run's ``--max-calls``, which says nothing about tomorrow's run. None when no call
    is allowed per day."""
    if pending == 0:
        return 0
    return math.ceil(pending / calls_per_day) if calls_per_day > 0 else None


@dataclass
class DailyReport:
    """The harvest's report plus where the queue stands afterwards."""

    harvest: HarvestReport
    pending: int
    awaiting_download: int
    calls_per_day: int  # every app's daily limit less its reserve: what a day can look up
    ids_per_day: int | None = None  # what those calls resolve at most with the run's provider (None: one id a call)
    refresh: dict[str, Any] | None = None  # what the refresh after the queue did (jobs/refresh.py), if it ran

    @property
    def remaining(self) -> int:
        return self.pending + self.awaiting_download

    @property
    def days_left(self) -> int | None:
        """Quota days still needed for the pending ids (see :func:`days_to_drain`); the text and the JSON both
        say this number."""
        per_day = self.calls_per_day if self.ids_per_day is None else self.ids_per_day
        return days_to_drain(self.pending, per_day)

    @property
    def exit_code(self) -> int:
        if self.harvest.error is not None:
            return self.harvest.error.exit_code
        if self.refresh is not None and self.refresh.get("exit_code") == EXIT_TEMPFAIL:  # its refresh was cut short
            return EXIT_TEMPFAIL
        if self.remaining:
            return EXIT_TEMPFAIL
        if self.harvest.failed:
            return EXIT_FAILED
        return EXIT_USAGE if self.harvest.bad_lines else EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.harvest.as_dict(),
            "remaining": self.remaining,
            "pending": self.pending,
            "awaiting_download": self.awaiting_download,
            "days_left": self.days_left,
            "calls_per_day": self.calls_per_day,
            "ids_per_day": self.calls_per_day if self.ids_per_day is None else self.ids_per_day,
            **({"refresh": self.refresh} if self.refresh is not None else {}),
        }
