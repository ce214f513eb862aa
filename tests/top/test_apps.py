"""Several app keys: settings, one quota ledger per app, and daily runs spread over the apps (sandbox on loopback)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from helpers.harvest import opened

from conftest import CANARY_SECRET, Sleeps
from taobao_video import wiring
from taobao_video.cli.main import main
from taobao_video.config.load import settings_from_mapping
from taobao_video.config.models import Settings
from taobao_video.errors import ConfigError
from taobao_video.jobs.daily import DailyReport, run_daily
from taobao_video.sandbox import AppConfig, FakeClock, Sandbox, SandboxConfig
from taobao_video.store.catalog import engine_of
from taobao_video.top.tokens import Token, TokenStore

BEIJING = ZoneInfo("Asia/Shanghai")
KEYS = {"north": "11110001", "south": "22220002"}
ENV = {
    "TAOBAO_APP_KEY_NORTH": KEYS["north"],
    "TAOBAO_APP_SECRET_NORTH": CANARY_SECRET + "-n",
    "TAOBAO_APP_KEY_SOUTH": KEYS["south"],
    "TAOBAO_APP_SECRET_SOUTH": CANARY_SECRET + "-s",
}


# ---- settings ----------------------------------------------------------------------------------------------


def test_apps_take_keys_and_secrets_from_their_own_variables(tmp_path: Path) -> None:
    s = settings_from_mapping(
        {
            "quota": {"daily_limit": 500, "reserve": 5},
            "taobao": {"apps": [{"name": "north"}, {"name": "south", "daily_limit": 9000, "reserve": 0}]},
        },
        base_dir=tmp_path,
        env=ENV,
    )
    north, south = s.apps()
    assert (north.name, north.app_key, north.app_secret) == ("north", KEYS["north"], CANARY_SECRET + "-n")
    assert (north.daily_limit, north.reserve) == (500, 5)  # [quota]'s, inherited
    assert (south.daily_limit, south.reserve) == (9000, 0)
    assert north.token_file == tmp_path / "data" / "token-north.json"
    assert CANARY_SECRET not in repr(north)
    assert s.app("south") == south


def test_reading_the_quota_needs_only_the_keys(tmp_path: Path) -> None:
    s = settings_from_mapping({"taobao": {"apps": [{"name": "north", "app_key": "1"}]}}, base_dir=tmp_path)
    assert [(a.app_key, a.app_secret) for a in s.apps(with_secrets=False)] == [("1", "")]
    with pytest.raises(ConfigError, match="TAOBAO_APP_SECRET_NORTH"):
        s.apps()
    single = settings_from_mapping({}, base_dir=tmp_path, env={"TAOBAO_APP_KEY": "7"})
    assert single.app(with_secret=False).app_key == "7"
    with pytest.raises(ConfigError, match="TAOBAO_APP_KEY"):
        settings_from_mapping({}, base_dir=tmp_path).app(with_secret=False)


def test_the_single_app_is_called_default(tmp_path: Path) -> None:
    s = settings_from_mapping({}, base_dir=tmp_path, env={"TAOBAO_APP_KEY": "1", "TAOBAO_APP_SECRET": "x"})
    (only,) = s.apps()
    assert (only.name, only.app_key, only.token_file) == ("default", "1", tmp_path / "data" / "token.json")
    assert s.app() == only


def test_missing_credentials_name_every_variable(tmp_path: Path) -> None:
    s = settings_from_mapping({"taobao": {"apps": [{"name": "north"}, {"name": "south"}]}}, base_dir=tmp_path)
    with pytest.raises(ConfigError) as caught:
        s.apps()
    for var in ENV:
        assert var in str(caught.value)
    with pytest.raises(ConfigError, match="pick one with --app NAME"):
        s.app()
    with pytest.raises(ConfigError, match=r"no app named 'west'.*north, south"):
        s.app("west")


@pytest.mark.parametrize(
    ("apps", "quota", "message"),
    [
        ([{"name": "a"}, {"name": "a"}], {}, "each app needs its own name; repeated: a"),
        ([{"name": "a", "app_key": "1"}, {"name": "b", "app_key": "1"}], {}, "each app needs its own app_key"),
        ([{"name": "bad name"}], {}, "must be 1-32 letters"),
        ([{"name": "a", "daily_limit": 10, "reserve": 10}], {}, "a: reserve (10) must be less than daily_limit (10)"),
        ([{"name": "a", "daily_limit": 5}], {"reserve": 7}, "a: reserve (7) must be less than daily_limit (5)"),
        ([{"name": "a", "app_secret": "shh"}], {}, "TAOBAO_APP_SECRET_<NAME>"),
        ([{"name": "a", "daily_limit": "5"}], {}, "[taobao] apps[0][daily_limit]: must be an integer"),
        ([{"name": "a", "colour": "red"}], {}, "unknown key"),
    ],
)
def test_bad_app_entries_are_named(tmp_path: Path, apps: list, quota: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({"taobao": {"apps": apps}, "quota": quota}, base_dir=tmp_path, source="s.toml")
    assert message in str(caught.value)
    assert "shh" not in str(caught.value)


# ---- runs over several apps --------------------------------------------------------------------------------


def two_app_sandbox(clock: FakeClock, north: int, south: int) -> Sandbox:
    apps = (
        AppConfig(key=KEYS["north"], secret=ENV["TAOBAO_APP_SECRET_NORTH"], daily_limit=north),
        AppConfig(key=KEYS["south"], secret=ENV["TAOBAO_APP_SECRET_SOUTH"], daily_limit=south),
    )
    return Sandbox(SandboxConfig(seed=11, apps=apps, clock=clock.now, video_bytes=(6_000, 9_000)))


def two_app_settings(sb: Sandbox, base: Path, north: int, south: int) -> Settings:
    mapping = {
        "taobao": {
            "gateway_url": sb.gateway_url,
            "oauth_url": sb.oauth_url,
            "token_file": "token.json",
            "apps": [{"name": "north", "daily_limit": north}, {"name": "south", "daily_limit": south}],
        },
        "download": {"dir": "videos", "allowed_hosts": ["127.0.0.1"], "workers": 4, "timeout_s": 5},
        "harvest": {"qps": 1000, "lock_file": "harvest.lock"},
        "database": {"url": "sqlite:///catalog.sqlite3"},
    }
    settings = settings_from_mapping(mapping, base_dir=base, source=str(base / "settings.toml"), env=ENV)
    for app in settings.apps():  # each app has its own user token
        body = sb.issue_token(app_key=app.app_key)
        token = Token.from_response(body, now=sb.now(), grant="authorization_code")
        TokenStore(app.token_file).save(token)
    return settings


def daily(settings: Settings, clock: FakeClock, **kw: object) -> DailyReport:
    with opened(settings) as catalog:
        job = wiring.harvester(settings, catalog, clock=clock.now, sleep=Sleeps(), **kw)  # type: ignore[arg-type]
        return run_daily(job, **kw)  # type: ignore[arg-type]


def sandbox_calls(sb: Sandbox, app: str) -> dict[str, int]:
    return sb.stats()["quota"].get(KEYS[app], {})


def test_a_daily_run_spreads_the_queue_over_the_apps_and_stops_at_their_sum(clock: FakeClock, tmp_path: Path) -> None:
    with two_app_sandbox(clock, north=10, south=15) as sb:
        settings = two_app_settings(sb, tmp_path, north=10, south=15)
        ids = sb.catalogue.sample("video", 40)
        with opened(settings) as catalog:
            catalog.enqueue(ids, now=clock.now())
        report = daily(settings, clock)
        assert report.harvest.api_calls == 25 and report.harvest.downloaded == 25
        assert report.exit_code == 75 and report.pending == 15
        assert report.calls_per_day == 25 and report.days_left == 1
        assert sandbox_calls(sb, "north") == {"2026-11-22": 10}
        assert sandbox_calls(sb, "south") == {"2026-11-22": 15}
        with opened(settings) as catalog:
            for name, used in (("north", 10), ("south", 15)):
                status = wiring.ledger(settings, catalog, settings.app(name), clock=clock.now).status()
                assert status.used == used and status.remaining == 0
                assert catalog.call_count(app_key=KEYS[name], day="2026-11-22") == used
        # Round robin: while both had calls, they took turns (the first 20 calls alternate).
        with opened(settings) as catalog, engine_of(catalog).connect() as connection:
            order = [row[0] for row in connection.exec_driver_sql("SELECT app_key FROM calls ORDER BY id LIMIT 20")]
        assert order == [KEYS["north"], KEYS["south"]] * 10

        clock.advance(86400)
        report = daily(settings, clock)
        assert report.harvest.api_calls == 15 and report.exit_code == 0 and report.pending == 0
        assert len(set(sb.stats()["quota"][KEYS["north"]]) | set(sb.stats()["quota"][KEYS["south"]])) == 2


def test_a_platform_quota_answer_retires_one_app_and_the_others_go_on(clock: FakeClock, tmp_path: Path) -> None:
    with two_app_sandbox(clock, north=10, south=100) as sb:
        settings = two_app_settings(sb, tmp_path, north=1000, south=1000)  # the ledger believes 1000 each
        sb.set_quota_used(KEYS["north"], 8)  # north spent 8 elsewhere: the platform refuses its 3rd call
        ids = sb.catalogue.sample("video", 30)
        with opened(settings) as catalog:
            catalog.enqueue(ids, now=clock.now())
        report = daily(settings, clock)
        assert report.harvest.downloaded == 30 and report.exit_code == 0
        assert sandbox_calls(sb, "north") == {"2026-11-22": 10}  # 8 elsewhere + 2 accepted
        assert sandbox_calls(sb, "south") == {"2026-11-22": 28}  # its turns and the id north was refused
        assert sb.stats()["gateway"]["calls"] == 31  # and north's refused third call, never retried
        midnight = datetime.combine(
            clock.now().astimezone(BEIJING).date() + timedelta(days=1), datetime.min.time(), BEIJING
        )
        with opened(settings) as catalog:
            north = wiring.ledger(settings, catalog, settings.app("north"), clock=clock.now).status()
        assert north.banned_until == midnight and north.remaining == 0


def test_every_app_spent_stops_the_run_with_the_earliest_reset(clock: FakeClock, tmp_path: Path) -> None:
    with two_app_sandbox(clock, north=3, south=3) as sb:
        settings = two_app_settings(sb, tmp_path, north=3, south=2)
        with opened(settings) as catalog:  # a harvest of 10 ids, more than the 5 calls the apps have together
            report = wiring.harvester(settings, catalog, clock=clock.now, sleep=Sleeps()).run(
                sb.catalogue.sample("video", 10)
            )
        assert report.api_calls == 5 and report.stopped == "quota" and report.exit_code == 75
        assert report.deferred == 5 and sb.stats()["gateway"]["calls"] == 5
        midnight = datetime.combine(
            clock.now().astimezone(BEIJING).date() + timedelta(days=1), datetime.min.time(), BEIJING
        )
        assert report.quota_resets_at == midnight


def test_quota_status_shows_each_app_and_the_sum(tmp_path: Path, capsys, monkeypatch) -> None:
    clock = FakeClock()  # today: the CLI below reads the quota day off the real clock
    with two_app_sandbox(clock, north=10, south=15) as sb:
        settings = two_app_settings(sb, tmp_path, north=10, south=15)
        with opened(settings) as catalog:
            catalog.enqueue(sb.catalogue.sample("video", 4), now=clock.now())
        daily(settings, clock)
        (tmp_path / "settings.toml").write_text(
            """
[taobao]
token_file = "token.json"
[[taobao.apps]]
name = "north"
daily_limit = 10
[[taobao.apps]]
name = "south"
daily_limit = 15
[database]
url = "sqlite:///catalog.sqlite3"
""",
            encoding="utf-8",
        )
        for var, value in ENV.items():
            monkeypatch.setenv(var, value)
        with pytest.raises(SystemExit) as done:
            main(["--config", str(tmp_path / "settings.toml"), "quota", "status", "--json"])
        assert done.value.code == 0
        report = json.loads(capsys.readouterr().out)
        assert set(report["apps"]) == {"north", "south"}
        assert report["daily_limit"] == 25
        assert {name: app["used"] for name, app in report["apps"].items()} == {"north": 2, "south": 2}  # in turns
        assert report["used"] == sum(app["used"] for app in report["apps"].values())
        assert report["remaining"] == sum(app["remaining"] for app in report["apps"].values())

        with pytest.raises(SystemExit) as done:
            main(["--config", str(tmp_path / "settings.toml"), "auth", "status"])
        out = capsys.readouterr().out
        assert done.value.code == 0 and "App:           north" in out and "App:           south" in out
        with pytest.raises(SystemExit) as done:
            main(["--config", str(tmp_path / "settings.toml"), "auth", "logout"])
        assert done.value.code == 78
        assert "pick one with --app NAME" in capsys.readouterr().err
        with pytest.raises(SystemExit) as done:
            main(["--config", str(tmp_path / "settings.toml"), "auth", "logout", "--app", "south"])
        assert done.value.code == 0 and not (tmp_path / "token-south.json").exists()
        assert capsys.readouterr().out.startswith("Deleted ")
        with pytest.raises(SystemExit) as done:
            main(["--config", str(tmp_path / "settings.toml"), "auth", "status", "--json"])
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert done.value.code == 77
        assert {(line["app"], line["authorised"]) for line in lines} == {("north", True), ("south", False)}
