"""The daily quota ledger: every call is reserved in the catalog database *before* it is made.

The platform counts every call, failed ones and retries included, and resets at 00:00 Beijing time
(top-protocol.md §6), so the ledger counts per app key and per quota day in that zone. A reservation is given
back (:meth:`QuotaLedger.release`) only for a call that provably never left this machine (connection refused, DNS,
connect timeout, TLS handshake): a call that may have reached the platform has been counted there too, so it stays
counted here. A reservation is one conditional UPDATE, so threads and processes sharing the database can never
reserve more than the cap::

    UPDATE quota_days SET used = used + 1
     WHERE app_key = :k AND day = :d AND used < :cap AND (banned_until IS NULL OR banned_until <= :now)

When the platform says the quota is spent anyway (code 7 ``accesscontrol.limited-by-app-access-count``),
:meth:`QuotaLedger.mark_spent` bans the day until the reset time it stated.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from taobao_video.errors import QuotaExhausted
from taobao_video.model import BEIJING, QuotaStatus, next_midnight, utc_now
from taobao_video.store.catalog import Catalog, engine_of
from taobao_video.store.schema import QuotaDay

_MAX_BAN_DAYS = 3  # a stated ban longer than this is not a daily quota; do not mark more rows than that


class QuotaLedger:
    """Reserves calls against ``daily_limit - reserve`` per quota day in ``tz`` for one app key.

    ``store`` is a :class:`~taobao_video.store.catalog.Catalog` (or its engine) whose schema is migrated.
    ``clock`` returns the current time as an aware datetime; the quota day is its date in ``tz``.
    """

    def __init__(
        self,
        store: Catalog | Engine,
        *,
        app_key: str,
        daily_limit: int = 1000,
        reserve: int = 0,
        tz: ZoneInfo = BEIJING,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if daily_limit < 1:
            raise ValueError(f"daily_limit must be at least 1, got {daily_limit}")
        if not 0 <= reserve < daily_limit:
            raise ValueError(f"reserve must be at least 0 and less than daily_limit ({daily_limit}), got {reserve}")
        self.engine = engine_of(store)
        self.app_key = app_key
        self.daily_limit = daily_limit
        self.kept_back = reserve  # "reserve" is the method's name
        self.tz = tz
        self.clock = clock

    @property
    def cap(self) -> int:
        """Calls the tool may make per day: the limit less the calls kept back for manual use."""
        return self.daily_limit - self.kept_back

    def _now(self) -> datetime:
        now = self.clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"the quota clock must return aware datetimes, got naive {now.isoformat()}")
        return now.astimezone(UTC)

    def day_of(self, moment: datetime) -> str:
        """The quota day (``YYYY-MM-DD`` in the ledger's zone) that ``moment`` falls in."""
        return moment.astimezone(self.tz).date().isoformat()

    # ---- reserving

    def reserve(self) -> str:
        """Count one call now, before it is made; returns the quota day it was counted in.

        Raises QuotaExhausted (exit 75, ``reset_at`` set) when the day's cap is reached or the platform's ban
        is in force.
        """
        now = self._now()
        day = self.day_of(now)
        if self._take(day, now):
            return day
        # No row yet, a changed limit, the cap or a ban: make sure the row exists and carries the configured
        # limit, then try once more (another thread may have created the row between the two statements).
        self._ensure_day(day, now)
        if self._take(day, now):
            return day
        raise self._refusal(day, now)

    def _take(self, day: str, now: datetime) -> bool:
        statement = (
            update(QuotaDay)
            .where(
                QuotaDay.app_key == self.app_key,
                QuotaDay.day == day,
                QuotaDay.used < self.cap,
                or_(QuotaDay.banned_until.is_(None), QuotaDay.banned_until <= now),
            )
            .values(used=QuotaDay.used + 1, daily_limit=self.daily_limit, updated_at=now)
        )
        with self.engine.begin() as connection:
            return connection.execute(statement).rowcount == 1

    def release(self, day: str) -> bool:
        """Give back one call reserved on ``day`` (what :meth:`reserve` returned) whose request never left this
        machine; never below zero. False when there was nothing to give back."""
        statement = (
            update(QuotaDay)
            .where(QuotaDay.app_key == self.app_key, QuotaDay.day == day, QuotaDay.used > 0)
            .values(used=QuotaDay.used - 1, updated_at=self._now())
        )
        with self.engine.begin() as connection:
            return connection.execute(statement).rowcount == 1

    def _ensure_day(self, day: str, now: datetime) -> None:
        """Create the day's row if missing, else store the configured limit on it."""
        self._update_or_insert(day, now, daily_limit=self.daily_limit)

    def _update_or_insert(self, day: str, now: datetime, **values: object) -> None:
        """Set ``values`` on the day's row, creating the row (nothing used yet) when it is missing."""
        statement = (
            update(QuotaDay)
            .where(QuotaDay.app_key == self.app_key, QuotaDay.day == day)
            .values(**values, updated_at=now)
        )
        with self.engine.begin() as connection:
            if connection.execute(statement).rowcount:
                return
        row = {"app_key": self.app_key, "day": day, "used": 0, "daily_limit": self.daily_limit, **values}
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(QuotaDay).values(**row, updated_at=now))
        except IntegrityError:  # another thread or process created it first: set the values on that one
            with self.engine.begin() as connection:
                connection.execute(statement)

    def _refusal(self, day: str, now: datetime) -> QuotaExhausted:
        status = self._status(day, now)
        if status.banned_until is not None:
            until = status.banned_until.astimezone(self.tz)
            return QuotaExhausted(
                f"the platform reports the daily call quota of app {self.app_key} spent "
                f"({status.used} of {self.daily_limit} calls counted here on {day}); "
                f"calls resume at {until:%Y-%m-%d %H:%M:%S} {self.tz.key}",
                reset_at=status.banned_until,
            )
        return QuotaExhausted(
            f"daily call quota used up for app {self.app_key} on {day}: {status.used} of {self.daily_limit} calls "
            f"used, {self.kept_back} kept in reserve; it resets at "
            f"{status.resets_at:%Y-%m-%d %H:%M} {self.tz.key}",
            reset_at=status.resets_at,
        )

    # ---- the platform's word

    def mark_spent(self, reset_at: datetime) -> None:
        """The platform said the daily quota is spent: refuse calls until ``reset_at`` (aware).

        Bans today's row, and the following days' rows when the stated ban runs past midnight.
        """
        if reset_at.tzinfo is None or reset_at.utcoffset() is None:
            raise ValueError(f"reset_at must be timezone-aware, got naive {reset_at.isoformat()}")
        now = self._now()
        first = date.fromisoformat(self.day_of(now))
        last = date.fromisoformat(self.day_of(max(now, reset_at - timedelta(microseconds=1))))
        last = min(last, first + timedelta(days=_MAX_BAN_DAYS - 1))
        day = first
        while day <= last:
            self._update_or_insert(day.isoformat(), now, banned_until=reset_at)
            day += timedelta(days=1)

    # ---- reading

    def status(self) -> QuotaStatus:
        """Today's numbers (nothing is written)."""
        now = self._now()
        return self._status(self.day_of(now), now)

    def remaining(self) -> int:
        """Calls the ledger will still grant today."""
        return self.status().remaining

    def _status(self, day: str, now: datetime) -> QuotaStatus:
        query = select(QuotaDay.used, QuotaDay.banned_until).where(
            QuotaDay.app_key == self.app_key, QuotaDay.day == day
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        used, banned_until = (row.used, row.banned_until) if row is not None else (0, None)
        if banned_until is not None and banned_until <= now:
            banned_until = None
        return QuotaStatus(
            day=day,
            used=used,
            daily_limit=self.daily_limit,
            reserve=self.kept_back,
            remaining=0 if banned_until is not None else max(0, self.cap - used),
            resets_at=next_midnight(now, self.tz),
            banned_until=banned_until,
        )
