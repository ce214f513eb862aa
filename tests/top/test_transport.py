"""The transport both gateway clients share (``client.exchange``): a failure while reading an answer whose headers
arrived says so and counts for the circuit breaker, for TopClient and ItemDataClient alike (real loopback
servers)."""

from __future__ import annotations

import socket
import struct
import time

import pytest
from helpers.net import cut_body, read_request, serving

from conftest import APP_KEY, CANARY_SECRET
from taobao_video import errors as E
from taobao_video.net import CircuitBreaker
from taobao_video.top.client import TopClient
from taobao_video.top.itemdata import ItemDataClient

KEY, SECRET = "CANARY-gwkey-4b9c1a", "CANARY-gwsecret-88d0e3"


def item_data(port: int, clock, sleeps, breaker: CircuitBreaker, records: list) -> ItemDataClient:
    return ItemDataClient(
        url=f"http://127.0.0.1:{port}/taobao/item_get/",
        key=KEY,
        secret=SECRET,
        clock=clock.now,
        sleep=sleeps,
        max_retries=1,
        breaker=breaker,
        after_call=records.append,
    )


def top(port: int, clock, sleeps, breaker: CircuitBreaker, records: list) -> TopClient:
    return TopClient(
        gateway_url=f"http://127.0.0.1:{port}/router/rest",
        app_key=APP_KEY,
        app_secret=CANARY_SECRET,
        clock=clock.now,
        sleep=sleeps,
        max_retries=1,
        breaker=breaker,
        after_call=records.append,
    )


def call(client: TopClient | ItemDataClient) -> None:
    if isinstance(client, TopClient):
        client.call("taobao.item_video", {"num_iid": 1}, with_session=False)
    else:
        client.item(1)


@pytest.mark.parametrize("make", [item_data, top], ids=["item_data", "top"])
def test_an_answer_cut_short_says_so_and_counts_for_the_breaker(clock, sleeps, make):
    breaker, records = CircuitBreaker(5, clock=clock.now), []
    with serving(cut_body) as port:
        client = make(port, clock, sleeps, breaker, records)
        with pytest.raises(E.TransportError) as caught:
            call(client)
    error = caught.value
    assert not isinstance(error, E.NotSent) and error.cause == "truncated" and error.retryable
    assert "reading the answer: the answer was cut short" in str(error)
    assert breaker.streak == 2  # both attempts got no whole answer
    assert [record.outcome for record in records] == ["transport", "transport"]  # reached: counted
    assert len(sleeps) == 1


@pytest.mark.parametrize("make", [item_data, top], ids=["item_data", "top"])
def test_answers_cut_short_open_the_breaker(clock, sleeps, make):
    breaker, records = CircuitBreaker(2, clock=clock.now), []
    with serving(cut_body) as port:
        client = make(port, clock, sleeps, breaker, records)
        with pytest.raises(E.GatewayUnreachable):
            call(client)
        with pytest.raises(E.GatewayUnreachable):  # open: nothing more is sent
            call(client)
    assert breaker.is_open and len(records) == 2


def reset_mid_answer(connection: socket.socket) -> None:
    """Send the headers and part of the body, then RST: the answer had begun, the rest never comes."""
    read_request(connection)
    connection.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"a": 1, ')
    time.sleep(0.05)  # the client is reading the body by now
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@pytest.mark.parametrize("make", [item_data, top], ids=["item_data", "top"])
def test_a_connection_broken_mid_answer_says_it_broke_mid_answer(clock, sleeps, make):
    breaker, records = CircuitBreaker(5, clock=clock.now), []
    with serving(reset_mid_answer) as port:
        client = make(port, clock, sleeps, breaker, records)
        with pytest.raises(E.TransportError) as caught:
            call(client)
    error = caught.value
    assert error.cause == "reset" and error.retryable and not isinstance(error, E.NotSent)
    assert "reading the answer: the connection broke mid-answer" in str(error)
    assert breaker.streak == 2


def answer_with(body: bytes):
    """Answer every request with HTTP 200 and ``body``."""

    def handler(connection: socket.socket) -> None:
        read_request(connection)
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        connection.sendall(head.encode() + b"Connection: close\r\n\r\n" + body)

    return handler


@pytest.mark.parametrize(
    ("make", "body", "error", "outcome", "request_id"),
    [
        (item_data, b"<html>busy</html>", E.BadResponseError, "bad_response", ""),
        (top, b"<html>busy</html>", E.BadResponseError, "bad_response", ""),
        (item_data, b'{"error_code": "4003", "request_id": "r9"}', E.ApiError, "uncharged:4003", "r9"),
        (item_data, b'{"error_code": "2000", "request_id": "r8"}', E.ItemNotFound, "error:2000", "r8"),
        (item_data, b'{"item": {"num_iid": "1"}, "error_code": "0000", "request_id": "r7"}', None, "ok", "r7"),
        (top, b'{"error_response": {"code": 41, "msg": "Invalid", "request_id": "r6"}}', E.ApiError, "error:41", "r6"),
        (top, b'{"item_video_response": {"request_id": "r5"}}', None, "ok", "r5"),
    ],
    ids=["item_data_html", "top_html", "item_data_4003", "item_data_2000", "item_data_ok", "top_41", "top_ok"],
)
def test_every_attempt_is_recorded_with_its_outcome(clock, sleeps, make, body, error, outcome, request_id):
    breaker, records = CircuitBreaker(5, clock=clock.now), []
    with serving(answer_with(body)) as port:
        client = make(port, clock, sleeps, breaker, records)
        if error is None:
            call(client)
        else:
            with pytest.raises(error):
                call(client)
    assert [(r.outcome, r.request_id, r.num_iid) for r in records] == [(outcome, request_id, 1)]
    assert records[0].elapsed_s >= 0 and records[0].at == clock.now()
    assert breaker.streak == 0  # an answer, however unhelpful
