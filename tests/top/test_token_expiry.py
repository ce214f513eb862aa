"""The authorisation running out for good is said days ahead: the rule, and where users see it (auth status,
quota status, the daily run's first event)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers.cli import run, write_settings

from taobao_video.sandbox import Sandbox
from taobao_video.top.tokens import Token, TokenStore, expiry_warning

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def token(*, expires_in: timedelta, refresh_in: timedelta | None) -> Token:
    return Token(
        access_token="t",
        expires_at=NOW + expires_in,
        refresh_token="r" if refresh_in is not None else "",
        refresh_expires_at=NOW + refresh_in if refresh_in is not None else None,
    )


@pytest.mark.parametrize(
    ("expires_in", "refresh_in", "warned"),
    [
        (timedelta(days=2), None, "session token expires in 2 days"),  # no refresh: the session is the end
        (timedelta(days=5), None, None),
        (timedelta(hours=5), timedelta(days=30), None),  # refreshable: the tool renews the session itself
        (timedelta(hours=5), timedelta(days=1), "refresh token expires in 24 hours"),
        (timedelta(days=1), timedelta(days=3), "refresh token expires in 3 days"),  # the window's edge is in it
        (timedelta(days=1), timedelta(days=3, seconds=1), None),
        (timedelta(hours=-1), None, None),  # already expired: "EXPIRED" is said elsewhere, not a warning
    ],
)
def test_the_rule(expires_in: timedelta, refresh_in: timedelta | None, warned: str | None) -> None:
    said = expiry_warning(token(expires_in=expires_in, refresh_in=refresh_in), now=NOW, warn_days=3)
    if warned is None:
        assert said is None
    else:
        assert said is not None and warned in said and "taobao-video auth login" in said


def test_zero_days_never_warns() -> None:
    assert expiry_warning(token(expires_in=timedelta(hours=1), refresh_in=None), now=NOW, warn_days=0) is None


def _expiring(folder: Path) -> None:
    """Replace the token the settings point at by one whose session ends in a day and cannot be refreshed."""
    store = TokenStore(folder / "token.json")
    old = store.load()
    assert old is not None
    now = datetime.now(UTC)
    store.save(Token(access_token=old.access_token, expires_at=now + timedelta(days=1), user_nick=old.user_nick))


def test_auth_status_quota_status_and_daily_say_it(live: Sandbox, tmp_path: Path, capsys, monkeypatch) -> None:
    config = write_settings(tmp_path, live)
    code, out, _ = run(["--config", str(config), "auth", "status"], capsys, monkeypatch)
    assert code == 0 and "Warning" not in out, "a fresh token is not a warning"
    _expiring(tmp_path)
    code, out, _ = run(["--config", str(config), "auth", "status"], capsys, monkeypatch)
    assert code == 0 and "Warning:       the session token expires in" in out
    code, out, _ = run(["--config", str(config), "auth", "status", "--json"], capsys, monkeypatch)
    assert "session token expires in" in json.loads(out)["warning"]
    code, out, _ = run(["--config", str(config), "quota", "status"], capsys, monkeypatch)
    assert code == 0 and "Warning: the session token expires in" in out
    code, out, _ = run(["--config", str(config), "quota", "status", "--json"], capsys, monkeypatch)
    assert len(json.loads(out)["warnings"]) == 1
    code, out, _ = run(["--config", str(config), "daily", "--json"], capsys, monkeypatch)
    first = json.loads(out.splitlines()[0])
    assert first["event"] == "warning" and "session token expires in" in first["detail"]


def test_the_window_is_a_setting(live: Sandbox, tmp_path: Path, capsys, monkeypatch) -> None:
    config = write_settings(tmp_path, live)
    _expiring(tmp_path)
    monkeypatch.setenv("TAOBAO_VIDEO__TAOBAO__TOKEN_WARN_DAYS", "0")
    code, out, _ = run(["--config", str(config), "auth", "status"], capsys, monkeypatch)
    assert code == 0 and "Warning" not in out
