#!/usr/bin/env python3
"""Download throughput from a private nginx on 127.0.0.1: curl (xargs -P), aria2c and Downloader.fetch.

    python scripts/bench_download.py [--files 40] [--size-mb 8] [--parallel 8] [--repeat 3]

Writes ``--files`` real MP4s (the sandbox's Mp4Video) into a temp folder, serves them with nginx (its own config:
``daemon off``, ``sendfile on``, ``access_log off``, a free loopback port, pid and temp paths in the temp
folder), then times fetching all of them with ``--parallel`` transfers at once by each tool, runs interleaved
``--repeat`` times. Every downloaded file's sha256 is checked after each run (outside the timed part). Prints
the median MB/s (10^6 bytes) of each and the ratios ours/curl and ours/aria2c (issue targets: >= 0.7x curl,
>= 1.0x aria2c). Ours does more per file than the others: sha256 while streaming, fsync, rename, sidecar.

Needs ``nginx``, ``curl`` and ``aria2c`` (``apt-get install -y nginx curl aria2``). Cleans up its temp folder
and stops nginx on any exit, Ctrl-C included. Proxy variables are dropped so traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _bench import loopback_only, make_videos, nginx, require, scratch

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


def run_ours(urls: list[str], out: Path, parallel: int, env: dict[str, str]) -> None:
    with Downloader(out, allowed_hosts=("127.0.0.1",), workers=parallel, max_bytes=2**32) as dl:

        def one(pair: tuple[int, str]) -> None:
            index, url = pair
            dl.fetch(url, num_iid=index, name=url.rsplit("/", 1)[1])

        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(one, enumerate(urls)))


RUNNERS: dict[str, Callable[[list[str], Path, int, dict[str, str]], None]] = {
    "curl": run_curl,
    "aria2c": run_aria2c,
    "ours": run_ours,
}


def verify(out: Path, digests: dict[str, str]) -> None:
    """Every file there, each with the right sha256 (outside the timed part)."""
    for name, expected in digests.items():
        with open(out / name, "rb") as file:
            actual = hashlib.file_digest(file, "sha256").hexdigest()
        if actual != expected:
            sys.exit(f"{out / name}: sha256 {actual} != {expected}")


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
        print(f"disk write+fsync of the same bytes: {ceiling:.0f} MB/s (ours fsyncs each file; curl, aria2c do not)")
        rates: dict[str, list[float]] = {tool: [] for tool in RUNNERS}
        for run in range(args.repeat):
            for tool in RUNNERS:
                seconds = timed_run(tool, urls, temp / "scratch", run, args.parallel, env)
                verify(temp / "scratch" / f"{tool}-{run}", digests)
                shutil.rmtree(temp / "scratch" / f"{tool}-{run}")
                rates[tool].append(total_mb / seconds)
                print(f"  run {run + 1} {tool:>6}: {total_mb / seconds:8.1f} MB/s  ({seconds:.2f} s, sha256 ok)")
    medians = {tool: statistics.median(values) for tool, values in rates.items()}
    print("median MB/s: " + "  ".join(f"{tool} {rate:.1f}" for tool, rate in medians.items()))
    print(f"ours/curl   = {medians['ours'] / medians['curl']:.2f}  (target >= 0.70)")
    print(f"ours/aria2c = {medians['ours'] / medians['aria2c']:.2f}  (target >= 1.00)")


if __name__ == "__main__":
    main()
