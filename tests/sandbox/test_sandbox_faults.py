"""Gateway fault injection: what each kind does, whether it is counted, and that plans replay exactly."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from helpers.sandbox import gateway_params, signed

from taobao_video.sandbox import FakeClock, Fault, Sandbox, SandboxConfig


@pytest.fixture
def sb(clock: FakeClock) -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(seed=21, clock=clock.now)) as sandbox:
        yield sandbox


def params(sb: Sandbox, item_id: int, method: str = "taobao.item_video", **extra: str) -> dict[str, str]:
    session = sb.issue_token()["access_token"]
    business = {"num_iid": str(item_id), "fields": "num_iid,title,video", **extra}
    return signed(gateway_params(sb, session, method, **business))


def post(sb: Sandbox, item_id: int, method: str = "taobao.item_video", **extra: str) -> requests.Response:
    return requests.post(sb.gateway_url, data=params(sb, item_id, method, **extra), timeout=30)


@pytest.fixture
def item(sb: Sandbox) -> int:
    return sb.catalogue.sample("video", 1)[0]


@pytest.mark.parametrize("kind", ["http_500", "http_503"])
def test_http_errors_are_not_counted(sb, item, kind):
    sb.set_faults([Fault(kind, times=1)])
    response = post(sb, item)
    assert response.status_code == int(kind[-3:]) and "text/html" in response.headers["Content-Type"]
    assert sb.quota_used("test") == 0
    assert post(sb, item).status_code == 200
    assert sb.quota_used("test") == 1
    assert sb.stats()["gateway"]["by_outcome"] == {f"http:{kind[-3:]}": 1, "ok": 1}


def test_html_200(sb, item):
    sb.set_faults([Fault("html_200")])
    response = post(sb, item)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    assert response.text.lstrip().startswith("<!DOCTYPE html>")
    assert sb.quota_used("test") == 0


@pytest.mark.parametrize(
    ("kind", "code", "sub_code"),
    [
        ("service_unavailable", 10, None),
        ("isp_error", 15, "isp.top-remote-connection-timeout"),
        ("rate_limit", 7, "accesscontrol.limited-by-api-access-count"),
    ],
)
def test_error_faults_are_counted(sb, item, kind, code, sub_code):
    sb.set_faults([Fault(kind, seconds=42)])
    err = post(sb, item).json()["error_response"]
    assert err["code"] == code and err.get("sub_code") == sub_code
    if kind == "rate_limit":
        assert err["sub_msg"] == "This ban will last for 42 more seconds"
    assert sb.quota_used("test") == 1


def test_empty_and_not_json(sb, item):
    sb.set_faults([Fault("empty", times=1), Fault("not_json", times=1)])
    first, second = post(sb, item), post(sb, item)
    assert first.status_code == 200 and first.content == b""
    assert second.status_code == 200
    with pytest.raises(ValueError):
        json.loads(second.text)
    assert sb.quota_used("test") == 2


def test_huge(sb, item):
    sb.set_faults([Fault("huge", times=1)])
    response = requests.post(sb.gateway_url, data=params(sb, item), timeout=30, stream=True)
    assert int(response.headers["Content-Length"]) == 20 * 1024 * 1024
    assert response.raw.read(40).startswith(b'{"item_video_response":{"padding":"')
    response.close()
    assert "item_video_response" in post(sb, item).json()


def test_control_chars(sb, item):
    sb.set_faults([Fault("control_chars")])
    for method in ("taobao.item_video", "taobao.item.get"):
        text = post(sb, item, method).text
        assert "\x01" in text and "\x1f" in text
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)
        body = json.loads(text, strict=False)
        assert body[method[len("taobao.") :].replace(".", "_") + "_response"]["request_id"]
    video = json.loads(post(sb, item, fields="url").text, strict=False)["item_video_response"]["video"]
    assert video["url"].startswith(sb.url) and "\x01" not in video["url"]


def test_code_as_string_only_on_errors(sb, item):
    sb.set_faults([Fault("code_as_string", times=1)])
    assert "item_video_response" in post(sb, item).json()  # a success does not spend it
    err = post(sb, item, num_iid="x").json()["error_response"]
    assert err["code"] == "41"
    assert post(sb, item, num_iid="x").json()["error_response"]["code"] == 41


def test_filters_by_item_and_method(sb):
    first, second = sb.catalogue.sample("video", 2)
    sb.set_faults([Fault("isp_error", num_iid=first, method="taobao.item.get")])
    assert post(sb, first, "taobao.item.get").json()["error_response"]["code"] == 15
    assert "item_get_response" in post(sb, second, "taobao.item.get").json()
    assert "item_video_response" in post(sb, first).json()


def test_times_and_front_faults_before_validation(sb, item):
    sb.set_faults([Fault("http_503", times=2)])
    statuses = [requests.post(sb.gateway_url, data={"app_key": "x"}, timeout=10).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]


def outcomes(clock: FakeClock, seed: int) -> list[str]:
    faults = (Fault("isp_error", rate=0.3), Fault("service_unavailable", rate=0.2))
    with Sandbox(SandboxConfig(seed=seed, clock=clock.now, faults=faults)) as sb:
        ids = sb.catalogue.sample("video", 40)
        results = []
        for num_iid in ids:
            body = post(sb, num_iid).json()
            results.append(str(body["error_response"]["code"]) if "error_response" in body else "ok")
        return results


def test_rate_is_seeded_and_reproducible(clock):
    first = outcomes(clock, seed=5)
    assert first == outcomes(clock, seed=5)
    assert first != outcomes(clock, seed=6)
    assert 0 < first.count("10") and 0 < first.count("15")


def test_set_faults_restarts_the_dice(sb, item):
    plan = [Fault("isp_error", rate=0.5)]
    sb.set_faults(plan)
    first = [("error_response" in post(sb, item).json()) for _ in range(12)]
    sb.set_faults(plan)
    assert first == [("error_response" in post(sb, item).json()) for _ in range(12)]


def test_fault_validation():
    with pytest.raises(ValueError):
        Fault("reset", "gateway")
    with pytest.raises(ValueError):
        Fault("empty", "cdn")
    with pytest.raises(ValueError):
        Fault("http_500", "proxy")
    with pytest.raises(ValueError):
        Fault("http_500", rate=1.5)
    assert Fault.from_dict({"kind": "stall", "target": "cdn", "seconds": 2}).seconds == 2
