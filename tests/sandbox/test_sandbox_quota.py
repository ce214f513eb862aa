"""The sandbox's daily quota (quota day in Asia/Shanghai, every call counts) and its frequency limit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
from helpers.sandbox import error_code, gateway_call, gateway_params, signed

from taobao_video.sandbox import AppConfig, FakeClock, Sandbox, SandboxConfig

# 2026-11-22 20:00:00 in Beijing: four hours to the quota reset
EVENING_UTC = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(EVENING_UTC)


def make(clock: FakeClock, **app: object) -> Sandbox:
    return Sandbox(SandboxConfig(seed=1, apps=(AppConfig(**app),), clock=clock.now))  # type: ignore[arg-type]


def call(sb: Sandbox, token: str, *, bad_sign: bool = False) -> dict:
    params = gateway_params(sb, token, num_iid=str(sb.catalogue.sample("video", 1)[0]))
    return gateway_call(sb, {**params, "sign": "0" * 32} if bad_sign else signed(params))


@pytest.fixture
def limited(clock: FakeClock) -> Iterator[tuple[Sandbox, str]]:
    with make(clock, daily_limit=3) as sb:
        yield sb, sb.issue_token()["access_token"]


def test_limit_then_ban_until_beijing_midnight_then_next_day(limited, clock):
    sb, token = limited
    assert [error_code(call(sb, token)) for _ in range(3)] == [None, None, None]
    banned = call(sb, token)["error_response"]
    assert banned["code"] == 7 and banned["msg"] == "App Call Limited"
    assert banned["sub_code"] == "accesscontrol.limited-by-app-access-count"
    assert banned["sub_msg"] == "This ban will last for 14400 more seconds"
    clock.advance(3600 + 0.5)
    assert call(sb, token)["error_response"]["sub_msg"] == "This ban will last for 10800 more seconds"  # ceil
    assert sb.stats()["quota"] == {"test": {"2026-11-22": 3}}  # refused calls are not counted
    clock.advance(10800)  # 00:00:00.5 Beijing, 2026-11-23
    assert error_code(call(sb, token)) is None
    assert sb.stats()["quota"]["test"] == {"2026-11-22": 3, "2026-11-23": 1}


def test_quota_day_is_the_beijing_date(clock):
    clock.set(datetime(2026, 11, 22, 16, 30, tzinfo=UTC))  # 00:30 on the 23rd in Beijing
    with make(clock, daily_limit=1) as sb:
        token = sb.issue_token()["access_token"]
        assert error_code(call(sb, token)) is None
        ban = call(sb, token)["error_response"]["sub_msg"]
        assert ban == f"This ban will last for {86400 - 1800} more seconds"
        assert sb.stats()["quota"] == {"test": {"2026-11-23": 1}}


def test_failed_calls_count(limited):
    sb, token = limited
    assert error_code(call(sb, token, bad_sign=True)) == 25
    assert error_code(call(sb, "expired-or-unknown")) == 27
    assert error_code(call(sb, token)) is None
    assert error_code(call(sb, token)) == 7
    assert sb.quota_used("test") == 3


def test_set_quota_used_and_admin_endpoint(limited):
    sb, token = limited
    sb.set_quota_used("test", 2)
    assert error_code(call(sb, token)) is None
    assert error_code(call(sb, token)) == 7
    response = requests.post(sb.url + "/_sandbox/quota", json={"app_key": "test", "used": 0}, timeout=10)
    assert response.status_code == 200 and response.json()["quota"] == {"test": {"2026-11-22": 0}}
    assert error_code(call(sb, token)) is None


def test_unknown_app_key_is_not_counted(limited):
    sb, _ = limited
    body = requests.post(sb.gateway_url, data={"app_key": "other", "format": "json"}, timeout=10).json()
    assert error_code(body) == 29
    assert sb.stats()["quota"] == {}


def test_frequency_limit(clock):
    with make(clock, qps=2) as sb:
        token = sb.issue_token()["access_token"]
        assert [error_code(call(sb, token)) for _ in range(2)] == [None, None]
        refused = call(sb, token)["error_response"]
        assert refused["code"] == 7
        assert refused["sub_code"] == "accesscontrol.limited-by-app-api-access-count"
        assert refused["sub_msg"] == "This ban will last for 1 more seconds"
        clock.advance(1)
        assert error_code(call(sb, token)) is None
        assert sb.quota_used("test") == 4  # frequency refusals count against the daily quota


def test_unlimited_app_still_counts(clock):
    with make(clock) as sb:
        token = sb.issue_token()["access_token"]
        for _ in range(5):
            assert error_code(call(sb, token)) is None
        assert sb.quota_used("test") == 5
