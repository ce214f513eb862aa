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
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from taobao_video.download import Downloader
from taobao_video.sandbox.mp4 import Mp4Video

TOOLS = ("nginx", "curl", "aria2c")
INSTALL_HINT = "apt-get install -y nginx curl aria2"
NGINX_CONF = """\
{user}worker_processes {workers};
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    types {{ video/mp4 mp4; }}
    default_type application/octet-stream;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


def require(tools: tuple[str, ...]) -> None:
    """Exit non-zero naming every missing tool and how to install it."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        sys.exit(f"{Path(sys.argv[0]).name}: missing {', '.join(missing)}; install with: {INSTALL_HINT}")


def loopback_only() -> dict[str, str]:
    """The environment without proxy settings, for us and the tools: nothing may leave 127.0.0.1."""
    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        del os.environ[name]
    return dict(os.environ)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the finally blocks stop nginx and remove the temp folder."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


@contextmanager
def nginx(root: Path, work: Path, workers: int = 2) -> Iterator[str]:
    """A private nginx serving ``root`` on a free loopback port; yields its base URL, stops it on exit."""
    port = free_port()
    user = "user root;\n" if os.geteuid() == 0 else ""  # as root, workers would drop to nobody: the temp is 0700
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(user=user, workers=workers, work=work, port=port, root=root))
    command = ["nginx", "-p", str(work), "-e", str(work / "error.log"), "-c", str(conf)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _wait_listening(process, port, work)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()  # SIGTERM: nginx's fast shutdown; our own child, by its pid
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_listening(process: subprocess.Popen[bytes], port: int, work: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (work / "error.log").read_text(errors="replace") if (work / "error.log").exists() else ""
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            sys.exit(f"nginx did not start:\n{stderr}{log}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    sys.exit("nginx did not listen within 10 s")


def make_videos(folder: Path, count: int, size: int) -> dict[str, str]:
    """``count`` real MP4s of ``size`` bytes; returns name -> sha256."""
    folder.mkdir()
    digests = {}
    for index in range(count):
        video = Mp4Video(duration_s=30 + index, width=640, height=360, size_bytes=size, seed=index)
        name = f"v{index:03d}.mp4"
        digest = hashlib.sha256()
        with open(folder / name, "wb") as out:
            for chunk in video.iter_chunks(chunk_size=1 << 20):
                out.write(chunk)
                digest.update(chunk)
        digests[name] = digest.hexdigest()
    return digests


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
    require(TOOLS)
    env = loopback_only()
    _stop_on_sigterm()
    temp = Path(tempfile.mkdtemp(prefix="bench_download-"))
    try:
        bench(args, temp, env)
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        sys.exit(130)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


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
