"""Running the CLI as a user would, in-process: a settings file for a sandbox, and ``main()`` with its exit code."""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import APP_KEY, CANARY_SECRET
from taobao_video.cli.main import main
from taobao_video.sandbox import Sandbox
from taobao_video.top.tokens import Token, TokenStore

ENV = {"TAOBAO_APP_KEY": APP_KEY, "TAOBAO_APP_SECRET": CANARY_SECRET}


def write_settings(
    folder: Path,
    sb: Sandbox,
    *,
    database_url: str | None = "sqlite:///catalog.sqlite3",
    qps: str = "1000",
    more_toml: str = "",
) -> Path:
    """A settings file for the sandbox and a token beside it; ``database_url`` None leaves [database] out;
    ``more_toml`` is appended as it is (further sections)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "settings.toml"
    path.write_text(
        "[taobao]\n"
        f'gateway_url = "{sb.gateway_url}"\n'
        f'oauth_url = "{sb.oauth_url}"\n'
        'token_file = "token.json"\n'
        "[download]\n"
        'dir = "videos"\n'
        'allowed_hosts = ["127.0.0.1"]\n'
        "workers = 4\n"
        "[harvest]\n"
        f"qps = {qps}\n"
        'lock_file = "harvest.lock"\n' + (f'[database]\nurl = "{database_url}"\n' if database_url else "") + more_toml
    )
    body = sb.issue_token(app_key=APP_KEY)
    TokenStore(folder / "token.json").save(Token.from_response(body, now=datetime.now(UTC), grant="authorization_code"))
    return path


def run(args, capsys, monkeypatch, stdin: str | None = None):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TAOBAO_VIDEO_CONFIG", raising=False)
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    with pytest.raises(SystemExit) as done:
        main(args)
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err
