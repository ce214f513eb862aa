"""OAuth 2.0 with the Taobao authorisation server (top-protocol.md §7): its two endpoints and the browser's way back.

- ``OAuthClient``: authorize URL, code exchange, refresh, client_credentials; HTTP 400 answers → ``OAuthError``.
  Network failures go through ``net.py``; a request that never left is retried, and so is a gateway-style 502,
  503 or 504, but a request that may have reached the server is not repeated (an authorisation code is single
  use: a repeat would be refused and hide what happened).
- ``wait_for_redirect``: a one-shot loopback listener that catches the browser's redirect and checks ``state``.

The token file and the manager that refreshes tokens are in ``tokens.py``.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from taobao_video import net
from taobao_video.errors import AuthError, OAuthError, TransportError, redact

_RETRIED_STATUSES = frozenset({502, 503, 504})  # a proxy in front of the server, not the server's "no"


class OAuthClient:
    """The authorisation server's two endpoints: ``/authorize`` (a browser page) and ``/token``."""

    def __init__(
        self,
        *,
        oauth_url: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        http: requests.Session | None = None,
        timeout_s: float = 20.0,
        attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.oauth_url = oauth_url.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self.redirect_uri = redirect_uri
        self.http = http or requests.Session()
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.sleep = sleep

    def __repr__(self) -> str:
        return f"OAuthClient(oauth_url={self.oauth_url!r}, client_id={self.client_id!r})"

    def authorize_url(self, state: str) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "state": state,
                "view": "web",
            }
        )
        return f"{self.oauth_url}/authorize?{query}"

    def exchange_code(self, code: str) -> dict[str, Any]:
        return self._token_request(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri}
        )

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        return self._token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def client_credentials(self) -> dict[str, Any]:
        return self._token_request({"grant_type": "client_credentials"})

    def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        form = {**form, "client_id": self.client_id, "client_secret": self._secret}
        secrets_in_play = (self._secret, form.get("code"), form.get("refresh_token"))

        def scrub(text: str) -> str:
            return redact(text, secrets_in_play)

        retrying = net.retrying(
            "token endpoint", attempts=self.attempts, should_retry=_worth_retrying, backoff_max_s=4.0, sleep=self.sleep
        )
        status, body = retrying(self._post, form, scrub)
        if status == 200 and isinstance(body, dict) and "error" not in body:
            return body
        if isinstance(body, dict) and body.get("error"):
            raise OAuthError(str(body["error"]), scrub(str(body.get("error_description") or "")), status=status)
        raise OAuthError(
            "invalid_response",
            f"the token endpoint answered HTTP {status} without a JSON token; check taobao.oauth_url",
            status=status,
        )

    def _post(self, form: dict[str, str], scrub: Callable[[str], str]) -> tuple[int, Any]:
        """(status, JSON body or None) of one POST to ``/token``."""
        try:
            response = self.http.post(f"{self.oauth_url}/token", data=form, timeout=net.timeouts(self.timeout_s))
        except net.NETWORK_ERRORS as exc:
            raise net.transport_error(exc, what="token endpoint", scrub=scrub) from None
        if response.status_code in _RETRIED_STATUSES:
            raise TransportError(f"token endpoint: HTTP {response.status_code}", status=response.status_code)
        return response.status_code, _json_or_none(response)


def _worth_retrying(exc: BaseException) -> bool:
    """Retry what never left, or what a proxy turned away; never repeat what the server may have processed."""
    if not isinstance(exc, TransportError) or not exc.retryable:
        return False
    return not exc.reached or exc.status in _RETRIED_STATUSES


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def new_state() -> str:
    return secrets.token_urlsafe(24)


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def loopback_address(redirect_uri: str) -> tuple[str, int, str]:
    """(host, port, path) to listen on for ``redirect_uri``; UsageError-like AuthError when not loopback."""
    parts = urlsplit(redirect_uri)
    if parts.scheme != "http" or (parts.hostname or "") not in LOOPBACK_HOSTS or parts.port is None:
        raise AuthError(
            f"taobao.redirect_uri is {redirect_uri!r}: `auth login` can only catch a redirect to "
            "http://127.0.0.1:PORT/…; set redirect_uri to such a URL (registered with the app), or open "
            "`taobao-video auth url` in a browser and pass the code with `auth login --code CODE`"
        )
    host = "::1" if parts.hostname == "::1" else "127.0.0.1"
    return host, parts.port, parts.path or "/"


class RedirectError(AuthError):
    pass


def wait_for_redirect(
    redirect_uri: str, state: str, *, timeout_s: float = 300.0, ready: Callable[[], None] | None = None
) -> str:
    """Listen once on the loopback redirect URI; return the code after checking ``state``.

    ``ready`` is called once the port is open (the caller opens the browser then).
    """
    host, port, path = loopback_address(redirect_uri)
    result: dict[str, str] = {}
    done = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path != path:
                self._answer(404, "Not the redirect path.")
                return
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            result.update(query)
            done.set()
            if query.get("error"):
                self._answer(400, "Authorisation refused. You can close this tab.")
            elif query.get("state") != state:
                self._answer(400, "State mismatch: this answer was not meant for this login.")
            else:
                self._answer(200, "taobao-video is authorised. You can close this tab.")

        def _answer(self, status: int, text: str) -> None:
            body = f"<!doctype html><title>taobao-video</title><p>{text}</p>".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the URL holds the code
            return

    try:
        server = HTTPServer((host, port), Handler)
    except OSError as exc:
        raise AuthError(f"cannot listen on {host}:{port} for the OAuth redirect: {exc.strerror}") from None
    server.timeout = 0.2
    try:
        if ready is not None:
            ready()
        deadline = threading.Event()
        timer = threading.Timer(timeout_s, deadline.set)
        timer.start()
        try:
            while not done.is_set() and not deadline.is_set():
                server.handle_request()
        finally:
            timer.cancel()
    finally:
        server.server_close()
    if not done.is_set():
        raise RedirectError(f"no redirect arrived within {timeout_s:.0f} s; run `taobao-video auth login` again")
    if result.get("error"):
        raise RedirectError(
            f"the authorisation was refused: {result['error']} {result.get('error_description', '')}".rstrip()
        )
    if result.get("state") != state:
        raise RedirectError("the redirect's state does not match this login (a stale or forged redirect)")
    if not result.get("code"):
        raise RedirectError("the redirect carried no code")
    return result["code"]


__all__ = [
    "OAuthClient",
    "RedirectError",
    "loopback_address",
    "new_state",
    "wait_for_redirect",
]
