"""The sandbox OAuth server: authorize redirect, code exchange, refresh rotation, client_credentials."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests
from helpers.sandbox import error_code, gateway_call, gateway_params, signed

from taobao_video.sandbox import AppConfig, FakeClock, Sandbox, SandboxConfig

CALLBACK = "http://127.0.0.1:9/callback"


@pytest.fixture
def sb(clock: FakeClock) -> Iterator[Sandbox]:
    apps = (
        AppConfig(key="test", secret="test", client_credentials=True),
        AppConfig(key="plain", secret="p", client_credentials=False),
    )
    with Sandbox(SandboxConfig(seed=5, apps=apps, clock=clock.now, token_ttl_s=3600)) as sandbox:
        yield sandbox


def authorize(sb: Sandbox, **params: str) -> requests.Response:
    query = {"response_type": "code", "client_id": "test", "redirect_uri": CALLBACK, "view": "web", **params}
    return requests.get(sb.oauth_url + "/authorize", params=query, allow_redirects=False, timeout=10)


def redirect_params(response: requests.Response) -> dict[str, list[str]]:
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(CALLBACK + "?")
    return parse_qs(urlsplit(location).query)


def token(sb: Sandbox, **form: str) -> requests.Response:
    return requests.post(sb.oauth_url + "/token", data=form, timeout=10)


def exchange(sb: Sandbox, code: str, **extra: str) -> requests.Response:
    form = {"grant_type": "authorization_code", "client_id": "test", "client_secret": "test", "code": code}
    return token(sb, **{**form, "redirect_uri": CALLBACK, **extra})


def new_code(sb: Sandbox) -> str:
    return redirect_params(authorize(sb, state="s"))["code"][0]


def gateway_code(sb: Sandbox, access_token: str) -> int | None:
    num_iid = str(sb.catalogue.sample("video", 1)[0])
    return error_code(gateway_call(sb, signed(gateway_params(sb, access_token, num_iid=num_iid))))


def test_authorize_redirects_with_code_and_exact_state(sb):
    state = "a b&c=d/é"
    params = redirect_params(authorize(sb, state=state))
    assert params["state"] == [state] and len(params["code"][0]) >= 16
    assert "state" not in redirect_params(authorize(sb))
    assert sb.stats()["oauth"]["authorize"] == 2


def test_authorize_keeps_an_existing_query(sb):
    response = authorize(sb, redirect_uri=CALLBACK + "?x=1", state="s")
    assert response.headers["Location"].startswith(CALLBACK + "?x=1&code=")


def test_authorize_unknown_client_is_a_400_page(sb):
    response = authorize(sb, client_id="nobody")
    assert response.status_code == 400 and "text/html" in response.headers["Content-Type"]
    assert "nobody" in response.text


def test_authorize_denied_and_bad_response_type(sb):
    assert redirect_params(authorize(sb, state="s", sandbox_deny="1")) == {
        "error": ["access_denied"],
        "error_description": ["user denied"],
        "state": ["s"],
    }
    assert redirect_params(authorize(sb, response_type="token"))["error"] == ["unsupported_response_type"]


def test_deny_authorize_config(clock):
    with Sandbox(SandboxConfig(clock=clock.now, deny_authorize=True)) as sb:
        assert redirect_params(authorize(sb))["error"] == ["access_denied"]


def test_code_exchange_body(sb, clock):
    response = exchange(sb, new_code(sb))
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json;charset=UTF-8"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["re_expires_in"] == 30 * 86400
    for name in ("r1_expires_in", "r2_expires_in", "w1_expires_in", "w2_expires_in"):
        assert isinstance(body[name], int)
    assert isinstance(body["taobao_user_id"], str) and body["taobao_user_id"].isdigit()
    assert body["taobao_user_nick"] == "%E6%B2%99%E7%AE%B1%E4%B9%B0%E5%AE%B6"
    assert unquote(body["taobao_user_nick"]) == "沙箱买家"
    assert body["expire_time"] == int((clock.now() + timedelta(hours=1)).timestamp() * 1000)
    assert gateway_code(sb, body["access_token"]) is None


def test_code_is_single_use(sb):
    code = new_code(sb)
    assert exchange(sb, code).status_code == 200
    again = exchange(sb, code)
    assert again.status_code == 400
    assert again.json() == {
        "error": "invalid_client",
        "error_description": "authorize code expire or invalidate,please authorize again.",
    }
    assert exchange(sb, "made-up").json()["error"] == "invalid_client"


def test_code_expires_after_30_minutes(sb, clock):
    code = new_code(sb)
    clock.advance(1801)
    assert exchange(sb, code).json()["error"] == "invalid_client"


def test_code_is_bound_to_client_and_redirect_uri(sb):
    code = new_code(sb)
    assert exchange(sb, code, redirect_uri="http://127.0.0.1:9/other").json()["error"] == "invalid_grant"
    code = new_code(sb)
    other = exchange(sb, code, client_id="plain", client_secret="p")
    assert other.json()["error"] == "invalid_client"


def test_wrong_secret_unknown_client_missing_params(sb):
    code = new_code(sb)
    assert exchange(sb, code, client_secret="wrong").json()["error"] == "invalid_client"
    assert exchange(sb, code, client_id="nobody").json()["error"] == "invalid_client"
    assert exchange(sb, code).status_code == 200  # the failed attempts did not spend the code
    missing = token(sb, grant_type="authorization_code", client_id="test", client_secret="test")
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    assert token(sb, client_id="test").json()["error"] == "invalid_request"
    assert token(sb, grant_type="password", client_id="test").json()["error"] == "unsupported_grant_type"
    assert requests.get(sb.oauth_url + "/token", timeout=10).status_code == 400


def test_refresh_rotates(sb, clock):
    first = exchange(sb, new_code(sb)).json()
    form = {"grant_type": "refresh_token", "client_id": "test", "client_secret": "test"}
    second = token(sb, **form, refresh_token=first["refresh_token"])
    assert second.status_code == 200
    second = second.json()
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    reused = token(sb, **form, refresh_token=first["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert gateway_code(sb, first["access_token"]) is None  # the old access token lives out its time
    assert gateway_code(sb, second["access_token"]) is None
    assert token(sb, **form, refresh_token=second["refresh_token"]).status_code == 200


def test_refresh_needs_the_right_client(sb):
    first = exchange(sb, new_code(sb)).json()
    form = {"grant_type": "refresh_token", "client_id": "plain", "client_secret": "p"}
    assert token(sb, **form, refresh_token=first["refresh_token"]).json()["error"] == "invalid_grant"


def test_no_refresh_when_refresh_ttl_is_zero(clock):
    with Sandbox(SandboxConfig(clock=clock.now, refresh_ttl_s=0)) as sb:
        code = redirect_params(authorize(sb))["code"][0]
        body = exchange(sb, code).json()
        assert body["re_expires_in"] == 0
        form = {"grant_type": "refresh_token", "client_id": "test", "client_secret": "test"}
        assert token(sb, **form, refresh_token=body["refresh_token"]).json()["error"] == "invalid_grant"


def test_client_credentials_allowed_and_refused(sb):
    ok = token(sb, grant_type="client_credentials", client_id="test", client_secret="test")
    assert ok.status_code == 200 and gateway_code(sb, ok.json()["access_token"]) is None
    refused = token(sb, grant_type="client_credentials", client_id="plain", client_secret="p")
    assert refused.status_code == 400 and refused.json()["error"] == "unsupported_grant_type"


def test_token_expiry_gives_session_expired(sb, clock):
    access = exchange(sb, new_code(sb)).json()["access_token"]
    clock.advance(3599)
    assert gateway_code(sb, access) is None
    clock.advance(1)
    body = gateway_call(sb, signed(gateway_params(sb, access, num_iid="1")))
    assert body["error_response"]["code"] == 27
    assert body["error_response"]["sub_code"] == "session-expired"


def test_oauth_stats(sb):
    exchange(sb, new_code(sb))
    token(sb, grant_type="client_credentials", client_id="plain", client_secret="p")
    oauth = sb.stats()["oauth"]
    assert oauth["token_requests"] == 2 and oauth["authorize"] == 1
    assert oauth["by_grant"] == {"authorization_code": 1, "client_credentials": 1}
    assert oauth["by_outcome"] == {"ok": 1, "unsupported_grant_type": 1}


def test_issue_token_with_a_fixed_value(sb):
    body = sb.issue_token("test", access_token="fixed-token")
    assert body["access_token"] == "fixed-token"
    assert gateway_code(sb, "fixed-token") is None
    response = requests.post(sb.url + "/_sandbox/token", json={"app_key": "test"}, timeout=10)
    assert gateway_code(sb, response.json()["access_token"]) is None
