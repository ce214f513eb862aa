"""The lookups' pace: at most ``qps`` a second, the harvest's and the refresh's alike."""

from __future__ import annotations

import time
from collections.abc import Callable


class Pace:
    """Called before each lookup: sleeps until ``1 / qps`` seconds have passed since the one before."""

    def __init__(
        self, qps: float, sleep: Callable[[float], None], monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.every, self.sleep, self.monotonic = 1.0 / qps, sleep, monotonic
        self.next_at = 0.0

    def __call__(self) -> None:
        now = self.monotonic()
        if self.next_at > now:
            self.sleep(self.next_at - now)
        self.next_at = max(now, self.next_at) + self.every


__all__ = ["Pace"]
