"""OAuth against the sandbox: the redirect dance, token file (0600, atomic), refresh, client_credentials."""

from __future__ import annotations

import os
import stat
import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from helpers.net import read_request, reset_after_reading, serving

from conftest import APP_KEY, CANARY_SECRET, free_port_url, make_sandbox, token_manager_for
from taobao_video import errors as E
from taobao_video.jobs.demo import free_loopback_port
from taobao_video.top.oauth import OAuthClient, RedirectError, loopback_address, new_state, wait_for_redirect
from taobao_video.top.tokens import Token, TokenStore


def redirect_uri() -> str:
    return f"http://127.0.0.1:{free_loopback_port()}/callback"


def browse_when_ready(url: str):
    """A 'browser' that follows the authorize page's redirect to our listener once it listens."""
    return lambda: threading.Thread(target=requests.get, args=(url,), kwargs={"timeout": 10}, daemon=True).start()


def browse_to_redirect(manager, *, expected_state: str, sent_state: str) -> str:
    """Listen on a fresh loopback redirect URI for ``expected_state`` while a 'browser' opens the authorize page
    with ``sent_state``; the code the redirect brings."""
    manager.oauth.redirect_uri = redirect_uri()
    return wait_for_redirect(
        manager.oauth.redirect_uri,
        expected_state,
        timeout_s=10,
        ready=browse_when_ready(manager.oauth.authorize_url(sent_state)),
    )


def test_authorize_url_has_what_taobao_needs():
    oauth = OAuthClient(
        oauth_url="https://oauth.taobao.com/",
        client_id="123",
        client_secret="s",
        redirect_uri="http://127.0.0.1:8765/callback",
    )
    parts = urlsplit(oauth.authorize_url("st4te"))
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "oauth.taobao.com", "/authorize")
    assert {k: v[0] for k, v in parse_qs(parts.query).items()} == {
        "response_type": "code",
        "client_id": "123",
        "redirect_uri": "http://127.0.0.1:8765/callback",
        "state": "st4te",
        "view": "web",
    }


def test_full_login_through_the_loopback_redirect(sandbox, clock, tmp_path):
    manager = token_manager_for(sandbox, clock, tmp_path)
    state = new_state()
    code = browse_to_redirect(manager, expected_state=state, sent_state=state)
    token = manager.login_with_code(code)
    assert token.user_nick == "沙箱买家"
    assert token.expires_at > clock.now()
    mode = stat.S_IMODE(os.stat(tmp_path / "token.json").st_mode)
    assert mode == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["token.json"]  # no temp file left behind
    assert TokenStore(tmp_path / "token.json").load() == token


def test_state_mismatch_is_refused(sandbox, clock, tmp_path):
    manager = token_manager_for(sandbox, clock, tmp_path)
    with pytest.raises(RedirectError, match="state"):
        browse_to_redirect(manager, expected_state="expected-state", sent_state="forged-state")


def test_refusal_in_the_browser_is_reported(clock, tmp_path):
    with make_sandbox(clock, deny_authorize=True) as sb:
        manager = token_manager_for(sb, clock, tmp_path)
        with pytest.raises(RedirectError, match="access_denied"):
            browse_to_redirect(manager, expected_state="s", sent_state="s")


def test_no_redirect_times_out_clearly():
    with pytest.raises(RedirectError, match="no redirect arrived"):
        wait_for_redirect(redirect_uri(), "s", timeout_s=0.5)


def test_redirect_uri_must_be_loopback():
    assert loopback_address("http://127.0.0.1:8765/cb") == ("127.0.0.1", 8765, "/cb")
    for bad in ("https://example.com/cb", "http://127.0.0.1/cb", "http://10.0.0.1:80/cb"):
        with pytest.raises(E.AuthError, match="auth login --code"):
            loopback_address(bad)


def _code_for(sb, oauth: OAuthClient) -> str:
    answer = requests.get(oauth.authorize_url("s"), allow_redirects=False, timeout=10)
    return parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]


def test_a_code_works_once(sandbox, clock, tmp_path):
    manager = token_manager_for(sandbox, clock, tmp_path)
    code = _code_for(sandbox, manager.oauth)
    manager.login_with_code(code)
    with pytest.raises(E.OAuthError) as caught:
        manager.login_with_code(code)
    assert caught.value.error == "invalid_client" and caught.value.status == 400
    assert "authorize again" in str(caught.value)
    assert caught.value.exit_code == 77


def test_wrong_client_secret_is_a_clear_message(sandbox, clock, tmp_path):
    manager = token_manager_for(sandbox, clock, tmp_path)
    manager.oauth._secret = "not-the-secret"
    with pytest.raises(E.OAuthError, match="invalid_client"):
        manager.login_with_code(_code_for(sandbox, manager.oauth))


def test_refresh_rotates_and_is_saved(sandbox, clock, tmp_path):
    manager = token_manager_for(sandbox, clock, tmp_path)
    first = manager.login_with_code(_code_for(sandbox, manager.oauth))
    second = manager.refresh_now()
    assert second.access_token != first.access_token and second.refresh_token != first.refresh_token
    assert second.user_nick == "沙箱买家"
    assert TokenStore(tmp_path / "token.json").load() == second
    with pytest.raises(E.OAuthError, match="invalid"):
        manager.oauth.refresh(first.refresh_token)


def test_token_is_refreshed_before_it_expires(sandbox, clock, tmp_path):
    manager = token_manager_for(sandbox, clock, tmp_path)
    first = manager.login_with_code(_code_for(sandbox, manager.oauth))
    assert manager.access_token() == first.access_token
    clock.set(first.expires_at - timedelta(seconds=manager.refresh_margin_s - 1))
    assert manager.access_token() != first.access_token
    assert sandbox.stats()["oauth"]["by_grant"]["refresh_token"] == 1


def test_expired_unrefreshable_token_asks_for_login(sandbox, clock, tmp_path):
    manager = token_manager_for(sandbox, clock, tmp_path)
    manager.store.save(Token(access_token="t", expires_at=clock.now() + timedelta(seconds=5)))
    clock.advance(10)
    with pytest.raises(E.AuthError, match="auth login"):
        manager.access_token()


def test_client_credentials_grant(sandbox, clock, tmp_path):
    manager = token_manager_for(sandbox, clock, tmp_path, grant="client_credentials")
    token = manager.access_token()
    assert token and manager.current().grant == "client_credentials"
    assert sandbox.stats()["oauth"]["by_grant"] == {"client_credentials": 1}


def test_client_credentials_refused_by_the_server(clock, tmp_path):
    with make_sandbox(clock, client_credentials=False) as sb:
        manager = token_manager_for(sb, clock, tmp_path, grant="client_credentials")
        with pytest.raises(E.OAuthError, match="unsupported_grant_type"):
            manager.access_token()


def test_no_token_means_login_first(sandbox, clock, tmp_path):
    with pytest.raises(E.AuthError, match="auth login"):
        token_manager_for(sandbox, clock, tmp_path).access_token()


def test_a_token_file_others_can_read_is_refused(sandbox, clock, tmp_path):
    manager = token_manager_for(sandbox, clock, tmp_path)
    manager.login_with_code(_code_for(sandbox, manager.oauth))
    os.chmod(tmp_path / "token.json", 0o644)
    with pytest.raises(E.AuthError, match="readable by other users"):
        TokenStore(tmp_path / "token.json").load()


def test_a_damaged_token_file_is_reported(tmp_path):
    (tmp_path / "token.json").write_text("{not json")
    os.chmod(tmp_path / "token.json", 0o600)
    with pytest.raises(E.AuthError, match="damaged"):
        TokenStore(tmp_path / "token.json").load()


def test_token_repr_hides_the_token(sandbox, clock, tmp_path):
    manager = token_manager_for(sandbox, clock, tmp_path)
    token = manager.login_with_code(_code_for(sandbox, manager.oauth))
    assert token.access_token not in repr(token)
    assert CANARY_SECRET not in repr(manager.oauth)
    assert APP_KEY in repr(manager.oauth)


def test_expiry_from_expire_time_when_expires_in_is_missing(clock):
    now = clock.now()
    epoch_ms = int((now + timedelta(hours=2)).timestamp() * 1000)
    token = Token.from_response(
        {"access_token": "a", "expire_time": epoch_ms, "taobao_user_nick": "%E4%B9%B0"},
        now=now,
        grant="authorization_code",
    )
    assert token.expires_at == now + timedelta(hours=2)
    assert token.user_nick == "买"
    with pytest.raises(E.OAuthError):
        Token.from_response({"access_token": "a"}, now=now, grant="x")


# -- the token endpoint over a bad network (net.py) -----------------------------------------------------------


def oauth_at(url: str, sleeps) -> OAuthClient:
    return OAuthClient(
        oauth_url=url, client_id=APP_KEY, client_secret=CANARY_SECRET, redirect_uri=redirect_uri(), sleep=sleeps
    )


def test_an_unreachable_token_endpoint_is_retried_and_says_nothing_was_sent(sleeps):
    with pytest.raises(E.NotSent) as caught:
        oauth_at(free_port_url().removesuffix("/router/rest"), sleeps).exchange_code("the-code")
    assert caught.value.cause == "refused" and "token endpoint" in str(caught.value)
    assert len(sleeps) == 2  # three attempts
    assert "the-code" not in str(caught.value) and CANARY_SECRET not in str(caught.value)


def test_a_code_that_may_have_reached_the_server_is_not_sent_twice(sleeps):
    requests_seen: list[bytes] = []

    def reset(connection) -> None:
        requests_seen.append(b"")
        reset_after_reading(connection)

    with serving(reset) as port:
        with pytest.raises(E.TransportError) as caught:
            oauth_at(f"http://127.0.0.1:{port}", sleeps).exchange_code("single-use-code")
    assert caught.value.reached and caught.value.cause == "reset"
    assert len(requests_seen) == 1 and sleeps == []


def test_a_proxy_503_is_retried(sleeps):
    answers = [b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"] * 2
    token = b'{"access_token": "t0k3n-value", "token_type": "Bearer", "expires_in": 86400}'
    answers.append(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(token), token)
    )

    def answer(connection) -> None:
        while read_request(connection):
            connection.sendall(answers.pop(0))

    with serving(answer) as port:
        body = oauth_at(f"http://127.0.0.1:{port}", sleeps).client_credentials()
    assert body["access_token"] == "t0k3n-value" and len(sleeps) == 2
