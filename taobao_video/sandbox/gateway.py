"""``/router/rest``: the TOP gateway (top-protocol.md §1–§8).

Every answer is HTTP 200 (unless an injected "proxy" fault says otherwise), JSON when ``format=json``,
otherwise XML (the platform's default). Query string and form body are merged, the body winning a name given
in both. Unknown parameters are ignored (but signed, like everything received).

Validation order; the first failure answers:

 0. HTTP verb other than GET/POST → 9; body or query not UTF-8 → 47; injected front faults (``http_500``,
    ``http_503``, ``html_200``). None of these is counted.
 1. ``app_key`` missing → 28; unknown → 29 ``isv.appkey-not-exists``.
 2. daily quota spent → 7 ``accesscontrol.limited-by-app-access-count`` (ban until 00:00 Beijing; not
    counted). From here on the call is counted, whatever its outcome (see quota.py).
 3. frequency above the app's ``qps`` in this second → 7 ``accesscontrol.limited-by-app-api-access-count``.
 4. ``method`` missing → 21.
 5. ``v`` missing → 32; not ``2.0`` → 33.
 6. ``timestamp`` missing → 30; unparsable or more than 10 minutes off (Beijing wall time) → 31.
 7. ``sign`` missing → 24; unknown ``sign_method`` or wrong signature → 25. The signature covers every
    received parameter but ``sign``.
 8. ``taobao.time.get`` answers the sandbox clock's Beijing time here (any app may call it; no session).
    ``method`` not offered by the platform → 22; not granted to the app → 11
    ``isv.permission-api-package-limit``. This comes after the signature: only an authenticated caller
    learns which APIs exist and which it may use (and the session requirement depends on the API).
 9. session (when required; first non-empty of ``session_params``) missing → 26; unknown or another app's →
    27 ``invalid-sessionkey``; expired → 27 ``session-expired``. The seller methods (seller.py) then answer for
    the session's shop, after the injected call faults.
10. ``num_iid`` missing → 40; not a positive integer of at most 13 digits → 41; item.get without ``fields``
    → 40.
11. injected call faults (``service_unavailable``, ``isp_error``, ``rate_limit``, ``empty``, ``not_json``,
    ``huge``, ``stall``).
12. item not found / deleted → 15 ``isv.*``; otherwise the answer (``control_chars`` may strike it; an
    error answer may get ``code_as_string``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from taobao_video.sandbox import apis
from taobao_video.sandbox.clock import format_beijing, parse_beijing
from taobao_video.sandbox.config import ITEM_GET, LIST_METHOD, QUERY_METHOD, TIME_GET, AppConfig, SandboxConfig
from taobao_video.sandbox.faults import (
    GATEWAY_CALL_KINDS,
    GATEWAY_ERROR_KINDS,
    GATEWAY_FRONT_KINDS,
    GATEWAY_SUCCESS_KINDS,
    Fault,
    FaultPlan,
)
from taobao_video.sandbox.products import Catalogue, num_iid_in
from taobao_video.sandbox.quota import FrequencyLimiter, QuotaBook
from taobao_video.sandbox.render import RequestIds, TopError, error_payload, render, root_key
from taobao_video.sandbox.response import JSON_TYPE, TEXT_TYPE, Cut, Response, html_response
from taobao_video.sandbox.seller import SellerChannel
from taobao_video.sandbox.stats import Stats
from taobao_video.sandbox.tokens import TokenStore
from taobao_video.sandbox.urls import Urls
from taobao_video.top.signing import SIGN_METHODS, verify

HUGE_BYTES = 20 * 1024 * 1024
SELLER_METHODS = frozenset({LIST_METHOD, QUERY_METHOD})


@dataclass
class _Call:
    """What the stats need to know about one request."""

    method: str | None = None
    app_key: str | None = None
    num_iid: str | None = None
    fmt: str = "xml"


class Gateway:
    """Answers ``/router/rest`` requests; ``handle`` never raises for bad input."""

    def __init__(
        self,
        config: SandboxConfig,
        *,
        catalogue: Catalogue,
        urls: Urls,
        quota: QuotaBook,
        faults: FaultPlan,
        tokens: TokenStore,
        stats: Stats,
        now: Callable[[], datetime],
    ) -> None:
        self._config = config
        self._catalogue = catalogue
        self._urls = urls
        self._quota = quota
        self._frequency = FrequencyLimiter()
        self._faults = faults
        self._tokens = tokens
        self._stats = stats
        self._now = now
        self._ids = RequestIds(config.seed)
        self._seller = SellerChannel(config, catalogue, urls)

    def handle(self, verb: str, query: str, body: bytes) -> Response:
        call = _Call()
        response, outcome = self._handle(verb, query, body, call)
        self._stats.gateway_call(call.method, call.app_key, call.num_iid, outcome)
        return response

    def _handle(self, verb: str, query: str, body: bytes, call: _Call) -> tuple[Response, str]:
        try:
            params = _merged_params(query, body if verb == "POST" else b"")
        except UnicodeDecodeError:
            fmt = dict(parse_qsl(query, errors="replace")).get("format", "")
            call.fmt = "json" if fmt.lower() == "json" else "xml"
            return self._error(TopError(47, "Invalid Encoding", sub_msg="parameters must be UTF-8"), call)
        call.fmt = "json" if params.get("format", "").lower() == "json" else "xml"
        call.method = params.get("method") or None
        call.app_key = params.get("app_key") or None
        named = num_iid_in(params.get("num_iid", ""))
        call.num_iid = None if named is None else str(named)
        if verb not in ("GET", "POST"):
            return self._error(TopError(9, "Http Action Not Allowed", sub_msg=f"{verb} is not allowed"), call)
        num_iid = int(call.num_iid) if call.num_iid else None
        front = self._faults.pick("gateway", GATEWAY_FRONT_KINDS, call.method, num_iid)
        if front is not None:
            return _front_fault(front)
        try:
            return self._answer(params, call)
        except TopError as error:
            return self._error(error, call)

    def _answer(self, params: dict[str, str], call: _Call) -> tuple[Response, str]:
        now = self._now()
        app = self._check_app(params)
        self._check_quota(app, now)
        self._check_frequency(app, now)
        method = _required(params, "method", 21, "Missing Method")
        self._check_version(params)
        self._check_timestamp(params, now)
        self._check_signature(params, app)
        if method == TIME_GET:
            return render(
                {root_key(method): {"time": format_beijing(now), "request_id": self._ids.next()}}, call.fmt
            ), "ok"
        self._check_method(method, app)
        self._check_session(params, app, now)
        if method in SELLER_METHODS:
            return self._seller_answer(method, params, call, now)
        num_iid, fields = self._check_arguments(method, params)
        fault = self._faults.pick("gateway", GATEWAY_CALL_KINDS, method, num_iid)
        if fault is not None:
            return self._call_fault(fault, method)
        item = self._catalogue.item(num_iid)
        if item.kind == "not_found":
            raise TopError(15, "Remote service error", "isv.item-get-service-error:ITEM_NOT_FOUND", "该商品不存在")
        if item.kind == "deleted":
            raise TopError(15, "Remote service error", "isv.item-is-delete:invalid-numIid", "该商品已被删除")
        control = self._faults.pick("gateway", GATEWAY_SUCCESS_KINDS, method, num_iid) is not None
        payload = apis.answer(method, item, fields, urls=self._urls, now=now, control_chars=control)
        return self._wrapped(method, params, payload, call), "ok"

    def _wrapped(self, method: str, params: dict[str, str], payload: dict[str, Any], call: _Call) -> Response:
        if params.get("simplify", "").lower() == "true":
            payload = {**apis.simplified(payload), "request_id": self._ids.next()}
        else:
            payload = {root_key(method): {**payload, "request_id": self._ids.next()}}
        return render(payload, call.fmt)

    def _seller_answer(self, method: str, params: dict[str, str], call: _Call, now: datetime) -> tuple[Response, str]:
        """The seller channel (seller.py): the session names the shop that asks."""
        token = next((params[name] for name in self._config.session_params if params.get(name)), None)
        nick = self._tokens.nick(token) if token else None
        if nick is None:
            raise TopError(26, "Missing Session", sub_msg=f"{method} needs the seller's session")
        fault = self._faults.pick("gateway", GATEWAY_CALL_KINDS, method, None)
        if fault is not None:
            return self._call_fault(fault, method)
        payload = self._seller.answer(method, params, nick, now)
        return self._wrapped(method, params, payload, call), "ok"

    def _check_app(self, params: dict[str, str]) -> AppConfig:
        key = _required(params, "app_key", 28, "Missing App Key")
        app = self._config.app(key)
        if app is None:
            raise TopError(29, "Invalid App Key", "isv.appkey-not-exists", f"app_key {key} does not exist")
        return app

    def _check_quota(self, app: AppConfig, now: datetime) -> None:
        ban = self._quota.take(app.key, app.daily_limit, now)
        if ban is not None:
            raise TopError(7, "App Call Limited", "accesscontrol.limited-by-app-access-count", _ban(ban))

    def _check_frequency(self, app: AppConfig, now: datetime) -> None:
        if not self._frequency.allow(app.key, app.qps, now):
            raise TopError(7, "App Call Limited", "accesscontrol.limited-by-app-api-access-count", _ban(1))

    @staticmethod
    def _check_version(params: dict[str, str]) -> None:
        version = _required(params, "v", 32, "Missing Version")
        if version != "2.0":
            raise TopError(33, "Invalid Version", sub_msg=f"version {version} is not supported, use 2.0")

    def _check_timestamp(self, params: dict[str, str], now: datetime) -> None:
        stamp = parse_beijing(_required(params, "timestamp", 30, "Missing Timestamp"))
        if stamp is None or abs((stamp - now).total_seconds()) > self._config.timestamp_skew_s:
            raise TopError(
                31,
                "Invalid Timestamp",
                sub_msg=f"timestamp must be yyyy-MM-dd HH:mm:ss within 10 minutes of the server time "
                f"{format_beijing(now)} (Asia/Shanghai)",
            )

    @staticmethod
    def _check_signature(params: dict[str, str], app: AppConfig) -> None:
        _required(params, "sign", 24, "Missing Signature")
        sign_method = params.get("sign_method") or "md5"
        if sign_method not in SIGN_METHODS:
            raise TopError(25, "Invalid Signature", sub_msg=f"unsupported sign_method {sign_method}")
        if not verify(params, app.secret):
            raise TopError(25, "Invalid Signature")

    def _check_method(self, method: str, app: AppConfig) -> None:
        if method not in self._config.platform_methods:
            raise TopError(22, "Invalid Method", sub_msg=f"method {method} does not exist")
        if method not in app.methods:
            raise TopError(
                11,
                "Insufficient isv permissions",
                "isv.permission-api-package-limit",
                f"the app has no permission for {method}",
            )

    def _check_session(self, params: dict[str, str], app: AppConfig, now: datetime) -> None:
        if not self._config.require_session:
            return
        token = next((params[name] for name in self._config.session_params if params.get(name)), None)
        if token is None:
            raise TopError(26, "Missing Session")
        state = self._tokens.check(token, app.key, now)
        if state == "expired":
            raise TopError(27, "Invalid Session", "session-expired", "the session has expired")
        if state != "ok":
            raise TopError(27, "Invalid Session", "invalid-sessionkey", "the session key is invalid")

    @staticmethod
    def _check_arguments(method: str, params: dict[str, str]) -> tuple[int, list[str]]:
        raw = _required(params, "num_iid", 40, "Missing Required Arguments:num_iid")
        num_iid = num_iid_in(raw)
        if num_iid is None:
            raise TopError(41, "Invalid Arguments:num_iid", sub_msg=f"num_iid must be a positive integer: {raw}")
        if method == ITEM_GET:
            _required(params, "fields", 40, "Missing Required Arguments:fields")
        return num_iid, apis.parse_fields(params.get("fields"))

    def _call_fault(self, fault: Fault, method: str) -> tuple[Response, str]:
        if fault.kind == "service_unavailable":
            raise TopError(10, "Service currently unavailable")
        if fault.kind == "isp_error":
            raise TopError(15, "Remote service error", "isp.top-remote-connection-timeout", "远程服务调用超时")
        if fault.kind == "rate_limit":
            raise TopError(
                7,
                "App Call Limited",
                "accesscontrol.limited-by-api-access-count",
                _ban(math.ceil(fault.seconds)),
            )
        if fault.kind == "empty":
            return Response(200, [("Content-Type", JSON_TYPE)], b""), "fault:empty"
        if fault.kind == "stall":  # counted, then silence: the client's read timeout strikes after sending
            stalled = render(
                error_payload(
                    10, "Service currently unavailable", sub_code=None, sub_msg=None, request_id=self._ids.next()
                ),
                "json",
            )
            stalled.cut = Cut(0, "stall", fault.seconds)
            return stalled, "fault:stall"
        if fault.kind == "not_json":
            garbage = b"upstream answered garbage }{ \x00\x1b <<not a TOP answer>>"
            return Response(200, [("Content-Type", TEXT_TYPE)], garbage), "fault:not_json"
        return _huge(method, self._ids.next()), "fault:huge"

    def _error(self, error: TopError, call: _Call) -> tuple[Response, str]:
        num_iid = int(call.num_iid) if call.num_iid else None
        as_string = self._faults.pick("gateway", GATEWAY_ERROR_KINDS, call.method, num_iid) is not None
        payload = error_payload(
            error.code,
            error.msg,
            sub_code=error.sub_code,
            sub_msg=error.sub_msg,
            request_id=self._ids.next(),
            code_as_string=as_string,
        )
        return render(payload, call.fmt), f"error:{error.code}"


def _merged_params(query: str, body: bytes) -> dict[str, str]:
    """Query string, then form body (a name in both: the body wins); strict UTF-8."""
    params = dict(parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="strict"))
    if body:
        text = body.decode("utf-8")
        params.update(parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict"))
    return params


def _required(params: dict[str, str], name: str, code: int, msg: str) -> str:
    value = params.get(name, "")
    if not value:
        raise TopError(code, msg)
    return value


def _ban(seconds: int) -> str:
    return f"This ban will last for {seconds} more seconds"


def _front_fault(fault: Fault) -> tuple[Response, str]:
    if fault.kind == "http_500":
        return html_response(500, "500 Internal Server Error", "The server encountered an internal error."), "http:500"
    if fault.kind == "http_503":
        return html_response(503, "503 Service Temporarily Unavailable", "Please try again later."), "http:503"
    return html_response(200, "系统繁忙", "亲，访问受限了，请稍后再试。"), "fault:html_200"


def _huge(method: str, request_id: str) -> Response:
    """A valid but 20 MB JSON answer: a client must cap what it reads."""
    head = b'{"' + root_key(method).encode() + b'":{"padding":"'
    tail = b'","request_id":"' + request_id.encode() + b'"}}'
    padding = b"x" * (HUGE_BYTES - len(head) - len(tail))
    return Response(200, [("Content-Type", JSON_TYPE)], [head, padding, tail], length=HUGE_BYTES)
