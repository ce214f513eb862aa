#!/usr/bin/env python3
"""Download throughput from a private nginx on 127.0.0.1: curl (xargs -P), aria2c, Downloader.fetch and harvest.

    python scripts/bench_download.py [--files 40] [--size-mb 8] [--parallel 8] [--repeat 3]   # issue 15: also 300 x 2

Writes ``--files`` real MP4s (the sandbox's Mp4Video) into a temp folder, serves them with nginx (its own config:
``daemon off``, ``sendfile on``, ``access_log off``, a free loopback port, pid and temp paths in the temp
folder), then times fetching all of them with ``--parallel`` transfers at once by each tool, runs interleaved
``--repeat`` times. Every downloaded file's sha256 is checked after each run (outside the timed part). Prints
the median MB/s (10^6 bytes) of each and the ratios to curl and aria2c (issue 15's targets for harvest: >= 0.9x
curl, >= 1.0x aria2c).

The tools:

- ``curl``: ``xargs -P N -n 1 curl -sS --fail -O``; ``aria2c -j N -x 1 -i urls``: neither fsyncs anything.
- ``fetch``: ``Downloader.fetch`` from N threads, one fsync per file (sha256 while streaming, sidecar, rename).
- ``harvest``: ``python -m taobao_video harvest --json --file ids.txt`` as a user runs it, interpreter start
  included, over a catalog (prepared outside the timed part) where every id is already ``resolved`` to its nginx
  URL, so no call is made: download, MP4 check, fsync (the group commit: jobs/commit.py), one row per video. The
  gateway URL points at a closed port: a call would fail the run. ``harvest-in-run`` is the same runs measured by
  the summary's own ``seconds`` (interpreter start and catalog open left out).

Needs ``nginx``, ``curl`` and ``aria2c`` (``apt-get install -y nginx curl aria2``). Cleans up its temp folder
and stops nginx on any exit, Ctrl-C included. Proxy variables are dropped so traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _bench import free_port, loopback_only, make_videos, nginx, require, resolve_ids, scratch

from taobao_video.fetch.downloader import Downloader

TOOLS = ("nginx", "curl", "aria2c")
INSTALL_HINT = "apt-get install -y nginx curl aria2"


def run_curl(urls: list[str], out: Path, parallel: int, env: dict[str, str]) -> None:
    command = ["xargs", "-P", str(parallel), "-n", "1", "curl", "-sS", "--fail", "--noproxy", "*", "-O"]
    subprocess.run(command, input="\n".join(urls).encode(), cwd=out, env=env, check=True)


def run_aria2c(urls: list[str], out: Path, parallel: int, env: dict[str, str]) -> None:
    listing = out.parent / f"{out.name}-urls.txt"
    listing.write_text("\n".join(urls) + "\n")
    command = ["aria2c", "-j", str(parallel), "-x", "1", "-i", str(listing), "-d", str(out), "-q"]
    command += ["--allow-overwrite=true", "--auto-file-renaming=false"]
    subprocess.run(command, cwd=out, env=env, check=True)


def run_fetch(urls: list[str], out: Path, parallel: int, env: dict[str, str]) -> None:
    with Downloader(out, allowed_hosts=("127.0.0.1",), workers=parallel, max_bytes=2**32) as dl:

        def one(pair: tuple[int, str]) -> None:
            index, url = pair
            dl.fetch(url, num_iid=index, name=url.rsplit("/", 1)[1])

        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(one, enumerate(urls)))


FIRST_ID = 600_000_000_000  # harvest's files are <num_iid>.mp4: FIRST_ID + the index of v<index>.mp4
IN_RUN: dict[str, float] = {}  # the last harvest's own "seconds" (its summary)


def prepare_harvest(urls: list[str], home: Path, parallel: int) -> Path:
    """A settings folder whose catalog has every id ``resolved`` to its URL (outside the timed part)."""
    home.mkdir()
    (home / "settings.toml").write_text(
        "[taobao]\n"
        f'gateway_url = "http://127.0.0.1:{free_port()}/router/rest"\n'  # closed: no call may be made
        "[download]\n"
        f'dir = "videos"\nworkers = {parallel}\nallowed_hosts = ["127.0.0.1"]\nmax_bytes = {2**32}\n'
        "min_free_mb = 0\n"
        '[harvest]\nlock_file = "harvest.lock"\n'
        '[database]\nurl = "sqlite:///catalog.sqlite3"\n'
    )
    resolve_ids(home, urls, FIRST_ID)
    return home


def run_harvest(urls: list[str], out: Path, parallel: int, env: dict[str, str]) -> None:
    home = out.parent / f"{out.name}-home"
    command = [sys.executable, "-m", "taobao_video", "--config", str(home / "settings.toml"), "harvest", "--json"]
    command += ["--file", str(home / "ids.txt")]
    env = {**env, "TAOBAO_APP_KEY": "bench", "TAOBAO_APP_SECRET": "bench-secret"}
    done = subprocess.run(command, env=env, check=False, capture_output=True, text=True)
    lines = done.stdout.splitlines()
    summary = json.loads(lines[-1]) if lines else {}
    if done.returncode != 0 or summary.get("downloaded") != len(urls) or summary.get("api_calls") != 0:
        sys.exit(f"harvest exited {done.returncode}: {lines[-1] if lines else ''}\n{done.stderr}")
    IN_RUN["harvest"] = summary["seconds"]
    (home / "videos").rename(out)


RUNNERS: dict[str, Callable[[list[str], Path, int, dict[str, str]], None]] = {
    "curl": run_curl,
    "aria2c": run_aria2c,
    "fetch": run_fetch,
    "harvest": run_harvest,
}


def verify(out: Path, digests: dict[str, str], *, harvested: bool = False) -> None:
    """Every file there, each with the right sha256 (outside the timed part)."""
    for index, (name, expected) in enumerate(digests.items()):
        path = out / (f"{FIRST_ID + index}.mp4" if harvested else name)
        with open(path, "rb") as file:
            actual = hashlib.file_digest(file, "sha256").hexdigest()
        if actual != expected:
            sys.exit(f"{path}: sha256 {actual} != {expected} (served as {name})")


def disk_ceiling(scratch: Path, size: int) -> float:
    """MB/s of writing ``size`` bytes and fsyncing them here: the most a downloader that fsyncs can reach."""
    block = os.urandom(1 << 20)
    started = time.perf_counter()
    with open(scratch / "ceiling", "wb") as out:
        for _ in range(max(1, size >> 20)):
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    seconds = time.perf_counter() - started
    (scratch / "ceiling").unlink()
    return max(1, size >> 20) * len(block) / 1e6 / seconds


def timed_run(tool: str, urls: list[str], scratch: Path, run: int, parallel: int, env: dict[str, str]) -> float:
    """Seconds for ``tool`` to fetch every URL into a fresh folder (checked and removed by the caller)."""
    out = scratch / f"{tool}-{run}"
    if tool == "harvest":
        prepare_harvest(urls, scratch / f"{tool}-{run}-home", parallel)
    else:
        out.mkdir()
    os.sync()  # no run inherits the dirty pages of the one before it
    started = time.perf_counter()
    RUNNERS[tool](urls, out, parallel, env)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--size-mb", type=float, default=8.0, help="size of each file in MiB")
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs per tool; the median is printed")
    parser.add_argument("--tools", nargs="+", default=list(RUNNERS), choices=list(RUNNERS), help="which to run")
    args = parser.parse_args()
    require(TOOLS, INSTALL_HINT)
    env = loopback_only()
    with scratch("bench_download-") as temp:
        bench(args, temp, env)


def bench(args: argparse.Namespace, temp: Path, env: dict[str, str]) -> None:
    size = int(args.size_mb * 2**20)
    digests = make_videos(temp / "www", args.files, size)
    (temp / "nginx").mkdir()
    (temp / "scratch").mkdir()
    total_mb = args.files * size / 1e6
    with nginx(temp / "www", temp / "nginx") as base:
        urls = [f"{base}/{name}" for name in digests]
        print(f"nginx {base}; {args.files} files x {args.size_mb:g} MiB = {total_mb:.0f} MB per run, ", end="")
        print(f"{args.parallel} in parallel, {args.repeat} interleaved runs; cpus={os.cpu_count()}")
        ceiling = disk_ceiling(temp / "scratch", args.files * size)
        print(f"disk write+fsync of the same bytes: {ceiling:.0f} MB/s (fetch, harvest fsync; curl, aria2c do not)")
        tools = [tool for tool in RUNNERS if tool in args.tools]
        rates: dict[str, list[float]] = {tool: [] for tool in tools}
        if "harvest" in tools:
            rates["harvest-in-run"] = []
        for run in range(args.repeat):
            for tool in tools:
                seconds = timed_run(tool, urls, temp / "scratch", run, args.parallel, env)
                verify(temp / "scratch" / f"{tool}-{run}", digests, harvested=tool == "harvest")
                for leftover in (temp / "scratch").iterdir():
                    shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
                rates[tool].append(total_mb / seconds)
                print(f"  run {run + 1} {tool:>7}: {total_mb / seconds:8.1f} MB/s  ({seconds:.2f} s, sha256 ok)")
                if tool == "harvest":
                    rates["harvest-in-run"].append(total_mb / IN_RUN["harvest"])
                    print(f"        in-run: {total_mb / IN_RUN['harvest']:8.1f} MB/s  ({IN_RUN['harvest']:.2f} s)")
    medians = {tool: statistics.median(values) for tool, values in rates.items()}
    print("median MB/s: " + "  ".join(f"{tool} {rate:.1f}" for tool, rate in medians.items()))
    for ours in ("harvest", "harvest-in-run", "fetch"):
        for base, target in (("curl", 0.9), ("aria2c", 1.0)):
            if ours in medians and base in medians:
                ratio = medians[ours] / medians[base]
                print(
                    f"{ours}/{base} = {ratio:.2f}  (target >= {target:.2f}: {'met' if ratio >= target else 'MISSED'})"
                )


if __name__ == "__main__":
    main()
