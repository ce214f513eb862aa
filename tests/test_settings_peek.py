"""settings_peek: the read commands' shortcut gives what the full load gives, or steps aside (None)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taobao_video.config import peek as settings_peek
from taobao_video.config import settings as full
from taobao_video.config.peek import peek
from taobao_video.errors import ConfigError

URLS = st.sampled_from(
    [
        None,
        "sqlite:///data/catalog.sqlite3",
        "sqlite:///catalog.sqlite3?timeout=5",
        "sqlite:///../elsewhere/c.sqlite3",
        "sqlite:////abs/path/c.sqlite3",
        "sqlite+pysqlite:///rel.db",
        "sqlite:///:memory:",
        "sqlite://",
        "sqlite:///file:x.db?mode=ro&uri=true",
        "postgresql+psycopg://harvest@db.example:5432/catalog",
        "not a url",
        "",
        5,
    ]
)
ZONES = st.sampled_from([None, "Asia/Shanghai", "UTC", "Europe/Berlin", "Mars/Olympus", 8])
FOLDERS = st.sampled_from(["", "sub", "a b/c"])


def toml_value(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def write(folder: Path, url: object, zone: object, extra: str = "") -> Path:
    lines = ["[download]", 'dir = "videos"', "[harvest]", "qps = 2.0"]
    if url is not None:
        lines += ["[database]", f"url = {toml_value(url)}"]
    if zone is not None:
        lines += ["[quota]", f"timezone = {toml_value(zone)}"]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "settings.toml"
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


@given(url=URLS, zone=ZONES, sub=FOLDERS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_peek_agrees_with_the_full_load(tmp_path: Path, url: object, zone: object, sub: str) -> None:
    path = write(tmp_path / sub, url, zone)
    found = peek(path, env={})
    try:
        loaded = full.load_settings(path, env={})
    except ConfigError:
        assert found is None  # the full load's message is what the user must see
        return
    if found is None:
        assert url in (5, "not a url", "") or zone in ("Mars/Olympus", 8)  # plain files are peeked
        return
    assert (found.source, found.base_dir, found.database_url, found.quota_timezone) == (
        loaded.source,
        loaded.base_dir,
        loaded.database.url,
        loaded.quota.timezone,
    )


def test_the_plain_cases_are_peeked(tmp_path: Path) -> None:
    found = peek(write(tmp_path, "sqlite:///data/catalog.sqlite3", "UTC"), env={})
    assert found is not None and found.database_url == f"sqlite:///{tmp_path / 'data' / 'catalog.sqlite3'}"
    assert found.quota_tz.key == "UTC"
    repo_file = Path(__file__).resolve().parents[1] / "settings.toml"
    assert peek(repo_file, env={}) is not None  # the shipped settings file takes the shortcut


@pytest.mark.parametrize(
    ("extra", "env"),
    [
        ("[taobao]\napp_secret = 'x'\n", {}),  # a secret: the full load refuses the file
        ("[taobao]\nsession = 'x'\n", {}),
        ("[taobao]\ngateway_url = 'https://u:pw@gw.example/router/rest'\n", {}),
        ("", {"TAOBAO_VIDEO__DATABASE__URL": "sqlite:///other.db"}),  # overrides: the full rules apply
        ("not toml = = =\n", {}),
    ],
)
def test_peek_steps_aside(tmp_path: Path, extra: str, env: dict[str, str]) -> None:
    path = write(tmp_path, "sqlite:///c.db", "UTC", extra)
    assert peek(path, env=env) is None
    assert peek(tmp_path / "missing.toml", env={}) is None


def test_the_file_is_found_as_the_full_load_finds_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "sqlite:///c.db", None)
    monkeypatch.chdir(tmp_path)
    found = peek(None, env={})
    assert found is not None and found.source == str(tmp_path / "settings.toml")
    other = write(tmp_path / "o", "sqlite:///d.db", None)
    found = peek(None, env={"TAOBAO_VIDEO_CONFIG": str(other)})
    assert found is not None and found.database_url == f"sqlite:///{tmp_path / 'o' / 'd.db'}"
    assert found.quota_timezone == "Asia/Shanghai" == full.QuotaSettings().timezone


def test_the_names_match_settings_py() -> None:
    assert settings_peek.CONFIG_ENV == full.CONFIG_ENV
    assert settings_peek.OVERRIDE_PREFIX == full.OVERRIDE_PREFIX
    assert settings_peek.DEFAULT_FILE == full.DEFAULT_FILE
    assert settings_peek.DEFAULT_DATABASE_URL == full.DatabaseSettings.model_fields["url"].default
    assert settings_peek.DEFAULT_TIMEZONE == full.QuotaSettings.model_fields["timezone"].default
