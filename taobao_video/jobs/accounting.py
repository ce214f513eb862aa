"""The run's call accounting: every attempt reserved in its app's quota ledger before it is sent, written to the
call log after, given back when it provably never left this machine, and held to the run's own cap
(``--max-calls``)."""

from __future__ import annotations

from collections.abc import Callable

from taobao_video.errors import CallCapReached
from taobao_video.model import UNCHARGED_CALL, UNSENT_CALL
from taobao_video.store.catalog import Catalog
from taobao_video.store.quota import QuotaLedger
from taobao_video.top.client import CallRecord


class CallBook:
    """Hooked into each app's client (``hooks``). An attempt that never left this machine (outcome ``unsent``)
    gets its reservation back and is not counted, so the ledger stays what the platform counted even in an
    outage. The run's cap and count span every app. The hooks run on the one lookup thread: no lock needed."""

    def __init__(self, catalog: Catalog, *, cap: int | None = None) -> None:
        self.catalog = catalog
        self.cap = cap  # the run's own limit (--max-calls), on top of the ledgers'
        self.calls = 0  # attempts that may have reached the platform; the call log has the unsent ones too

    def hooks(self, ledger: QuotaLedger) -> tuple[Callable[[str, object], None], Callable[[CallRecord], None]]:
        """The ``before_call`` and ``after_call`` hooks for the client of the app whose quota ``ledger`` counts."""
        day = ""

        def before_call(method: str, params: object) -> None:
            nonlocal day
            if self.cap is not None and self.calls >= self.cap:
                raise CallCapReached(f"this run may make at most {self.cap} calls (--max-calls)")
            day = ledger.reserve()
            self.calls += 1

        def after_call(record: CallRecord) -> None:
            if record.outcome == UNSENT_CALL or record.outcome.startswith(UNCHARGED_CALL):
                ledger.release(day)
                self.calls -= 1
            self.catalog.log_call(record, app_key=ledger.app_key, quota_day=day)

        return before_call, after_call

    def left(self) -> int | None:
        """Calls the run's own cap still allows (None: no cap)."""
        return None if self.cap is None else max(0, self.cap - self.calls)
