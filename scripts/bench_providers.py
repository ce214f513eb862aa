#!/usr/bin/env python3
"""Each provider's economy and speed on one sandbox shop of 2,000 items (60% with a video, 10% of those showing
another item's video): the calls of a first harvest per id, from the sandbox's own counters, and the lookups per
second each provider sustains compared with a raw request loop making the same requests in the same run.

Calls per id come from the full stack a harvest uses (``wiring.provider``: quota ledger and call log in a SQLite
catalog); the sandbox's count must equal the ledger's. The speed ratio compares the provider over a bare client
(no ledger: what the provider layer and the client cost) with a loop of ``requests`` doing the same requests
(signed POSTs for TOP, GETs for the item-data gateway), interleaved, median of ``--repeat`` runs.

    python scripts/bench_providers.py [--items 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path

import requests
from _bench import loopback_only, scratch

from taobao_video import wiring
from taobao_video.config.load import settings_from_mapping
from taobao_video.model import utc_now
from taobao_video.sandbox import AppConfig, Sandbox, SandboxConfig, VendorKey
from taobao_video.sandbox.products import Catalogue
from taobao_video.top.client import TopClient, beijing_timestamp, new_http_session
from taobao_video.top.itemdata import ItemDataClient
from taobao_video.top.lookup import ITEM_VIDEO, ItemLookup
from taobao_video.top.providers.base import Provider, no_pace
from taobao_video.top.providers.gateway import GatewayProvider
from taobao_video.top.providers.item import ItemProvider
from taobao_video.top.providers.seller import LIST_FIELDS, LIST_METHOD, QUERY_METHOD, SellerProvider
from taobao_video.top.signing import sign
from taobao_video.top.tokens import Token, TokenStore

KEY, SECRET = "bench", "bench-secret"
VENDOR_KEY, VENDOR_SECRET = "bench-vendor-key", "bench-vendor-secret"
SHOP = "bench-shop"
LIMIT = 10**9


def shop(seed: int, items: int) -> tuple[list[int], dict[int, int]]:
    """``items`` ids, 60% with a video; every tenth video item shows the video of the one before it."""
    catalogue = Catalogue(seed, (1, 1))
    with_video = catalogue.sample("video", items * 6 // 10)
    ids = with_video + catalogue.sample("no_video", items - len(with_video))
    shared = {with_video[i]: with_video[i - 1] for i in range(1, len(with_video), 10)}
    return ids, shared


def settings_for(sb: Sandbox, base: Path, provider: str):
    mapping = {
        "taobao": {
            "gateway_url": sb.gateway_url,
            "oauth_url": sb.oauth_url,
            "provider": provider,
            "token_file": "token.json",
        },
        "quota": {"daily_limit": LIMIT},
        "gateway": {"url": sb.itemdata_url, "daily_limit": LIMIT},
        "harvest": {"lock_file": "harvest.lock"},
        "database": {"url": f"sqlite:///{provider}.sqlite3"},
    }
    env = {
        "TAOBAO_APP_KEY": KEY,
        "TAOBAO_APP_SECRET": SECRET,
        "TAOBAO_GATEWAY_KEY": VENDOR_KEY,
        "TAOBAO_GATEWAY_SECRET": VENDOR_SECRET,
    }
    return settings_from_mapping(mapping, base_dir=base, source=str(base / "settings.toml"), env=env)


def first_harvest_calls(sb: Sandbox, base: Path, provider: str, ids: list[int]) -> tuple[int, int, float]:
    """(calls the sandbox counted, calls the ledger counted, seconds) to resolve ``ids`` with the full stack."""
    settings = settings_for(sb, base, provider)
    body = sb.issue_token(app_key=KEY, user_nick=SHOP)
    TokenStore(settings.taobao.token_file).save(Token.from_response(body, now=utc_now(), grant="authorization_code"))
    sb.reset_stats()
    with wiring.catalog(settings) as catalog:
        found, pool, _ = wiring.provider(settings, catalog)
        started = time.perf_counter()
        results = list(found.resolve(ids, pace=no_pace))
        seconds = time.perf_counter() - started
        assert len(results) == len(ids)
        ledger = pool.status().used
    stats = sb.stats()
    counted = stats["itemdata"]["charged"] if provider == "gateway" else stats["gateway"]["calls"]
    return counted, ledger, seconds


def bare_provider(sb: Sandbox, name: str, token: str) -> Provider:
    """The provider over a client without ledger hooks: what the provider layer and its client cost."""
    if name == "gateway":
        client = ItemDataClient(url=sb.itemdata_url, key=VENDOR_KEY, secret=VENDOR_SECRET, http=new_http_session())
        return GatewayProvider(client)
    top = TopClient(
        gateway_url=sb.gateway_url, app_key=KEY, app_secret=SECRET, http=new_http_session(), tokens=_Fixed(token)
    )
    if name == "seller":
        return SellerProvider(top)
    return ItemProvider(ItemLookup(top, api_method=ITEM_VIDEO))


class _Fixed:
    """A token source holding one sandbox token (the bench never refreshes)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def access_token(self) -> str:
        return self.token

    def force_refresh(self) -> str:
        return self.token


def raw_loop(sb: Sandbox, name: str, token: str, ids: list[int], video_of: dict[int, str]) -> None:
    """The same requests with nothing but requests, signing and json.loads."""
    http = requests.Session()

    def top(method: str, params: dict[str, str]) -> dict:
        form = {
            "method": method,
            "app_key": KEY,
            "timestamp": beijing_timestamp(utc_now()),
            "format": "json",
            "v": "2.0",
            "sign_method": "md5",
            "session": token,
            **params,
        }
        form["sign"] = sign(form, SECRET, "md5")
        return json.loads(http.post(sb.gateway_url, data=form, timeout=10).content)

    if name == "gateway":
        for num_iid in ids:
            query = {"key": VENDOR_KEY, "secret": VENDOR_SECRET, "num_iid": str(num_iid)}
            json.loads(http.get(sb.itemdata_url, params=query, timeout=10).content)
    elif name == "item":
        for num_iid in ids:
            top(ITEM_VIDEO, {"num_iid": str(num_iid), "fields": "url,duration,cover_url,width,height"})
    else:
        for start in range(0, len(ids), 20):
            top(LIST_METHOD, {"num_iids": ",".join(map(str, ids[start : start + 20])), "fields": LIST_FIELDS})
        for video_id in dict.fromkeys(video_of[num_iid] for num_iid in ids if num_iid in video_of):
            top(QUERY_METHOD, {"video_id": video_id})


def _drain(provider: Provider, ids: list[int]) -> None:
    for _ in provider.resolve(ids, pace=no_pace):
        pass


def rate(run: Callable[[], None], ids: int) -> float:
    started = time.perf_counter()
    run()
    return ids / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5, help="runs per speed figure; the median is printed")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    loopback_only()
    ids, shared = shop(args.seed, args.items)
    config = SandboxConfig(
        seed=args.seed,
        apps=(AppConfig(key=KEY, secret=SECRET),),
        shops={SHOP: tuple(ids)},
        shared_videos=shared,
        vendor_keys=(VendorKey(VENDOR_KEY, VENDOR_SECRET),),
        signed_url_ttl_s=int(timedelta(days=1).total_seconds()),
    )
    with scratch("bench-providers-") as base, Sandbox(config) as sb:
        token = sb.issue_token(app_key=KEY, user_nick=SHOP)["access_token"]
        with_video = [num_iid for num_iid in ids if sb.catalogue.kind(num_iid) == "video"]
        video_of = {num_iid: str(sb.catalogue.video_id_for(shared.get(num_iid, num_iid))) for num_iid in with_video}
        distinct = len(set(video_of.values()))
        print(
            f"sandbox shop: {len(ids)} items, {len(with_video)} with a video, {distinct} distinct videos "
            f"({len(shared)} items show another's)"
        )
        print(
            f"{'provider':<8}  {'calls':>5}  {'ledger':>6}  {'calls/id':>8}  {'target':>13}  "
            f"{'stack ids/s':>11}  {'raw ids/s':>9}  {'bare ids/s':>10}  {'ratio':>5}"
        )
        for name in ("item", "seller", "gateway"):
            calls, ledger, seconds = first_harvest_calls(sb, base, name, ids)
            if calls != ledger:
                sys.exit(f"{name}: the sandbox counted {calls} calls but the quota ledger {ledger}")
            target = f"<= {0.05 + distinct / len(ids):.3f}" if name == "seller" else "== 1.0"
            raws, bares = [], []
            raw_loop(sb, name, token, ids, video_of)  # warm-up, not measured: connections, caches on both sides
            list(bare_provider(sb, name, token).resolve(ids, pace=no_pace))
            for _ in range(args.repeat):  # interleaved, so a busy spell of the shared CPU hits both alike
                raws.append(rate(partial(raw_loop, sb, name, token, ids, video_of), len(ids)))
                provider = bare_provider(sb, name, token)
                bares.append(rate(partial(_drain, provider, ids), len(ids)))
            raw, bare = statistics.median(raws), statistics.median(bares)
            print(
                f"{name:<8}  {calls:>5}  {ledger:>6}  {calls / len(ids):>8.3f}  {target:>13}  "
                f"{len(ids) / seconds:>11.0f}  {raw:>9.0f}  {bare:>10.0f}  {bare / raw:>5.2f}"
            )


if __name__ == "__main__":
    main()
