#!/usr/bin/env python3
"""Time and peak memory of the queue at a million ids: `queue add`, and planning a daily run over the queue.

    python scripts/bench_queue.py [--ids 1000000] [--order random|sorted] [--keep DIR]

(a) ``taobao-video queue add --file ids.txt`` with ``--ids`` distinct 12-digit ids (in random order by default,
    as a user's list comes) into a fresh SQLite catalog, run as ``python -m taobao_video --config … queue add``.
(b) starting a daily run's work on that catalog after half its ids are marked done (a bulk UPDATE) and one quota's
    worth marked resolved: open the catalog, ``queue_stats()``, and claim 1000 resolved ids (downloads) and 1000
    pending ones (lookups) with ``claims.WorkClaims``, as ``jobs.sources.QueueSource`` does.
Baseline, measured in the same run: ``python -c "import taobao_video.store.catalog"``; each command's wall time and peak
RSS are also printed as a ratio to it.

Each command runs as the only child of a small measuring Python, which reports the command's wall time, its CPU
time and its peak RSS (``getrusage(RUSAGE_CHILDREN)``): the figures are the command's own, interpreter start
included. Targets (issue 5): under 15 s and under 200 MB each. Exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

TARGET_S = 15.0
TARGET_MB = 200.0
CALLS = 1000
ID_LOW, ID_HIGH = 500_000_000_000, 699_999_999_999  # 12 digits, like today's num_iids

_MEASURE = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(json.loads(sys.argv[1]), capture_output=True, text=True)
seconds = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": seconds, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_kib": usage.ru_maxrss,
                  "code": done.returncode, "stdout": done.stdout, "stderr": done.stderr}))
"""

_PLAN = f"""
import json, sys, time
from datetime import timedelta
from taobao_video.store.catalog import Catalog
from taobao_video.model import ItemState
from taobao_video.store.claims import WorkClaims
from taobao_video.model import utc_now
started = time.perf_counter()
with Catalog.open(sys.argv[1]) as catalog:
    catalog.queue_stats()
    claims = WorkClaims(catalog, lease=timedelta(minutes=10), clock=utc_now)
    downloads, lookups = claims.claim(ItemState.RESOLVED, {CALLS}), claims.claim(ItemState.PENDING, {CALLS})
print(json.dumps({{"lookups": len(lookups), "downloads": len(downloads),
                  "in_process_s": time.perf_counter() - started}}))
"""


def measure(command: list[str]) -> dict[str, Any]:
    """Run ``command`` as the only child of a fresh measuring interpreter; its time, CPU and peak RSS."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, json.dumps(command)], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout)
    if result["code"] != 0:
        raise SystemExit(f"{' '.join(command)} failed with {result['code']}:\n{result['stdout']}{result['stderr']}")
    return result


def write_ids(path: Path, count: int, order: str) -> None:
    ids = random.Random(2026).sample(range(ID_LOW, ID_HIGH + 1), count)
    if order == "sorted":
        ids.sort()
    with path.open("w") as out:
        for start in range(0, count, 100_000):
            out.write("".join(f"{num_iid}\n" for num_iid in ids[start : start + 100_000]))


def half_done(database: Path, resolved: int) -> tuple[int, int]:
    """Mark every other id (by seq) done and the first ``resolved`` of the rest resolved, as a run would leave them."""
    with sqlite3.connect(database) as db:
        done = db.execute("UPDATE items SET state = 'done' WHERE seq % 2 = 0").rowcount
        looked_up = db.execute(
            "UPDATE items SET state = 'resolved', video_url = 'https://cloud.video.taobao.com/play/' || num_iid "
            "WHERE num_iid IN (SELECT num_iid FROM items WHERE state = 'pending' ORDER BY seq LIMIT ?)",
            (resolved,),
        ).rowcount
    return done, looked_up


def row(what: str, result: dict[str, Any], target: bool) -> tuple[str, float, float, float, str]:
    mb = result["peak_kib"] / 1024
    verdict = ("ok" if result["seconds"] < TARGET_S and mb < TARGET_MB else "MISSED") if target else "-"
    return what, result["seconds"], result["cpu_s"], mb, verdict


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ids", type=int, default=1_000_000, help="How many ids (default 1,000,000).")
    parser.add_argument("--order", choices=("random", "sorted"), default="random", help="Order of ids.txt.")
    parser.add_argument("--keep", type=Path, help="Work in this folder and keep it (default: a temp folder).")
    args = parser.parse_args()

    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_queue_"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        settings, ids, database = folder / "settings.toml", folder / "ids.txt", folder / "catalog.sqlite3"
        for stale in folder.glob("catalog.sqlite3*"):
            stale.unlink()
        settings.write_text('[database]\nurl = "sqlite:///catalog.sqlite3"\n')
        write_ids(ids, args.ids, args.order)

        baseline = measure([sys.executable, "-c", "import taobao_video.store.catalog"])
        cli = [sys.executable, "-m", "taobao_video", "--config", str(settings)]
        added = measure([*cli, "queue", "add", "--file", str(ids)])
        done, resolved = half_done(database, CALLS)
        planned = measure([sys.executable, "-c", _PLAN, f"sqlite:///{database}"])
        plan = json.loads(planned["stdout"])

        print(f"ids: {args.ids:,} distinct 12-digit ids in {args.order} order; SQLite catalog in {folder}")
        print(f"(a) queue add through python -m taobao_video: {added['stdout'].strip()}")
        print(
            f"(b) claim a day's work over {args.ids:,} items ({done:,} done, {resolved:,} resolved, the rest pending): "
            f"{plan['lookups']} lookups + {plan['downloads']} downloads claimed; "
            f"{plan['in_process_s']:.2f} s of it inside the process (open + stats + claims)"
        )
        rows = [
            row('baseline: python -c "import taobao_video.store.catalog"', baseline, target=False),
            row(f"(a) queue add --file ids.txt ({args.ids:,} ids)", added, target=True),
            row(f"(b) claim a day's work ({CALLS} calls) over {args.ids:,}", planned, target=True),
        ]
        width = max(len(r[0]) for r in rows)
        print()
        target = f"target <{TARGET_S:.0f} s, <{TARGET_MB:.0f} MB"
        print(
            f"{'command':<{width}}  {'wall s':>7}  {'x base':>6}  {'cpu s':>7}  {'peak MB':>8}  {'x base':>6}  {target}"
        )
        base_s, base_mb = rows[0][1], rows[0][3]
        for what, seconds, cpu, mb, verdict in rows:
            print(
                f"{what:<{width}}  {seconds:>7.2f}  {seconds / base_s:>6.2f}  {cpu:>7.2f}  {mb:>8.1f}  "
                f"{mb / base_mb:>6.2f}  {verdict}"
            )
        return 1 if any(r[4] == "MISSED" for r in rows) else 0
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
