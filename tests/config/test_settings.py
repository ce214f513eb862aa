"""Settings: defaults, the repo template, every validation rule, secrets, environment, paths, fuzzing."""

from __future__ import annotations

import math
import tempfile
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from taobao_video.config.load import load_settings, settings_from_mapping
from taobao_video.config.models import SECTIONS, Settings
from taobao_video.config.problems import known_keys
from taobao_video.errors import EXIT_CONFIG, ConfigError

REPO = Path(__file__).resolve().parents[2]
CANARY = "canary-s3cr3t-value-7f1e"


def write(folder: Path, text: str, name: str = "settings.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Settings:
    return load_settings(write(tmp_path, text), env=env or {})


def config_error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text, env)
    assert info.value.exit_code == EXIT_CONFIG
    return info.value


# ------------------------------------------------------------------------------------------------ defaults


def test_defaults(tmp_path: Path) -> None:
    s = settings_from_mapping({}, base_dir=tmp_path, env={})
    t = s.taobao
    assert t.gateway_url == "https://eco.taobao.com/router/rest"
    assert t.oauth_url == "https://oauth.taobao.com"
    assert t.app_key == "" and t.app_secret is None
    assert (t.sign_method, t.api_method, t.session_param) == ("md5", "auto", "session")
    assert t.oauth_grant == "authorization_code"
    assert t.redirect_uri == "http://127.0.0.1:8765/callback"
    assert t.token_file == tmp_path / "data" / "token.json"
    assert t.token_refresh_margin_s == 300 and t.simplify is False
    assert t.item_video_duration_unit == "ms"
    assert t.item_get_fields == "num_iid,title,nick,pic_url,video,mpic_video"
    assert (t.timeout_s, t.max_retries, t.max_ban_wait_s, t.breaker_failures) == (20.0, 4, 120, 5)
    assert (s.quota.daily_limit, s.quota.reserve, s.quota.timezone) == (1000, 0, "Asia/Shanghai")
    assert s.quota.tz == ZoneInfo("Asia/Shanghai")
    d = s.download
    assert d.dir == tmp_path / "data" / "videos"
    assert (d.workers, d.timeout_s, d.max_bytes) == (8, 30.0, 524_288_000)
    assert d.allowed_hosts == ("*.taobao.com", "*.alicdn.com", "*.tbcdn.cn")
    assert s.database.url == f"sqlite:///{tmp_path}/data/catalog.sqlite3"
    assert s.source == "<settings>" and s.base_dir == tmp_path


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    s = load_text(tmp_path, "")
    assert s.source == str(tmp_path / "settings.toml")
    assert s.base_dir == tmp_path
    assert s.quota.daily_limit == 1000


def test_repo_settings_template_loads_and_matches_the_defaults() -> None:
    s = load_settings(REPO / "settings.toml", env={})
    defaults = settings_from_mapping({}, base_dir=REPO, env={})
    for section in ("taobao", "quota", "download", "harvest", "database"):
        assert getattr(s, section) == getattr(defaults, section), section


def test_every_key_is_in_the_template_and_the_readme() -> None:
    text = (REPO / "settings.toml").read_text(encoding="utf-8")
    template, readme = tomllib.loads(text), (REPO / "README.md").read_text(encoding="utf-8")
    for section in SECTIONS:
        for key in known_keys(section):
            if (section, key) == ("taobao", "apps"):
                assert "# [[taobao.apps]]" in text and "`[[taobao.apps]]`" in readme  # commented out: an example
                continue
            assert key in template.get(section, {}), f"settings.toml lacks [{section}] {key}"
            assert f"| `{section}.{key}` |" in readme, f"README's settings table lacks {section}.{key}"


def test_path_none_uses_env_config_then_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = write(tmp_path / "chosen", "[quota]\ndaily_limit = 7\n", name="other.toml")
    write(tmp_path / "cwd", "[quota]\ndaily_limit = 9\n")
    monkeypatch.chdir(tmp_path / "cwd")
    assert load_settings(env={"TAOBAO_VIDEO_CONFIG": str(chosen)}).quota.daily_limit == 7
    assert load_settings(env={}).quota.daily_limit == 9
    assert load_settings(env={"TAOBAO_VIDEO_CONFIG": ""}).quota.daily_limit == 9


def test_settings_from_mapping_accepts_path_objects(tmp_path: Path) -> None:
    s = settings_from_mapping(
        {"download": {"dir": tmp_path / "v", "allowed_hosts": ("127.0.0.1", "LocalHost")}},
        base_dir=tmp_path,
        source="<demo>",
        env={"TAOBAO_APP_KEY": "12345678", "TAOBAO_APP_SECRET": "sandbox-secret"},
    )
    assert s.download.dir == tmp_path / "v"
    assert s.download.allowed_hosts == ("127.0.0.1", "localhost")
    assert (s.app().app_key, s.app().app_secret) == ("12345678", "sandbox-secret")
    assert s.source == "<demo>"


# ------------------------------------------------------------------------------------------- the file itself


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "settings.toml"
    with pytest.raises(ConfigError) as info:
        load_settings(missing, env={})
    assert str(info.value) == (f"settings file not found: {missing} (pass --config PATH or set TAOBAO_VIDEO_CONFIG)")
    assert info.value.exit_code == 78


def test_missing_default_file_names_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="settings file not found: " + str(tmp_path / "settings.toml")):
        load_settings(env={})


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory, not a file"):
        load_settings(tmp_path, env={})


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(ConfigError, match=f"cannot read settings file {path}: permission denied"):
        load_settings(path, env={})


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_bytes(b'[quota]\ntimezone = "\xff\xfe"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert str(info.value) == f"{path}: not UTF-8 text: invalid byte 0xff on line 2"


def test_utf8_bom_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_bytes("\ufeff[quota]\ndaily_limit = 5\n".encode())
    assert load_settings(path, env={}).quota.daily_limit == 5


def test_invalid_toml_names_line_and_column(tmp_path: Path) -> None:
    error = config_error(tmp_path, "[quota]\ndaily_limit = 5\nreserve 1\n")
    assert str(error).startswith(f"{tmp_path / 'settings.toml'}: invalid TOML: ")
    assert "line 3" in str(error) and "column" in str(error)
    assert error.file == str(tmp_path / "settings.toml")


# ------------------------------------------------------------------------------------------ keys and types


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    error = config_error(tmp_path, "[quota]\ndaily_limt = 5\n")
    assert str(error) == (
        f"{tmp_path / 'settings.toml'}: [quota] daily_limt: unknown key "
        "(known keys: daily_limit, reserve, timezone); did you mean daily_limit?"
    )
    assert error.key == "[quota] daily_limt"


def test_unknown_key_without_close_match(tmp_path: Path) -> None:
    error = config_error(tmp_path, "[download]\nzzzzzz = 1\n")
    assert "unknown key (known keys: dir, workers" in str(error)
    assert "did you mean" not in str(error)


def test_known_keys_do_not_advertise_the_secret(tmp_path: Path) -> None:
    error = config_error(tmp_path, "[taobao]\nap_key = '1'\n")
    assert "app_secret" not in str(error)
    assert "did you mean app_key?" in str(error)


def test_unknown_section(tmp_path: Path) -> None:
    error = config_error(tmp_path, "[quotas]\ndaily_limit = 5\n")
    assert str(error).endswith(
        "[quotas]: unknown section (known sections: database, download, gateway, harvest, metrics, notify, quota, "
        "s3, taobao); "
        "did you mean quota?"
    )


def test_key_outside_any_section(tmp_path: Path) -> None:
    error = config_error(tmp_path, "daily_limit = 5\n[quota]\n")
    assert "daily_limit: unknown key outside any section" in str(error)
    assert "did you mean [quota] daily_limit?" in str(error)


def test_section_that_is_not_a_table(tmp_path: Path) -> None:
    error = config_error(tmp_path, "quota = 5\n")
    assert str(error).endswith("[quota]: must be a table (a [quota] section), got 5")


def test_wrong_type_message(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[quota]\ndaily_limit = "abc"\n')
    assert str(error) == f"{tmp_path / 'settings.toml'}: [quota] daily_limit: must be an integer, got 'abc'"
    assert (error.file, error.key) == (str(tmp_path / "settings.toml"), "[quota] daily_limit")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('[quota]\ndaily_limit = "1000"', "[quota] daily_limit: must be an integer, got '1000'"),
        ("[quota]\ndaily_limit = 10.5", "[quota] daily_limit: must be an integer, got 10.5"),
        ("[quota]\ndaily_limit = true", "[quota] daily_limit: must be an integer, got true"),
        ('[taobao]\nsimplify = "yes"', "[taobao] simplify: must be true or false, got 'yes'"),
        ("[taobao]\nsimplify = 1", "[taobao] simplify: must be true or false, got 1"),
        ('[taobao]\ntimeout_s = "20"', "[taobao] timeout_s: must be a number, got '20'"),
        ("[taobao]\napp_key = 12345", "[taobao] app_key: must be a string, got 12345"),
        ("[download]\ndir = 5", "[download] dir: must be a path, got 5"),
        ('[download]\nallowed_hosts = "*.taobao.com"', "[download] allowed_hosts: must be an array of host"),
        ("[download]\nallowed_hosts = [1]", "[download] allowed_hosts: item 1 must be a host name"),
        ("[database]\nurl = 5", "[database] url: must be a database URL"),
        ("[quota]\ntimezone = 8", "[quota] timezone: must be a string, got 8"),
        ("[quota.sub]\nx = 1", "[quota] sub: unknown key"),
        # values of the right type that are still wrong
        ('[taobao]\nsession_param = "access token"', "[taobao] session_param: must be a request parameter"),
        ('[taobao]\nitem_get_fields = ""', "[taobao] item_get_fields: must be comma-separated field names"),
        ('[taobao]\napp_key = "12 34"', "[taobao] app_key: must not contain spaces"),
        ("[download]\nallowed_hosts = []", "[download] allowed_hosts: must list at least one host"),
        ('[download]\nallowed_hosts = ["a.com", "https://b.com/"]', "item 2 must be a host name"),
        ('[download]\ndir = ""', "[download] dir: must be a path, got ''"),
        ('[taobao]\ntoken_file = " "', "[taobao] token_file: must be a path"),
        ('[database]\nurl = "catalog.sqlite3"', "[database] url: must be a database URL"),
    ],
)
def test_wrong_types_and_bad_values(tmp_path: Path, line: str, expected: str) -> None:
    assert expected in str(config_error(tmp_path, line + "\n"))


@pytest.mark.parametrize(
    ("key", "choices"),
    [
        ("sign_method", "md5 | hmac | hmac-sha256"),
        ("api_method", "taobao.item_video | taobao.item.get | auto"),
        ("oauth_grant", "authorization_code | client_credentials | none"),
        ("item_video_duration_unit", "ms | s"),
    ],
)
def test_enumerations_list_the_choices(tmp_path: Path, key: str, choices: str) -> None:
    error = config_error(tmp_path, f'[taobao]\n{key} = "MD5x"\n')
    assert str(error).endswith(f"[taobao] {key}: must be one of {choices}, got 'MD5x'")


@pytest.mark.parametrize("key", ["sign_method", "api_method", "oauth_grant", "item_video_duration_unit"])
def test_every_enumeration_value_is_accepted(tmp_path: Path, key: str) -> None:
    annotation = type(settings_from_mapping({}, env={}).taobao).model_fields[key].annotation
    for choice in annotation.__args__:  # type: ignore[union-attr]
        s = settings_from_mapping({"taobao": {key: choice}}, base_dir=tmp_path, env={})
        assert getattr(s.taobao, key) == choice


@pytest.mark.parametrize(
    ("section", "key", "value", "problem"),
    [
        ("quota", "daily_limit", "0", "must be at least 1, got 0"),
        ("quota", "reserve", "-1", "must be at least 0, got -1"),
        ("quota", "reserve", "1000", "must be less than daily_limit (1000), got 1000"),
        ("download", "workers", "0", "must be at least 1, got 0"),
        ("download", "workers", "65", "must be at most 64, got 65"),
        ("download", "timeout_s", "0", "must be greater than 0, got 0"),
        ("download", "timeout_s", "-2.5", "must be greater than 0, got -2.5"),
        ("download", "max_bytes", "0", "must be greater than 0, got 0"),
        ("taobao", "timeout_s", "0.0", "must be greater than 0, got 0.0"),
        ("taobao", "timeout_s", "inf", "must be a finite number, got inf"),
        ("taobao", "max_retries", "-1", "must be at least 0, got -1"),
        ("taobao", "max_retries", "21", "must be at most 20, got 21"),
        ("taobao", "max_ban_wait_s", "-1", "must be at least 0, got -1"),
        ("taobao", "breaker_failures", "0", "must be at least 1, got 0"),
        ("taobao", "breaker_failures", "101", "must be at most 100, got 101"),
        ("taobao", "token_refresh_margin_s", "-5", "must be at least 0, got -5"),
        ("taobao", "breaker_failures", "0", "must be at least 1, got 0"),
        ("taobao", "breaker_failures", "101", "must be at most 100, got 101"),
        ("taobao", "breaker_failures", "2.5", "must be an integer, got 2.5"),
    ],
)
def test_bounds(tmp_path: Path, section: str, key: str, value: str, problem: str) -> None:
    error = config_error(tmp_path, f"[{section}]\n{key} = {value}\n")
    assert str(error) == f"{tmp_path / 'settings.toml'}: [{section}] {key}: {problem}"


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("download", "workers", 1),
        ("download", "workers", 64),
        ("taobao", "max_retries", 0),
        ("taobao", "max_retries", 20),
        ("taobao", "breaker_failures", 1),
        ("taobao", "breaker_failures", 100),
        ("quota", "daily_limit", 1),
        ("download", "timeout_s", 0.001),
    ],
)
def test_bounds_edges_are_accepted(tmp_path: Path, section: str, key: str, value: Any) -> None:
    s = settings_from_mapping({section: {key: value}}, base_dir=tmp_path, env={})
    assert getattr(getattr(s, section), key) == value


def test_reserve_just_below_limit(tmp_path: Path) -> None:
    s = load_text(tmp_path, "[quota]\ndaily_limit = 10\nreserve = 9\n")
    assert (s.quota.daily_limit, s.quota.reserve) == (10, 9)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://eco.taobao.com/router/rest",
        "https://",
        "eco.taobao.com/router/rest",
        "not a url",
        "http://a b/",
        "",
    ],
)
@pytest.mark.parametrize("key", ["gateway_url", "oauth_url", "redirect_uri"])
def test_bad_urls(tmp_path: Path, key: str, url: str) -> None:
    error = config_error(tmp_path, f'[taobao]\n{key} = "{url}"\n')
    assert str(error).endswith(f"[taobao] {key}: must be an http(s) URL, got {url!r}")


def test_url_with_bad_port(tmp_path: Path) -> None:
    assert "must be an http(s) URL" in str(config_error(tmp_path, '[taobao]\ngateway_url = "http://h:99999/"\n'))


def test_redirect_uri_fragment(tmp_path: Path) -> None:
    error = config_error(tmp_path, '[taobao]\nredirect_uri = "http://127.0.0.1:8765/callback#x"\n')
    assert "[taobao] redirect_uri: must not have a #fragment" in str(error)


def test_good_urls(tmp_path: Path) -> None:
    s = load_text(
        tmp_path,
        '[taobao]\ngateway_url = "http://127.0.0.1:8080/router/rest"\n'
        'oauth_url = "HTTPS://oauth.example.com"\nredirect_uri = "https://example.com/cb?x=1"\n',
    )
    assert s.taobao.gateway_url == "http://127.0.0.1:8080/router/rest"
    assert s.taobao.redirect_uri == "https://example.com/cb?x=1"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../etc/passwd", "/etc/localtime", "Asia"])
def test_unknown_time_zone(tmp_path: Path, zone: str) -> None:
    error = config_error(tmp_path, f'[quota]\ntimezone = "{zone}"\n')
    assert f"[quota] timezone: unknown time zone {zone!r}" in str(error)


def test_other_time_zone(tmp_path: Path) -> None:
    s = load_text(tmp_path, '[quota]\ntimezone = "UTC"\n')
    assert s.quota.tz == ZoneInfo("UTC")


def test_item_get_fields_normalised(tmp_path: Path) -> None:
    s = load_text(tmp_path, '[taobao]\nitem_get_fields = "num_iid, title ,video"\n')
    assert s.taobao.item_get_fields == "num_iid,title,video"


def test_long_values_are_shortened(tmp_path: Path) -> None:
    error = config_error(tmp_path, f'[quota]\ndaily_limit = "{"x" * 500}"\n')
    assert "..." in str(error) and len(str(error)) < 200 + len(str(tmp_path))


def test_all_problems_reported_together(tmp_path: Path) -> None:
    text = (
        '[quota]\ndaily_limt = 5\ndaily_limit = "abc"\ntimezone = "Nowhere/Land"\n'
        '[taobao]\nsign_method = "sha1"\ngateway_url = "ftp://x"\n'
        "[download]\nworkers = 100\n"
        "[extra]\n"
    )
    error = config_error(tmp_path, text, env={"TAOBAO_VIDEO__DOWNLOAD__MAX_BYTES": "-1"})
    lines = str(error).splitlines()
    assert lines[0] == "8 problems in the settings:"
    body = lines[1:]
    assert len(body) == 8
    file = str(tmp_path / "settings.toml")
    for fragment in (
        f"{file}: [quota] daily_limt: unknown key",
        f"{file}: [quota] daily_limit: must be an integer, got 'abc'",
        f"{file}: [quota] timezone: unknown time zone 'Nowhere/Land'",
        f"{file}: [taobao] sign_method: must be one of md5 | hmac | hmac-sha256, got 'sha1'",
        f"{file}: [taobao] gateway_url: must be an http(s) URL, got 'ftp://x'",
        f"{file}: [download] workers: must be at most 64, got 100",
        f"{file}: [extra]: unknown section",
        "TAOBAO_VIDEO__DOWNLOAD__MAX_BYTES: must be greater than 0, got -1",
    ):
        assert any(fragment in line for line in body), fragment


# -------------------------------------------------------------------------------------------------- secrets


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ('[taobao]\napp_secret = "{c}"', "[taobao] app_secret"),
        ('[taobao]\nAPP_SECRET = "{c}"', "[taobao] APP_SECRET"),
        ('[taobao]\napp-secret = "{c}"', "[taobao] app-secret"),
        ('[quota]\nsecret = "{c}"', "[quota] secret"),
        ('client_secret = "{c}"', "client_secret"),
        ('[taobao]\naccess_token = "{c}"', "[taobao] access_token"),
        ('[download]\nRefresh_Token = "{c}"', "[download] Refresh_Token"),
        ('[database]\npassword = "{c}"', "[database] password"),
        ('[taobao]\ntoken = "{c}"', "[taobao] token"),
        ('[auth]\ntoken = "{c}"', "[auth] token"),
        ('[taobao.oauth]\nclient_secret = "{c}"', "[taobao.oauth] client_secret"),
        ('[[accounts]]\npassword = "{c}"', "[accounts] password"),
    ],
)
def test_secrets_are_refused(tmp_path: Path, text: str, label: str) -> None:
    error = config_error(tmp_path, text.format(c=CANARY) + "\n")
    assert f"{label}: secrets must not be stored in the settings file" in str(error)
    assert CANARY not in str(error)


def test_app_secret_message_is_exact(tmp_path: Path) -> None:
    error = config_error(tmp_path, f'[taobao]\napp_secret = "{CANARY}"\n')
    assert str(error) == (
        f"{tmp_path / 'settings.toml'}: [taobao] app_secret: "
        "secrets must not be stored in the settings file; set TAOBAO_APP_SECRET in the environment instead"
    )


def test_secret_refused_even_when_env_has_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="secrets must not be stored"):
        load_text(tmp_path, f'[taobao]\napp_secret = "{CANARY}"\n', env={"TAOBAO_APP_SECRET": "other"})


def test_password_in_url_is_refused(tmp_path: Path) -> None:
    error = config_error(tmp_path, f'[database]\nurl = "postgresql://harvester:{CANARY}@db/catalog"\n')
    assert "[database] url: holds a password in a URL" in str(error)
    assert "TAOBAO_VIDEO__DATABASE__URL" in str(error)
    assert CANARY not in str(error)


@pytest.mark.parametrize(
    ("toml", "where"),
    [
        (f'[notify]\nurls = ["mailtos://user@gmail.com?pass={CANARY}"]\n', "[notify] urls: holds a password in a URL"),
        (f'[notify]\nurls = ["json://hooks.example/x?+X-Token={CANARY}"]\n', "[notify] urls: holds a password"),
        (f'[gateway]\nparams = {{ api_key = "{CANARY}", cache = "no" }}\n', "[gateway.params] api_key: secrets"),
    ],
)
def test_a_secret_in_a_query_string_or_an_extra_parameter_is_refused(tmp_path: Path, toml: str, where: str) -> None:
    error = config_error(tmp_path, toml)
    assert where in str(error) and CANARY not in str(error)


def test_token_file_and_margin_are_not_secrets(tmp_path: Path) -> None:
    s = load_text(
        tmp_path,
        '[taobao]\ntoken_file = "state/tok.json"\ntoken_refresh_margin_s = 60\nsession_param = "x"\n',
    )
    assert s.taobao.token_file == tmp_path / "state" / "tok.json"
    assert s.taobao.token_refresh_margin_s == 60


def test_secret_in_mapping_is_refused_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"<demo>: \[taobao\] app_secret: secrets must not be stored"):
        settings_from_mapping({"taobao": {"app_secret": CANARY}}, base_dir=tmp_path, source="<demo>", env={})


# ---------------------------------------------------------------------------------------------- environment


def test_env_key_and_secret(tmp_path: Path) -> None:
    s = load_text(
        tmp_path,
        '[taobao]\napp_key = "from-file"\n',
        env={"TAOBAO_APP_KEY": "from-env", "TAOBAO_APP_SECRET": CANARY},
    )
    assert s.taobao.app_key == "from-env"
    assert isinstance(s.taobao.app_secret, SecretStr)
    assert s.taobao.app_secret.get_secret_value() == CANARY
    assert (s.app().app_key, s.app().app_secret) == ("from-env", CANARY)


def test_file_app_key_used_when_env_is_empty(tmp_path: Path) -> None:
    s = load_text(tmp_path, '[taobao]\napp_key = "12345678"\n', env={"TAOBAO_APP_KEY": "", "TAOBAO_APP_SECRET": ""})
    assert s.taobao.app_key == "12345678"
    assert s.taobao.app_secret is None


@pytest.mark.parametrize(
    ("env", "named", "not_named"),
    [
        ({}, ["TAOBAO_APP_KEY", "TAOBAO_APP_SECRET"], []),
        ({"TAOBAO_APP_KEY": "k"}, ["TAOBAO_APP_SECRET"], ["TAOBAO_APP_KEY"]),
        ({"TAOBAO_APP_SECRET": CANARY}, ["TAOBAO_APP_KEY"], ["TAOBAO_APP_SECRET"]),
    ],
)
def test_missing_app_credentials_are_named(
    tmp_path: Path, env: dict[str, str], named: list[str], not_named: list[str]
) -> None:
    s = settings_from_mapping({}, base_dir=tmp_path, env=env)
    with pytest.raises(ConfigError) as info:
        s.app()
    assert info.value.exit_code == 78
    for name in named:
        assert name in str(info.value)
    for name in not_named:
        assert name not in str(info.value)
    assert CANARY not in str(info.value)


def test_generic_overrides_win_over_the_file(tmp_path: Path) -> None:
    s = load_text(
        tmp_path,
        "[quota]\ndaily_limit = 100\n[download]\nworkers = 2\n",
        env={
            "TAOBAO_VIDEO__QUOTA__DAILY_LIMIT": "5000",
            "TAOBAO_VIDEO__DATABASE__URL": "postgresql://db.example/catalog",
            "TAOBAO_VIDEO__TAOBAO__SIMPLIFY": "true",
            "TAOBAO_VIDEO__TAOBAO__TIMEOUT_S": "2.5",
            "TAOBAO_VIDEO__DOWNLOAD__ALLOWED_HOSTS": '["127.0.0.1", "*.example.com"]',
            "TAOBAO_VIDEO__QUOTA__TIMEZONE": "UTC",
            "TAOBAO_VIDEO__TAOBAO__SIGN_METHOD": '"hmac"',
            "TAOBAO_VIDEO_CONFIG": "ignored-here",
        },
    )
    assert s.quota.daily_limit == 5000
    assert s.download.workers == 2
    assert s.database.url == "postgresql://db.example/catalog"
    assert s.taobao.simplify is True and s.taobao.timeout_s == 2.5
    assert s.download.allowed_hosts == ("127.0.0.1", "*.example.com")
    assert s.quota.timezone == "UTC" and s.taobao.sign_method == "hmac"


def test_override_of_text_keys_keeps_the_text(tmp_path: Path) -> None:
    s = settings_from_mapping(
        {},
        base_dir=tmp_path,
        env={"TAOBAO_VIDEO__TAOBAO__APP_KEY": "12345678", "TAOBAO_VIDEO__DOWNLOAD__DIR": "2024"},
    )
    assert s.taobao.app_key == "12345678"
    assert s.download.dir == tmp_path / "2024"


def test_dedicated_app_key_variable_wins(tmp_path: Path) -> None:
    env = {"TAOBAO_VIDEO__TAOBAO__APP_KEY": "generic", "TAOBAO_APP_KEY": "dedicated"}
    assert settings_from_mapping({}, base_dir=tmp_path, env=env).taobao.app_key == "dedicated"


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        (
            "TAOBAO_VIDEO__QUOTA__DAILY_LIMIT",
            "abc",
            "TAOBAO_VIDEO__QUOTA__DAILY_LIMIT: must be an integer, got 'abc'",
        ),
        (
            "TAOBAO_VIDEO__DOWNLOAD__WORKERS",
            "0",
            "TAOBAO_VIDEO__DOWNLOAD__WORKERS: must be at least 1, got 0",
        ),
        (
            "TAOBAO_VIDEO__TAOBAO__SIMPLIFY",
            "yes",
            "TAOBAO_VIDEO__TAOBAO__SIMPLIFY: must be true or false, got 'yes'",
        ),
        (
            "TAOBAO_VIDEO__QUOTA__DAILY_LIMT",
            "5",
            (
                "TAOBAO_VIDEO__QUOTA__DAILY_LIMT: [quota] daily_limt: unknown key "
                "(known keys: daily_limit, reserve, timezone); did you mean daily_limit?"
            ),
        ),
        (
            "TAOBAO_VIDEO__QUOTAS__DAILY_LIMIT",
            "5",
            "TAOBAO_VIDEO__QUOTAS__DAILY_LIMIT: [quotas]: unknown section",
        ),
        ("TAOBAO_VIDEO__QUOTA", "5", "TAOBAO_VIDEO__QUOTA: not a settings override: expected"),
        ("TAOBAO_VIDEO__A__B__C", "5", "TAOBAO_VIDEO__A__B__C: not a settings override"),
        (
            "TAOBAO_VIDEO__TAOBAO__APP_SECRET",
            CANARY,
            (
                "TAOBAO_VIDEO__TAOBAO__APP_SECRET: not a settings override: "
                "the app secret is read from TAOBAO_APP_SECRET only"
            ),
        ),
    ],
)
def test_override_errors_name_the_variable(tmp_path: Path, var: str, value: str, message: str) -> None:
    path = write(tmp_path, "")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={var: value})
    assert str(info.value).startswith(message)
    assert str(path) not in str(info.value)
    assert CANARY not in str(info.value)


# ---------------------------------------------------------------------------------------------------- paths


def test_relative_paths_resolve_against_the_file_not_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "conf"
    path = write(
        conf,
        '[taobao]\ntoken_file = "secrets/../tok.json"\n'
        '[download]\ndir = "videos"\n[database]\nurl = "sqlite:///db/catalog.sqlite3?timeout=5"\n',
    )
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    s = load_settings("../conf/settings.toml", env={})
    assert s.source == str(path) and s.base_dir == conf
    assert s.taobao.token_file == conf / "tok.json"
    assert s.download.dir == conf / "videos"
    assert s.database.url == f"sqlite:///{conf}/db/catalog.sqlite3?timeout=5"
    assert s.database.url.startswith("sqlite:////")


def test_env_relative_paths_resolve_against_the_file_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "conf", "")
    monkeypatch.chdir(tmp_path)
    s = load_settings(path, env={"TAOBAO_VIDEO__DOWNLOAD__DIR": "v", "TAOBAO_VIDEO__DATABASE__URL": "sqlite:///c.db"})
    assert s.download.dir == tmp_path / "conf" / "v"
    assert s.database.url == f"sqlite:///{tmp_path}/conf/c.db"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///:memory:",
        "sqlite://",
        "sqlite:////var/lib/catalog.sqlite3",
        "sqlite+pysqlite:////abs/catalog.sqlite3",
        "postgresql+psycopg://db.example:5432/catalog",
    ],
)
def test_database_urls_left_alone(tmp_path: Path, url: str) -> None:
    assert settings_from_mapping({"database": {"url": url}}, base_dir=tmp_path, env={}).database.url == url


def test_absolute_paths_left_alone(tmp_path: Path) -> None:
    s = settings_from_mapping({"download": {"dir": "/srv/videos"}}, base_dir=tmp_path, env={})
    assert s.download.dir == Path("/srv/videos")


def test_home_folder_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    s = settings_from_mapping({"download": {"dir": "~/videos"}}, base_dir=tmp_path / "conf", env={})
    assert s.download.dir == tmp_path / "home" / "videos"


# ------------------------------------------------------------------------------------ frozen and redaction


def test_frozen(tmp_path: Path) -> None:
    s = settings_from_mapping({}, base_dir=tmp_path, env={})
    with pytest.raises(ValidationError):
        s.quota.daily_limit = 5  # type: ignore[misc]
    with pytest.raises(ValidationError):
        s.taobao = s.taobao  # type: ignore[misc]
    with pytest.raises(ValidationError):
        s.source = "x"  # type: ignore[misc]
    assert hash(s) == hash(settings_from_mapping({}, base_dir=tmp_path, env={}))


def test_repr_hides_the_secret(tmp_path: Path) -> None:
    s = settings_from_mapping({}, base_dir=tmp_path, env={"TAOBAO_APP_SECRET": CANARY})
    for text in (repr(s), str(s), repr(s.taobao), s.model_dump_json(), str(s.model_dump())):
        assert CANARY not in text


def test_repr_hides_a_database_password_from_the_environment(tmp_path: Path) -> None:
    url = f"postgresql://harvester:{CANARY}@db.example/catalog"
    s = settings_from_mapping({}, base_dir=tmp_path, env={"TAOBAO_VIDEO__DATABASE__URL": url})
    assert s.database.url == url
    assert CANARY not in repr(s)
    assert "postgresql://harvester:***@db.example/catalog" in repr(s.database)


def test_invalid_value_of_an_override_is_shown_but_never_the_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"quota": {"daily_limit": 0}}, base_dir=tmp_path, env={"TAOBAO_APP_SECRET": CANARY})
    assert CANARY not in str(info.value)


# ------------------------------------------------------------------------------------------------- fuzzing

KNOWN_NAMES = [
    "taobao", "quota", "download", "database", "gateway_url", "app_key", "app_secret", "sign_method", "token",
    "token_file", "daily_limit", "reserve", "timezone", "dir", "workers", "timeout_s", "max_bytes",
    "allowed_hosts", "url", "redirect_uri", "simplify", "max_retries",
]  # fmt: skip
FRAGMENTS = [
    "[taobao]", "[quota]", "[download]", "[database]", "[[quota]]", "[quota.x]", "daily_limit = ",
    "reserve = ",
    "workers = ", "url = ", "dir = ", "timezone = ", "app_secret = ", "allowed_hosts = ", "simplify = ",
    "1", "-1", "0", "1e400", "nan", "inf", "true", '"yes"', '"Asia/Shanghai"', '"sqlite:///x"', "[1, 2]",
    '["a.com"]', "{a = 1}", "1979-05-27", "'''", '"', "=", "#", "\n", " ", "\\", "\x00", "\ufeff",
]  # fmt: skip

toml_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["md5", "Asia/Shanghai", "http://a.b/", "sqlite:///x", "*.a.com", "~", "~nobody9/x"])
    | st.dates()
    | st.binary(max_size=8)
)
keys = st.sampled_from(KNOWN_NAMES) | st.text(max_size=12)
values = st.recursive(
    toml_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=12,
)
fuzz = hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _only_config_errors(call: Any) -> None:
    try:
        result = call()
    except ConfigError as exc:
        assert str(exc)
    else:
        assert isinstance(result, Settings)
        assert math.isfinite(result.taobao.timeout_s)


@fuzz
@given(st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=10), max_size=30))
def test_fuzz_toml_garbage(parts: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "settings.toml"
        path.write_text("".join(parts), encoding="utf-8", errors="surrogatepass")
        _only_config_errors(lambda: load_settings(path, env={}))


@fuzz
@given(st.binary(max_size=200))
def test_fuzz_raw_bytes(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "settings.toml"
        path.write_bytes(raw)
        _only_config_errors(lambda: load_settings(path, env={}))


@fuzz
@given(st.dictionaries(keys, values, max_size=5) | values)
def test_fuzz_random_mappings(data: Any) -> None:
    _only_config_errors(lambda: settings_from_mapping(data, base_dir="/tmp/fuzz", env={}))


@fuzz
@given(
    st.dictionaries(
        st.sampled_from(KNOWN_NAMES),
        st.dictionaries(st.sampled_from(KNOWN_NAMES), values, max_size=4),
        max_size=4,
    )
)
def test_fuzz_known_sections(data: dict[str, Any]) -> None:
    _only_config_errors(lambda: settings_from_mapping(data, base_dir="/tmp/fuzz", env={}))


@fuzz
@given(
    st.dictionaries(
        st.builds(
            lambda s, k: f"TAOBAO_VIDEO__{s}__{k}".upper(),
            st.sampled_from(KNOWN_NAMES) | st.text(max_size=5),
            st.sampled_from(KNOWN_NAMES) | st.text(max_size=5),
        ),
        st.sampled_from(FRAGMENTS) | st.text(max_size=20),
        max_size=5,
    )
)
def test_fuzz_environment(env: dict[str, str]) -> None:
    _only_config_errors(lambda: settings_from_mapping({}, base_dir="/tmp/fuzz", env=env))


@pytest.mark.parametrize(
    ("var", "named"),
    [
        ("TAOBAO_VIDEO__TAOBAO__APP_SECRET", "TAOBAO_APP_SECRET"),
        ("TAOBAO_VIDEO__GATEWAY__SECRET", "TAOBAO_GATEWAY_KEY and TAOBAO_GATEWAY_SECRET"),
        ("TAOBAO_VIDEO__GATEWAY__KEY", "TAOBAO_GATEWAY_KEY and TAOBAO_GATEWAY_SECRET"),
        ("TAOBAO_VIDEO__S3__SECRET_KEY", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
    ],
)
def test_an_override_for_a_secret_names_the_variable_that_holds_it(tmp_path: Path, var: str, named: str) -> None:
    error = config_error(tmp_path, "", env={var: CANARY})
    assert f"{var}: not a settings override" in str(error) and named in str(error) and CANARY not in str(error)


def test_a_bad_bucket_from_the_environment_is_blamed_on_the_variable(tmp_path: Path) -> None:
    error = config_error(tmp_path, "", env={"TAOBAO_VIDEO__DOWNLOAD__DIR": "s3://Bad_Bucket/x"})
    assert str(error).startswith("TAOBAO_VIDEO__DOWNLOAD__DIR: 's3://Bad_Bucket/x': 'Bad_Bucket' is not a valid")
    error = config_error(tmp_path, '[download]\ndir = "s3://Bad_Bucket/x"\n')
    assert "settings.toml: [download] dir: 's3://Bad_Bucket/x'" in str(error)
