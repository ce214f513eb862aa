"""Shared fixtures: a fake clock, the sandbox on loopback, and clients wired to it."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers.pgserver import CI_HINT, PgServer, missing_reason, running_server
from helpers.weed import ACCESS_KEY, SECRET_KEY, Weed, running_weed, weed_binary
from helpers.weed import CI_HINT as WEED_HINT
from helpers.weed import missing_reason as weed_missing_reason
from hypothesis import settings as hypothesis_settings

from taobao_video.sandbox import AppConfig, FakeClock, Sandbox, SandboxConfig
from taobao_video.store.catalog import Catalog
from taobao_video.top.client import TopClient
from taobao_video.top.oauth import OAuthClient
from taobao_video.top.tokens import Token, TokenManager, TokenStore

# A canary: if this ever shows up in an exception text or a log line, a secret leaked.
CANARY_SECRET = "CANARY-s3cr3t-7f1e2d"
APP_KEY = "12345678"
START = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)  # 12:00 in Beijing


# CI replays the same examples every run (a red CI must be reproducible); local runs keep exploring new ones.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


def make_sandbox(clock: FakeClock, **overrides: object) -> Sandbox:
    app_fields = {
        k: overrides.pop(k) for k in list(overrides) if k in {"daily_limit", "qps", "methods", "client_credentials"}
    }
    app = AppConfig(key=APP_KEY, secret=CANARY_SECRET, **app_fields)  # type: ignore[arg-type]
    config = SandboxConfig(seed=11, apps=(app,), clock=clock.now, **overrides)  # type: ignore[arg-type]
    return Sandbox(config)


@pytest.fixture
def sandbox(clock: FakeClock) -> Iterator[Sandbox]:
    with make_sandbox(clock) as sb:
        yield sb


@pytest.fixture
def sb(clock: FakeClock) -> Iterator[Sandbox]:
    """The CDN and downloader tests' sandbox: the default app (key and secret ``test``) and videos of 300-600 kB,
    big enough for Range requests and faults that cut a body midway. Modules that emulate another platform
    define their own ``sb``."""
    with Sandbox(SandboxConfig(seed=11, clock=clock.now, video_bytes=(300_000, 600_000))) as sb:
        yield sb


@pytest.fixture
def live() -> Iterator[Sandbox]:
    """A sandbox on the real clock, for commands run as a user would (the CLI, child processes)."""
    config = SandboxConfig(seed=9, apps=(AppConfig(key=APP_KEY, secret=CANARY_SECRET),), video_bytes=(40_000, 90_000))
    with Sandbox(config) as sb:
        yield sb


class Sleeps(list):
    """An injected sleep that records instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def token_manager_for(
    sb: Sandbox, clock: FakeClock, folder: Path, *, grant: str = "authorization_code"
) -> TokenManager:
    oauth = OAuthClient(
        oauth_url=sb.oauth_url,
        client_id=APP_KEY,
        client_secret=CANARY_SECRET,
        redirect_uri="http://127.0.0.1:8765/callback",
    )
    return TokenManager(store=TokenStore(folder / "token.json"), oauth=oauth, grant=grant, clock=clock.now)


def logged_in(sb: Sandbox, clock: FakeClock, folder: Path) -> TokenManager:
    """A token manager holding a fresh token the sandbox issued (no browser dance)."""
    manager = token_manager_for(sb, clock, folder)
    manager.store.save(
        Token.from_response(sb.issue_token(app_key=APP_KEY), now=clock.now(), grant="authorization_code")
    )
    return manager


def client_for(sb: Sandbox, clock: FakeClock, tokens: TokenManager | None, sleeps: Sleeps, **kw: object) -> TopClient:
    return TopClient(
        gateway_url=sb.gateway_url,
        app_key=APP_KEY,
        app_secret=CANARY_SECRET,
        tokens=tokens,
        clock=clock.now,
        sleep=sleeps,
        **kw,
    )  # type: ignore[arg-type]


@pytest.fixture
def tokens(sandbox: Sandbox, clock: FakeClock, tmp_path: Path) -> TokenManager:
    return logged_in(sandbox, clock, tmp_path)


@pytest.fixture
def client(sandbox: Sandbox, clock: FakeClock, tokens: TokenManager, sleeps: Sleeps) -> TopClient:
    return client_for(sandbox, clock, tokens, sleeps)


def free_port_url() -> str:
    """A loopback URL nobody listens on."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/router/rest"


# ------------------------------------------------------------------------------------------------ PostgreSQL

# `.ci/run` sets CI: there a missing PostgreSQL fails the tests that need it instead of skipping them.
IN_CI = bool(os.environ.get("CI"))


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    """A real PostgreSQL server for the whole session (see tests/helpers/pgserver.py); ``pg.new_database()`` gives a
    fresh database's URL. Skipped when PostgreSQL is not installed, except under CI where that is a failure."""
    reason = missing_reason()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"{reason}: {CI_HINT}", pytrace=False)
        pytest.skip(f"{reason} ({CI_HINT} to run the PostgreSQL tests)")
    with running_server() as server:
        yield server


@pytest.fixture
def pg_url(pg: PgServer) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with pg.database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh catalog URL per test, once on SQLite (a file in tmp_path) and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'catalog.sqlite3'}"
        return
    server: PgServer = request.getfixturevalue("pg")
    with server.database() as url:
        yield url


@pytest.fixture
def cat(catalog_url: str) -> Iterator[Catalog]:
    """The catalog at ``catalog_url``, opened (so migrated) for one test and closed afterwards."""
    with Catalog.open(catalog_url) as catalog:
        yield catalog


# -- a real S3-compatible server (SeaweedFS) for the object storage tests ----------------------------------------

_buckets = itertools.count(1)


@pytest.fixture(scope="session")
def weed() -> Iterator[Weed]:
    """``weed mini`` on loopback for the whole session (tests/helpers/weed.py). Skipped when SeaweedFS or boto3 is
    missing, except under CI where that is a failure."""
    reason = weed_missing_reason()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"{reason}: {WEED_HINT}", pytrace=False)
        pytest.skip(f"{reason} ({WEED_HINT} to run the object storage tests)")
    binary = weed_binary()
    assert binary is not None
    with running_weed(binary) as server:
        yield server


@pytest.fixture
def s3_env(weed: Weed, monkeypatch: pytest.MonkeyPatch) -> Weed:
    """The server's credentials in this process's environment, where boto3's chain finds them."""
    for name, value in weed.env.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    return weed


@pytest.fixture
def bucket(s3_env: Weed) -> str:
    """A new, empty bucket on the server."""
    import boto3

    name = f"tv-test-{next(_buckets)}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_env.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    client.create_bucket(Bucket=name)
    return name
