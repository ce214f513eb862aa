"""Helpers for the `serve` tests: a catalog harvested from the sandbox in two batches, and the server running on it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from conftest import START, make_sandbox
from helpers.harvest import harvest, log_in, opened, sandbox_settings
from taobao_video.config.models import Settings
from taobao_video.sandbox import FakeClock, Sandbox
from taobao_video.store.catalog import Catalog, open_existing
from taobao_video.store.records import VideoRow
from taobao_video.web.server import CatalogServer, CatalogSite, bind

BATCH_GAP_S = 3 * 86400  # the second batch is downloaded three days after the first


@dataclass
class Harvested:
    sandbox: Sandbox
    settings: Settings
    rows: dict[int, VideoRow]  # the videos, as the catalog holds them
    no_video: list[int]
    first_batch_at: datetime
    second_batch_at: datetime
    url: str = ""  # where a test serves it

    def path(self, num_iid: int) -> Path:
        return self.settings.base_dir / self.rows[num_iid].video_path


@contextmanager
def harvested(base: Path, first: int = 8, second: int = 6, no_video: int = 3) -> Iterator[Harvested]:
    """A sandbox (still running: covers load from its CDN) and a catalog of ``first + second`` videos downloaded
    ``BATCH_GAP_S`` apart, plus ``no_video`` items that have none."""
    clock = FakeClock(START)
    with make_sandbox(clock, video_bytes=(40_000, 160_000)) as sb:
        settings = sandbox_settings(sb, base)
        ids = sb.catalogue.sample("video", first + second)
        empty = sb.catalogue.sample("no_video", no_video)
        log_in(sb, settings, clock)
        first_at = clock.now()
        harvest(settings, clock, ids[:first] + empty)
        second_at = clock.advance(BATCH_GAP_S)
        log_in(sb, settings, clock)  # the first token may have expired meanwhile
        report, _ = harvest(settings, clock, ids[first:])
        assert report.downloaded == second
        with opened(settings) as catalog:
            rows = catalog.videos(ids)
        assert len(rows) == first + second
        yield Harvested(sb, settings, rows, empty, first_at, second_at)


def site_for(settings: Settings, catalog: Catalog, **kw: object) -> CatalogSite:
    return CatalogSite(catalog, base_dir=settings.base_dir, videos_dir=settings.download.dir, **kw)  # type: ignore[arg-type]


@contextmanager
def running(server: CatalogServer) -> Iterator[str]:
    """``server`` answering in a thread; yields its base URL (no trailing slash)."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.url.rstrip("/")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextmanager
def serving(site: CatalogSite) -> Iterator[str]:
    """The site on a free loopback port, in a thread; yields its base URL (no trailing slash)."""
    with running(bind(site, "127.0.0.1", 0, access_log=None)) as url:
        yield url


@contextmanager
def served_catalog(settings: Settings, **kw: object) -> Iterator[str]:
    """The settings' catalog, opened read-only as `taobao-video serve` opens it, served on a free port."""
    catalog = open_existing(settings.database.url)
    try:
        with serving(site_for(settings, catalog, **kw)) as url:
            yield url
    finally:
        catalog.close()
