"""OAuth state kept in memory: authorization codes, access tokens and refresh tokens, timed by the sandbox
clock. Thread-safe.

A refresh rotates: the old refresh token dies at once; the old access token stays valid until its own expiry
(the platform's behaviour here is undocumented; this is the simple, lenient reading).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Grant:
    """Who a code or token speaks for."""

    app_key: str
    user_id: str
    user_nick: str
    expires_at: datetime


@dataclass(frozen=True)
class Code:
    grant: Grant
    redirect_uri: str


class TokenStore:
    """Codes, access tokens and refresh tokens."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._codes: dict[str, Code] = {}
        self._access: dict[str, Grant] = {}
        self._refresh: dict[str, Grant] = {}

    def new_code(self, grant: Grant, redirect_uri: str) -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = Code(grant, redirect_uri)
        return code

    def take_code(self, code: str, now: datetime) -> Code | None:
        """The code's grant, spending it (single use); None when unknown, spent or expired."""
        with self._lock:
            found = self._codes.pop(code, None)
        if found is None or found.grant.expires_at <= now:
            return None
        return found

    def issue(
        self,
        user: Grant,
        now: datetime,
        access_ttl: timedelta,
        refresh_ttl: timedelta,
        access_token: str | None = None,
    ) -> tuple[str, str]:
        """A new (access_token, refresh_token) pair for ``user``'s app and user (its expiry is ignored)."""
        access = access_token or secrets.token_hex(24)
        refresh = secrets.token_hex(24)
        with self._lock:
            self._access[access] = Grant(user.app_key, user.user_id, user.user_nick, now + access_ttl)
            self._refresh[refresh] = Grant(user.app_key, user.user_id, user.user_nick, now + refresh_ttl)
        return access, refresh

    def take_refresh(self, token: str, app_key: str, now: datetime) -> Grant | str:
        """Spend a refresh token of ``app_key``: its grant, or why not (``unknown``, ``expired``)."""
        with self._lock:
            grant = self._refresh.get(token)
            if grant is None or grant.app_key != app_key:
                return "unknown"
            del self._refresh[token]
        return grant if grant.expires_at > now else "expired"

    def nick(self, token: str) -> str | None:
        """The user (shop) nick a token speaks for, or None."""
        with self._lock:
            grant = self._access.get(token)
        return None if grant is None else grant.user_nick

    def check(self, token: str, app_key: str, now: datetime) -> str:
        """``ok``, ``unknown`` (or another app's) or ``expired``."""
        with self._lock:
            grant = self._access.get(token)
        if grant is None or grant.app_key != app_key:
            return "unknown"
        return "ok" if grant.expires_at > now else "expired"
