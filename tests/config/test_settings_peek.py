"""config/peek.py: the read commands' shortcut gives what the full load gives, or steps aside (None)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from taobao_video.config import names
from taobao_video.config import peek as settings_peek
from taobao_video.config.load import load_settings
from taobao_video.config.models import DatabaseSettings, QuotaSettings
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
        loaded = load_settings(path, env={})
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
    repo_file = Path(__file__).resolve().parents[2] / "settings.toml"
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
    assert found.quota_timezone == "Asia/Shanghai" == QuotaSettings().timezone


def test_both_loads_take_their_names_from_names_py() -> None:
    for name in ("CONFIG_ENV", "OVERRIDE_PREFIX", "DEFAULT_FILE", "secret_places", "sqlite_url_in"):
        assert getattr(settings_peek, name) is getattr(names, name), name
    assert DatabaseSettings.model_fields["url"].default == names.DEFAULT_DATABASE_URL
    assert QuotaSettings.model_fields["timezone"].default == names.DEFAULT_TIMEZONE


# ----------------------------------------------------------------- secrets: the peek steps aside exactly when
# the full load refuses the file, for keys and values generated around the secret rule's edges.

KEY_PARTS = st.tuples(
    st.sampled_from(["", "app", "client", "oauth", "db", "secret"]),
    st.sampled_from(["", "_", "-", "__"]),
    st.sampled_from(["secret", "token", "password", "passwd", "session", "sessionkey", "key", "name", "santa"]),
    st.sampled_from(["", "_file", "_param", "s", "-margin", " "]),
)
KEYS = st.one_of(
    KEY_PARTS.map("".join).map(lambda key: key.upper() if len(key) % 3 == 0 else key),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-TS", min_size=1, max_size=12),
).filter(lambda key: key not in ("url", "timezone", "database", "quota"))  # the two keys the peek reads
SCALARS = st.one_of(
    st.integers(-5, 5),
    st.booleans(),
    st.sampled_from(
        [
            "plain",
            "https://gw.example/router/rest",
            "https://user:pw@gw.example/router/rest",
            "https://user@gw.example/",
            "https://user:@gw.example/",
            "postgresql://u:p@[bad/db",
            "s3://key:secret@bucket/prefix",
        ]
    ),
)
TABLES = st.recursive(
    st.dictionaries(KEYS, SCALARS, max_size=3),
    lambda inner: st.dictionaries(
        KEYS, st.one_of(SCALARS, inner, st.lists(inner, max_size=2), st.lists(SCALARS, max_size=2)), max_size=3
    ),
    max_leaves=8,
)
SECTIONS = st.sampled_from(["taobao", "download", "harvest", "database", "quota", "elsewhere"])


def toml_inline(value: Any) -> str:
    """``value`` as one line of TOML: keys quoted, tables inline (json strings are TOML basic strings)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(key)} = {toml_inline(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_inline(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


@given(placed=st.dictionaries(SECTIONS, TABLES, max_size=3), top=st.dictionaries(KEYS, SCALARS, max_size=2))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_peek_steps_aside_exactly_when_the_full_load_refuses_a_secret_or_a_name(
    tmp_path: Path, placed: dict[str, dict[str, Any]], top: dict[str, Any]
) -> None:
    document: dict[str, Any] = {**top, "database": {"url": "sqlite:///c.db"}, "quota": {"timezone": "UTC"}}
    for section, table in placed.items():
        earlier = document.get(section)
        document[section] = {**(earlier if isinstance(earlier, dict) else {}), **table}
    path = tmp_path / "settings.toml"
    path.write_text("".join(f"{json.dumps(key)} = {toml_inline(value)}\n" for key, value in document.items()))
    try:
        load_settings(path, env={})
        refused = secret = False
    except ConfigError as error:
        secret = "secrets must not be stored in the settings file" in str(error)
        refused = secret or any(why in str(error) for why in ("unknown key", "unknown section", "must be a table"))
    event(f"refused: {refused}")
    assert (peek(path, env={}) is None) == refused, path.read_text()
    assert secret == any(names.secret_places(document))
    assert refused == (secret or any(names.unknown_places(document)))


# ----------------------------------------------------------------- typos: a read command must not pass them


@pytest.mark.parametrize(
    "extra",
    [
        "[quota]\ntimezon = 'UTC'\n",
        "[download]\nworkerz = 4\n",
        "[databse]\nurl = 'sqlite:///c.db'\n",
        "[harvest]\nqps = 2.0\nlease = 5\n",
        "[taobao]\n[[taobao.apps]]\nname = 'a'\ndaily_limt = 5\n",
        "[taobao]\napps = [5]\n",
        "download = 5\n",
    ],
)
def test_a_typo_anywhere_makes_the_peek_step_aside(tmp_path: Path, extra: str) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(extra + "[database]\nurl = 'sqlite:///c.db'\n" if "[database]" not in extra else extra)
    with pytest.raises(ConfigError):
        load_settings(path, env={})
    assert peek(path, env={}) is None


def test_the_peek_knows_the_keys_the_models_know() -> None:
    from taobao_video.config.models import SECTIONS, AppSettings

    assert names.SETTINGS_KEYS == {name: frozenset(model.model_fields) for name, model in SECTIONS.items()}
    assert frozenset(AppSettings.model_fields) == names.APP_KEYS
