#!/usr/bin/env python3
"""Harvest throughput of several `taobao-video daily` workers sharing a PostgreSQL catalog, against one on SQLite.

    python scripts/bench_workers.py [--ids 400] [--repeat 3] [--qps 1000] [--video-kb 64-512]

Starts a throwaway PostgreSQL server (tests/helpers/pgserver.py: initdb in a temp dir, loopback, fsync off) and the
sandbox on 127.0.0.1, then for each setup — 1 worker on SQLite, 1, 2 and 4 workers on PostgreSQL — fills a fresh
catalog with the same ``--ids`` queued ids (the sandbox's natural mix: 60 % with a video), starts the workers as
``python -m taobao_video daily --json`` processes sharing one settings folder, and times them from the first start
to the last exit (interpreter start included). Setups run interleaved ``--repeat`` times; the median is printed.

ids/s counts every id finished (downloaded, no video, not found); MB/s the bytes the workers' summaries say they
fetched (10^6 bytes); both over the wall time. "in-run" divides by the longest worker's own run time instead (its
summary's ``seconds``), leaving out interpreter start and catalog open, which weigh on short runs of several
workers.

The quota is twice the queue. With the default ``--qps 1000`` pacing does not limit a worker: what is measured is
the tool's own machinery (claims, lookups, downloads, catalog writes) and the sandbox, which serves everything from
this one Python process, so on a small machine the CPU is the limit and more workers only share it. A low ``--qps``
(``harvest.qps`` defaults to 2: the real platform limits how fast an app may call) shows what several workers add
when the pace, not the CPU, is the limit. CPU seconds are printed for the workers and for this process (the sandbox).

Needs PostgreSQL's server binaries (Debian: apt-get install postgresql) and psycopg; run as root, the server runs
as the ``postgres`` user. Cleans up its temp folders and stops the server on exit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from _bench import children_cpu_s  # noqa: E402
from helpers.pgserver import running_server  # noqa: E402
from helpers.worker_procs import APP_KEY, APP_SECRET, shared_folder, start_daily, summary  # noqa: E402

from taobao_video.sandbox import AppConfig, Sandbox, SandboxConfig  # noqa: E402
from taobao_video.store.catalog import Catalog  # noqa: E402

SETUPS = (("sqlite", 1), ("postgresql", 1), ("postgresql", 2), ("postgresql", 4))


class Figures(NamedTuple):
    ids_s: float
    mb_s: float
    run_ids_s: float  # ids over the longest worker's own run time (its summary's seconds): interpreter start left out
    workers_cpu_s: float  # user + system CPU of the worker processes
    sandbox_cpu_s: float  # this process: the sandbox's server threads (and the bench's few statements)


def one_run(sb: Sandbox, folder: Path, url: str, ids: list[int], workers: int, qps: float) -> Figures:
    """ids/s, MB/s and CPU seconds of ``workers`` daily runs draining a queue of ``ids`` in the catalog at ``url``."""
    with Catalog.open(url) as catalog:
        catalog.enqueue(ids, now=datetime.now(UTC))
    config = shared_folder(folder, sb, url, qps=qps, daily_limit=2 * len(ids))
    outs = [folder / f"worker{n}.jsonl" for n in range(workers)]
    children_cpu, own_cpu = children_cpu_s(), time.process_time()
    started = time.perf_counter()
    processes = [start_daily(config, out) for out in outs]
    codes = [process.wait(timeout=600) for process in processes]
    seconds = time.perf_counter() - started
    children_cpu, own_cpu = children_cpu_s() - children_cpu, time.process_time() - own_cpu
    summaries = [summary(out) for out in outs]
    if any(code not in (0, 1) for code in codes):
        raise SystemExit(f"a worker exited {codes}: see {folder}/*.err")
    finished = sum(s["downloaded"] + s["no_video"] + s["not_found"] for s in summaries)
    if finished != len(ids):
        raise SystemExit(f"{finished} of {len(ids)} ids finished: see {folder}")
    megabytes = sum(s["bytes"] for s in summaries) / 1e6
    longest_run = max(s["seconds"] for s in summaries)
    return Figures(finished / seconds, megabytes / seconds, finished / longest_run, children_cpu, own_cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=400, help="queued ids per run (default 400)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per setup, interleaved (default 3)")
    parser.add_argument("--qps", type=float, default=1000, help="harvest.qps per worker (default 1000)")
    parser.add_argument("--video-kb", default="64-512", help="video sizes in KiB, MIN-MAX (default 64-512)")
    args = parser.parse_args()
    low, high = (int(kb) * 1024 for kb in args.video_kb.split("-"))
    config = SandboxConfig(seed=5, apps=(AppConfig(key=APP_KEY, secret=APP_SECRET),), video_bytes=(low, high))
    results: dict[tuple[str, int], list[Figures]] = {setup: [] for setup in SETUPS}
    load = os.getloadavg()
    with running_server() as pg, Sandbox(config) as sb, tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        ids = sb.catalogue.sample_mixed(args.ids)
        for round_ in range(args.repeat):
            for engine, workers in SETUPS:
                folder = Path(tmp) / f"{engine}-{workers}-{round_}"
                if engine == "sqlite":
                    url = f"sqlite:///{folder / 'catalog.sqlite3'}"
                    figures = one_run(sb, folder, url, ids, workers, args.qps)
                else:
                    with pg.database() as url:
                        figures = one_run(sb, folder, url, ids, workers, args.qps)
                results[(engine, workers)].append(figures)
                print(f"  round {round_ + 1}: {engine:<10} {workers} worker(s): {figures.ids_s:7.1f} ids/s "
                      f"{figures.mb_s:6.1f} MB/s ({figures.run_ids_s:.1f} ids/s in-run), CPU s: workers "
                      f"{figures.workers_cpu_s:.1f}, sandbox {figures.sandbox_cpu_s:.1f}", file=sys.stderr)  # fmt: skip
    print(f"{args.ids} queued ids, videos {args.video_kb} KiB, qps {args.qps:g} per worker; median of {args.repeat}:")
    base = statistics.median(r.ids_s for r in results[("sqlite", 1)])
    for (engine, workers), runs in results.items():
        ids_s = statistics.median(r.ids_s for r in runs)
        mb_s = statistics.median(r.mb_s for r in runs)
        in_run = statistics.median(r.run_ids_s for r in runs)
        cpu = statistics.median(r.workers_cpu_s for r in runs), statistics.median(r.sandbox_cpu_s for r in runs)
        print(f"  {engine:<10} {workers} worker(s): {ids_s:7.1f} ids/s  {mb_s:6.1f} MB/s  ({ids_s / base:.2f}x SQLite)"
              f"  in-run {in_run:6.1f} ids/s  CPU s: workers {cpu[0]:.1f}, sandbox {cpu[1]:.1f}")  # fmt: skip
    print(f"  ({os.cpu_count()} CPUs; load average before the runs {load[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
