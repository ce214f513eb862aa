"""Several app keys in one run: each lookup goes to the next app that still has calls today.

Each app (``[[taobao.apps]]``, or the single ``[taobao] app_key``) has its own client, its own token and its own
quota ledger in the catalog, so workers on many machines share one count per app key. :class:`AppPool` is the
harvest's resolver and its view of the quota: lookups rotate over the apps (round robin, so the queue is spread
over them); an app whose ledger refuses (its cap reached) or whose platform says "spent" is left out until its
quota day resets, and only when every app is out does the run stop with QuotaExhausted.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from taobao_video.errors import CallCapReached, QuotaExceeded, QuotaExhausted
from taobao_video.model import QuotaStatus, next_midnight
from taobao_video.top.lookup import ItemLookup, LookupResult


class Ledger(Protocol):
    """What the pool needs of an app's quota ledger (store/quota.py's QuotaLedger, kept in the catalog)."""

    @property
    def tz(self) -> ZoneInfo: ...  # the quota day's time zone

    def mark_spent(self, until: datetime) -> None: ...

    def status(self) -> QuotaStatus: ...

    def remaining(self) -> int: ...


def exhausted(ledger: Ledger, name: str, exc: QuotaExceeded, *, clock: Callable[[], datetime]) -> QuotaExhausted:
    """The far end says the quota ``ledger`` counts is spent (``exc``): the ledger refuses until the stated reset
    (else the quota day's next midnight), and the refusal, for ``name``, is returned to raise or keep."""
    until = exc.reset_at or next_midnight(clock(), ledger.tz)
    ledger.mark_spent(until)
    return QuotaExhausted(f"{name}: {exc}", reset_at=until)


@dataclasses.dataclass(frozen=True)
class App:
    """One app key: its name in messages, its quota ledger and the lookup that goes through its client."""

    name: str
    ledger: Ledger
    lookup: ItemLookup | None = None  # None: a pool that only reads the quota


class AppPool:
    """A resolver over several apps, and the combined quota the run may still spend.

    Thread-safe for the one lookup thread the harvest runs plus readers of :meth:`remaining` and :meth:`status`.
    """

    def __init__(self, apps: Sequence[App], *, clock: Callable[[], datetime]) -> None:
        if not apps:
            raise ValueError("an AppPool needs at least one app")
        self.apps = tuple(apps)
        self.clock = clock
        self._next = 0
        self._out: dict[str, QuotaExhausted] = {}  # app name -> why it is out of calls, and until when
        self._lock = threading.Lock()

    # -- resolving ------------------------------------------------------------------------------------------------

    def lookup(self, num_iid: int) -> LookupResult:
        """Look ``num_iid`` up through the next app with calls left; QuotaExhausted when none has any."""
        for _ in range(len(self.apps)):
            app = self._take_turn()
            if app is None:
                break
            if app.lookup is None:
                raise TypeError(f"app {app.name} has no client: this pool only reads the quota")
            try:
                return app.lookup.lookup(num_iid)
            except CallCapReached:
                raise  # the run's own --max-calls, not an app's quota
            except QuotaExceeded as exc:  # the platform's word: this app is spent until the stated reset
                self._set_out(app, exhausted(app.ledger, f"app {app.name}", exc, clock=self.clock))
            except QuotaExhausted as exc:  # our ledger refused: the cap is reached, or a ban recorded earlier
                if exc.reset_at is None:
                    exc.reset_at = next_midnight(self.clock(), app.ledger.tz)
                self._set_out(app, exc)
        raise self._all_spent()

    def _take_turn(self) -> App | None:
        """The next app in the rotation that is not out of calls, or None."""
        now = self.clock()
        with self._lock:
            for step in range(len(self.apps)):
                app = self.apps[(self._next + step) % len(self.apps)]
                refusal = self._out.get(app.name)
                if refusal is None or refusal.reset_at is None or refusal.reset_at <= now:
                    self._out.pop(app.name, None)
                    self._next = (self._next + step + 1) % len(self.apps)
                    return app
        return None

    def _set_out(self, app: App, refusal: QuotaExhausted) -> None:
        with self._lock:
            self._out[app.name] = refusal

    def _all_spent(self) -> QuotaExhausted:
        with self._lock:
            refusals = dict(self._out)
        if len(self.apps) == 1:
            return refusals[self.apps[0].name]  # one app: its ledger's own words
        resets = [r.reset_at for r in refusals.values() if r.reset_at is not None]
        reset_at = min(resets) if resets else None
        statuses = self.statuses()
        parts = ", ".join(f"{name} {s.used}/{s.daily_limit}" for name, s in statuses.items())
        tz = self.apps[0].ledger.tz
        when = f"; the first resets at {reset_at.astimezone(tz):%Y-%m-%d %H:%M} {tz.key}" if reset_at else ""
        return QuotaExhausted(f"every app's daily call quota is spent ({parts}){when}", reset_at=reset_at)

    # -- the combined quota -----------------------------------------------------------------------------------

    def statuses(self) -> dict[str, QuotaStatus]:
        """Each app's quota today, by app name."""
        return {app.name: app.ledger.status() for app in self.apps}

    def remaining(self) -> int:
        """Calls the apps' ledgers will still grant today, all apps together."""
        return sum(app.ledger.remaining() for app in self.apps)

    def status(self) -> QuotaStatus:
        """Today's numbers summed over the apps; the earliest reset; a ban only when every app is banned."""
        statuses = list(self.statuses().values())
        bans = [s.banned_until for s in statuses]
        return QuotaStatus(
            day=statuses[0].day,
            used=sum(s.used for s in statuses),
            daily_limit=sum(s.daily_limit for s in statuses),
            reserve=sum(s.reserve for s in statuses),
            remaining=sum(s.remaining for s in statuses),
            resets_at=min(s.resets_at for s in statuses),
            banned_until=min(b for b in bans if b is not None) if all(b is not None for b in bans) else None,
        )
