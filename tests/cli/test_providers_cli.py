"""The seller provider from the command line: `auth status` names the shop, a harvest counts not_visible apart in
its summary, `queue stats` shows them, and `demo --provider` prints each provider's calls per id."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from helpers.cli import run, write_settings

from conftest import APP_KEY, CANARY_SECRET
from taobao_video.sandbox import AppConfig, Sandbox, SandboxConfig
from taobao_video.top.tokens import Token, TokenStore

SHOP = "沙箱小店"


@pytest.fixture
def shop():
    probe = Sandbox(SandboxConfig(seed=3)).catalogue
    own, other = probe.sample("video", 4), probe.sample("no_video", 2)
    config = SandboxConfig(
        seed=3,
        apps=(AppConfig(key=APP_KEY, secret=CANARY_SECRET),),
        shops={SHOP: tuple(own)},
        video_bytes=(6_000, 9_000),
    )
    with Sandbox(config) as sb:
        yield sb, own, other


def seller_settings(sb, folder, monkeypatch):
    """A settings file for the sandbox, the provider seller, and the shop's own session in the token file."""
    path = write_settings(folder, sb)
    body = sb.issue_token(app_key=APP_KEY, user_nick=SHOP)
    token = Token.from_response(body, now=datetime.now(UTC), grant="authorization_code")
    TokenStore(folder / "token.json").save(token)
    monkeypatch.setenv("TAOBAO_VIDEO__TAOBAO__PROVIDER", "seller")
    return path


def test_auth_status_harvest_and_queue_stats_with_the_seller_provider(shop, tmp_path, capsys, monkeypatch):
    sb, own, other = shop
    path = write_settings(tmp_path, sb)
    body = sb.issue_token(app_key=APP_KEY, user_nick=SHOP)
    TokenStore(tmp_path / "token.json").save(
        Token.from_response(body, now=datetime.now(UTC), grant="authorization_code")
    )
    monkeypatch.setenv("TAOBAO_VIDEO__TAOBAO__PROVIDER", "seller")
    code, out, _ = run(["--config", str(path), "auth", "status"], capsys, monkeypatch)
    assert code == 0 and f"Shop:          {SHOP}" in out
    code, out, _ = run(["--config", str(path), "auth", "status", "--json"], capsys, monkeypatch)
    assert json.loads(out)["shop_nick"] == SHOP
    code, out, err = run(["--config", str(path), "harvest", "--json", *map(str, own + other)], capsys, monkeypatch)
    summary = json.loads(out.splitlines()[-1])
    assert code == 0, err
    assert (summary["downloaded"], summary["not_visible"], summary["not_found"]) == (4, 2, 0)
    assert summary["api_calls"] == 1 + 4 == sb.stats()["gateway"]["calls"]
    code, out, _ = run(["--config", str(path), "harvest", *map(str, own + other)], capsys, monkeypatch)
    assert "not visible" not in out and "6 skipped" in out  # asked again only after the TTL
    code, out, _ = run(["--config", str(path), "queue", "stats", "--json"], capsys, monkeypatch)
    assert json.loads(out)["not_visible"] == 2


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("seller", "= 0.58 calls per id (6 alibaba.video.query, 1 taobao.items.seller.list.get)"),
        ("gateway", "= 1.00 calls per id (12 requests, 12 charged)"),
    ],
)
def test_demo_prints_each_providers_economy(tmp_path, capsys, monkeypatch, provider, expected):
    code, out, err = run(
        ["demo", "--provider", provider, "--ids", "12", "--dir", str(tmp_path / "demo")], capsys, monkeypatch
    )
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith(f"Provider {provider}:"))
    assert expected in line, line


def test_lookup_resolves_through_the_configured_provider(shop, tmp_path, capsys, monkeypatch):
    sb, own, other = shop
    path = seller_settings(sb, tmp_path, monkeypatch)
    code, out, err = run(["--config", str(path), "lookup", "--json", *map(str, own[:2] + other)], capsys, monkeypatch)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0, err
    assert sorted(line["outcome"] for line in lines) == ["not_visible", "not_visible", "video", "video"]
    assert sb.stats()["gateway"]["by_method"] == {"taobao.items.seller.list.get": 1, "alibaba.video.query": 2}


def test_auth_status_with_the_gateway_provider_asks_for_the_vendor_key_not_a_login(tmp_path, capsys, monkeypatch):
    config = tmp_path / "settings.toml"
    config.write_text('[taobao]\nprovider = "gateway"\n[gateway]\nurl = "http://127.0.0.1:9/taobao/item_get/"\n')
    monkeypatch.delenv("TAOBAO_GATEWAY_KEY", raising=False)
    monkeypatch.delenv("TAOBAO_GATEWAY_SECRET", raising=False)
    code, out, _ = run(["--config", str(config), "auth", "status"], capsys, monkeypatch)
    assert code == 78 and "no Taobao session is needed" in out and "TAOBAO_GATEWAY_KEY" in out and "login" in out
    monkeypatch.setenv("TAOBAO_GATEWAY_KEY", "vendor-key")
    monkeypatch.setenv("TAOBAO_GATEWAY_SECRET", "vendor-secret")
    code, out, _ = run(["--config", str(config), "auth", "status", "--json"], capsys, monkeypatch)
    assert code == 0 and json.loads(out) == {"provider": "gateway", "session_needed": False, "credentials": "set"}
