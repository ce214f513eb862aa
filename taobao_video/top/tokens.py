"""OAuth tokens on this machine: what the token endpoint answered, the token file, and the manager that hands the
API client a valid access token (top-protocol.md §7).

- ``Token``: what the token endpoint answered, with absolute expiry times.
- ``TokenStore``: the token file, written atomically with mode 0600 and refused when others can read it.
- ``TokenManager``: hands the client a valid access token, refreshing it (through ``oauth.OAuthClient``) before
  it expires, and saves every new one.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from taobao_video.errors import AuthError, OAuthError
from taobao_video.fsutil import atomic_write_text
from taobao_video.model import utc_now

if TYPE_CHECKING:
    from taobao_video.top.oauth import OAuthClient

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Token:
    """An OAuth token with absolute expiry times (UTC)."""

    access_token: str
    expires_at: datetime
    refresh_token: str = ""
    refresh_expires_at: datetime | None = None
    token_type: str = "Bearer"
    user_id: str = ""
    user_nick: str = ""
    grant: str = "authorization_code"
    obtained_at: datetime | None = None

    def __repr__(self) -> str:
        return (
            f"Token(user_nick={self.user_nick!r}, expires_at={self.expires_at.isoformat()}, "
            f"grant={self.grant!r}, access_token='***')"
        )

    @classmethod
    def from_response(cls, body: dict[str, Any], *, now: datetime, grant: str) -> Token:
        """Build from a token endpoint answer; ``expires_in`` (s) wins, ``expire_time`` (epoch ms) is a fallback."""
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise OAuthError("invalid_response", "the token endpoint's answer has no access_token")
        if body.get("expires_in") not in (None, ""):
            expires_at = now + timedelta(seconds=int(body["expires_in"]))
        elif body.get("expire_time") not in (None, ""):
            expires_at = datetime.fromtimestamp(int(body["expire_time"]) / 1000, UTC)
        else:
            raise OAuthError("invalid_response", "the token endpoint's answer gives no lifetime (expires_in)")
        refresh = str(body.get("refresh_token") or "")
        re_expires = int(body.get("re_expires_in") or 0)
        return cls(
            access_token=access,
            expires_at=expires_at,
            refresh_token=refresh,
            refresh_expires_at=now + timedelta(seconds=re_expires) if refresh and re_expires > 0 else None,
            token_type=str(body.get("token_type") or "Bearer"),
            user_id=str(body.get("taobao_user_id") or body.get("sub_taobao_user_id") or ""),
            user_nick=unquote(str(body.get("taobao_user_nick") or body.get("sub_taobao_user_nick") or "")),
            grant=grant,
            obtained_at=now,
        )

    def expires_within(self, now: datetime, margin_s: float) -> bool:
        return self.expires_at - timedelta(seconds=margin_s) <= now

    def can_refresh(self, now: datetime) -> bool:
        return bool(self.refresh_token) and self.refresh_expires_at is not None and self.refresh_expires_at > now

    def to_json(self) -> str:
        data = asdict(self)
        for key in ("expires_at", "refresh_expires_at", "obtained_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return json.dumps(data, ensure_ascii=False, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Token:
        """Parse the token file's text; ``ValueError``/``TypeError`` naming the first problem when it is not a token."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError(f"a JSON object was expected, found {type(data).__name__}")
        fields: dict[str, Any] = {}
        for key in _STRING_FIELDS:
            value = data.get(key, _DEFAULTS.get(key))
            if not isinstance(value, str) or (key in _REQUIRED and not value):
                raise TypeError(f"{key!r} is {'missing' if value is None else 'not a text'}")
            fields[key] = value
        for key in _TIME_FIELDS:
            value = data.get(key)
            if key in _REQUIRED and not value:
                raise ValueError(f"{key!r} is missing")
            fields[key] = _moment(key, value) if value else None
        return cls(**fields)


_REQUIRED = ("access_token", "expires_at")
_STRING_FIELDS = ("access_token", "refresh_token", "token_type", "user_id", "user_nick", "grant")
_TIME_FIELDS = ("expires_at", "refresh_expires_at", "obtained_at")
_DEFAULTS = {"refresh_token": "", "token_type": "Bearer", "user_id": "", "user_nick": "", "grant": "authorization_code"}


def _moment(key: str, value: Any) -> datetime:
    """An ISO 8601 time from the token file; one without a zone is UTC (the file is always written in UTC)."""
    if not isinstance(value, str):
        raise TypeError(f"{key!r} is not a time")
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def authorisation_ends(token: Token, *, now: datetime) -> tuple[datetime, str]:
    """When only ``auth login`` can renew this authorisation, and which token that is: the refresh token's end
    while it can still refresh, else the session token's."""
    if token.refresh_token and token.refresh_expires_at is not None and token.refresh_expires_at > now:
        return token.refresh_expires_at, "refresh token"
    return token.expires_at, "session token"


def expiry_warning(token: Token, *, now: datetime, warn_days: int) -> str | None:
    """What to say when the authorisation runs out for good within ``warn_days``, else None.

    A session token that can still be refreshed is renewed by the tool itself; what needs the user is the end of the
    refresh window (or, for a token without one, the end of the session): after it only ``auth login`` helps.
    """
    if warn_days <= 0:
        return None
    window = timedelta(days=warn_days)
    ends, what = authorisation_ends(token, now=now)
    if ends <= now:
        return None  # already over: the callers say "expired" themselves
    if ends - now > window:
        return None
    left = ends - now
    span = f"{left.days} days" if left.days >= 2 else f"{left.total_seconds() / 3600:.0f} hours"
    return (
        f"the {what} expires in {span} ({ends:%Y-%m-%d %H:%M} UTC); after that only `taobao-video auth login` "
        "renews the authorisation: run it before then"
    )


class TokenStore:
    """The token file: atomic writes, mode 0600, and refusal to use a file others can read."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> Token | None:
        """The saved token, None when there is no file; ``AuthError`` naming the file and ``auth login`` when it
        cannot be used (not a file, readable by others, unreadable, damaged or not a token's shape)."""
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._unusable(f"cannot be read ({exc.strerror or exc})") from None
        if not stat.S_ISREG(info.st_mode):
            raise self._unusable("is a folder, not a file" if stat.S_ISDIR(info.st_mode) else "is not a file")
        if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise AuthError(
                f"refusing to use the token file {self.path}: it is readable by other users "
                f"(mode {stat.S_IMODE(info.st_mode):o}); run `chmod 600 {self.path}` if you trust it, "
                "or `taobao-video auth login` to get a new token"
            )
        try:
            text = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise self._unusable("is damaged (not UTF-8 text)") from None
        except OSError as exc:
            raise self._unusable(f"cannot be read ({exc.strerror or exc})") from None
        try:
            return Token.from_json(text)
        except json.JSONDecodeError:
            raise self._unusable("is damaged (not JSON)") from None
        except (ValueError, TypeError) as exc:
            raise self._unusable(f"is damaged ({exc})") from None

    def _unusable(self, why: str) -> AuthError:
        return AuthError(f"the token file {self.path} {why}: run `taobao-video auth login` to replace it")

    def save(self, token: Token) -> None:
        """Write atomically with mode 0600 (see ``fsutil.atomic_write_text``)."""
        try:
            atomic_write_text(self.path, token.to_json(), mode=0o600)
        except OSError as exc:
            raise AuthError(f"cannot save the token file {self.path} ({exc.strerror or exc})") from None

    def delete(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True


class TokenManager:
    """Hands out a valid access token: loads it, refreshes it ahead of expiry, saves every new one."""

    def __init__(
        self,
        *,
        store: TokenStore,
        oauth: OAuthClient,
        grant: str = "authorization_code",
        refresh_margin_s: float = 300.0,
        clock: Clock = utc_now,
    ) -> None:
        self.store, self.oauth, self.grant = store, oauth, grant
        self.refresh_margin_s = refresh_margin_s
        self.clock = clock
        self._lock = threading.Lock()
        self._token: Token | None = None

    def current(self) -> Token | None:
        """The stored token as it is, without refreshing."""
        if self._token is None:
            self._token = self.store.load()
        return self._token

    def access_token(self) -> str:
        with self._lock:
            token = self.current()
            now = self.clock()
            if token is None:
                if self.grant == "client_credentials":
                    return self._obtain_client_credentials().access_token
                raise AuthError("not authorised yet: run `taobao-video auth login` first")
            if token.expires_within(now, self.refresh_margin_s):
                if token.can_refresh(now):
                    return self._refresh(token).access_token
                if self.grant == "client_credentials":
                    return self._obtain_client_credentials().access_token
                if token.expires_within(now, 0):
                    raise AuthError(
                        f"the access token expired at {token.expires_at.isoformat()} and cannot be refreshed: "
                        "run `taobao-video auth login`"
                    )
            return token.access_token

    def force_refresh(self) -> str:
        """A new token now (the gateway refused the current one); AuthError when none can be had."""
        with self._lock:
            token = self.current()
            now = self.clock()
            if token is not None and token.can_refresh(now):
                return self._refresh(token).access_token
            if self.grant == "client_credentials":
                return self._obtain_client_credentials().access_token
            raise AuthError(
                "the gateway refused the access token and it cannot be refreshed: run `taobao-video auth login`"
            )

    def login_with_code(self, code: str) -> Token:
        token = Token.from_response(self.oauth.exchange_code(code), now=self.clock(), grant="authorization_code")
        return self._keep(token)

    def refresh_now(self) -> Token:
        with self._lock:
            token = self.current()
            if token is None:
                raise AuthError("no token to refresh: run `taobao-video auth login` first")
            if not token.can_refresh(self.clock()):
                raise AuthError(
                    "this token cannot be refreshed (no refresh token, or it expired; only apps sold through "
                    "the service market get refreshable tokens): run `taobao-video auth login`"
                )
            return self._refresh(token)

    def _refresh(self, token: Token) -> Token:
        try:
            body = self.oauth.refresh(token.refresh_token)
        except OAuthError as exc:
            raise AuthError(f"refreshing the token failed ({exc}): run `taobao-video auth login`") from None
        fresh = Token.from_response(body, now=self.clock(), grant=token.grant)
        if not fresh.user_nick and token.user_nick:
            fresh = Token(**{**asdict(fresh), "user_nick": token.user_nick, "user_id": token.user_id})
        return self._keep(fresh)

    def _obtain_client_credentials(self) -> Token:
        body = self.oauth.client_credentials()
        return self._keep(Token.from_response(body, now=self.clock(), grant="client_credentials"))

    def _keep(self, token: Token) -> Token:
        self.store.save(token)
        self._token = token
        return token


__all__ = ["Token", "TokenManager", "TokenStore"]
