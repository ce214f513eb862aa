"""Helpers for harvest tests: settings pointing at a sandbox, a logged-in token file, a harvester to run."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from conftest import APP_KEY, CANARY_SECRET, Sleeps
from taobao_video import wiring
from taobao_video.config.load import settings_from_mapping
from taobao_video.config.models import Settings
from taobao_video.jobs.report import HarvestReport
from taobao_video.sandbox import FakeClock, Sandbox
from taobao_video.store.catalog import Catalog
from taobao_video.top.tokens import Token, TokenStore

ENV = {"TAOBAO_APP_KEY": APP_KEY, "TAOBAO_APP_SECRET": CANARY_SECRET}


def sandbox_settings(sb: Sandbox, base: Path, **sections: dict[str, Any]) -> Settings:
    mapping: dict[str, dict[str, Any]] = {
        "taobao": {"gateway_url": sb.gateway_url, "oauth_url": sb.oauth_url, "token_file": "token.json"},
        "download": {
            "dir": "videos",
            "allowed_hosts": ["127.0.0.1"],
            "workers": 4,
            "timeout_s": 5,
            "deadline_s": 30,
            "retries": 3,
        },
        "harvest": {"qps": 1000, "lock_file": "harvest.lock"},
        "database": {"url": "sqlite:///catalog.sqlite3"},
    }
    for name, values in sections.items():
        mapping.setdefault(name, {}).update(values)
    return settings_from_mapping(mapping, base_dir=base, source=str(base / "settings.toml"), env=ENV)


def log_in(sb: Sandbox, settings: Settings, clock: FakeClock) -> None:
    body = sb.issue_token(app_key=APP_KEY)
    TokenStore(settings.taobao.token_file).save(Token.from_response(body, now=clock.now(), grant="authorization_code"))


def opened(settings: Settings) -> Catalog:
    """The settings' catalog; a Catalog is its own context manager (closed on leaving ``with``)."""
    return wiring.catalog(settings)


def harvest(settings: Settings, clock: FakeClock, ids: list[int], **kw: Any) -> tuple[HarvestReport, list[dict]]:
    events: list[dict] = []
    with opened(settings) as catalog:
        job = wiring.harvester(settings, catalog, clock=clock.now, sleep=Sleeps(), on_event=events.append, **kw)
        report = job.run(ids)
    return report, events


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def outcomes(events: list[dict]) -> dict[int, str]:
    return {e["num_iid"]: e["outcome"] for e in events if e["event"] == "item"}
