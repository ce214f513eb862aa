#!/usr/bin/env python3
"""Time and peak memory of the queue at a million ids: `queue add`, and planning a daily run over the queue.

    python scripts/bench_queue.py [--ids 1000000] [--order random|sorted] [--keep DIR]

(a) ``taobao-video queue add --file ids.txt`` with ``--ids`` distinct 12-digit ids (in random order by default,
    as a user's list comes) into a fresh SQLite catalog, run as ``python -m taobao_video --config … queue add``.
(b) planning a daily run on that catalog after half its ids are marked done (a bulk UPDATE) and one quota's worth
    marked resolved: ``plan_daily(catalog, calls_available=1000)`` from ``taobao_video.daily``, or, when that
    module is not there, ``next_lookups(1000)`` + ``awaiting_download()`` + ``queue_stats()`` (said in the output).
Baseline, measured in the same run: ``python -c "import taobao_video.catalog"``.

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
from taobao_video.catalog import Catalog
started = time.perf_counter()
with Catalog.open(sys.argv[1]) as catalog:
    try:
        from taobao_video.daily import plan_daily
    except ImportError:
        lookups, downloads = catalog.next_lookups({CALLS}), catalog.awaiting_download()
        stats, how = catalog.queue_stats(), "next_lookups + awaiting_download + queue_stats (no taobao_video.daily)"
    else:
        plan = plan_daily(catalog, calls_available={CALLS})
        lookups, downloads, how = plan.lookups, plan.downloads, "plan_daily"
print(json.dumps({{"how": how, "lookups": len(lookups), "downloads": len(downloads),
                  "in_process_s": time.perf_counter() - started}}))
"""

_ADD_WITHOUT_CLI = (
    "import sys; from taobao_video.queue_cli import queue; "
    "queue(sys.argv[2:], prog_name='taobao-video queue', obj={'config_path': sys.argv[1]})"
)


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


def queue_add_command(settings: Path, ids: Path) -> tuple[list[str], str]:
    from taobao_video.cli import cli

    arguments = ["queue", "add", "--file", str(ids)]
    if "queue" in cli.commands:
        return [sys.executable, "-m", "taobao_video", "--config", str(settings), *arguments], "python -m taobao_video"
    return [sys.executable, "-c", _ADD_WITHOUT_CLI, str(settings), *arguments[1:]], "the queue group via python -c"


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

        baseline = measure([sys.executable, "-c", "import taobao_video.catalog"])
        command, how_add = queue_add_command(settings, ids)
        added = measure(command)
        done, resolved = half_done(database, CALLS)
        planned = measure([sys.executable, "-c", _PLAN, f"sqlite:///{database}"])
        plan = json.loads(planned["stdout"])

        print(f"ids: {args.ids:,} distinct 12-digit ids in {args.order} order; SQLite catalog in {folder}")
        print(f"(a) queue add through {how_add}: {added['stdout'].strip()}")
        print(
            f"(b) {plan['how']} over {args.ids:,} items ({done:,} done, {resolved:,} resolved, the rest pending): "
            f"{plan['lookups']} lookups + {plan['downloads']} downloads planned; "
            f"{plan['in_process_s']:.2f} s of it inside the process (open + plan)"
        )
        rows = [
            row('baseline: python -c "import taobao_video.catalog"', baseline, target=False),
            row(f"(a) queue add --file ids.txt ({args.ids:,} ids)", added, target=True),
            row(f"(b) plan a daily run ({CALLS} calls) over {args.ids:,}", planned, target=True),
        ]
        width = max(len(r[0]) for r in rows)
        print()
        target = f"target <{TARGET_S:.0f} s, <{TARGET_MB:.0f} MB"
        print(f"{'command':<{width}}  {'wall s':>7}  {'cpu s':>7}  {'peak MB':>8}  {target}")
        for what, seconds, cpu, mb, verdict in rows:
            print(f"{what:<{width}}  {seconds:>7.2f}  {cpu:>7.2f}  {mb:>8.1f}  {verdict}")
        return 1 if any(r[4] == "MISSED" for r in rows) else 0
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
