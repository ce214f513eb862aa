"""TopClient: signed calls to the Taobao Open Platform gateway (top-protocol.md §1–§6).

Every parameter goes in the POST body (a token in a query string ends up in proxy logs). The client signs, sends,
unwraps the ``*_response`` wrapper, maps ``error_response`` to the exception tree of ``errors.py`` and retries only
what is retryable, with the policy shape of ``retry.py``. Network failures are translated by ``net.py``, so nothing
above this module sees a ``requests`` exception.

Every attempt that may reach the gateway is a call the platform counts, so ``before_call`` runs before each one
(the quota ledger reserves there) and ``after_call`` after each one (the call log). An attempt that provably never
left this machine (``NotSent``: connection refused, DNS, connect timeout, TLS handshake) is reported with the
outcome ``"unsent"``, so the ledger gives its reservation back. A shared :class:`~taobao_video.net.CircuitBreaker`
stops sending after several attempts in a row got no answer: GatewayUnreachable, exit 75.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import requests

from taobao_video import net
from taobao_video.errors import (
    ApiError,
    AuthError,
    BadResponseError,
    QuotaExceeded,
    RateLimited,
    SessionError,
    TaobaoVideoError,
    TransportError,
    api_error_from_response,
    redact,
)
from taobao_video.model import BEIJING, UNSENT_CALL, next_midnight, utc_now
from taobao_video.top import signing

log = logging.getLogger(__name__)

USER_AGENT = "taobao-video/0.1 (+https://pypi.org/project/taobao-video/)"
MAX_BODY_BYTES = 8 * 1024 * 1024

Clock = Callable[[], datetime]


def beijing_timestamp(now: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in Beijing time, which the gateway requires whatever the host's zone."""
    if now.tzinfo is None:
        raise ValueError("the clock must return an aware datetime")
    return now.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


class TokenSource(Protocol):
    """Where the client gets the OAuth access token (``tokens.TokenManager``)."""

    def access_token(self) -> str: ...

    def force_refresh(self) -> str: ...


@dataclass(frozen=True)
class CallRecord:
    """One attempt as the call log sees it: no secret, no signature, no token."""

    method: str
    num_iid: int | None
    outcome: str  # "ok", "error:<code>[:<sub_code>]", "transport", "unsent" (never left: not counted), "bad_response"
    request_id: str
    elapsed_s: float
    at: datetime


@dataclass
class CallTrace:
    """What :func:`recorded_call` will log of an attempt; the caller sets the outcome of an answer."""

    outcome: str = "transport"
    request_id: str = ""


@contextmanager
def recorded_call(
    after_call: Callable[[CallRecord], None] | None, method: str, num_iid: int | None, clock: Clock
) -> Iterator[CallTrace]:
    """Time one attempt and hand its CallRecord to ``after_call`` however it ends. The caller sets ``outcome``
    and ``request_id`` of the trace for an answer (a payload, an ApiError); a BadResponseError is
    ``bad_response``, a TransportError ``transport``, or ``unsent`` when it provably never left this machine (the
    ledger gives that call back)."""
    trace = CallTrace()
    started = time.monotonic()
    try:
        yield trace
    except BadResponseError:
        trace.outcome = "bad_response"
        raise
    except TransportError as exc:
        trace.outcome = "transport" if exc.reached else UNSENT_CALL
        raise
    finally:
        if after_call is not None:
            elapsed = time.monotonic() - started
            after_call(CallRecord(method, num_iid, trace.outcome, trace.request_id, elapsed, clock()))


class TopClient:
    """Signed calls to one gateway with one app key."""

    def __init__(
        self,
        *,
        gateway_url: str,
        app_key: str,
        app_secret: str,
        sign_method: str = "md5",
        session_param: str = "session",
        tokens: TokenSource | None = None,
        simplify: bool = False,
        timeout_s: float = 20.0,
        max_retries: int = 4,
        max_ban_wait_s: float = 120.0,
        quota_tz: ZoneInfo = BEIJING,
        http: requests.Session | None = None,
        clock: Clock = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        before_call: Callable[[str, Mapping[str, object]], None] | None = None,
        after_call: Callable[[CallRecord], None] | None = None,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        breaker: net.CircuitBreaker | None = None,
    ) -> None:
        if sign_method not in signing.SIGN_METHODS:
            raise ValueError(f"unknown sign method {sign_method!r}")
        self.gateway_url = gateway_url
        self.app_key = app_key
        self._secret = app_secret
        self.sign_method = sign_method
        self.session_param = session_param
        self.tokens = tokens
        self.simplify = simplify
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.max_ban_wait_s = max_ban_wait_s
        self.quota_tz = quota_tz
        self.http = http or new_http_session()
        self.clock = clock
        self.sleep = sleep
        self.before_call = before_call
        self.after_call = after_call
        self.backoff_initial_s, self.backoff_max_s = backoff_initial_s, backoff_max_s
        self.breaker = breaker
        self._last_sign = ""
        self._last_token = ""

    def __repr__(self) -> str:
        return (
            f"TopClient(gateway_url={self.gateway_url!r}, app_key={self.app_key!r}, sign_method={self.sign_method!r})"
        )

    # -- public -------------------------------------------------------------------------------------------------

    def call(self, method: str, params: Mapping[str, object], *, with_session: bool = True) -> dict[str, Any]:
        """Call ``method`` with business ``params``; the unwrapped payload, or an ``errors`` exception.

        Retryable failures are retried with backoff; a frequency ban is waited out when it is short enough; a
        rejected session is refreshed once through ``tokens`` and the call repeated.
        """
        try:
            return self._call_with_retries(method, params, with_session)
        except SessionError as exc:
            if not (with_session and self.tokens is not None):
                raise
            log.info("session rejected (%s); refreshing the token once", exc.sub_code or exc.code)
            self.tokens.force_refresh()
            try:
                return self._call_with_retries(method, params, with_session)
            except SessionError as again:
                raise AuthError(
                    f"the gateway still refuses the access token after a refresh ({again}); "
                    "run `taobao-video auth login` to authorise the app again"
                ) from None

    # -- retry policy -------------------------------------------------------------------------------------------

    def _should_retry(self, exc: BaseException) -> bool:
        if not isinstance(exc, TaobaoVideoError) or not exc.retryable:
            return False
        if self.breaker is not None and self.breaker.is_open:
            return False
        if isinstance(exc, RateLimited):
            return exc.ban_seconds is None or exc.ban_seconds <= self.max_ban_wait_s
        return True

    @staticmethod
    def _stated_wait(exc: BaseException) -> float | None:
        """The platform's own word on how long a frequency ban lasts beats the backoff."""
        if isinstance(exc, RateLimited) and exc.ban_seconds is not None:
            return float(exc.ban_seconds)
        return None

    def _call_with_retries(self, method: str, params: Mapping[str, object], with_session: bool) -> dict[str, Any]:
        retrying = net.retrying(
            "gateway",
            attempts=self.max_retries + 1,
            should_retry=self._should_retry,
            backoff_initial_s=self.backoff_initial_s,
            backoff_max_s=self.backoff_max_s,
            wait_override=self._stated_wait,
            sleep=self.sleep,
        )
        try:
            return retrying(self._attempt, method, params, with_session)
        except TransportError:
            if self.breaker is not None:
                self.breaker.check()  # this failure opened it: say so rather than "connection refused"
            raise

    # -- one attempt --------------------------------------------------------------------------------------------

    def _attempt(self, method: str, params: Mapping[str, object], with_session: bool) -> dict[str, Any]:
        if self.breaker is not None:
            self.breaker.check()
        try:
            form = self._signed_form(method, params, with_session)
        except TransportError as exc:
            exc.retryable = False  # the token endpoint (top/oauth.py) has retried already
            raise
        if self.before_call is not None:
            self.before_call(method, params)
        with recorded_call(self.after_call, method, _num_iid_of(params), self.clock) as trace:
            try:
                payload = self._post(method, form)
            except ApiError as exc:
                trace.outcome = f"error:{exc.code}" + (f":{exc.sub_code}" if exc.sub_code else "")
                trace.request_id = exc.request_id
                raise
            trace.outcome, trace.request_id = "ok", str(payload.get("request_id") or "")
            return payload

    def _signed_form(self, method: str, params: Mapping[str, object], with_session: bool) -> dict[str, str]:
        form: dict[str, str] = {
            "method": method,
            "app_key": self.app_key,
            "timestamp": beijing_timestamp(self.clock()),
            "format": "json",
            "v": "2.0",
            "sign_method": self.sign_method,
        }
        if self.simplify:
            form["simplify"] = "true"
        if with_session and self.tokens is not None:
            token = self.tokens.access_token()
            self._last_token = token
            form[self.session_param] = token
        for name, value in params.items():
            if value is not None and value != "":
                form[name] = _wire_value(value)
        form["sign"] = signing.sign(form, self._secret, self.sign_method)
        self._last_sign = form["sign"]
        return form

    def _post(self, method: str, form: Mapping[str, str]) -> dict[str, Any]:
        """One POST; the breaker learns whether the gateway answered at all."""

        def send() -> requests.Response:
            return self.http.post(
                self.gateway_url,
                data=form,
                headers={"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"},
                timeout=net.timeouts(self.timeout_s),
                stream=True,
            )

        body, status, reason = exchange(send, what=method, scrub=self._scrub, breaker=self.breaker)
        if status != 200:
            raise TransportError(
                f"{method}: the gateway answered HTTP {status} {reason}".rstrip(),
                status=status,
                retryable=status >= 500 or status == 429,
            )
        return self._payload(method, body)

    def _payload(self, method: str, body: bytes) -> dict[str, Any]:
        document = self._decode(method, body)
        if "error_response" in document:
            inner = document["error_response"]
            if not isinstance(inner, dict):
                raise BadResponseError(f"{method}: error_response is not an object")
            error = api_error_from_response(inner, method=method, now=self.clock())
            if isinstance(error, QuotaExceeded) and error.reset_at is None:
                error.reset_at = next_midnight(self.clock(), self.quota_tz)
            _scrub_exception(error, self._scrub)
            raise error
        return unwrap_response(method, document)

    def _decode(self, method: str, body: bytes) -> dict[str, Any]:
        if len(body) > MAX_BODY_BYTES:
            raise BadResponseError(
                f"{method}: the gateway's answer is larger than {MAX_BODY_BYTES // (1024 * 1024)} MiB; "
                "check taobao.gateway_url"
            )
        text = body.decode("utf-8", errors="replace").strip()
        if not text:
            raise BadResponseError(f"{method}: the gateway sent an empty answer; check taobao.gateway_url")
        if text.startswith("<"):
            kind = "an HTML page" if "<html" in text[:512].lower() or "<!doctype" in text[:64].lower() else "XML"
            raise BadResponseError(
                f"{method}: the gateway answered {kind} instead of JSON "
                f"({self._scrub(excerpt(text))!r}); check taobao.gateway_url"
            )
        try:
            # Real answers sometimes hold raw control characters inside strings: strict=False accepts them.
            document = json.loads(text, strict=False)
        except ValueError:
            raise BadResponseError(
                f"{method}: the gateway's answer is not JSON ({self._scrub(excerpt(text))!r})"
            ) from None
        if not isinstance(document, dict):
            raise BadResponseError(f"{method}: the gateway's answer is JSON but not an object")
        return document

    def _scrub(self, text: str) -> str:
        return redact(text, (self._secret, self._last_sign, self._last_token))


def unwrap_response(method: str, document: dict[str, Any]) -> dict[str, Any]:
    """The payload of a success answer: the ``<name>_response`` object, or the body itself when simplified."""
    root = method.removeprefix("taobao.").replace(".", "_") + "_response"
    inner = document.get(root)
    if isinstance(inner, dict):
        return inner
    wrapped = [value for key, value in document.items() if key.endswith("_response") and isinstance(value, dict)]
    if len(wrapped) == 1:
        return wrapped[0]
    return document


def new_http_session(pool_size: int = 10) -> requests.Session:
    """A pooled session with this tool's User-Agent, reading the environment's proxy settings once per origin."""
    session = net.EnvironmentOnce()
    adapter = requests.adapters.HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def exchange(
    send: Callable[[], requests.Response],
    *,
    what: str,
    scrub: Callable[[str], str],
    breaker: net.CircuitBreaker | None = None,
) -> tuple[bytes, int, str]:
    """(body, status, reason) of the one request ``send`` makes (streamed), the body cut off past MAX_BODY_BYTES.

    A network failure, while sending or while reading the answer, is the TransportError net.py makes of it
    (``what`` starts its message, ``scrub`` takes the secrets out); the breaker learns whether the far end
    answered at all: a failure either way counts for it, a whole answer (any status) closes it.
    """
    try:
        body, status, reason = _exchange(send, what, scrub)
    except TransportError as exc:
        if breaker is not None:
            breaker.failed(exc)
        raise
    if breaker is not None:
        breaker.answered()
    return body, status, reason


def _exchange(send: Callable[[], requests.Response], what: str, scrub: Callable[[str], str]) -> tuple[bytes, int, str]:
    try:
        response = send()
    except net.NETWORK_ERRORS as exc:
        raise net.transport_error(exc, what=what, scrub=scrub) from None
    try:
        body = _read_capped(response, MAX_BODY_BYTES)
    except net.NETWORK_ERRORS as exc:
        raise net.transport_error(exc, what=f"{what}: reading the answer", scrub=scrub, answering=True) from None
    finally:
        response.close()
    return body, response.status_code, response.reason or ""


def _read_capped(response: requests.Response, cap: int) -> bytes:
    """The body, read until it ends or grows past ``cap`` (then a little more than ``cap``, for the caller to
    refuse)."""
    chunks: list[bytes] = []
    total = 0
    for chunk in response.iter_content(chunk_size=65536):
        chunks.append(chunk)
        total += len(chunk)
        if total > cap:
            break
    return b"".join(chunks)


def _wire_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _num_iid_of(params: Mapping[str, object]) -> int | None:
    raw = params.get("num_iid")
    try:
        return int(str(raw)) if raw is not None else None
    except ValueError:
        return None


def excerpt(text: str, limit: int = 120) -> str:
    """``text`` on one line, cut to ``limit`` characters (an ellipsis says it was cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


def _scrub_exception(error: ApiError, scrub: Callable[[str], str]) -> None:
    error.msg, error.sub_msg = scrub(error.msg), scrub(error.sub_msg)
    error.args = (scrub(str(error.args[0])) if error.args else "",)
