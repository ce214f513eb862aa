"""TopClient against the sandbox: signing, unwrapping, error mapping, retries (counted by the sandbox)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from helpers.net import self_signed_cert, serving, tls_server

from conftest import APP_KEY, CANARY_SECRET, client_for, free_port_url, logged_in, make_sandbox
from taobao_video import errors as E
from taobao_video.jobs.accounting import CallBook
from taobao_video.model import next_midnight
from taobao_video.net import CircuitBreaker
from taobao_video.sandbox import Fault
from taobao_video.store.catalog import Catalog
from taobao_video.store.quota import QuotaLedger
from taobao_video.top.client import TopClient, beijing_timestamp, unwrap_response

BEIJING = ZoneInfo("Asia/Shanghai")


def calls(sb) -> int:
    return sb.stats()["gateway"]["calls"]


def video_id(sb) -> int:
    return sb.catalogue.sample("video", 1)[0]


# -- success path ---------------------------------------------------------------------------------------------


def test_item_video_call_is_signed_unwrapped_and_counted(sandbox, client):
    num_iid = video_id(sandbox)
    payload = client.call("taobao.item_video", {"num_iid": num_iid, "fields": "url,duration"})
    assert set(payload["video"]) == {"url", "duration"}
    assert payload["request_id"]
    assert calls(sandbox) == 1


@pytest.mark.parametrize("sign_method", ["md5", "hmac", "hmac-sha256"])
def test_every_sign_method_is_accepted(sandbox, clock, tokens, sleeps, sign_method):
    client = client_for(sandbox, clock, tokens, sleeps, sign_method=sign_method)
    client.call("taobao.item.get", {"num_iid": video_id(sandbox), "fields": "num_iid,video"})


def test_simplify_bodies_are_returned_as_they_are(sandbox, clock, tokens, sleeps):
    client = client_for(sandbox, clock, tokens, sleeps, simplify=True)
    payload = client.call("taobao.item.get", {"num_iid": video_id(sandbox), "fields": "num_iid,video"})
    assert isinstance(payload["item"]["videos"], list)


def test_session_may_travel_as_access_token(sandbox, clock, tokens, sleeps):
    client = client_for(sandbox, clock, tokens, sleeps, session_param="access_token")
    client.call("taobao.item_video", {"num_iid": video_id(sandbox)})


def test_unwrap_takes_the_named_root_then_any_response_then_the_body():
    assert unwrap_response("taobao.item.get", {"item_get_response": {"a": 1}}) == {"a": 1}
    assert unwrap_response("taobao.item.get", {"other_response": {"b": 2}}) == {"b": 2}
    assert unwrap_response("taobao.item.get", {"item": {"c": 3}, "request_id": "x"}) == {
        "item": {"c": 3},
        "request_id": "x",
    }


def test_control_characters_inside_strings_are_tolerated(sandbox, client):
    sandbox.set_faults([Fault("control_chars", "gateway", times=1)])
    payload = client.call("taobao.item_video", {"num_iid": video_id(sandbox)})
    assert "request_id" in payload


# -- timestamp zone -------------------------------------------------------------------------------------------


def test_timestamp_is_beijing_time():
    assert beijing_timestamp(datetime(2026, 1, 1, 0, 0, tzinfo=UTC)) == "2026-01-01 08:00:00"
    new_york = datetime(2026, 1, 1, 0, 0, tzinfo=ZoneInfo("America/New_York"))
    assert beijing_timestamp(new_york) == "2026-01-01 13:00:00"
    with pytest.raises(ValueError):
        beijing_timestamp(datetime(2026, 1, 1))


@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_real_clock_call_is_accepted_whatever_the_host_zone(tmp_path, tz):
    """A subprocess with TZ set calls a real-clock sandbox: a local-time timestamp would be refused (31)."""
    from taobao_video.sandbox import AppConfig, Sandbox, SandboxConfig

    config = SandboxConfig(seed=3, apps=(AppConfig(key=APP_KEY, secret=CANARY_SECRET),), require_session=False)
    with Sandbox(config) as sb:
        code = (
            "import sys, json\n"
            "from taobao_video.top.client import TopClient\n"
            f"c = TopClient(gateway_url={sb.gateway_url!r}, app_key={APP_KEY!r}, app_secret={CANARY_SECRET!r})\n"
            f"print(json.dumps(c.call('taobao.item_video', {{'num_iid': {video_id(sb)}}}, with_session=False)))\n"
        )
        env = {**os.environ, "TZ": tz}
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "request_id" in json.loads(done.stdout)


def test_a_skewed_clock_is_a_timestamp_error(sandbox, clock, tokens, sleeps):
    client = client_for(sandbox, clock, tokens, sleeps)
    client.clock = lambda: clock.now() + timedelta(minutes=11)
    with pytest.raises(E.TimestampError) as caught:
        client.call("taobao.item_video", {"num_iid": video_id(sandbox)})
    assert caught.value.exit_code == 78
    assert calls(sandbox) == 1


# -- retry vs no retry ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["isp_error", "service_unavailable", "http_500", "http_503"])
def test_retryable_failures_are_retried_with_backoff(sandbox, client, sleeps, kind):
    sandbox.set_faults([Fault(kind, "gateway", times=2)])
    payload = client.call("taobao.item_video", {"num_iid": video_id(sandbox)})
    assert "request_id" in payload
    assert calls(sandbox) == 3
    assert len(sleeps) == 2 and all(0 < s <= 31 for s in sleeps)


def test_retries_stop(sandbox, clock, tokens, sleeps):
    client = client_for(sandbox, clock, tokens, sleeps, max_retries=2)
    sandbox.set_faults([Fault("isp_error", "gateway")])
    with pytest.raises(E.RemoteServiceError) as caught:
        client.call("taobao.item_video", {"num_iid": video_id(sandbox)})
    assert caught.value.sub_code.startswith("isp.")
    assert calls(sandbox) == 3
    assert len(sleeps) == 2


def test_backoff_grows(sandbox, clock, tokens, sleeps):
    client = client_for(sandbox, clock, tokens, sleeps, max_retries=4, backoff_initial_s=1.0, backoff_max_s=60)
    sandbox.set_faults([Fault("service_unavailable", "gateway")])
    with pytest.raises(E.ServiceUnavailable):
        client.call("taobao.item_video", {"num_iid": video_id(sandbox)})
    # exponential: 1, 2, 4, 8 plus up to 1 s of jitter each
    for attempt, waited in enumerate(sleeps):
        assert 2**attempt <= waited <= 2**attempt + 1.0


@pytest.mark.parametrize(
    ("params", "error"),
    [({"num_iid": "not-a-number"}, E.InvalidArguments), ({}, E.InvalidArguments)],
)
def test_caller_errors_are_not_retried(sandbox, client, sleeps, params, error):
    with pytest.raises(error):
        client.call("taobao.item_video", params)
    assert calls(sandbox) == 1 and sleeps == []


def test_wrong_secret_is_a_configuration_error(sandbox, clock, tokens, sleeps):
    client = TopClient(
        gateway_url=sandbox.gateway_url,
        app_key=APP_KEY,
        app_secret="wrong-secret",
        tokens=tokens,
        clock=clock.now,
        sleep=sleeps,
    )
    with pytest.raises(E.SignatureError) as caught:
        client.call("taobao.item_video", {"num_iid": video_id(sandbox)})
    assert caught.value.exit_code == 78 and calls(sandbox) == 1


def test_unknown_app_key(sandbox, clock, tokens, sleeps):
    client = TopClient(
        gateway_url=sandbox.gateway_url,
        app_key="99999999",
        app_secret=CANARY_SECRET,
        tokens=tokens,
        clock=clock.now,
        sleep=sleeps,
    )
    with pytest.raises(E.AppKeyError):
        client.call("taobao.item_video", {"num_iid": video_id(sandbox)})


def test_unknown_method(sandbox, client):
    with pytest.raises(E.MethodUnavailable) as caught:
        client.call("taobao.no.such.method", {})
    assert caught.value.code == 22


def test_connection_refused_is_unsent_and_retried(clock, tokens, sleeps):
    client = TopClient(
        gateway_url=free_port_url(),
        app_key=APP_KEY,
        app_secret=CANARY_SECRET,
        clock=clock.now,
        sleep=sleeps,
        max_retries=2,
    )
    with pytest.raises(E.NotSent) as caught:
        client.call("taobao.item_video", {"num_iid": 1}, with_session=False)
    assert caught.value.cause == "refused" and "nothing was sent" in str(caught.value)
    assert len(sleeps) == 2


# -- quota honesty and the circuit breaker --------------------------------------------------------------------


@pytest.fixture
def metered(tmp_path, clock):
    """A real quota ledger and call book on a SQLite catalog, as the harvest wires them, and every CallRecord."""
    with Catalog.open(f"sqlite:///{tmp_path / 'catalog.sqlite3'}") as catalog:
        ledger = QuotaLedger(catalog, app_key=APP_KEY, daily_limit=1000, clock=clock.now)
        yield SimpleNamespace(catalog=catalog, ledger=ledger, book=CallBook(catalog), records=[])


def metered_client(url, clock, sleeps, metered, **kw) -> TopClient:
    before, after = metered.book.hooks(metered.ledger)

    def after_call(record):
        metered.records.append(record)
        after(record)

    return TopClient(
        gateway_url=url,
        app_key=APP_KEY,
        app_secret=CANARY_SECRET,
        clock=clock.now,
        sleep=sleeps,
        before_call=before,
        after_call=after_call,
        **kw,
    )


def test_a_dead_gateway_costs_no_call_and_opens_the_breaker(clock, sleeps, metered):
    ledger, book, records = metered.ledger, metered.book, metered.records
    breaker = CircuitBreaker(3, clock=clock.now)
    client = metered_client(free_port_url(), clock, sleeps, metered, max_retries=4, breaker=breaker)
    started = clock.now()
    with pytest.raises(E.GatewayUnreachable) as caught:
        client.call("taobao.item_video", {"num_iid": 1}, with_session=False)
    assert caught.value.since == started and caught.value.exit_code == 75
    assert "Connection refused" in str(caught.value)
    assert [r.outcome for r in records] == ["unsent"] * 3  # the breaker's N, not max_retries + 1
    assert len(sleeps) == 2
    assert ledger.status().used == 0 and book.calls == 0
    assert metered.catalog.call_count() == 0  # the call log keeps the three as "unsent", counted nowhere
    with pytest.raises(E.GatewayUnreachable):  # open: nothing is even attempted
        client.call("taobao.item_video", {"num_iid": 2}, with_session=False)
    assert len(records) == 3 and ledger.status().used == 0


def test_a_tls_failure_costs_no_call_and_one_attempt(tmp_path, clock, sleeps, metered):
    ledger, book, records = metered.ledger, metered.book, metered.records
    cert, key = self_signed_cert(tmp_path)
    seen: list[bytes] = []
    with serving(tls_server(cert, key, seen)) as port:
        client = metered_client(f"https://127.0.0.1:{port}/router/rest", clock, sleeps, metered, max_retries=4)
        with pytest.raises(E.NotSent) as caught:
            client.call("taobao.item_video", {"num_iid": 1}, with_session=False)
    assert caught.value.cause == "tls" and not caught.value.retryable
    assert [r.outcome for r in records] == ["unsent"] and sleeps == []
    assert ledger.status().used == 0 and book.calls == 0 and seen == []


def test_a_read_timeout_may_have_reached_the_platform_so_it_stays_counted(sandbox, clock, tokens, sleeps, metered):
    ledger, book, records = metered.ledger, metered.book, metered.records
    sandbox.set_faults([Fault("stall", "gateway", times=1, seconds=3)])
    breaker = CircuitBreaker(5, clock=clock.now)
    client = metered_client(sandbox.gateway_url, clock, sleeps, metered, tokens=tokens, timeout_s=0.3, breaker=breaker)
    payload = client.call("taobao.item_video", {"num_iid": video_id(sandbox)})
    assert "request_id" in payload
    assert [r.outcome for r in records] == ["transport", "ok"]
    assert ledger.status().used == 2 == book.calls == calls(sandbox) == sandbox.quota_used(APP_KEY)
    assert breaker.streak == 0  # the second attempt got an answer


def test_an_http_error_status_is_an_answer_for_the_breaker(sandbox, clock, tokens, sleeps, metered):
    sandbox.set_faults([Fault("http_503", "gateway")])
    breaker = CircuitBreaker(2, clock=clock.now)
    client = metered_client(sandbox.gateway_url, clock, sleeps, metered, tokens=tokens, max_retries=3, breaker=breaker)
    with pytest.raises(E.TransportError) as caught:
        client.call("taobao.item_video", {"num_iid": video_id(sandbox)})
    assert caught.value.status == 503 and not breaker.is_open
    assert metered.ledger.status().used == 4  # answered by something in front of the platform: counted, the safe side


# -- quota and frequency limits -------------------------------------------------------------------------------


def test_daily_quota_is_never_retried_and_says_when_it_resets(clock, tmp_path, sleeps):
    with make_sandbox(clock, daily_limit=3) as sb:
        client = client_for(sb, clock, logged_in(sb, clock, tmp_path), sleeps)
        for _ in range(3):
            client.call("taobao.item_video", {"num_iid": video_id(sb)})
        with pytest.raises(E.QuotaExceeded) as caught:
            client.call("taobao.item_video", {"num_iid": video_id(sb)})
        error = caught.value
        assert error.exit_code == 75 and not error.retryable
        assert error.reset_at == next_midnight(clock.now(), BEIJING)
        assert error.reset_at.astimezone(BEIJING).hour == 0
        assert calls(sb) == 4 and sleeps == []
        clock.set(error.reset_at + timedelta(seconds=1))
        client.call("taobao.item_video", {"num_iid": video_id(sb)})


def test_short_frequency_ban_is_waited_out_exactly(sandbox, client, sleeps):
    sandbox.set_faults([Fault("rate_limit", "gateway", times=1, seconds=7)])
    client.call("taobao.item_video", {"num_iid": video_id(sandbox)})
    assert sleeps == [7.0]
    assert calls(sandbox) == 2


def test_long_frequency_ban_is_not_waited(sandbox, clock, tokens, sleeps):
    client = client_for(sandbox, clock, tokens, sleeps, max_ban_wait_s=60)
    sandbox.set_faults([Fault("rate_limit", "gateway", times=1, seconds=600)])
    with pytest.raises(E.RateLimited) as caught:
        client.call("taobao.item_video", {"num_iid": video_id(sandbox)})
    assert caught.value.ban_seconds == 600 and sleeps == [] and calls(sandbox) == 1


def test_error_codes_sent_as_strings_are_mapped(sandbox, client):
    sandbox.set_faults([Fault("code_as_string", "gateway", times=1)])
    with pytest.raises(E.InvalidArguments) as caught:
        client.call("taobao.item_video", {"num_iid": "x"})
    assert caught.value.code == 41


def test_next_midnight_is_beijing_midnight():
    now = datetime(2026, 11, 22, 15, 59, 59, tzinfo=UTC)  # 23:59:59 Beijing
    assert next_midnight(now, BEIJING) == datetime(2026, 11, 23, 0, 0, tzinfo=BEIJING)
    assert next_midnight(now + timedelta(seconds=1), BEIJING) == datetime(2026, 11, 24, 0, 0, tzinfo=BEIJING)


# -- malformed answers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "words"),
    [("html_200", "HTML page"), ("empty", "empty answer"), ("not_json", "not JSON"), ("huge", "larger than")],
)
def test_malformed_answers_are_clear_errors(sandbox, client, sleeps, kind, words):
    sandbox.set_faults([Fault(kind, "gateway", times=1)])
    with pytest.raises(E.BadResponseError) as caught:
        client.call("taobao.item_video", {"num_iid": video_id(sandbox)})
    assert words in str(caught.value)
    assert "taobao.item_video" in str(caught.value)
    assert sleeps == []


# -- sessions -------------------------------------------------------------------------------------------------


def test_rejected_session_is_refreshed_once(sandbox, clock, tokens, sleeps):
    stored = tokens.current()
    tokens.store.save(type(stored)(**{**stored.__dict__, "access_token": "revoked-by-the-platform"}))
    tokens._token = None
    client = client_for(sandbox, clock, tokens, sleeps)
    client.call("taobao.item_video", {"num_iid": video_id(sandbox)})
    assert calls(sandbox) == 2
    assert sandbox.stats()["oauth"]["by_grant"].get("refresh_token") == 1
    assert tokens.current().access_token != "revoked-by-the-platform"


def test_session_that_cannot_be_refreshed_asks_for_login(sandbox, clock, tokens, sleeps):
    stored = tokens.current()
    tokens.store.save(type(stored)(**{**stored.__dict__, "access_token": "revoked", "refresh_token": ""}))
    tokens._token = None
    client = client_for(sandbox, clock, tokens, sleeps)
    with pytest.raises(E.AuthError) as caught:
        client.call("taobao.item_video", {"num_iid": video_id(sandbox)})
    assert caught.value.exit_code == 77
    assert "auth login" in str(caught.value)


# -- secrets never leak ---------------------------------------------------------------------------------------


def test_secret_signature_and_token_never_appear_in_errors_or_logs(sandbox, client, caplog):
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    token = client.tokens.access_token()
    faults = ["isp_error", "html_200", "not_json", "empty", "http_500", "code_as_string", "rate_limit"]
    for kind in faults:
        sandbox.set_faults([Fault(kind, "gateway", seconds=999)])
        try:
            client.call("taobao.item_video", {"num_iid": video_id(sandbox)})
        except E.TaobaoVideoError as exc:
            texts.append(str(exc))
            texts.append(repr(exc))
    sandbox.clear_faults()
    client.call("taobao.item_video", {"num_iid": video_id(sandbox)})
    signature = client._last_sign
    texts += [record.getMessage() for record in caplog.records]
    texts.append(repr(client))
    blob = "\n".join(texts)
    assert len(texts) > len(faults)
    for secret in (CANARY_SECRET, signature, token):
        assert secret and secret not in blob
