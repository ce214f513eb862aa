"""Time for the emulator: a settable fake clock, Beijing wall time and the quota day.

The platform keeps Beijing time (UTC+8, no daylight saving since 1991), so a fixed offset is exact for every
date the sandbox meets and needs no tz database.
"""

from __future__ import annotations

import math
import threading
from datetime import UTC, date, datetime, timedelta, timezone

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


def utc_now() -> datetime:
    """The real time, aware UTC (the default sandbox clock)."""
    return datetime.now(UTC)


class FakeClock:
    """A clock tests move by hand: ``now()`` is aware UTC; ``advance(seconds)`` and ``set(dt)`` move it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._now = _aware_utc(start if start is not None else utc_now())

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def set(self, dt: datetime) -> None:
        with self._lock:
            self._now = _aware_utc(dt)

    def __repr__(self) -> str:
        return f"FakeClock({self.now().isoformat()})"


def _aware_utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError(f"FakeClock needs an aware datetime, not {dt!r}")
    return dt.astimezone(UTC)


def beijing(now: datetime) -> datetime:
    """``now`` as Beijing wall time."""
    return now.astimezone(SHANGHAI)


def quota_day(now: datetime) -> date:
    """The platform's quota day: the date in Asia/Shanghai."""
    return beijing(now).date()


def seconds_to_beijing_midnight(now: datetime) -> int:
    """Whole seconds (rounded up, at least 1) until the next 00:00 Asia/Shanghai."""
    local = beijing(now)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), SHANGHAI)
    return max(1, math.ceil((midnight - local).total_seconds()))


def format_beijing(now: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in Beijing time, as TOP writes timestamps."""
    return beijing(now).strftime(TIMESTAMP_FORMAT)


def parse_beijing(text: str) -> datetime | None:
    """A TOP ``timestamp`` (Beijing wall time) as aware UTC, or None when it does not parse."""
    try:
        local = datetime.strptime(text.strip(), TIMESTAMP_FORMAT)
    except ValueError:
        return None
    return local.replace(tzinfo=SHANGHAI).astimezone(UTC)
