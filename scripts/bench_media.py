#!/usr/bin/env python3
"""The media records' two figures: the probe time per file, and what a refresh costs per item checked.

    python scripts/bench_media.py [--files 60] [--items 1000] [--changed 0.05]

(a) The media probe (PyAV, ``fetch/probe.py``) on ``--files`` sandbox MP4s of 40 kB to 2 MB (every picture size,
    5 to 60 s), written to a temp folder first: the median and 90th percentile of the wall time of one
    ``probe(path)`` call (PyAV imported before timing), and the same for a 64 MiB file.
(b) A refresh of a sandbox catalog of ``--items`` ids (the sandbox's natural mix: about 60% with a video) on the
    loopback sandbox with an injected clock: harvest them on day 1; the sellers of ``--changed`` of the video
    items replace their video on day 2; on day 4 ``refresh`` re-checks every item (``refresh_share = 1``,
    ``--older-than 1``), once with each provider (``item``, ``seller``: the ids are the token's shop,
    ``gateway``: the sandbox's item-data gateway). Printed per provider: items checked, calls, calls per item
    checked, changed items and downloads, and the wall time. The counts are checked: one call per item for item
    and gateway; for seller one list call per 20 items checked plus one video query per replaced video.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def bench_probe(folder: Path, files: int) -> None:
    from taobao_video.fetch.probe import probe
    from taobao_video.sandbox.products import Catalogue

    catalogue = Catalogue(3, (40_000, 2_000_000))
    paths = []
    for num_iid in catalogue.sample("video", files):
        path = folder / f"{num_iid}.mp4"
        with path.open("wb") as handle:
            for chunk in catalogue.video(num_iid).iter_chunks():
                handle.write(chunk)
        paths.append(path)
    probe(paths[0])  # PyAV and FFmpeg loaded before timing
    times = []
    for path in paths:
        started = time.perf_counter()
        probe(path)
        times.append(time.perf_counter() - started)
    times.sort()
    big = Catalogue(3, (64 * 2**20, 64 * 2**20))
    path = folder / "big.mp4"
    with path.open("wb") as handle:
        for chunk in big.video(big.sample("video", 1)[0]).iter_chunks():
            handle.write(chunk)
    started = time.perf_counter()
    probe(path)
    big_s = time.perf_counter() - started
    sizes = sorted(p.stat().st_size for p in paths)
    print(
        f"probe: {len(times)} files of {sizes[0]} to {sizes[-1]} bytes: "
        f"median {statistics.median(times) * 1000:.2f} ms, "
        f"p90 {times[int(len(times) * 0.9)] * 1000:.2f} ms, max {times[-1] * 1000:.2f} ms; "
        f"a 64 MiB file {big_s * 1000:.2f} ms"
    )


def bench_refresh(folder: Path, items: int, changed_share: float, provider: str) -> None:
    from taobao_video import wiring
    from taobao_video.config.load import settings_from_mapping
    from taobao_video.jobs.refresh import refresh
    from taobao_video.sandbox import AppConfig, FakeClock, Sandbox, SandboxConfig, VendorKey
    from taobao_video.sandbox.products import Catalogue
    from taobao_video.top.tokens import Token, TokenStore

    start = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
    clock = FakeClock(start)
    probe_catalogue = Catalogue(5, (20_000, 40_000))
    ids = probe_catalogue.sample_mixed(items)
    videos = [i for i in ids if probe_catalogue.kind(i) == "video"]
    changed = videos[:: max(1, round(1 / changed_share))] if changed_share > 0 else []
    changes = dict.fromkeys(changed, start + timedelta(days=1))
    app = AppConfig(key="12345678", secret="bench-secret", daily_limit=100_000, qps=10_000)
    config = SandboxConfig(
        seed=5, apps=(app,), clock=clock.now, video_bytes=(20_000, 40_000), video_changes=changes,
        shops={SandboxConfig.user_nick: tuple(ids)}, vendor_keys=(VendorKey("bench-key", "bench-vendor-secret"),),
    )  # fmt: skip
    env = {"TAOBAO_APP_KEY": "12345678", "TAOBAO_APP_SECRET": "bench-secret"}
    env |= {"TAOBAO_GATEWAY_KEY": "bench-key", "TAOBAO_GATEWAY_SECRET": "bench-vendor-secret"}
    with Sandbox(config) as sb:
        mapping = {
            "taobao": {
                "gateway_url": sb.gateway_url,
                "oauth_url": sb.oauth_url,
                "token_file": "token.json",
                "provider": provider,
            },
            "gateway": {"url": sb.itemdata_url, "daily_limit": 100_000},
            "quota": {"daily_limit": 100_000},
            "download": {"dir": "videos", "allowed_hosts": ["127.0.0.1"], "workers": 4, "timeout_s": 5},
            "harvest": {"qps": 10_000, "lock_file": "harvest.lock", "refresh_share": 1.0},
            "database": {"url": "sqlite:///catalog.sqlite3"},
        }
        settings = settings_from_mapping(mapping, base_dir=folder, source=str(folder / "settings.toml"), env=env)

        def log_in() -> None:
            body = sb.issue_token(app_key="12345678")
            token = Token.from_response(body, now=clock.now(), grant="authorization_code")
            TokenStore(settings.taobao.token_file).save(token)

        log_in()
        with wiring.catalog(settings) as catalog:
            job = wiring.harvester(settings, catalog, clock=clock.now, sleep=lambda s: None)
            harvested = job.run(ids)
        clock.advance(3 * 86400)
        log_in()
        sb.reset_stats()
        started = time.perf_counter()
        report = refresh(settings, older_than_days=1, clock=clock.now, sleep=lambda s: None)
        seconds = time.perf_counter() - started
        stats = sb.stats()
        calls = stats["gateway"]["calls"] + stats["itemdata"]["requests"]
    print(
        f"refresh ({provider}): catalog of {items} ids ({harvested.downloaded} videos, "
        f"{harvested.no_video} without one, {harvested.not_found} gone), {len(changed)} videos replaced: "
        f"checked {report.checked}, "
        f"{report.api_calls} calls ({calls} at the far end) = {report.api_calls / max(1, report.checked):.3f} calls "
        f"per item checked; {report.unchanged} unchanged, {report.changed} changed, {report.downloaded} downloaded; "
        f"{seconds:.1f} s"
    )
    expected = report.checked if provider != "seller" else math.ceil(report.checked / 20) + len(changed)
    if report.api_calls != expected or calls != expected or report.changed != len(changed):
        sys.exit(f"refresh ({provider}): unexpected counts, expected {expected} calls")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=60)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--changed", type=float, default=0.05)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-media-") as tmp:
        (Path(tmp) / "probe").mkdir()
        bench_probe(Path(tmp) / "probe", args.files)
        for provider in ("item", "seller", "gateway"):
            (Path(tmp) / "refresh" / provider).mkdir(parents=True)
            bench_refresh(Path(tmp) / "refresh" / provider, args.items, args.changed, provider)


if __name__ == "__main__":
    main()
