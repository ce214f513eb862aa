"""With ``taobao.provider = gateway`` the read commands (quota status, metrics, doctor's quota line) read the
gateway key's ledger with the key alone: the ledger is named after the key, the secret is needed only to call."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.cli import run

from taobao_video import wiring
from taobao_video.config.load import settings_from_mapping
from taobao_video.errors import ConfigError
from taobao_video.ops import doctor_local
from taobao_video.store.catalog import Catalog

KEY, SECRET = "CANARY-gwkey-4b9c1a", "CANARY-gwsecret-88d0e3"
URL = "http://127.0.0.1:9/taobao/item_get/"


def settings_with(base: Path, env: dict[str, str], *, url: str = URL):
    mapping = {
        "taobao": {"provider": "gateway"},
        "gateway": {"url": url, "daily_limit": 500},
        "database": {"url": "sqlite:///catalog.sqlite3"},
    }
    return settings_from_mapping(mapping, base_dir=base, source=str(base / "settings.toml"), env=env)


def spend(settings, calls: int) -> None:
    """Calls counted in the gateway key's ledger, as a harvest counts them."""
    with wiring.catalog(settings) as catalog:
        ledger = wiring.gateway_ledger(settings, catalog)
        for _ in range(calls):
            ledger.reserve()


@pytest.mark.parametrize("url", [URL, ""], ids=["url", "no_url"])
def test_the_quota_reads_with_the_key_alone(tmp_path, url):
    spend(settings_with(tmp_path, {"TAOBAO_GATEWAY_KEY": KEY, "TAOBAO_GATEWAY_SECRET": SECRET}), 3)
    settings = settings_with(tmp_path, {"TAOBAO_GATEWAY_KEY": KEY}, url=url)  # no secret
    with Catalog.open(settings.database.url) as catalog:
        statuses = wiring.quota_pool(settings, catalog).statuses()
    assert list(statuses) == ["gateway"]
    assert (statuses["gateway"].used, statuses["gateway"].daily_limit) == (3, 500)
    check = doctor_local.quota(settings)
    assert check.status == "ok" and "gateway 497 of 500 left" in check.detail


def test_reading_the_quota_without_the_key_names_the_variable(tmp_path):
    settings = settings_with(tmp_path, {"TAOBAO_GATEWAY_SECRET": SECRET})
    with Catalog.open(settings.database.url) as catalog, pytest.raises(ConfigError) as caught:
        wiring.quota_pool(settings, catalog)
    assert "TAOBAO_GATEWAY_KEY" in str(caught.value) and "TAOBAO_GATEWAY_SECRET" not in str(caught.value)


def test_calling_still_needs_the_secret(tmp_path):
    settings = settings_with(tmp_path, {"TAOBAO_GATEWAY_KEY": KEY})
    with Catalog.open(settings.database.url) as catalog, pytest.raises(ConfigError) as caught:
        wiring.provider(settings, catalog)
    assert "TAOBAO_GATEWAY_SECRET" in str(caught.value) and KEY not in str(caught.value)


def test_quota_status_runs_without_the_secret(tmp_path, capsys, monkeypatch):
    spend(settings_with(tmp_path, {"TAOBAO_GATEWAY_KEY": KEY, "TAOBAO_GATEWAY_SECRET": SECRET}), 2)
    path = tmp_path / "settings.toml"
    path.write_text(
        '[taobao]\nprovider = "gateway"\n'
        f'[gateway]\nurl = "{URL}"\ndaily_limit = 500\n'
        '[database]\nurl = "sqlite:///catalog.sqlite3"\n'
    )
    monkeypatch.setenv("TAOBAO_GATEWAY_KEY", KEY)
    monkeypatch.delenv("TAOBAO_GATEWAY_SECRET", raising=False)
    code, out, err = run(["--config", str(path), "quota", "status"], capsys, monkeypatch)
    assert code == 0, err
    assert "Used:       2 of 500" in out and KEY not in out + err
