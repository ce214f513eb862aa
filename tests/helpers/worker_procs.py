"""Several `taobao-video daily` worker processes against one sandbox and one catalog: the settings folder they
share (settings.toml, token, videos), starting them, and reading their --json summaries. Used by
tests/integration/test_workers.py and scripts/bench_workers.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from taobao_video.sandbox import Sandbox
from taobao_video.top.tokens import Token, TokenStore

REPO = Path(__file__).resolve().parents[2]
APP_KEY = "12345678"
APP_SECRET = "CANARY-s3cr3t-7f1e2d"
ENV = {"TAOBAO_APP_KEY": APP_KEY, "TAOBAO_APP_SECRET": APP_SECRET}


def shared_folder(
    folder: Path,
    sb: Sandbox,
    database_url: str,
    *,
    qps: float,
    daily_limit: int = 1000,
    lease_s: float = 600,
    download_workers: int = 4,
) -> Path:
    """One settings folder for every worker (as NFS would give several hosts): settings.toml, a token the sandbox
    issued, and the videos folder. Returns the settings file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "settings.toml"
    path.write_text(
        "[taobao]\n"
        f'gateway_url = "{sb.gateway_url}"\n'
        f'oauth_url = "{sb.oauth_url}"\n'
        'token_file = "token.json"\n'
        "[quota]\n"
        f"daily_limit = {daily_limit}\n"
        "[download]\n"
        'dir = "videos"\n'
        'allowed_hosts = ["127.0.0.1"]\n'
        f"workers = {download_workers}\n"
        "[harvest]\n"
        f"qps = {qps}\n"
        f"lease_s = {lease_s}\n"
        'lock_file = "harvest.lock"\n'
        "[database]\n"
        f'url = "{database_url}"\n',
        encoding="utf-8",
    )
    body = sb.issue_token(app_key=APP_KEY)
    TokenStore(folder / "token.json").save(Token.from_response(body, now=datetime.now(UTC), grant="authorization_code"))
    return path


def start_daily(config: Path, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    """`taobao-video --config CONFIG daily --json` as a child process; its stdout goes to ``out``, stderr beside."""
    env = {**os.environ, **ENV, "PYTHONPATH": str(REPO)}
    env.pop("TAOBAO_VIDEO_CONFIG", None)
    with out.open("wb") as stdout, out.with_suffix(".err").open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "taobao_video", "--config", str(config), "daily", "--json", *extra],
            env=env,
            stdout=stdout,
            stderr=stderr,
        )


def _events(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]


def summary(out: Path) -> dict[str, Any]:
    """The --json summary a worker printed last."""
    lines = _events(out)
    if not lines or lines[-1].get("event") != "summary":
        raise AssertionError(f"no summary in {out}: {out.with_suffix('.err').read_text(errors='replace')[-2000:]}")
    return lines[-1]


def items_done(out: Path) -> dict[int, str]:
    """The ids a worker reported an outcome for, with the outcome (deferred ones left out)."""
    return {e["num_iid"]: e["outcome"] for e in _events(out) if e["event"] == "item" and e["outcome"] != "deferred"}
