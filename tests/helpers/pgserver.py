"""A throwaway PostgreSQL server for the tests: initdb in a temp dir, pg_ctl start on a free loopback port, and
``pg_ctl stop`` plus the dir removed at the end.

Root cannot run ``initdb``/``pg_ctl`` (PostgreSQL refuses to), so as root they run as the ``postgres`` user that
Debian's package creates, and the cluster lives in a dir that user owns. The server is tuned for tests, not for
keeping data: no fsync, no synchronous commit, no full-page writes; trust authentication on 127.0.0.1 and the unix
socket only (it listens on nothing else).

Each test gets its own database (``CREATE DATABASE`` from ``template0`` is a file copy: milliseconds with fsync
off) and drops it afterwards with ``WITH (FORCE)``, which also ends connections a test left in its pools.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

CI_HINT = "install PostgreSQL's server (Debian: apt-get install postgresql) and psycopg (pip install 'psycopg[binary]')"
# Enough for 4 worker processes with ~16 pooled connections each, plus the tests' own pools.
MAX_CONNECTIONS = 300
_RUN_AS = "postgres"  # the system user that owns the cluster when the tests run as root


def find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: on PATH, else Debian's /usr/lib/postgresql/<version>/bin
    (newest version first); None when the server is not installed."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3].split(".")[0]), reverse=True
    )
    return Path(candidates[0]).parent if candidates else None


def missing_reason() -> str | None:
    """Why PostgreSQL tests cannot run here (None when they can)."""
    if find_bindir() is None:
        return "the PostgreSQL server binaries (initdb, pg_ctl) are not installed"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PgServer:
    """One running cluster. ``new_database()`` hands out fresh, empty databases as SQLAlchemy URLs."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self._as_root = os.geteuid() == 0
        if self._as_root:
            try:
                pwd.getpwnam(_RUN_AS)
            except KeyError:
                raise RuntimeError(f"running as root needs a {_RUN_AS!r} system user to run PostgreSQL") from None
        # As root, in /tmp itself: the postgres user must be able to reach the folder (TMPDIR may be root's own).
        self.root = Path(tempfile.mkdtemp(prefix="taobao-video-pg-", dir="/tmp" if self._as_root else None))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self._names = itertools.count(1)
        self._running = False
        if self._as_root:
            shutil.chown(self.root, _RUN_AS, _RUN_AS)
            os.chmod(self.root, 0o700)

    # ---- lifecycle

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", _RUN_AS, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.root, check=False)

    def _checked(self, *args: str) -> None:
        done = self._run(*args)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr.strip()}\n{log}")

    def start(self) -> PgServer:
        self._checked("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                      "--locale=C", "--no-sync")  # fmt: skip
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\n", encoding="utf-8"
        )
        for attempt in range(3):  # the free port may be taken between probing and listening: try another
            self.port = _free_port()
            settings = {
                "listen_addresses": "'127.0.0.1'",
                "port": str(self.port),
                "unix_socket_directories": f"'{self.root}'",
                "max_connections": str(MAX_CONNECTIONS),
                "fsync": "off",
                "synchronous_commit": "off",
                "full_page_writes": "off",
                "log_min_messages": "warning",
            }
            conf = "".join(f"{key} = {value}\n" for key, value in settings.items())
            (self.data / "postgresql.auto.conf").write_text(conf, encoding="utf-8")
            if self._as_root:
                shutil.chown(self.data / "postgresql.auto.conf", _RUN_AS, _RUN_AS)
            done = self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60")
            if done.returncode == 0:
                self._running = True
                atexit.register(self.stop)
                self._wait_until_accepting()
                return self
            if attempt == 2:
                log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
                raise RuntimeError(f"pg_ctl start failed ({done.returncode}): {done.stderr.strip()}\n{log}")
        raise AssertionError("unreachable")

    def _wait_until_accepting(self, timeout_s: float = 30) -> None:
        import psycopg

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server and remove its folder; safe to call twice."""
        if self._running:
            self._running = False
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w", "-t", "60")
        shutil.rmtree(self.root, ignore_errors=True)

    # ---- databases

    def dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as connection:
            connection.execute(sql)  # type: ignore[arg-type]

    def new_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL (``postgresql+psycopg://postgres@127.0.0.1:PORT/NAME``)."""
        name = f"t{os.getpid()}_{next(self._names)}"
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url``, ending any connection still open to it."""
        name = url.rsplit("/", 1)[1].split("?", 1)[0]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A fresh database for the ``with`` block, dropped afterwards."""
        url = self.new_database()
        try:
            yield url
        finally:
            self.drop_database(url)


@contextlib.contextmanager
def running_server() -> Iterator[PgServer]:
    """Start a server, yield it, always stop it and remove its folder."""
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError(f"no PostgreSQL server binaries found: {CI_HINT}")
    server = PgServer(bindir)
    try:
        yield server.start()
    finally:
        server.stop()
