"""The platform's flow control: a per-app daily call counter and a per-app frequency limit.

Counting rule (top-protocol.md §6, "every call counts"): once the app is identified and its daily quota is
not yet spent, the call is counted, whatever happens next (bad signature, frequency ban, missing session,
item not found, injected service errors). Calls refused because the daily quota is spent are not counted,
nor are requests that never reached the gateway (HTTP 5xx / HTML from an injected "proxy" fault, unknown or
missing app key, wrong HTTP verb, undecodable body).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import date, datetime

from taobao_video.sandbox.clock import quota_day, seconds_to_beijing_midnight


class QuotaBook:
    """Calls used per app and quota day (the date in Asia/Shanghai). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._used: dict[str, dict[date, int]] = defaultdict(dict)

    def take(self, app_key: str, limit: int | None, now: datetime) -> int | None:
        """Count one call; or, when today's quota is spent, count nothing and return the ban in seconds."""
        day = quota_day(now)
        with self._lock:
            used = self._used[app_key].get(day, 0)
            if limit is not None and used >= limit:
                return seconds_to_beijing_midnight(now)
            self._used[app_key][day] = used + 1
        return None

    def used(self, app_key: str, now: datetime) -> int:
        with self._lock:
            return self._used.get(app_key, {}).get(quota_day(now), 0)

    def set_used(self, app_key: str, used: int, now: datetime) -> None:
        """Pretend ``used`` calls were already made today (elsewhere)."""
        if used < 0:
            raise ValueError(f"used must be >= 0, not {used}")
        with self._lock:
            self._used[app_key][quota_day(now)] = used

    def snapshot(self) -> dict[str, dict[str, int]]:
        """``{app_key: {"YYYY-MM-DD": used}}``."""
        with self._lock:
            return {app: {day.isoformat(): n for day, n in sorted(days.items())} for app, days in self._used.items()}


class FrequencyLimiter:
    """At most ``qps`` calls per app within one wall second of the sandbox clock. Thread-safe.

    Every call is counted in its second, refused ones included, so hammering a banned app keeps it banned
    for the rest of that second only.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._window: dict[str, tuple[int, int]] = {}

    def allow(self, app_key: str, qps: int | None, now: datetime) -> bool:
        if qps is None:
            return True
        second = int(now.timestamp() // 1)
        with self._lock:
            start, count = self._window.get(app_key, (second, 0))
            count = count + 1 if start == second else 1
            self._window[app_key] = (second, count)
        return count <= qps
