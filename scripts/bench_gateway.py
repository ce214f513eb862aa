#!/usr/bin/env python3
"""Calls per second against the sandbox: TopClient + ItemLookup vs a raw signed-POST loop, same run.

The raw loop is the floor a client cannot beat (one requests.Session, sign, post, json.loads); the ratio shows
what the client's own work (retry wrapper, unwrapping, error mapping, record building) costs on top.

    python scripts/bench_gateway.py [--calls 2000] [--threads 1 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from taobao_video.model import utc_now
from taobao_video.sandbox import AppConfig, Sandbox, SandboxConfig
from taobao_video.top.client import TopClient, beijing_timestamp, new_http_session
from taobao_video.top.lookup import ITEM_VIDEO, ItemLookup
from taobao_video.top.signing import sign

KEY, SECRET = "bench", "bench-secret"


def raw_loop(gateway: str, ids: list[int]) -> None:
    http = requests.Session()
    for num_iid in ids:
        form = {
            "method": ITEM_VIDEO,
            "app_key": KEY,
            "timestamp": beijing_timestamp(utc_now()),
            "format": "json",
            "v": "2.0",
            "sign_method": "md5",
            "num_iid": str(num_iid),
            "fields": "url,duration,cover_url",
        }
        form["sign"] = sign(form, SECRET, "md5")
        json.loads(http.post(gateway, data=form, timeout=10).content)


def client_loop(gateway: str, ids: list[int]) -> None:
    client = TopClient(gateway_url=gateway, app_key=KEY, app_secret=SECRET, http=new_http_session())
    lookup = ItemLookup(client, api_method=ITEM_VIDEO)
    for num_iid in ids:
        lookup.lookup(num_iid)


def rate(loop, gateway: str, ids: list[int], threads: int) -> float:
    shards = [ids[i::threads] for i in range(threads)]
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda shard: loop(gateway, shard), shards))
    return len(ids) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is printed")
    args = parser.parse_args()
    config = SandboxConfig(seed=1, apps=(AppConfig(key=KEY, secret=SECRET, daily_limit=10**9),), require_session=False)
    with Sandbox(config) as sb:
        ids = sb.catalogue.sample_mixed(args.calls)
        print(f"sandbox {sb.url}; {args.calls} item_video calls per run, median of {args.repeat} interleaved runs")
        print(f"{'threads':>7}  {'raw loop/s':>10}  {'client/s':>9}  {'ratio':>5}")
        for loop in (raw_loop, client_loop):  # warm-up, not measured: the sandbox's first pass over the ids is slower
            loop(sb.gateway_url, ids)
        for threads in args.threads:
            rates: dict[str, list[float]] = {"raw": [], "client": []}
            for _ in range(args.repeat):  # interleaved, so a busy spell hits both alike
                rates["raw"].append(rate(raw_loop, sb.gateway_url, ids, threads))
                rates["client"].append(rate(client_loop, sb.gateway_url, ids, threads))
            raw, ours = statistics.median(rates["raw"]), statistics.median(rates["client"])
            print(f"{threads:>7}  {raw:>10.0f}  {ours:>9.0f}  {ours / raw:>5.2f}")
        print(f"sandbox counted {sb.stats()['gateway']['calls']} calls")


if __name__ == "__main__":
    main()
