"""Build the library's objects from one Settings object. The only place that knows both."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from taobao_video.config.models import AppSpec, Settings
from taobao_video.errors import ConfigError
from taobao_video.fetch.downloader import Downloader
from taobao_video.jobs.accounting import CallBook
from taobao_video.jobs.pipeline import Harvester, HarvestOptions
from taobao_video.jobs.plan import PlanOptions
from taobao_video.jobs.sharing import Sharing
from taobao_video.model import utc_now
from taobao_video.net import CircuitBreaker
from taobao_video.storage import Storage, open_storage
from taobao_video.store.catalog import Catalog
from taobao_video.store.claims import WorkClaims
from taobao_video.store.quota import QuotaLedger
from taobao_video.top.apps import App, AppPool, exhausted
from taobao_video.top.client import TopClient, new_http_session
from taobao_video.top.lookup import ItemLookup
from taobao_video.top.oauth import OAuthClient
from taobao_video.top.providers.base import Provider
from taobao_video.top.providers.item import ItemProvider
from taobao_video.top.tokens import TokenManager, TokenStore

if TYPE_CHECKING:
    from taobao_video.jobs.media import Covers


def oauth_client(settings: Settings, app: AppSpec, *, http: requests.Session | None = None) -> OAuthClient:
    t = settings.taobao
    return OAuthClient(
        oauth_url=t.oauth_url,
        client_id=app.app_key,
        client_secret=app.app_secret,
        redirect_uri=t.redirect_uri,
        http=http,
        timeout_s=t.timeout_s,
    )


def token_manager(
    settings: Settings,
    app: AppSpec,
    *,
    http: requests.Session | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> TokenManager:
    t = settings.taobao
    return TokenManager(
        store=TokenStore(app.token_file),
        oauth=oauth_client(settings, app, http=http),
        grant=t.oauth_grant,
        refresh_margin_s=t.token_refresh_margin_s,
        clock=clock,
    )


def top_client(
    settings: Settings,
    app: AppSpec,
    *,
    http: requests.Session | None = None,
    clock: Callable[[], datetime] = utc_now,
    sleep: Callable[[float], None] = time.sleep,
    tokens: TokenManager | None = None,
    **hooks: Any,
) -> TopClient:
    """A client for the configured gateway as ``app``; ``tokens`` defaults to its token file unless oauth_grant
    is none."""
    t = settings.taobao
    http = http or new_http_session(settings.download.workers + 2)
    if tokens is None and t.oauth_grant != "none":
        tokens = token_manager(settings, app, http=http, clock=clock)
    return TopClient(
        gateway_url=t.gateway_url,
        app_key=app.app_key,
        app_secret=app.app_secret,
        sign_method=t.sign_method,
        session_param=t.session_param,
        tokens=tokens,
        simplify=t.simplify,
        timeout_s=t.timeout_s,
        max_retries=t.max_retries,
        max_ban_wait_s=t.max_ban_wait_s,
        quota_tz=settings.quota.tz,
        http=http,
        clock=clock,
        sleep=sleep,
        **hooks,
    )


def item_lookup(settings: Settings, client: TopClient) -> ItemLookup:
    t = settings.taobao
    return ItemLookup(
        client,
        api_method=t.api_method,
        duration_unit=t.item_video_duration_unit,
        item_get_fields=t.item_get_fields,
    )


def catalog(settings: Settings) -> Catalog:
    return Catalog.open(settings.database.url)


def ledger(
    settings: Settings, catalog: Catalog, app: AppSpec, *, clock: Callable[[], datetime] = utc_now
) -> QuotaLedger:
    return QuotaLedger(
        catalog,
        app_key=app.app_key,
        daily_limit=app.daily_limit,
        reserve=app.reserve,
        tz=settings.quota.tz,
        clock=clock,
    )


def quota_pool(settings: Settings, catalog: Catalog, *, clock: Callable[[], datetime] = utc_now) -> AppPool:
    """Every app's ledger, for reading the quota (no client is built, so no token is needed); with the gateway
    provider, the gateway key's ledger."""
    if settings.taobao.provider == "gateway":
        return AppPool([App("gateway", gateway_ledger(settings, catalog, clock=clock))], clock=clock)
    specs = settings.apps(with_secrets=False)
    return AppPool([App(spec.name, ledger(settings, catalog, spec, clock=clock)) for spec in specs], clock=clock)


def app_pool(
    settings: Settings,
    catalog: Catalog,
    *,
    clock: Callable[[], datetime] = utc_now,
    sleep: Callable[[float], None] = time.sleep,
    http: requests.Session | None = None,
    max_calls: int | None = None,
) -> tuple[AppPool, CallBook]:
    """Lookups over every configured app; each attempt is reserved in its app's quota ledger first and written to
    the call log after; ``max_calls`` caps the run's attempts over all apps. The apps' clients share one circuit
    breaker: they talk to the same gateway."""
    run = _Metered.new(settings, catalog, clock=clock, sleep=sleep, http=http, max_calls=max_calls)
    apps = []
    for spec in settings.apps():
        app_ledger, client = run.app_client(spec)
        apps.append(App(spec.name, app_ledger, item_lookup(settings, client)))
    return AppPool(apps, clock=clock), run.book


@dataclasses.dataclass(frozen=True)
class _Metered:
    """What a run's clients share: one pooled HTTP session, the run's call book (its ``max_calls`` cap) and one
    circuit breaker (they all talk to the same gateway)."""

    settings: Settings
    catalog: Catalog
    http: requests.Session
    book: CallBook
    breaker: CircuitBreaker
    clock: Callable[[], datetime]
    sleep: Callable[[float], None]

    @classmethod
    def new(
        cls,
        settings: Settings,
        catalog: Catalog,
        *,
        clock: Callable[[], datetime],
        sleep: Callable[[float], None],
        http: requests.Session | None,
        max_calls: int | None,
    ) -> _Metered:
        return cls(
            settings,
            catalog,
            http or new_http_session(settings.download.workers + 2),
            CallBook(catalog, cap=max_calls),
            CircuitBreaker(settings.taobao.breaker_failures, clock=clock),
            clock,
            sleep,
        )

    def app_client(self, spec: AppSpec) -> tuple[QuotaLedger, TopClient]:
        """``spec``'s quota ledger and a client whose every attempt is reserved there first and logged after."""
        app_ledger = ledger(self.settings, self.catalog, spec, clock=self.clock)
        before, after = self.book.hooks(app_ledger)
        client = top_client(
            self.settings,
            spec,
            http=self.http,
            clock=self.clock,
            sleep=self.sleep,
            before_call=before,
            after_call=after,
            breaker=self.breaker,
        )
        return app_ledger, client


def gateway_ledger(settings: Settings, catalog: Catalog, *, clock: Callable[[], datetime] = utc_now) -> QuotaLedger:
    """The item-data gateway's own quota: its key's day and limit, beside the apps' in ``quota_days``. Only the key
    (TAOBAO_GATEWAY_KEY) is needed, so the read commands work without the secret."""
    g = settings.gateway
    return QuotaLedger(
        catalog,
        app_key=gateway_ledger_key(g.key_only(settings.source)),
        daily_limit=g.daily_limit,
        reserve=g.reserve,
        tz=settings.quota.tz,
        clock=clock,
    )


def gateway_ledger_key(key: str) -> str:
    """The ledger's name for a vendor key: a hash, so the key itself is never written to the catalog."""
    return "gateway:" + hashlib.sha256(key.encode()).hexdigest()[:12]


def provider(
    settings: Settings,
    catalog: Catalog,
    *,
    clock: Callable[[], datetime] = utc_now,
    sleep: Callable[[float], None] = time.sleep,
    http: requests.Session | None = None,
    max_calls: int | None = None,
) -> tuple[Provider, AppPool, CallBook]:
    """The configured provider (``taobao.provider``), the quota it spends and the run's call book."""
    kind = settings.taobao.provider
    if kind == "item":
        pool, book = app_pool(settings, catalog, clock=clock, sleep=sleep, http=http, max_calls=max_calls)
        return ItemProvider(pool), pool, book
    run = _Metered.new(settings, catalog, clock=clock, sleep=sleep, http=http, max_calls=max_calls)
    book = run.book
    if kind == "gateway":
        from taobao_video.top.itemdata import ItemDataClient
        from taobao_video.top.providers.gateway import GatewayProvider

        g = settings.gateway
        key, secret = g.credentials(settings.source)
        g_ledger = gateway_ledger(settings, catalog, clock=clock)
        before, after = book.hooks(g_ledger)
        client = ItemDataClient(
            url=g.url,
            key=key,
            secret=secret,
            params=g.params,
            timeout_s=g.timeout_s,
            max_retries=settings.taobao.max_retries,
            quota_tz=settings.quota.tz,
            http=run.http,
            clock=clock,
            sleep=sleep,
            before_call=before,
            after_call=after,
            breaker=run.breaker,
        )
        on_spent = functools.partial(exhausted, g_ledger, "the item-data gateway", clock=clock)
        found = GatewayProvider(client, on_spent=on_spent)
        return found, AppPool([App("gateway", g_ledger)], clock=clock), book
    if len(settings.app_names) > 1:
        raise ConfigError(
            "taobao.provider = seller uses one app, the one the seller authorised: configure [taobao] app_key "
            "rather than several [[taobao.apps]]",
            file=settings.source,
        )
    from taobao_video.store.listing import CatalogVideoMemory
    from taobao_video.top.providers.seller import SellerProvider

    spec = settings.app()
    s_ledger, top = run.app_client(spec)
    seller = SellerProvider(
        top,
        memory=CatalogVideoMemory(catalog),
        batch_size=settings.taobao.seller_batch_size,
        video_url=settings.taobao.seller_video_url,
        on_spent=functools.partial(exhausted, s_ledger, f"app {spec.name}", clock=clock),
    )
    return seller, AppPool([App(spec.name, s_ledger)], clock=clock), book


def harvester(
    settings: Settings,
    catalog: Catalog,
    *,
    force: bool = False,
    workers: int | None = None,
    max_calls: int | None = None,
    clock: Callable[[], datetime] = utc_now,
    sleep: Callable[[float], None] = time.sleep,
    http: requests.Session | None = None,
    claims: WorkClaims | None = None,
    **hooks: Any,
) -> Harvester:
    """A Harvester over the configured gateway, catalog, ledger and videos folder; ``claims``: a run's own (a
    refresh hands over the ids it holds), else a new worker's."""
    found, pool, book = provider(settings, catalog, clock=clock, sleep=sleep, http=http, max_calls=max_calls)
    h = settings.harvest
    workers = workers or settings.download.workers
    options = HarvestOptions(
        plan=PlanOptions(force=force, no_video_ttl=timedelta(days=h.no_video_ttl_days)),
        qps=h.qps,
        duration_tolerance_s=h.duration_tolerance_s,
        workers=workers,
        min_free_bytes=min_free_bytes(settings),
    )
    # a connection per download thread; files are synced by the run's group commit (jobs/commit.py), in batches
    downloader = Downloader.from_settings(settings.download, workers=workers, sync=False)
    storage = object_storage(settings)
    return Harvester(
        catalog=catalog,
        apps=pool,
        downloader=downloader,
        covers=covers(settings, catalog, downloader, storage),
        sharing=None if storage is not None else Sharing(catalog, settings.base_dir),  # hard links: a folder only
        book=book,
        claims=claims or WorkClaims(catalog, lease=timedelta(seconds=h.lease_s), clock=clock),
        base_dir=settings.base_dir,
        options=options,
        clock=clock,
        sleep=sleep,
        provider=found,
        storage=storage,
        **hooks,
    )


def covers(settings: Settings, catalog: Catalog, downloader: Downloader, storage: Storage | None = None) -> Covers:
    """The run's cover step: ``covers/`` beside the videos folder (or in the bucket), fetched like the videos."""
    from taobao_video.fetch.covers import CoverFetcher
    from taobao_video.jobs.media import Covers

    return Covers(CoverFetcher(downloader, covers_dir(settings)), catalog, settings.base_dir, storage)


def covers_dir(settings: Settings) -> Path:
    """Where covers go: ``covers/`` beside the videos folder (``data/videos`` → ``data/covers``); with object
    storage, where they wait for their upload (``covers/`` in the spool)."""
    if settings.download.object_url is not None:
        return Path(settings.download.dir) / "covers"
    return Path(settings.download.dir).parent / "covers"


def object_storage(settings: Settings) -> Storage | None:
    """The object storage of ``download.dir = "s3://…"``, or None for a folder (the downloader writes there)."""
    url = settings.download.object_url
    return None if url is None else open_storage(url, settings.s3.options())


def min_free_bytes(settings: Settings) -> int:
    """``download.min_free_mb`` in bytes."""
    return int(settings.download.min_free_mb * 10**6)


def token_warnings(settings: Settings, *, now: datetime | None = None) -> list[str]:
    """Every app whose authorisation runs out for good within ``taobao.token_warn_days``, as one line each (a missing
    or unreadable token file is not a warning: the commands that need it say so)."""
    from taobao_video.errors import AuthError
    from taobao_video.top.tokens import expiry_warning

    now = now or utc_now()
    specs = settings.apps(with_secrets=False)
    lines = []
    for spec in specs:
        try:
            token = TokenStore(spec.token_file).load()
        except AuthError:
            continue
        warning = None if token is None else expiry_warning(token, now=now, warn_days=settings.taobao.token_warn_days)
        if warning is not None:
            lines.append(f"app {spec.name}: {warning}" if len(specs) > 1 else warning)
    return lines
