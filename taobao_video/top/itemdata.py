"""ItemDataClient: one item's data from a third-party item-data gateway (top-protocol.md §10).

The common convention (onebound/万邦 and its clones): ``GET <url>?key=<k>&secret=<s>&num_iid=<id>[&cache=no…]``,
answered with HTTP 200 and ``{"item": {...}, "error_code": "0000", "reason": "", ...}`` in PHP-style JSON (``\\/``
escapes), sometimes GBK-encoded under a UTF-8 header when it is an error. The credentials travel in the query
string, so they are scrubbed from every message this client makes and from urllib3's request log lines.

Error table (``error_code``), one function (:func:`vendor_error`)::

    2000, 1001     no such item: charged; a normal outcome upstream (ItemNotFound)
    4000–4002      server, network or upstream failure: not charged, retried
    4003           bad parameter                      4004 / 4005  unknown key / wrong secret: exit 78
    4006 / 4007    API or account stopped: exit 78    4013         the key's daily limit is spent: exit 75

Every attempt is reserved (``before_call``) and logged (``after_call``) like a TOP call. Only an item and "no such
item" are charged; an attempt answered with any other code is logged with the outcome ``uncharged:<code>``, so the
ledger gives the call back and stays equal to the vendor's count.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import requests

from taobao_video import net
from taobao_video.config.names import GATEWAY_KEY_ENV, GATEWAY_SECRET_ENV
from taobao_video.errors import (
    ApiError,
    BadResponseError,
    ConfigError,
    ItemNotFound,
    QuotaExceeded,
    ServiceUnavailable,
    TaobaoVideoError,
    TransportError,
    redact,
)
from taobao_video.model import BEIJING, UNCHARGED_CALL, next_midnight, utc_now
from taobao_video.top.client import MAX_BODY_BYTES, CallRecord, excerpt, exchange, new_http_session, recorded_call

log = logging.getLogger(__name__)

METHOD = "gateway.item_get"  # how the call log and the ledger name a gateway call
NOT_FOUND_CODES = frozenset({"2000", "1001"})
UNCHARGED_CODES = frozenset({"4000", "4001", "4002"})


class _Vendor(ApiError):
    def _describe(self) -> str:
        text = f"item-data gateway error {self.code}"
        if self.msg:
            text += f": {self.msg}"
        return text + (f" (request_id {self.request_id})" if self.request_id else "")


class VendorUnavailable(_Vendor, ServiceUnavailable):
    """4000–4002: the vendor's server, network or upstream failed; not charged, worth retrying."""


class VendorNotFound(_Vendor, ItemNotFound):
    """2000 (1001): no such item; charged."""


class VendorQuotaSpent(_Vendor, QuotaExceeded):
    """4013: the key's daily limit is spent."""


class VendorRefused(_Vendor):
    """Any other code: the request is wrong for this item (4003) or an unknown code; not retried."""


def vendor_error(code: str, reason: str, *, request_id: str, now: datetime, tz: ZoneInfo) -> TaobaoVideoError:
    """The error for a vendor ``error_code`` (the table in the module docstring)."""
    number = int(code) if code.isdigit() else None
    if code in NOT_FOUND_CODES:
        return VendorNotFound(number, reason, request_id=request_id)
    if code in UNCHARGED_CODES:
        return VendorUnavailable(number, reason, request_id=request_id)
    if code == "4004":
        return ConfigError(f"the item-data gateway does not know this key ({reason or code}): check {GATEWAY_KEY_ENV}")
    if code == "4005":
        return ConfigError(f"the item-data gateway refuses the secret ({reason or code}): check {GATEWAY_SECRET_ENV}")
    if code in ("4006", "4007"):
        return ConfigError(
            f"the item-data gateway has stopped this API or account (error {code}: {reason}); see the vendor"
        )
    if code == "4013":
        error = VendorQuotaSpent(number, reason or "daily limit reached", request_id=request_id)
        error.reset_at = next_midnight(now, tz)
        return error
    return VendorRefused(number, reason, request_id=request_id)


class ItemDataClient:
    """GET one item at a time from a vendor gateway with one key."""

    def __init__(
        self,
        *,
        url: str,
        key: str,
        secret: str,
        params: Sequence[tuple[str, str]] | Mapping[str, str] = (),
        timeout_s: float = 20.0,
        max_retries: int = 4,
        quota_tz: ZoneInfo = BEIJING,
        http: requests.Session | None = None,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        before_call: Callable[[str, Mapping[str, object]], None] | None = None,
        after_call: Callable[[CallRecord], None] | None = None,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        breaker: net.CircuitBreaker | None = None,
    ) -> None:
        self.url = url
        self._key, self._secret = key, secret
        self.params = dict(params)
        self.timeout_s, self.max_retries, self.quota_tz = timeout_s, max_retries, quota_tz
        self.http = http or new_http_session()
        self.clock, self.sleep = clock, sleep
        self.before_call, self.after_call = before_call, after_call
        self.backoff_initial_s, self.backoff_max_s = backoff_initial_s, backoff_max_s
        self.breaker = breaker
        self.scheme = urlsplit(url).scheme or "https"
        self._last_code = ""
        install_log_redaction((key, secret))

    def __repr__(self) -> str:
        return f"ItemDataClient(url={self.url!r})"

    def scrub(self, text: str) -> str:
        return redact(text, (self._key, self._secret))

    def item(self, num_iid: int) -> tuple[dict[str, Any], str]:
        """The ``item`` object and the request id; VendorNotFound for an item the vendor does not have."""

        def should_retry(exc: BaseException) -> bool:
            if self.breaker is not None and self.breaker.is_open:
                return False
            return isinstance(exc, TaobaoVideoError) and exc.retryable

        retrying = net.retrying(
            "item-data gateway",
            attempts=self.max_retries + 1,
            should_retry=should_retry,
            backoff_initial_s=self.backoff_initial_s,
            backoff_max_s=self.backoff_max_s,
            sleep=self.sleep,
        )
        try:
            return retrying(self._attempt, num_iid)
        except TransportError:
            if self.breaker is not None:
                self.breaker.check()
            raise

    def _attempt(self, num_iid: int) -> tuple[dict[str, Any], str]:
        if self.breaker is not None:
            self.breaker.check()
        if self.before_call is not None:
            self.before_call(METHOD, {"num_iid": num_iid})
        with recorded_call(self.after_call, METHOD, num_iid, self.clock) as trace:
            try:
                item, request_id = self._get(num_iid)
            except (ApiError, ConfigError) as exc:
                # only an answer and "no such item" are charged (§10); the vendor's other codes give the call back
                code = self._last_code
                trace.outcome = f"error:{code}" if code in NOT_FOUND_CODES else f"{UNCHARGED_CALL}:{code}"
                trace.request_id = exc.request_id if isinstance(exc, ApiError) else ""
                raise
            trace.outcome, trace.request_id = "ok", request_id
            return item, request_id

    def _get(self, num_iid: int) -> tuple[dict[str, Any], str]:
        query = {**self.params, "key": self._key, "secret": self._secret, "num_iid": str(num_iid)}

        def send() -> requests.Response:
            return self.http.get(self.url, params=query, timeout=net.timeouts(self.timeout_s), stream=True)

        body, status, reason = exchange(send, what="item-data gateway", scrub=self.scrub, breaker=self.breaker)
        if status != 200:
            raise TransportError(
                f"item-data gateway: HTTP {status} {reason}".rstrip(),
                status=status,
                retryable=status >= 500 or status == 429,
            )
        return self._payload(body)

    def _payload(self, body: bytes) -> tuple[dict[str, Any], str]:
        document = decode(body, scrub=self.scrub)
        request_id = str(document.get("request_id") or "")
        code = str(document.get("error_code") or "0000").strip()
        self._last_code = code
        if code not in ("0000", "0"):
            reason = self.scrub(str(document.get("reason") or document.get("error") or ""))
            raise vendor_error(code, reason, request_id=request_id, now=self.clock(), tz=self.quota_tz)
        item = document.get("item")
        if not isinstance(item, dict):
            raise BadResponseError("item-data gateway: the answer has no item object")
        return item, request_id

    def absolute(self, url: str) -> str:
        """A scheme-less ``//host/path`` URL with the gateway's own scheme."""
        return f"{self.scheme}:{url}" if url.startswith("//") else url


def decode(body: bytes, *, scrub: Callable[[str], str] = lambda text: text) -> dict[str, Any]:
    """The JSON object of an answer: UTF-8, else GBK (an error body seen GBK-encoded under a UTF-8 header)."""
    if len(body) > MAX_BODY_BYTES:
        raise BadResponseError(f"item-data gateway: the answer is larger than {MAX_BODY_BYTES // 2**20} MiB")
    text = _text_of(body).strip().lstrip("\ufeff")
    try:
        document = json.loads(text, strict=False)  # PHP's \/ escapes are plain JSON
    except ValueError:
        problem = f"item-data gateway: the answer is not JSON ({scrub(excerpt(text))!r}); check [gateway] url"
        raise BadResponseError(problem) from None
    if not isinstance(document, dict):
        raise BadResponseError("item-data gateway: the answer is JSON but not an object")
    return document


def _text_of(body: bytes) -> str:
    """UTF-8, unless the body reads better as GBK: a GBK body can be valid UTF-8 by accident (``品`` is C6 B7,
    UTF-8 for ``Ʒ``), so both readings are scored by the share of them that is ASCII or CJK; a tie goes to UTF-8."""
    try:
        utf8 = body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("gbk", errors="replace")
    if utf8.isascii():
        return utf8
    try:
        gbk = body.decode("gbk")
    except UnicodeDecodeError:
        return utf8
    return gbk if _plausible(gbk) > _plausible(utf8) else utf8


def _plausible(text: str) -> float:
    """The share of characters that are what a Chinese vendor's answer is made of: ASCII, CJK ideographs, CJK
    and full-width punctuation."""
    return sum(
        1
        for char in text
        if char.isascii()
        or "\u4e00" <= char <= "\u9fff"
        or "\u3000" <= char <= "\u303f"
        or "\uff00" <= char <= "\uffef"
    ) / max(1, len(text))


class _Redact(logging.Filter):
    """Scrubs the gateway's credentials from log records (urllib3 logs each request line with its query)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = redact(record.getMessage(), self.secrets)
            record.args = None
        return True


_REDACT = _Redact()


def install_log_redaction(secrets: Sequence[str]) -> None:
    """Scrub ``secrets`` from urllib3's request log lines from now on (this package's own messages are built
    scrubbed: ``ItemDataClient.scrub``)."""
    _REDACT.secrets.update(secret for secret in secrets if secret and len(secret) >= 4)
    logger = logging.getLogger("urllib3.connectionpool")  # logs "GET /path?query" at DEBUG
    if _REDACT not in logger.filters:
        logger.addFilter(_REDACT)
