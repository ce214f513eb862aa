"""What the benchmark scripts share: a loopback-only environment, a temp folder that is removed on any exit,
a free port, a private nginx, real MP4 files, and the CPU time of finished children.

Imported by the scripts as ``_bench`` (``python scripts/bench_x.py`` puts this folder first on sys.path).
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from taobao_video.sandbox.mp4 import Mp4Video

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


def require(tools: tuple[str, ...], install_hint: str) -> None:
    """Exit non-zero naming every missing tool and how to install it."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        sys.exit(f"{Path(sys.argv[0]).name}: missing {', '.join(missing)}; install with: {install_hint}")


def loopback_only() -> dict[str, str]:
    """Drop the proxy settings from this process's environment (children inherit it) and return it: nothing
    may leave 127.0.0.1."""
    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        del os.environ[name]
    return dict(os.environ)


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temp folder removed on any exit; SIGTERM unwinds like Ctrl-C, and either ends the script with 130."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    temp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield temp
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        sys.exit(130)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def children_cpu_s() -> float:
    """User + system CPU seconds of every child this process has waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def make_videos(folder: Path, count: int, size: int) -> dict[str, str]:
    """``count`` real MP4s of ``size`` bytes in a new ``folder``; returns name -> sha256."""
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


def resolve_ids(home: Path, urls: list[str], first_id: int) -> list[int]:
    """The catalog in ``home`` with ids ``first_id``.. each ``resolved`` to its URL, and ``home/ids.txt`` listing
    them: a harvest of that file makes no call, it only downloads (what the speed benchmarks time)."""
    from datetime import UTC, datetime

    from taobao_video.store.catalog import Catalog

    now = datetime.now(UTC)
    ids = [first_id + index for index in range(len(urls))]
    with Catalog.open(f"sqlite:///{home / 'catalog.sqlite3'}") as catalog:
        catalog.add_items(ids, now=now)
        for num_iid, url in zip(ids, urls, strict=True):
            catalog.mark_resolved(
                num_iid, video_url=url, cover_url=None, api_duration=None, width=None, height=None,
                api_method="taobao.item_video", now=now,
            )  # fmt: skip
    (home / "ids.txt").write_text("\n".join(map(str, ids)) + "\n")
    return ids
