"""Several `taobao-video daily` processes sharing one catalog and one sandbox: the quota is never exceeded between
them, no id is fetched twice, a killed worker's ids go to the others after its lease; on SQLite one run at a time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers.harvest import harvest, log_in, opened, sandbox_settings
from helpers.worker_procs import APP_KEY, APP_SECRET, REPO, items_done, shared_folder, start_daily, summary
from sqlalchemy import func, select

from conftest import Sleeps, make_sandbox
from taobao_video import wiring
from taobao_video.jobs.daily import run_daily
from taobao_video.model import ItemState, utc_now
from taobao_video.sandbox import AppConfig, FakeClock, Sandbox, SandboxConfig
from taobao_video.store.catalog import Catalog, engine_of
from taobao_video.store.claims import Holder, WorkClaims
from taobao_video.store.quota import QuotaLedger
from taobao_video.store.schema import Item

pytestmark = pytest.mark.slow

FINISHED = {ItemState.DONE.value, ItemState.NO_VIDEO.value, ItemState.NOT_FOUND.value}


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    """The platform every worker talks to: no quota of its own, so any call beyond the ledger's cap would count."""
    config = SandboxConfig(seed=31, apps=(AppConfig(key=APP_KEY, secret=APP_SECRET),), video_bytes=(20_000, 40_000))
    with Sandbox(config) as sandbox:
        yield sandbox


def start_workers(
    sb: Sandbox, url: str, ids: list[int], folder: Path, **settings: Any
) -> tuple[list[subprocess.Popen[bytes]], list[Path]]:
    """Queue ``ids``, then start 4 `daily --json` workers on one shared settings folder; returns them and the
    files their --json output goes to."""
    with Catalog.open(url) as catalog:
        catalog.enqueue(ids, now=datetime.now(UTC))
    config = shared_folder(folder / "shared", sb, url, **settings)
    outs = [folder / f"worker{n}.jsonl" for n in range(4)]
    return [start_daily(config, out) for out in outs], outs


def wait_all(processes: list[subprocess.Popen[bytes]], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    return [process.wait(timeout=max(1.0, deadline - time.monotonic())) for process in processes]


def states(url: str) -> dict[str, int]:
    with Catalog.open(url) as catalog:
        return catalog.counts_by_state()


@pytest.mark.timeout(300)
def test_four_workers_share_a_queue_and_one_quota(sb, pg_url, tmp_path):
    ids = sb.catalogue.sample_mixed(2000)
    # paced (30 lookups/s each, 1000 calls take 8 s or more), so that a worker starting late still finds work
    workers, outs = start_workers(sb, pg_url, ids, tmp_path, qps=30, daily_limit=1000)
    codes = wait_all(workers, timeout=240)
    summaries = [summary(out) for out in outs]

    assert codes == [75] * 4, "the queue outlasts today's quota"
    stats = sb.stats()
    assert stats["gateway"]["calls"] == 1000, "the platform saw exactly the quota, not one call more"
    assert sum(s["api_calls"] for s in summaries) == 1000
    assert all(s["api_calls"] > 0 for s in summaries), f"every worker did some of the work: {summaries}"
    assert all(count == 1 for count in stats["cdn"]["by_item"].values()), "no video downloaded twice"
    asked = stats["gateway"]["by_item"]
    assert all(count == 1 for count in asked.values()) and len(asked) == 1000, "no id looked up twice"
    by_worker = [items_done(out) for out in outs]
    assert sum(len(done) for done in by_worker) == 1000
    assert len(set().union(*by_worker)) == 1000, "no id finished by two workers"
    with Catalog.open(pg_url) as catalog:
        videos = catalog.videos(ids)
        assert len(videos) == len(stats["cdn"]["by_item"]) == sum(s["downloaded"] for s in summaries)
        assert catalog.call_count(app_key=APP_KEY) == 1000
        assert catalog.counts_by_state()["pending"] == 1000
        with engine_of(catalog).connect() as connection:
            assert connection.scalar(select(func.count()).where(Item.claimed_by.is_not(None))) == 0, "all released"
    assert {path.name for path in (tmp_path / "shared" / "videos").iterdir()} == {f"{i}.mp4" for i in videos}


def claims_of(url: str, pid: int) -> set[int]:
    with Catalog.open(url, migrate=False) as catalog, engine_of(catalog).connect() as connection:
        query = select(Item.num_iid).where(Item.claimed_by.like(f"%:{pid}:%"))
        return set(connection.scalars(query))


@pytest.mark.timeout(300)
def test_a_killed_workers_ids_go_to_the_others_after_its_lease(sb, pg_url, tmp_path):
    ids = sb.catalogue.sample_mixed(600)
    workers, outs = start_workers(sb, pg_url, ids, tmp_path, qps=30, lease_s=3)
    victim = workers[0]
    deadline = time.monotonic() + 60
    while not claims_of(pg_url, victim.pid):
        assert time.monotonic() < deadline and victim.poll() is None, "the worker never held a claim"
        time.sleep(0.05)
    time.sleep(0.5)  # mid-batch
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    killed_at = time.monotonic()
    orphans = claims_of(pg_url, victim.pid)  # frozen now: what it held when it died
    assert orphans, "it died holding claims"

    codes = wait_all(workers[1:], timeout=240)
    assert time.monotonic() - killed_at > 3, "the others waited for the lease to run out"
    assert codes == [0, 0, 0], [out.with_suffix(".err").read_text()[-500:] for out in outs[1:]]
    finished_by_others: dict[int, str] = {}
    for out in outs[1:]:
        finished_by_others.update(items_done(out))
    assert orphans <= set(finished_by_others), "every id it held was finished by another worker"
    with Catalog.open(pg_url) as catalog:
        items = catalog.items(ids)
        assert {items[i].state.value for i in ids} <= FINISHED, "the queue is drained"
        assert claims_of(pg_url, victim.pid) == set()
        videos = catalog.videos(ids)
    cdn = sb.stats()["cdn"]["by_item"]
    assert set(map(int, cdn)) == set(videos)
    refetched = {int(i) for i, count in cdn.items() if count > 1}
    assert refetched <= orphans, "only a download the dead worker had started is fetched again"


@pytest.mark.timeout(300)
def test_on_sqlite_one_worker_runs_and_the_others_exit_75(sb, tmp_path):
    url = f"sqlite:///{tmp_path / 'shared' / 'catalog.sqlite3'}"
    ids = sb.catalogue.sample_mixed(300)
    workers, outs = start_workers(sb, url, ids, tmp_path, qps=40)  # 7.5 s of lookups: the others meet the lock
    codes = wait_all(workers, timeout=240)
    ran = [n for n, code in enumerate(codes) if code == 0]
    assert len(ran) == 1 and sorted(codes) == [0, 75, 75, 75], codes
    for n, out in enumerate(outs):
        if n not in ran:
            assert "another run holds the lock" in out.with_suffix(".err").read_text()
    assert summary(outs[ran[0]])["api_calls"] == 300 == sb.stats()["gateway"]["calls"]
    assert set(states(url)) and {k for k, v in states(url).items() if v} <= FINISHED


def test_the_quota_ledger_caps_reservations_across_processes(pg_url):
    """Four processes reserving calls as fast as they can from one PostgreSQL ledger: the cap holds exactly."""
    Catalog.open(pg_url).close()  # migrated once, before the race
    code = (
        "import sys\n"
        "from taobao_video.store.catalog import Catalog\n"
        "from taobao_video.errors import QuotaExhausted\n"
        "from taobao_video.store.quota import QuotaLedger\n"
        "with Catalog.open(sys.argv[1], migrate=False) as catalog:\n"
        "    ledger = QuotaLedger(catalog, app_key='k', daily_limit=700)\n"
        "    taken = 0\n"
        "    try:\n"
        "        while True:\n"
        "            ledger.reserve()\n"
        "            taken += 1\n"
        "    except QuotaExhausted:\n"
        "        print(taken)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    children = [
        subprocess.Popen([sys.executable, "-c", code, pg_url], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    taken = [int(child.communicate(timeout=60)[0]) for child in children]
    assert sum(taken) == 700 and all(taken), taken
    with Catalog.open(pg_url, migrate=False) as catalog:
        assert QuotaLedger(catalog, app_key="k", daily_limit=700).status().used == 700


# -- one process, a second worker's claims made by hand ---------------------------------------------------------


@pytest.fixture
def world(clock, tmp_path, catalog_url):
    with make_sandbox(clock, daily_limit=1000, video_bytes=(20_000, 40_000)) as sandbox:
        settings = sandbox_settings(sandbox, tmp_path, database={"url": catalog_url})
        log_in(sandbox, settings, clock)
        yield sandbox, settings


def other_worker(catalog: Catalog, clock, lease_s: float = 600) -> WorkClaims:
    return WorkClaims(catalog, lease=timedelta(seconds=lease_s), clock=clock, worker="elsewhere:1:abc")


def test_harvest_leaves_the_ids_another_worker_holds_and_exits_75(world, clock):
    sb, settings = world
    ids = sb.catalogue.sample("video", 6)
    with opened(settings) as catalog:
        catalog.add_items(ids, now=clock.now())
        other_worker(catalog, clock.now).claim_ids(ids[:2])
    report, events = harvest(settings, clock, ids)
    assert (report.downloaded, report.deferred, report.held, report.exit_code) == (4, 2, 2, 75)
    assert {int(i) for i in sb.stats()["gateway"]["by_item"]} == set(ids[2:]), "no call for the held ids"
    held = [e for e in events if e.get("outcome") == "deferred"]
    assert all("another worker (elsewhere:1:abc)" in e["detail"] for e in held)
    with opened(settings) as catalog:
        items = catalog.items(ids[:2])
        assert {item.deferred_at for item in items.values()} == {None}, "not this run's 'later'"
        assert other_worker(catalog, clock.now).holders(ids) == {
            i: Holder("elsewhere:1:abc", clock.now() + timedelta(seconds=600)) for i in ids[:2]
        }, "its claims stay; this run's own are all released"


def test_a_run_holding_the_lock_takes_over_a_killed_runs_claims(world, clock):
    sb, settings = world
    ids = sb.catalogue.sample("video", 3)
    with opened(settings) as catalog:
        catalog.add_items(ids, now=clock.now())
        other_worker(catalog, clock.now).claim_ids(ids)
    report, _ = harvest(settings, clock, ids, exclusive=True)
    assert (report.downloaded, report.held, report.exit_code) == (3, 0, 0)


def test_daily_waits_for_a_dead_workers_claims_then_finishes_its_ids(sb, tmp_path, catalog_url):
    """The real clock: a worker that died holding two ids; this run does the rest, waits out the lease, does them."""
    settings = sandbox_settings(sb, tmp_path, database={"url": catalog_url})
    log_in(sb, settings, FakeClock(utc_now()))
    ids = sb.catalogue.sample("no_video", 5)
    with opened(settings) as catalog:
        catalog.enqueue(ids, now=utc_now())
        dead = other_worker(catalog, utc_now, lease_s=1.5)
        held = dead.claim(ItemState.PENDING, 2)
        lease_until = dead.holders(held)[held[0]].lease_until
        job = wiring.harvester(settings, catalog)
        report = run_daily(job)
        # Judged by the catalog's own times, not by how long the run took (a loaded machine slows both sides):
        # the held ids were looked up only once their lease had run out, and by this run.
        checked = {num_iid: item.checked_at for num_iid, item in catalog.items(held).items()}
        assert all(at is not None and at >= lease_until for at in checked.values()), (checked, lease_until)
        assert (report.harvest.no_video, report.remaining, report.exit_code) == (5, 0, 0)
        assert sb.stats()["gateway"]["calls"] == 5


def test_a_stopped_run_releases_its_claims(world, clock):
    sb, settings = world
    ids = sb.catalogue.sample_mixed(12)
    with opened(settings) as catalog:
        catalog.enqueue(ids, now=clock.now())
    sb.set_quota_used(APP_KEY, 1000 - 4)  # the platform says "spent" at the fifth call
    with opened(settings) as catalog:
        job = wiring.harvester(settings, catalog, clock=clock.now, sleep=Sleeps())
        report = run_daily(job)
        assert report.harvest.stopped == "quota" and report.harvest.deferred > 0
        assert other_worker(catalog, clock.now).holders(ids) == {}, "nothing left claimed"
        assert catalog.queue_stats()["deferred"] == report.harvest.deferred
