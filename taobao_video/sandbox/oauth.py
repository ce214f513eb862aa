"""``/authorize`` and ``/token``: the platform's OAuth 2.0 server (top-protocol.md §7).

``/authorize`` approves at once (no login page) and redirects to ``redirect_uri`` with ``code`` and the
``state`` echoed exactly; ``sandbox_deny=1`` or ``deny_authorize`` sends ``error=access_denied`` instead. An
unknown ``client_id`` or a missing/unusable ``redirect_uri`` gets a 400 HTML page (nowhere to redirect to).

``/token`` (POST form) grants ``authorization_code``, ``refresh_token`` and, for apps that allow it,
``client_credentials``. Errors are HTTP 400 ``{"error": ..., "error_description": ...}``: missing parameters
→ ``invalid_request``; unknown client or wrong secret, unknown/spent/expired code → ``invalid_client``;
code bound to another redirect_uri, unknown/expired refresh token → ``invalid_grant``; anything else →
``unsupported_grant_type``. Codes live ``code_ttl_s`` (30 minutes) and are single use.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from taobao_video.sandbox.config import AppConfig, SandboxConfig
from taobao_video.sandbox.response import HTML_TYPE, Response, html_response, json_response
from taobao_video.sandbox.stats import Stats
from taobao_video.sandbox.tokens import Grant, TokenStore

GRANTS = ("authorization_code", "refresh_token", "client_credentials")
CODE_INVALID = "authorize code expire or invalidate,please authorize again."


class OAuthError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(error, description)
        self.error, self.description = error, description


class OAuth:
    """The authorize and token endpoints, and ``issue`` for tests that skip the browser dance."""

    def __init__(self, config: SandboxConfig, tokens: TokenStore, stats: Stats, now: Callable[[], datetime]) -> None:
        self._config = config
        self._tokens = tokens
        self._stats = stats
        self._now = now

    def authorize(self, query: str) -> Response:
        self._stats.authorize()
        params = dict(parse_qsl(query, keep_blank_values=True))
        client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri", "")
        if self._config.app(client_id) is None:
            return html_response(400, "授权失败", f"client_id {client_id!r} is not a registered app key")
        if urlsplit(redirect_uri).scheme not in ("http", "https"):
            return html_response(400, "授权失败", "redirect_uri must be an http(s) URL")
        state = {"state": params["state"]} if "state" in params else {}
        if params.get("response_type") != "code":
            return _redirect(redirect_uri, {"error": "unsupported_response_type", **state})
        if self._config.deny_authorize or params.get("sandbox_deny") == "1":
            return _redirect(redirect_uri, {"error": "access_denied", "error_description": "user denied", **state})
        user = self._user(client_id, self._config.user_nick, timedelta(seconds=self._config.code_ttl_s))
        return _redirect(redirect_uri, {"code": self._tokens.new_code(user, redirect_uri), **state})

    def token(self, verb: str, query: str, body: bytes) -> Response:
        params = dict(parse_qsl(query, keep_blank_values=True))
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        grant = params.get("grant_type", "")
        try:
            if verb != "POST":
                raise OAuthError("invalid_request", "the token endpoint takes POST")
            answer = self._grant(grant, params)
        except OAuthError as error:
            self._stats.token_request(grant, error.error)
            return json_response({"error": error.error, "error_description": error.description}, status=400)
        self._stats.token_request(grant, "ok")
        return json_response(answer)

    def issue(self, app_key: str, user_nick: str, access_token: str | None = None) -> dict[str, Any]:
        """A token body as ``/token`` would answer it (``access_token`` fixes the token's value)."""
        if self._config.app(app_key) is None:
            raise ValueError(f"no app {app_key!r} in this sandbox")
        return self._token_body(self._user(app_key, user_nick, timedelta(0)), access_token)

    def _grant(self, grant: str, params: dict[str, str]) -> dict[str, Any]:
        if not grant:
            raise OAuthError("invalid_request", "grant_type is required")
        if grant not in GRANTS:
            raise OAuthError("unsupported_grant_type", f"grant_type {grant} is not supported")
        app = self._client(params)
        if grant == "authorization_code":
            return self._token_body(self._redeem_code(app, params))
        if grant == "refresh_token":
            return self._token_body(self._redeem_refresh(app, params))
        if not app.client_credentials:
            raise OAuthError("unsupported_grant_type", "client_credentials is not enabled for this app")
        return self._token_body(self._user(app.key, self._config.user_nick, timedelta(0)))

    def _client(self, params: dict[str, str]) -> AppConfig:
        client_id, secret = _need(params, "client_id"), _need(params, "client_secret")
        app = self._config.app(client_id)
        if app is None:
            raise OAuthError("invalid_client", f"client_id {client_id} is invalid")
        if secret != app.secret:
            raise OAuthError("invalid_client", "client_secret is invalid")
        return app

    def _redeem_code(self, app: AppConfig, params: dict[str, str]) -> Grant:
        code, redirect_uri = _need(params, "code"), _need(params, "redirect_uri")
        found = self._tokens.take_code(code, self._now())
        if found is None or found.grant.app_key != app.key:
            raise OAuthError("invalid_client", CODE_INVALID)
        if found.redirect_uri != redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
        return found.grant

    def _redeem_refresh(self, app: AppConfig, params: dict[str, str]) -> Grant:
        found = self._tokens.take_refresh(_need(params, "refresh_token"), app.key, self._now())
        if found == "expired":
            raise OAuthError("invalid_grant", "refresh_token has expired, please authorize again")
        if not isinstance(found, Grant):
            raise OAuthError("invalid_grant", "refresh_token is invalid")
        return found

    def _user(self, app_key: str, nick: str, ttl: timedelta) -> Grant:
        digest = hashlib.sha256(f"{self._config.seed} user {nick}".encode()).digest()
        user_id = str(2_200_000_000_000 + int.from_bytes(digest[:6], "big") % 10**11)
        return Grant(app_key, user_id, nick, self._now() + ttl)

    def _token_body(self, user: Grant, access_token: str | None = None) -> dict[str, Any]:
        now, ttl, refresh_ttl = self._now(), self._config.token_ttl_s, self._config.refresh_ttl_s
        access, refresh = self._tokens.issue(
            user, now, timedelta(seconds=ttl), timedelta(seconds=refresh_ttl), access_token
        )
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ttl,
            "refresh_token": refresh,
            "re_expires_in": refresh_ttl,
            "r1_expires_in": ttl,
            "r2_expires_in": min(ttl, 86400),
            "w1_expires_in": ttl,
            "w2_expires_in": min(ttl, 1800),
            "taobao_user_id": user.user_id,
            "taobao_user_nick": quote(user.user_nick, safe=""),
            "expire_time": int((now + timedelta(seconds=ttl)).timestamp() * 1000),
        }


def _need(params: dict[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise OAuthError("invalid_request", f"{name} is required")
    return value


def _redirect(target: str, extra: dict[str, str]) -> Response:
    parts = urlsplit(target)
    query = "&".join(q for q in (parts.query, urlencode(extra)) if q)
    location = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    body = f'<html><body><a href="{html.escape(location)}">continue</a></body></html>'.encode()
    return Response(302, [("Location", location), ("Content-Type", HTML_TYPE)], body)
