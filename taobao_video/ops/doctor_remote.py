"""The doctor's checks that talk to the platform: the gateway's clock and reachability (one plain GET, read for its
``Date`` header), the app key and secret (one signed ``taobao.time.get``), the API methods this app may call (one
real lookup each, only with ``--spend``), and the CDN host allowlist against the URL a lookup returned."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from taobao_video.errors import (
    EXIT_CONFIG,
    EXIT_TEMPFAIL,
    ApiError,
    AppKeyError,
    AuthError,
    MethodUnavailable,
    QuotaExhausted,
    SignatureError,
    TaobaoVideoError,
    TimestampError,
    TransportError,
)
from taobao_video.ops.doctor import Check, Options, fail, failure, ok, warn

if TYPE_CHECKING:
    from taobao_video.config.models import AppSpec, Settings

TIME_GET = "taobao.time.get"
SKEW_WARN_S = 60  # past a minute the clock is drifting: worth fixing before it reaches the platform's limit
SKEW_LIMIT_S = 600  # the platform refuses a timestamp more than 10 minutes off (code 31)
_SYNC = "set this machine's clock right (enable NTP: `timedatectl set-ntp true`)"


class Probe:
    """What the gateway answered, asked once and shared by the checks that need it."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.settings, self.clock = settings, clock

    @cached_property
    def date(self) -> tuple[int, datetime | None, datetime] | TransportError:
        """(status, the gateway's Date, our time then), or why the gateway could not be reached."""
        from taobao_video import net
        from taobao_video.top.client import new_http_session

        with new_http_session(1) as http:
            try:
                return net.server_date(http, self.url, timeout_s=self._timeout, clock=self.clock)
            except TransportError as exc:
                return exc

    @property
    def url(self) -> str:
        """The endpoint a harvest talks to: the platform's gateway, or the item-data gateway's (its provider)."""
        s = self.settings
        return s.gateway.url if s.taobao.provider == "gateway" and s.gateway.url else s.taobao.gateway_url

    @property
    def _timeout(self) -> float:
        return min(self.settings.taobao.timeout_s, 10.0)

    def signed(self, app: AppSpec) -> TaobaoVideoError | None:
        """One signed ``taobao.time.get`` as ``app``, without a session: None when the gateway accepted it."""
        from taobao_video import wiring

        with _ledger_hooks(self.settings) as hooks:  # the platform may count it: so does the ledger
            client = wiring.top_client(self.settings, app, clock=self.clock, **hooks(app))
            client.max_retries, client.timeout_s = 0, self._timeout
            try:
                client.call(TIME_GET, {}, with_session=False)
            except TaobaoVideoError as exc:
                return exc
        return None


def clock_skew(probe: Probe) -> Check:
    answer = probe.date
    if isinstance(answer, TransportError):
        return warn("clock", "not measured: the gateway did not answer (see gateway)")
    _, server, local = answer
    if server is None:
        return warn("clock", "not measured: the gateway's answer has no Date header", _SYNC)
    skew = (local - server).total_seconds()
    ahead = "ahead of" if skew > 0 else "behind"
    said = f"this machine's clock is {abs(skew):.0f} s {ahead} the gateway's"
    if abs(skew) >= SKEW_LIMIT_S:
        return fail("clock", f"{said}: the platform refuses every call more than 10 minutes off", _SYNC, EXIT_CONFIG)
    if abs(skew) >= SKEW_WARN_S:
        return warn("clock", f"{said} (the platform refuses 10 minutes)", _SYNC)
    return ok("clock", f"{said} (the HTTP Date header, to the second)")


def gateway(probe: Probe) -> Check:
    answer = probe.date
    url = probe.url
    setting = "gateway.url" if url != probe.settings.taobao.gateway_url else "taobao.gateway_url"
    if isinstance(answer, TransportError):
        return fail(
            "gateway",
            f"{url} cannot be reached: {answer}",
            f"check the network, a proxy, and {setting}",
            EXIT_TEMPFAIL,
        )
    status = answer[0]
    if status >= 500:
        return warn("gateway", f"{url} answers HTTP {status}", "the gateway is failing: try again later")
    return ok("gateway", f"{url} answers (HTTP {status})")


def credentials_accepted(probe: Probe, app: AppSpec, label: str) -> Check:
    """What the gateway says of ``app``'s key and secret (one signed call without a session)."""
    error = probe.signed(app)
    if error is None:
        return ok(label, f"app key {app.app_key}: the gateway accepted the signed {TIME_GET}")
    if isinstance(error, SignatureError):
        return fail(
            label,
            f"app key {app.app_key}: the gateway refused the signature ({error})",
            "the app secret does not belong to this app key: set the right TAOBAO_APP_SECRET "
            "(and taobao.sign_method if the gateway wants another)",
            EXIT_CONFIG,
        )
    if isinstance(error, AppKeyError):
        return fail(label, f"the gateway does not know app key {app.app_key} ({error})", "set TAOBAO_APP_KEY", 78)
    if isinstance(error, TimestampError):
        return warn(label, f"app key {app.app_key}: not verified, the gateway refused the timestamp (see clock)")
    if isinstance(error, MethodUnavailable):
        return warn(label, f"not verified: this gateway does not offer {TIME_GET} (try --spend 1)")
    if isinstance(error, TransportError):
        return warn(label, "not verified: the gateway did not answer (see gateway)")
    if isinstance(error, QuotaExhausted | ApiError):
        return warn(label, f"app key {app.app_key}: not verified ({error})")
    return failure(label, error)


def api_methods(settings: Settings, options: Options, probe: Probe) -> Iterator[tuple[Check, str | None]]:
    """One real lookup per configured API method and app, at most ``options.spend`` calls in all; each line says
    whether the app may call the method, and the first video URL found is handed to the CDN check. The seller and
    gateway providers are tried as a harvest uses them (``doctor_provider.py``)."""
    from taobao_video.top.lookup import ITEM_GET, ITEM_VIDEO

    if options.spend <= 0:
        yield Check("api methods", "skip", "no lookup made (pass --spend 1 or more to try each API method)"), None
        return
    num_iid = options.num_iid or _an_id(settings)
    if num_iid is None:
        yield warn("api methods", "no id to look up", "pass --id NUM_IID, or queue ids first"), None
        return
    if settings.taobao.provider != "item":  # the seller channel or a gateway: tried as a harvest uses it
        from taobao_video.ops.doctor_provider import provider_lookup

        yield from provider_lookup(settings, num_iid, options.spend, probe.clock)
        return
    options = dataclasses.replace(options, num_iid=num_iid)
    api_method = settings.taobao.api_method
    methods: list[str] = [ITEM_VIDEO, ITEM_GET] if api_method == "auto" else [api_method]
    try:
        apps = settings.apps()
    except TaobaoVideoError as exc:
        yield failure("api methods", exc), None
        return
    with _ledger_hooks(settings) as hooks:
        yield from _each_method(settings, options, probe, apps, methods, hooks)


def _each_method(
    settings: Settings,
    options: Options,
    probe: Probe,
    apps: tuple[AppSpec, ...],
    methods: list[str],
    hooks: Callable[[AppSpec], dict[str, Any]],
) -> Iterator[tuple[Check, str | None]]:

    auto = settings.taobao.api_method == "auto"
    left = options.spend
    for app in apps:
        tried: list[tuple[Check, str | None]] = []
        for method in methods:
            if left <= 0:
                tried.append(
                    (Check("api methods", "skip", f"{method}: not tried (--spend {options.spend} is used up)"), None)
                )
                continue
            left -= 1
            assert options.num_iid is not None
            tried.append(_try_method(settings, app, method, options.num_iid, probe, hooks(app)))
        permitted = [check for check, _ in tried if check.status == "ok"]
        for check, url in tried:
            if auto and permitted and check.status == "fail" and check.exit_code == EXIT_CONFIG:
                # auto falls back by itself, but spends a call on the refused method in every run to learn it
                note = f"{check.detail}; api_method = auto falls back, at one call a run"
                yield warn(check.name, note, check.fix), url
            else:
                yield check, url


def _an_id(settings: Settings) -> int | None:
    """An id of the catalog to look up: one known to have a video (its URL tests the CDN allowlist), else the
    next queued one; None without a catalog or an id."""
    from taobao_video.store.catalog import open_existing

    try:
        with open_existing(settings.database.url) as catalog:
            rows = catalog.queue_page(states=["done", "resolved"], limit=1)
            return rows[0].num_iid if rows else next(iter(catalog.next_lookups(1)), None)
    except TaobaoVideoError:
        return None


@contextlib.contextmanager
def _ledger_hooks(settings: Settings) -> Iterator[Callable[[AppSpec], dict[str, Any]]]:
    """The quota ledger's call hooks per app when the catalog exists (the doctor's lookups are counted like any
    run's), else none (the first run creates the catalog)."""
    from taobao_video import wiring
    from taobao_video.jobs.accounting import CallBook
    from taobao_video.store.catalog import open_existing

    try:
        catalog = open_existing(settings.database.url)
    except TaobaoVideoError:
        yield lambda app: {}
        return
    with catalog:
        book = CallBook(catalog)

        def hooks(app: AppSpec) -> dict[str, Any]:
            before, after = book.hooks(wiring.ledger(settings, catalog, app))
            return {"before_call": before, "after_call": after}

        yield hooks


def _try_method(
    settings: Settings, app: AppSpec, method: str, num_iid: int, probe: Probe, hooks: dict[str, Any]
) -> tuple[Check, str | None]:
    from taobao_video import wiring
    from taobao_video.top.lookup import ITEM_GET

    label = "api methods"
    client = wiring.top_client(settings, app, clock=probe.clock, **hooks)
    client.max_retries = 1
    lookup = wiring.item_lookup(settings, client)
    lookup.auto, lookup.method = False, method
    try:
        result = lookup.lookup(num_iid)
    except MethodUnavailable as exc:
        other = ITEM_GET if method != ITEM_GET else "taobao.item_video"
        code = exc.code if isinstance(exc, ApiError) else None
        why = "the gateway does not offer it" if code == 22 else "this app has no permission for it"
        return fail(
            label,
            f"app {app.name}: {method} is not permitted (code {code}: {why})",
            f'set taobao.api_method = "{other}", or add the API to the app\'s permissions on the open platform console',
            EXIT_CONFIG,
        ), None
    except AuthError as exc:
        return failure(label, exc, "run `taobao-video auth login`"), None
    except TaobaoVideoError as exc:
        return warn(label, f"app {app.name}: {method} could not be tried: {exc}"), None
    url = result.video.url if result.video is not None else None
    return ok(label, f"app {app.name}: {method} is permitted (id {num_iid}: {result.outcome})"), url


def cdn_hosts(settings: Settings, url: str | None) -> Check:
    from taobao_video.fetch.checks import host_allowed

    if url is None:
        return Check(
            "cdn hosts", "skip", "no video URL to compare (a lookup with --spend that finds a video gives one)"
        )
    host = urlsplit(url).hostname or ""
    patterns = settings.download.allowed_hosts
    if host_allowed(host, patterns):
        return ok("cdn hosts", f"the video URL's host {host} is in download.allowed_hosts")
    return fail(
        "cdn hosts",
        f"the video URL's host {host} is not in download.allowed_hosts ({', '.join(patterns)}): every download "
        "would be refused",
        f'add "{host}" (or a "*.domain" pattern) to download.allowed_hosts',
        EXIT_CONFIG,
    )
