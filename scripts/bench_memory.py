#!/usr/bin/env python3
"""Peak memory of downloading one big video with Downloader.fetch, against a bare import of the module.

    python scripts/bench_memory.py [--size-gib 1] [--server sandbox|nginx]

Serves one ``--size-gib`` MP4 on 127.0.0.1 (the sandbox CDN with ``video_size_override``, or a private nginx
serving a file written with Mp4Video), downloads it in a subprocess with ``Downloader.fetch``, checks its sha256,
and prints that subprocess's peak RSS beside the peak RSS of ``python -c "import taobao_video.fetch.downloader"``.
Target (issue 4): under 100 MB whatever the size, because the body is streamed in fixed chunks and never held.
Exits 1 when the target is missed. Cleans up its temp folder (and nginx) on any exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TARGET_MB = 100.0
BASELINE = "import taobao_video.fetch.downloader"
# Each child reports its own VmHWM: getrusage(RUSAGE_CHILDREN) can count the parent's pages a child held
# between fork and exec, which would blur a figure this small.
_REPORT_PEAK = (
    "import pathlib; "
    "print([line.split()[1] for line in pathlib.Path('/proc/self/status').open() if line.startswith('VmHWM')][0])"
)


def peak_rss_kib() -> int:
    """This process's peak resident set (VmHWM), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def child(url: str, dest: str, size: int) -> None:
    """The measured side: one fetch, then a JSON line with the result and this process's peak RSS."""
    from taobao_video.fetch.downloader import Downloader

    started = time.perf_counter()
    with Downloader(Path(dest), allowed_hosts=("127.0.0.1",), max_bytes=size + 1, deadline_s=3600) as dl:
        result = dl.fetch(url, num_iid=1, name="big.mp4")
    seconds = time.perf_counter() - started
    report = {"sha256": result.sha256, "size": result.size, "seconds": seconds, "vmhwm_kib": peak_rss_kib()}
    print(json.dumps(report))


@contextmanager
def sandbox_server(size: int, temp: Path) -> Iterator[tuple[str, str]]:
    """(URL, sha256) of one ``size``-byte video on the sandbox CDN."""
    from taobao_video.sandbox import Sandbox, SandboxConfig

    num_iid = Sandbox(SandboxConfig(seed=5)).catalogue.sample("video", 1)[0]
    with Sandbox(SandboxConfig(seed=5, video_size_override={num_iid: size})) as sb:
        item = sb.catalogue.item(num_iid)
        yield sb.urls.video_url(item, sb.now()), sb.video(num_iid).sha256()


@contextmanager
def nginx_server(size: int, temp: Path) -> Iterator[tuple[str, str]]:
    """(URL, sha256) of one ``size``-byte MP4 file served by a private nginx."""
    from _bench import make_videos, nginx, require

    require(("nginx",), "apt-get install -y nginx")
    digests = make_videos(temp / "www", 1, size)
    (temp / "nginx").mkdir()
    with nginx(temp / "www", temp / "nginx") as base:
        name, digest = next(iter(digests.items()))
        yield f"{base}/{name}", digest


def measure(args: argparse.Namespace, temp: Path) -> bool:
    size = int(args.size_gib * 2**30)
    server = sandbox_server if args.server == "sandbox" else nginx_server
    print(f"preparing a {size} byte video on the {args.server} server (and its sha256)…", flush=True)
    with server(size, temp) as (url, expected):
        bare = subprocess.run([sys.executable, "-c", f"{BASELINE}; {_REPORT_PEAK}"], check=True, capture_output=True)
        baseline_mb = int(bare.stdout) / 1024
        dest = temp / "out"
        command = [sys.executable, __file__, "--child", url, str(dest), str(size)]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        report = json.loads(done.stdout.strip().splitlines()[-1])
    download_mb = report["vmhwm_kib"] / 1024
    ok = report["sha256"] == expected and report["size"] == size
    print(f"download: {report['size']} bytes in {report['seconds']:.1f} s ", end="")
    print(f"({report['size'] / 1e6 / report['seconds']:.0f} MB/s), sha256 {'ok' if ok else 'MISMATCH'}")
    print(f"peak RSS  bare import: {baseline_mb:6.1f} MB   (python -c {BASELINE!r}; VmHWM)")
    extra = download_mb - baseline_mb
    print(
        f"peak RSS  download:    {download_mb:6.1f} MB   (+{extra:.1f} MB, {download_mb / baseline_mb:.2f}x the import)"
    )
    verdict = download_mb < TARGET_MB
    print(f"target < {TARGET_MB:.0f} MB: {'met' if verdict else 'MISSED'}")
    return ok and verdict


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gib", type=float, default=1.0)
    parser.add_argument("--server", choices=("sandbox", "nginx"), default="sandbox")
    args = parser.parse_args()
    from _bench import loopback_only, scratch  # here, not at the top: the measured child must not import it

    loopback_only()  # the child inherits the environment: traffic stays on 127.0.0.1
    with scratch("bench_memory-") as temp:
        ok = measure(args, temp)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
