"""net.py against real sockets: each network failure gets its cause, its retryability and whether the request may
have reached the far end; the retry shape; the circuit breaker."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import requests
from helpers.net import (
    cut_body,
    full_backlog,
    never_answer,
    redirect_forever,
    reset_after_reading,
    self_signed_cert,
    serving,
    tls_server,
)

from conftest import free_port_url
from taobao_video import net
from taobao_video.errors import GatewayUnreachable, NotSent, ServiceUnavailable, TransportError
from taobao_video.sandbox import FakeClock

SECRET = "CANARY-net-5ecret"


def failure(url: str, *, timeout: tuple[float, float] = (2.0, 2.0), read_body: bool = False) -> TransportError:
    """POST to ``url`` the way the edges do and translate what goes wrong."""
    with requests.Session() as session:
        try:
            response = session.post(url, data={"secret": SECRET}, timeout=timeout, stream=True)
        except net.NETWORK_ERRORS as exc:
            return net.transport_error(exc, what="test", scrub=lambda text: text.replace(SECRET, "***"))
        assert read_body, f"{url} answered HTTP {response.status_code}"
        try:
            response.content  # noqa: B018 - reading the body is the point
        except net.NETWORK_ERRORS as exc:
            return net.transport_error(exc, what="test", answering=True)
        raise AssertionError("the body read did not fail")


def assert_unsent(error: TransportError, cause: str, *, retryable: bool) -> None:
    assert isinstance(error, NotSent), error
    assert (error.cause, error.reached, error.retryable, error.answered) == (cause, False, retryable, False)
    assert "nothing was sent" in str(error)


def assert_sent(error: TransportError, cause: str, *, retryable: bool) -> None:
    assert not isinstance(error, NotSent), error
    assert (error.cause, error.reached, error.retryable) == (cause, True, retryable)


# -- never left the machine -----------------------------------------------------------------------------------


def test_a_dead_port_is_refused_and_unsent() -> None:
    error = failure(free_port_url())
    assert_unsent(error, "refused", retryable=True)
    assert "Connection refused" in str(error)


def test_an_unresolvable_host_is_dns_and_unsent() -> None:
    assert_unsent(failure("http://nonexistent.invalid/router/rest"), "dns", retryable=True)


def test_no_connection_within_the_connect_timeout_is_unsent() -> None:
    with full_backlog() as port:
        error = failure(f"http://127.0.0.1:{port}/router/rest", timeout=(0.3, 5.0))
    assert_unsent(error, "connect_timeout", retryable=True)


def test_an_untrusted_certificate_is_tls_unsent_and_not_retried(tmp_path) -> None:
    cert, key = self_signed_cert(tmp_path)
    seen: list[bytes] = []
    with serving(tls_server(cert, key, seen)) as port:
        error = failure(f"https://127.0.0.1:{port}/router/rest")
    assert_unsent(error, "tls", retryable=False)
    assert "CERTIFICATE_VERIFY_FAILED" in str(error)
    assert seen == []  # the server never got a request byte


def test_a_failed_handshake_is_unsent_too() -> None:
    """https to a plain-HTTP port: the TLS handshake fails (not a certificate problem) before anything is sent."""
    seen: list[bytes] = []

    def plain_http(connection) -> None:
        seen.append(connection.recv(65536))
        connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    with serving(plain_http) as port:
        error = failure(f"https://127.0.0.1:{port}/router/rest")
    assert_unsent(error, "tls", retryable=False)
    assert all(b"POST" not in data for data in seen)  # only a TLS ClientHello went out


@pytest.mark.parametrize("url", ["http://exa mple.com:99999/x", "eco.taobao.com/router/rest", "ftp://example.com/"])
def test_an_unusable_url_is_unsent_and_not_retried(url: str) -> None:
    assert_unsent(failure(url), "invalid_url", retryable=False)


# -- may have reached the far end -----------------------------------------------------------------------------


def test_a_reset_after_the_request_was_read_may_have_reached() -> None:
    with serving(reset_after_reading) as port:
        error = failure(f"http://127.0.0.1:{port}/router/rest")
    assert_sent(error, "reset", retryable=True)
    assert "may have arrived" in str(error)


def test_no_answer_within_the_read_timeout_may_have_reached() -> None:
    with serving(never_answer(5)) as port:
        error = failure(f"http://127.0.0.1:{port}/router/rest", timeout=(2.0, 0.3))
    assert_sent(error, "read_timeout", retryable=True)


def test_a_redirect_loop_is_not_retried() -> None:
    with serving(redirect_forever) as port:
        error = failure(f"http://127.0.0.1:{port}/router/rest")
    assert_sent(error, "redirects", retryable=False)


def test_a_body_cut_short_is_truncated() -> None:
    with serving(cut_body) as port:
        error = failure(f"http://127.0.0.1:{port}/router/rest", read_body=True)
    assert_sent(error, "truncated", retryable=True)


def test_anything_unrecognised_is_the_safe_side() -> None:
    error = net.transport_error(OSError("something odd"), what="test")
    assert_sent(error, "reset", retryable=True)


def test_secrets_are_scrubbed_from_the_text() -> None:
    error = failure(f"eco.taobao.com/router/rest?key={SECRET}")  # requests echoes a URL without a scheme
    assert SECRET not in str(error) and "key=***" in str(error)


def test_connect_timeout_is_capped() -> None:
    assert net.timeouts(30.0) == (net.CONNECT_TIMEOUT_S, 30.0)
    assert net.timeouts(2.0) == (2.0, 2.0)


# -- the retry shape ------------------------------------------------------------------------------------------


def test_one_retry_shape_with_one_log_line(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="taobao_video.retry")
    sleeps: list[float] = []
    tries: list[int] = []

    def flaky() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise ServiceUnavailable(10, "Service currently unavailable")
        return "ok"

    retrying = net.retrying(
        "gateway", attempts=5, should_retry=net.is_retryable, backoff_initial_s=1.0, sleep=sleeps.append
    )
    assert retrying(flaky) == "ok"
    assert len(tries) == 3 and len(sleeps) == 2
    assert 1.0 <= sleeps[0] <= 2.0 and 2.0 <= sleeps[1] <= 3.0
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("gateway: attempt 1 of 5 failed (TOP error 10") and "; retrying in " in lines[0]


def test_the_stated_wait_wins_and_the_last_error_is_raised_as_it_is() -> None:
    sleeps: list[float] = []

    def always() -> None:
        raise ServiceUnavailable(10, "busy")

    retrying = net.retrying(
        "gateway", attempts=3, should_retry=net.is_retryable, wait_override=lambda exc: 7.0, sleep=sleeps.append
    )
    with pytest.raises(ServiceUnavailable):
        retrying(always)
    assert sleeps == [7.0, 7.0]


def test_what_is_not_retryable_is_tried_once() -> None:
    tries: list[int] = []

    def refused_tls() -> None:
        tries.append(1)
        raise NotSent("tls", cause="tls", retryable=False)

    with pytest.raises(NotSent):
        net.retrying("gateway", attempts=5, should_retry=net.is_retryable, sleep=lambda s: None)(refused_tls)
    assert tries == [1]


# -- the circuit breaker --------------------------------------------------------------------------------------


def test_the_breaker_opens_after_n_failures_in_a_row_and_names_the_start(clock: FakeClock) -> None:
    breaker = net.CircuitBreaker(3, clock=clock.now)
    started = clock.now()
    for n in range(3):
        breaker.check()  # closed: nothing raised
        breaker.failed(NotSent(f"refused #{n}", cause="refused"))
        clock.advance(10)
    with pytest.raises(GatewayUnreachable) as caught:
        breaker.check()
    error = caught.value
    assert error.since == started and error.exit_code == 75 and not error.retryable
    assert str(error).startswith(f"gateway unreachable since {started:%Y-%m-%d %H:%M:%S} UTC: refused #2;")
    assert str(error).endswith("nothing lost, run again later")


def test_any_answer_closes_the_breaker(clock: FakeClock) -> None:
    breaker = net.CircuitBreaker(2, clock=clock.now)
    breaker.failed(NotSent("refused", cause="refused"))
    breaker.failed(TransportError("HTTP 503", status=503))  # an answer, however unhelpful
    assert breaker.streak == 0
    breaker.failed(TransportError("reset", cause="reset"))
    clock.advance(timedelta(seconds=5).total_seconds())
    breaker.failed(TransportError("reset", cause="reset"))
    assert breaker.is_open
    breaker.answered()
    breaker.check()
    assert not breaker.is_open


def test_the_breaker_needs_at_least_one_failure() -> None:
    with pytest.raises(ValueError):
        net.CircuitBreaker(0)
