"""The download and API sessions read the environment's proxy and CA settings once per origin, with requests' own
answer (net.EnvironmentOnce)."""

from __future__ import annotations

import os
from typing import Any

import pytest
import requests

from taobao_video.fetch import cdn
from taobao_video.top.client import new_http_session

SESSIONS = {"download": lambda: cdn.new_download_session(2), "api": lambda: new_http_session(2)}


@pytest.fixture(autouse=True)
def _no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.lower().endswith("_proxy") or n.endswith("_CA_BUNDLE")]:
        monkeypatch.delenv(name)


def _settings(session: requests.Session, url: str) -> dict[str, Any]:
    return session.merge_environment_settings(url, {}, True, None, None)


@pytest.mark.parametrize("kind", sorted(SESSIONS))
def test_the_settings_are_requests_own_per_origin(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "bypass.invalid")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    ours, plain = SESSIONS[kind](), requests.Session()
    for url in ("http://cdn.invalid/v/1.mp4", "http://bypass.invalid/v/2.mp4", "https://cdn.invalid/v/3.mp4"):
        assert _settings(ours, url) == _settings(plain, url)
    assert _settings(ours, "http://cdn.invalid/x")["proxies"]["http"] == "http://proxy.invalid:3128"
    assert "http" not in _settings(ours, "http://bypass.invalid/x")["proxies"]


@pytest.mark.parametrize("kind", sorted(SESSIONS))
def test_the_environment_is_read_once_per_origin(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    reads: list[str] = []
    real = requests.sessions.get_environ_proxies

    def counting(url: str, no_proxy: Any = None) -> dict[str, str]:
        reads.append(url)
        return real(url, no_proxy=no_proxy)

    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counting)
    session = SESSIONS[kind]()
    for index in range(5):
        _settings(session, f"http://a.invalid/{index}.mp4")
        _settings(session, f"http://b.invalid:8080/{index}.mp4")
    assert len(reads) == 2
    # what a caller changes in the answer is its own: the kept settings stay as read
    _settings(session, "http://a.invalid/1.mp4")["proxies"]["http"] = "http://changed.invalid"
    assert "http" not in _settings(session, "http://a.invalid/2.mp4")["proxies"]


def test_proxies_given_for_one_request_are_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    session = cdn.new_download_session(2)
    given = {"http": "http://given.invalid:1"}
    assert session.merge_environment_settings("http://a.invalid/1", given, True, None, None)["proxies"] == given
    assert "http" not in _settings(session, "http://a.invalid/1")["proxies"]
