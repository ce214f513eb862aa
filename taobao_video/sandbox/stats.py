"""Thread-safe counters of what the emulator saw, in the JSON shape of ``GET /_sandbox/stats``."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Stats:
    """Gateway, OAuth and CDN counters. ``snapshot()`` is a plain dict; ``reset()`` zeroes everything."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._gateway_calls = 0
            self._by_method: Counter[str] = Counter()
            self._by_item: Counter[str] = Counter()
            self._by_app: Counter[str] = Counter()
            self._by_outcome: Counter[str] = Counter()
            self._token_requests = 0
            self._by_grant: Counter[str] = Counter()
            self._token_outcome: Counter[str] = Counter()
            self._authorize = 0
            self._cdn_requests = 0
            self._cdn_bytes = 0
            self._cdn_by_item: Counter[str] = Counter()
            self._cdn_by_status: Counter[str] = Counter()
            self._covers = 0  # /cdn/cover/ and /cdn/pic/: pictures, counted apart from the videos
            self._covers_by_item: Counter[str] = Counter()

    def gateway_call(self, method: str | None, app_key: str | None, num_iid: str | None, outcome: str) -> None:
        """One request to /router/rest; ``outcome`` is ``ok``, ``error:<code>``, ``http:<status>`` or
        ``fault:<kind>``."""
        with self._lock:
            self._gateway_calls += 1
            self._by_outcome[outcome] += 1
            if method:
                self._by_method[method] += 1
            if app_key:
                self._by_app[app_key] += 1
            if num_iid:
                self._by_item[num_iid] += 1

    def authorize(self) -> None:
        with self._lock:
            self._authorize += 1

    def token_request(self, grant: str, outcome: str) -> None:
        with self._lock:
            self._token_requests += 1
            self._by_grant[grant or "(none)"] += 1
            self._token_outcome[outcome] += 1

    def cdn_request(self, num_iid: int | None, status: int) -> None:
        with self._lock:
            self._cdn_requests += 1
            self._cdn_by_status[str(status)] += 1
            if num_iid is not None:
                self._cdn_by_item[str(num_iid)] += 1

    def picture_request(self, num_iid: int | None) -> None:
        with self._lock:
            self._covers += 1
            if num_iid is not None:
                self._covers_by_item[str(num_iid)] += 1

    def cdn_bytes(self, count: int) -> None:
        with self._lock:
            self._cdn_bytes += count

    def snapshot(self, quota: dict[str, dict[str, int]]) -> dict[str, Any]:
        with self._lock:
            return {
                "gateway": {
                    "calls": self._gateway_calls,
                    "by_method": dict(self._by_method),
                    "by_item": dict(self._by_item),
                    "by_app": dict(self._by_app),
                    "by_outcome": dict(self._by_outcome),
                },
                "quota": quota,
                "oauth": {
                    "token_requests": self._token_requests,
                    "by_grant": dict(self._by_grant),
                    "by_outcome": dict(self._token_outcome),
                    "authorize": self._authorize,
                },
                "cdn": {
                    "requests": self._cdn_requests,
                    "bytes_sent": self._cdn_bytes,
                    "by_item": dict(self._cdn_by_item),
                    "by_status": dict(self._cdn_by_status),
                },
                "pictures": {"requests": self._covers, "by_item": dict(self._covers_by_item)},
            }
