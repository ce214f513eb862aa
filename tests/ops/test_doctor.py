"""`taobao-video doctor` against the sandbox: every check ok on a good setup, then each broken setup reported by
the right check with the right exit code (bad secret, expired token, skewed clock under faketime, unwritable
folder, a method the app may not call, a CDN host outside the allowlist, a held lock)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers.cli import ENV, run, write_settings
from helpers.receiver import json_receiver

from conftest import APP_KEY, CANARY_SECRET
from taobao_video.errors import LockHeldError
from taobao_video.jobs.lock import RunLock
from taobao_video.ops.doctor import Check, exit_code, fail, ok, warn
from taobao_video.sandbox import AppConfig, Sandbox, SandboxConfig
from taobao_video.top.tokens import Token, TokenStore

ORDER = [
    "settings",
    "credentials",
    "token",
    "clock",
    "gateway",
    "api methods",
    "cdn hosts",
    "download dir",
    "catalog",
    "lock",
    "quota",
    "notify",
]


def doctor(config: Path, capsys, monkeypatch, *args: str) -> tuple[int, dict[str, dict], dict]:
    code, out, err = run(["--config", str(config), "doctor", "--json", *args], capsys, monkeypatch)
    assert "Traceback" not in err and CANARY_SECRET not in out + err
    lines = [json.loads(line) for line in out.splitlines()]
    checks = [line for line in lines if line["event"] == "check"]
    return code, {check["check" if "check" in check else "name"]: check for check in checks}, lines[-1]


def harvested(sb: Sandbox, folder: Path, capsys, monkeypatch, more_toml: str = "") -> Path:
    config = write_settings(folder, sb, more_toml=more_toml)
    code, _, err = run(
        ["--config", str(config), "harvest", *map(str, sb.catalogue.sample("video", 1))], capsys, monkeypatch
    )
    assert code == 0, err
    return config


def test_a_good_setup_is_ok_in_every_check_in_order(live: Sandbox, tmp_path, capsys, monkeypatch):
    with json_receiver() as receiver:
        config = harvested(live, tmp_path, capsys, monkeypatch, f'[notify]\nurls = ["{receiver.url()}"]\n')
        calls_before = live.quota_used(APP_KEY)
        code, checks, verdict = doctor(config, capsys, monkeypatch, "--spend", "2", "--notify-test")
        assert list(checks) == ORDER
        assert {name: check["status"] for name, check in checks.items()} == dict.fromkeys(ORDER, "ok"), checks
        # 13: "api methods" has a line per method (item_video, item.get)
        assert code == 0 and verdict == {"event": "verdict", "exit_code": 0, "ok": 13, "warn": 0, "fail": 0, "skip": 0}
        assert len(receiver.posts) == 1 and receiver.posts[0][1]["title"] == "taobao-video doctor: test message"
    # one signed taobao.time.get and one lookup per API method, all in the ledger like a run's calls
    assert live.quota_used(APP_KEY) - calls_before == 3
    code, out, _ = run(["--config", str(config), "quota", "status", "--json"], capsys, monkeypatch)
    assert json.loads(out)["used"] == live.quota_used(APP_KEY)


def test_without_spend_no_lookup_is_made_and_skipped_checks_say_so(live, tmp_path, capsys, monkeypatch):
    config = harvested(live, tmp_path, capsys, monkeypatch)
    code, checks, _ = doctor(config, capsys, monkeypatch)
    assert code == 0
    assert checks["api methods"]["status"] == "skip" and "--spend" in checks["api methods"]["detail"]
    assert checks["notify"]["status"] == "skip"


def test_a_wrong_secret_fails_credentials_with_78(live, tmp_path, capsys, monkeypatch):
    config = write_settings(tmp_path, live)
    monkeypatch.setitem(ENV, "TAOBAO_APP_SECRET", "not-the-secret")
    code, checks, _ = doctor(config, capsys, monkeypatch)
    assert code == 78
    check = checks["credentials"]
    assert check["status"] == "fail" and "refused the signature" in check["detail"]
    assert "TAOBAO_APP_SECRET" in check["fix"] and "not-the-secret" not in json.dumps(checks)


def test_a_missing_secret_fails_credentials_with_78(live, tmp_path, capsys, monkeypatch):
    config = write_settings(tmp_path, live)
    monkeypatch.setitem(ENV, "TAOBAO_APP_SECRET", "")
    code, checks, _ = doctor(config, capsys, monkeypatch)
    assert code == 78 and checks["credentials"]["status"] == "fail"
    assert "TAOBAO_APP_SECRET" in checks["credentials"]["detail"]


def test_without_an_app_key_the_quota_is_not_read_and_says_why(live, tmp_path, capsys, monkeypatch):
    config = harvested(live, tmp_path, capsys, monkeypatch)  # the catalog exists
    monkeypatch.setitem(ENV, "TAOBAO_APP_KEY", "")
    code, checks, _ = doctor(config, capsys, monkeypatch)
    assert code == 78 and checks["catalog"]["status"] == "ok"
    assert checks["quota"]["status"] == "skip" and "TAOBAO_APP_KEY" in checks["quota"]["detail"]


def test_an_expired_token_fails_the_token_check_with_77(live, tmp_path, capsys, monkeypatch):
    config = write_settings(tmp_path, live)
    past = datetime.now(UTC) - timedelta(hours=1)
    TokenStore(tmp_path / "token.json").save(Token("stale", expires_at=past))
    code, checks, _ = doctor(config, capsys, monkeypatch)
    assert code == 77
    assert checks["token"]["status"] == "fail" and "expired" in checks["token"]["detail"]
    assert checks["token"]["fix"] == "run `taobao-video auth login`"


def test_a_token_near_its_end_is_a_warning(tmp_path, capsys, monkeypatch):
    config = SandboxConfig(seed=9, apps=(AppConfig(key=APP_KEY, secret=CANARY_SECRET),), refresh_ttl_s=86400)
    with Sandbox(config) as near:
        code, checks, _ = doctor(write_settings(tmp_path, near), capsys, monkeypatch)
    assert code == 1
    assert checks["token"]["status"] == "warn" and "refresh token expires in" in checks["token"]["detail"]


def test_an_unwritable_videos_folder_fails_download_dir_with_78(live, tmp_path, capsys, monkeypatch):
    config = write_settings(tmp_path, live)
    blocker = tmp_path / "videos"
    blocker.write_text("a file where the videos folder should be")
    code, checks, _ = doctor(config, capsys, monkeypatch)
    assert code == 78
    assert checks["download dir"]["status"] == "fail" and "is not a folder" in checks["download dir"]["detail"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into any folder; the not-a-folder case covers root")
def test_a_read_only_videos_folder_fails_download_dir(live, tmp_path, capsys, monkeypatch):
    config = write_settings(tmp_path, live)
    (tmp_path / "videos").mkdir(mode=0o500)
    code, checks, _ = doctor(config, capsys, monkeypatch)
    assert code == 78 and "cannot write" in checks["download dir"]["detail"]


@pytest.fixture
def no_item_video() -> Iterator[Sandbox]:
    """An app without permission for taobao.item_video (code 11), as on many real app keys."""
    app = AppConfig(key=APP_KEY, secret=CANARY_SECRET, methods=frozenset({"taobao.item.get"}))
    with Sandbox(SandboxConfig(seed=9, apps=(app,), video_bytes=(40_000, 90_000))) as sb:
        yield sb


def method_lines(config: Path, capsys, monkeypatch, *args: str) -> tuple[int, list[dict]]:
    code, out, _ = run(["--config", str(config), "doctor", "--json", *args], capsys, monkeypatch)
    return code, [line for line in map(json.loads, out.splitlines()) if line.get("name") == "api methods"]


def test_a_method_the_app_may_not_call_is_named_with_what_to_set(no_item_video, tmp_path, capsys, monkeypatch):
    config = harvested(no_item_video, tmp_path, capsys, monkeypatch)  # auto: falls back to item.get
    code, (item_video, item_get) = method_lines(config, capsys, monkeypatch, "--spend", "2")
    assert code == 1  # auto copes, at one call a run: a warning
    assert item_video["status"] == "warn" and "taobao.item_video is not permitted (code 11" in item_video["detail"]
    assert 'set taobao.api_method = "taobao.item.get"' in item_video["fix"]
    assert item_get["status"] == "ok"
    config.write_text(config.read_text().replace("[taobao]\n", '[taobao]\napi_method = "taobao.item_video"\n'))
    code, (only,) = method_lines(config, capsys, monkeypatch, "--spend", "1")
    assert code == 78 and only["status"] == "fail" and 'taobao.api_method = "taobao.item.get"' in only["fix"]


def test_a_cdn_host_outside_the_allowlist_fails_with_78(live, tmp_path, capsys, monkeypatch):
    config = harvested(live, tmp_path, capsys, monkeypatch)
    config.write_text(config.read_text().replace('allowed_hosts = ["127.0.0.1"]', 'allowed_hosts = ["*.alicdn.com"]'))
    code, checks, _ = doctor(config, capsys, monkeypatch, "--spend", "1")
    assert code == 78
    assert checks["cdn hosts"]["status"] == "fail" and '"127.0.0.1"' in checks["cdn hosts"]["fix"]


def test_a_held_lock_is_a_warning(live, tmp_path, capsys, monkeypatch):
    config = harvested(live, tmp_path, capsys, monkeypatch)
    with RunLock(tmp_path / "harvest.lock", purpose="daily"):
        code, checks, _ = doctor(config, capsys, monkeypatch)
    assert code == 1 and checks["lock"]["status"] == "warn" and "daily pid" in checks["lock"]["detail"]


def test_an_unreachable_gateway_fails_with_75(live, tmp_path, capsys, monkeypatch):
    from conftest import free_port_url

    config = write_settings(tmp_path, live)
    config.write_text(config.read_text().replace(live.gateway_url, free_port_url()))
    code, checks, _ = doctor(config, capsys, monkeypatch)
    assert code == 75 and checks["gateway"]["status"] == "fail" and checks["clock"]["status"] == "warn"


def test_bad_settings_are_the_one_failing_line(tmp_path, capsys, monkeypatch):
    (tmp_path / "settings.toml").write_text("[quota]\ndaily_limit = 'many'\n")
    code, checks, _ = doctor(tmp_path / "settings.toml", capsys, monkeypatch)
    assert code == 78 and list(checks) == ["settings"] and checks["settings"]["status"] == "fail"


@pytest.mark.skipif(shutil.which("faketime") is None, reason="faketime is not installed (.ci/run installs it)")
def test_a_skewed_clock_under_faketime_fails_the_clock_check_with_78(live, tmp_path, capsys, monkeypatch):
    config = harvested(live, tmp_path, capsys, monkeypatch)
    env = {**os.environ, **ENV, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    command = [sys.executable, "-m", "taobao_video", "--config", str(config), "doctor", "--json"]
    skewed = subprocess.run(["faketime", "-f", "+20m", *command], capture_output=True, text=True, env=env, timeout=120)
    checks = {line["name"]: line for line in map(json.loads, skewed.stdout.splitlines()) if line["event"] == "check"}
    assert skewed.returncode == 78, skewed.stderr
    assert checks["clock"]["status"] == "fail" and "ahead of the gateway's" in checks["clock"]["detail"]
    assert "NTP" in checks["clock"]["fix"]
    assert checks["credentials"]["status"] == "warn"  # the gateway refused the timestamp, not the secret
    right = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert right.returncode == 0, right.stdout + right.stderr


def test_the_exit_code_is_the_worst_failure_kind() -> None:
    good = ok("a", "fine")
    assert exit_code([good]) == 0
    assert exit_code([good, warn("b", "hm")]) == 1
    assert exit_code([fail("c", "x", "y", 75), fail("d", "x", "y", 77), warn("b", "hm")]) == 77
    assert exit_code([fail("c", "x", "y", 78), fail("d", "x", "y", 77)]) == 78
    assert exit_code([Check("e", "skip", "not run"), good]) == 0


def test_the_text_report_has_one_line_per_check_and_the_fix(live, tmp_path, capsys, monkeypatch):
    config = write_settings(tmp_path, live)
    past = datetime.now(UTC) - timedelta(hours=1)
    TokenStore(tmp_path / "token.json").save(Token("stale", expires_at=past))
    code, out, _ = run(["--config", str(config), "doctor"], capsys, monkeypatch)
    assert code == 77
    token_line = next(line for line in out.splitlines() if line.startswith("FAIL  token"))
    assert "→ run `taobao-video auth login`" in token_line
    assert out.rstrip().endswith("failed: exit 77")
    with pytest.raises(LockHeldError):  # (the lock helper used above really refuses a second holder)
        with RunLock(tmp_path / "x.lock", purpose="a"), RunLock(tmp_path / "x.lock", purpose="b"):
            pass


def test_a_videos_folder_that_cannot_be_made_fails_download_dir_even_for_root(live, tmp_path, capsys, monkeypatch):
    config = write_settings(tmp_path, live)
    config.write_text(config.read_text().replace('dir = "videos"', 'dir = "/proc/taobao-video-videos"'))
    code, checks, _ = doctor(config, capsys, monkeypatch)
    assert code == 78 and checks["download dir"]["status"] == "fail"
    assert "cannot create the folder /proc/taobao-video-videos" in checks["download dir"]["detail"]


def test_a_notify_url_nobody_answers_is_a_warning_without_printing_it(live, tmp_path, capsys, monkeypatch):
    from conftest import free_port_url

    port = free_port_url().split(":")[2].split("/")[0]
    config = harvested(live, tmp_path, capsys, monkeypatch)
    monkeypatch.setitem(ENV, "TAOBAO_VIDEO_NOTIFY_URLS", f"json://127.0.0.1:{port}/secret-path nosuch://x")
    code, out, err = run(["--config", str(config), "doctor", "--json"], capsys, monkeypatch)
    notify = [line for line in map(json.loads, out.splitlines()) if line.get("name") == "notify"]
    assert code == 1 and [line["status"] for line in notify] == ["warn", "warn"]
    assert "URL 1 (json://…)" in notify[0]["detail"] and "does not accept connections" in notify[0]["detail"]
    assert "URL 2 (nosuch://…): not a URL Apprise knows" in notify[1]["detail"]
    assert "secret-path" not in out + err and f":{port}/" not in out + err


SELLER_SHOP = "沙箱买家"  # the nick of the sandbox's default token: the shop that authorised the app


@pytest.fixture
def shop() -> Iterator[Sandbox]:
    """A seller app whose shop owns the first two video items of the sample; the third is another shop's."""
    apps = (AppConfig(key=APP_KEY, secret=CANARY_SECRET),)
    with Sandbox(SandboxConfig(seed=9, apps=apps)) as first:  # the catalogue is a function of the seed
        *own, other = first.catalogue.sample("video", 3)
    shops = {SELLER_SHOP: tuple(own), "隔壁小店": (other,)}
    config = SandboxConfig(seed=9, apps=apps, shops=shops, video_bytes=(40_000, 90_000))
    with Sandbox(config) as sb:
        yield sb


def test_the_seller_provider_is_tried_as_a_harvest_uses_it(shop, tmp_path, capsys, monkeypatch):
    own_harvested, own_new = shop.catalogue.sample("video", 3)[:2]
    other = shop.catalogue.sample("video", 3)[2]
    config = write_settings(tmp_path, shop, more_toml="")
    config.write_text(config.read_text().replace("[taobao]\n", '[taobao]\nprovider = "seller"\n'))
    code, _, err = run(["--config", str(config), "harvest", str(own_harvested)], capsys, monkeypatch)
    assert code == 0, err
    before = shop.quota_used(APP_KEY)
    code, lines = method_lines(config, capsys, monkeypatch, "--spend", "2", "--id", str(own_new))
    assert [line["status"] for line in lines] == ["ok"] and "the seller channel works" in lines[0]["detail"]
    assert shop.quota_used(APP_KEY) - before == 1 + 2  # taobao.time.get, one list call and one video query
    code, lines = method_lines(config, capsys, monkeypatch, "--spend", "1", "--id", str(other))
    assert lines[0]["status"] == "warn" and "not visible to the authorised shop" in lines[0]["detail"]
    assert "one of the shop's own items" in lines[0]["fix"] and code == 1


def test_the_gateway_provider_is_tried_with_one_request(tmp_path, capsys, monkeypatch):
    from taobao_video.sandbox import VendorKey

    key, secret = "vendor-key-1234", "vendor-secret-5678"
    apps, vendor = (AppConfig(key=APP_KEY, secret=CANARY_SECRET),), (VendorKey(key, secret, daily_limit=50),)
    config_ = SandboxConfig(seed=9, apps=apps, vendor_keys=vendor, video_bytes=(40_000, 90_000))
    with Sandbox(config_) as sb:
        config = harvested(sb, tmp_path, capsys, monkeypatch, f'[gateway]\nurl = "{sb.itemdata_url}"\n')
        config.write_text(config.read_text().replace("[taobao]\n", '[taobao]\nprovider = "gateway"\n'))
        monkeypatch.setenv("TAOBAO_GATEWAY_KEY", key)
        monkeypatch.setenv("TAOBAO_GATEWAY_SECRET", secret)
        code, checks, _ = doctor(config, capsys, monkeypatch, "--spend", "1")
        assert {name: check["status"] for name, check in checks.items()} == {
            **dict.fromkeys(ORDER, "ok"),
            "token": "skip",
            "clock": "skip",
            "notify": "skip",
        }, checks
        assert "the item-data gateway works" in checks["api methods"]["detail"] and code == 0
        assert sb.itemdata_url in checks["gateway"]["detail"]
        # a plain GET without the key to see the endpoint answers, then one lookup: the only one charged
        assert (sb.stats()["itemdata"]["requests"], sb.stats()["itemdata"]["charged"]) == (2, 1)
        monkeypatch.delenv("TAOBAO_GATEWAY_KEY")
        code, checks, _ = doctor(config, capsys, monkeypatch)
        assert code == 78 and "TAOBAO_GATEWAY_KEY" in checks["credentials"]["detail"]
        monkeypatch.setenv("TAOBAO_GATEWAY_KEY", key)
        monkeypatch.setenv("TAOBAO_GATEWAY_SECRET", "wrong-secret-000")
        code, lines = method_lines(config, capsys, monkeypatch, "--spend", "1")
        assert code == 78 and lines[0]["status"] == "fail" and "wrong-secret" not in json.dumps(lines)


@pytest.mark.parametrize("key", ["database.url", "harvest.lock_file"])
def test_a_file_where_a_folder_must_be_fails_doctor_and_the_run_says_which_setting(
    key, live, tmp_path, capsys, monkeypatch
):
    in_the_way = tmp_path / "afile"
    in_the_way.write_text("not a folder")
    config = write_settings(tmp_path, live)
    if key == "database.url":
        monkeypatch.setenv("TAOBAO_VIDEO__DATABASE__URL", f"sqlite:///{in_the_way}/catalog.sqlite3")
        check = "catalog"
    else:
        monkeypatch.setenv("TAOBAO_VIDEO__HARVEST__LOCK_FILE", str(in_the_way / "harvest.lock"))
        check = "lock"
    code, checks, _ = doctor(config, capsys, monkeypatch)
    assert code == 78 and checks[check]["status"] == "fail"
    assert f"{in_the_way} is a file, not a folder" in checks[check]["detail"]
    code, _, err = run(["--config", str(config), "harvest", *map(str, live.catalogue.sample("video", 1))], capsys,
                       monkeypatch)  # fmt: skip
    assert code == 78 and err.count("\n") == 1 and key in err and "is a file, not a folder" in err, err
