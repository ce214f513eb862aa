"""End-to-end CLI runs through ``main()``: exit codes, messages, and the auth/lookup commands on the sandbox."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import APP_KEY, CANARY_SECRET
from taobao_video.cli.main import main
from taobao_video.sandbox import AppConfig, Sandbox, SandboxConfig

REPO = Path(__file__).resolve().parents[2]


def run(args: list[str], capsys, monkeypatch, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    for name in ("TAOBAO_APP_KEY", "TAOBAO_APP_SECRET", "TAOBAO_VIDEO_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as done:
        main(args)
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


@pytest.fixture
def live_sandbox():
    config = SandboxConfig(seed=5, apps=(AppConfig(key=APP_KEY, secret=CANARY_SECRET),))
    with Sandbox(config) as sb:
        yield sb


@pytest.fixture
def config(tmp_path: Path, live_sandbox: Sandbox) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(
        "[taobao]\n"
        f'gateway_url = "{live_sandbox.gateway_url}"\n'
        f'oauth_url = "{live_sandbox.oauth_url}"\n'
        'token_file = "state/token.json"\n'
    )
    return path


CREDS = {"TAOBAO_APP_KEY": APP_KEY, "TAOBAO_APP_SECRET": CANARY_SECRET}


def _code(sb: Sandbox) -> str:
    from urllib.parse import parse_qs, urlsplit

    import requests

    url = (
        f"{sb.oauth_url}/authorize?response_type=code&client_id={APP_KEY}&redirect_uri="
        "http%3A%2F%2F127.0.0.1%3A8765%2Fcallback&state=s"
    )
    location = requests.get(url, allow_redirects=False, timeout=10).headers["Location"]
    return parse_qs(urlsplit(location).query)["code"][0]


def test_status_without_token_exits_77(config, capsys, monkeypatch):
    code, out, _ = run(["--config", str(config), "auth", "status"], capsys, monkeypatch, CREDS)
    assert code == 77 and "auth login" in out


def test_login_with_code_then_status_then_lookup(config, live_sandbox, capsys, monkeypatch):
    code, out, err = run(
        ["--config", str(config), "auth", "login", "--code", _code(live_sandbox)], capsys, monkeypatch, CREDS
    )
    assert code == 0, err
    assert "沙箱买家" in out
    token_file = config.parent / "state" / "token.json"
    assert token_file.exists() and oct(token_file.stat().st_mode & 0o777) == "0o600"

    code, out, _ = run(["--config", str(config), "auth", "status", "--json"], capsys, monkeypatch, CREDS)
    status = json.loads(out)
    assert code == 0 and status["authorised"] and status["user_nick"] == "沙箱买家"

    ids = [live_sandbox.catalogue.sample(kind, 1)[0] for kind in ("video", "no_video", "not_found")]
    code, out, err = run(["--config", str(config), "lookup", "--json", *map(str, ids)], capsys, monkeypatch, CREDS)
    assert code == 0, err
    outcomes = [json.loads(line)["outcome"] for line in out.splitlines()]
    assert outcomes == ["video", "no_video", "not_found"]
    assert CANARY_SECRET not in out + err


def test_auth_url_prints_the_authorize_url(config, live_sandbox, capsys, monkeypatch):
    code, out, _err = run(["--config", str(config), "auth", "url", "--state", "abc"], capsys, monkeypatch, CREDS)
    assert code == 0
    assert out.startswith(f"{live_sandbox.oauth_url}/authorize?") and "state=abc" in out


def test_missing_credentials_is_a_configuration_error(config, capsys, monkeypatch):
    code, _, err = run(["--config", str(config), "auth", "url"], capsys, monkeypatch)
    assert code == 78 and "TAOBAO_APP_SECRET" in err


def test_missing_settings_file_exits_78(tmp_path, capsys, monkeypatch):
    code, _, err = run(["--config", str(tmp_path / "nope.toml"), "auth", "status"], capsys, monkeypatch, CREDS)
    assert code == 78 and "nope.toml" in err and "Traceback" not in err


def test_bad_id_is_a_usage_error(config, capsys, monkeypatch):
    code, _, err = run(["--config", str(config), "lookup", "12ab"], capsys, monkeypatch, CREDS)
    assert code == 2 and "12ab" in err


def test_used_code_is_a_clear_oauth_message(config, live_sandbox, capsys, monkeypatch):
    used = _code(live_sandbox)
    run(["--config", str(config), "auth", "login", "--code", used], capsys, monkeypatch, CREDS)
    code, _, err = run(["--config", str(config), "auth", "login", "--code", used], capsys, monkeypatch, CREDS)
    assert code == 77 and "invalid_client" in err and "authorize again" in err


def test_lookup_without_login_exits_77(config, live_sandbox, capsys, monkeypatch):
    num_iid = live_sandbox.catalogue.sample("video", 1)[0]
    code, _, err = run(["--config", str(config), "lookup", str(num_iid)], capsys, monkeypatch, CREDS)
    assert code == 77 and "auth login" in err


def test_help_texts(capsys, monkeypatch):
    for args in (
        ["--help"],
        ["auth", "--help"],
        ["auth", "login", "--help"],
        ["lookup", "--help"],
        ["sandbox", "serve", "--help"],
        ["demo", "--help"],
    ):
        code, out, _ = run(args, capsys, monkeypatch)
        assert code == 0 and "Usage:" in out


def test_python_dash_m_and_version():
    done = subprocess.run(
        [sys.executable, "-m", "taobao_video", "--version"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        env={**os.environ},
    )
    assert done.returncode == 0 and "0.1.0" in done.stdout


def test_demo_json_prints_only_json_on_stdout(tmp_path, capsys, monkeypatch):
    code, out, err = run(["demo", "--ids", "4", "--json", "--dir", str(tmp_path / "d")], capsys, monkeypatch)
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]  # every line parses
    assert events[-1]["event"] == "summary" and "Authorised through the sandbox" in err


def test_demo_refuses_a_folder_that_is_not_its_own(tmp_path, capsys, monkeypatch):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "token.json").write_text('{"access_token": "a real one"}')
    code, _, err = run(["demo", "--ids", "2", "--dir", str(mine)], capsys, monkeypatch)
    assert code == 2 and "not an earlier demo's" in err and "--force" in err
    assert (mine / "token.json").read_text() == '{"access_token": "a real one"}' and not (
        mine / "settings.toml"
    ).exists()
    code, _, err = run(["demo", "--ids", "2", "--dir", str(mine), "--force"], capsys, monkeypatch)
    assert code == 0, err
    code, _, err = run(["demo", "--ids", "2", "--dir", str(mine)], capsys, monkeypatch)
    assert code == 0, "an earlier demo's folder is reused without --force"


@pytest.mark.parametrize(("args", "said"), [(["--ids", "0"], "'--ids'"), (["--ids", "-1"], "'--ids'")])
def test_demo_refuses_ids_it_cannot_show(tmp_path, capsys, monkeypatch, args, said):
    code, _, err = run(["demo", *args, "--dir", str(tmp_path / "d")], capsys, monkeypatch)
    assert code == 2 and said in err and not (tmp_path / "d").exists()


def test_demo_under_a_file_is_one_line(tmp_path, capsys, monkeypatch):
    (tmp_path / "afile").write_text("")
    code, _, err = run(["demo", "--ids", "2", "--dir", str(tmp_path / "afile" / "d")], capsys, monkeypatch)
    assert (
        code == 2
        and err.strip()
        == f"taobao-video: --dir {tmp_path / 'afile' / 'd'}: {tmp_path / 'afile'} is a file, not a folder"
    )


def test_demo_runs_end_to_end(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "demo"
    code, out, err = run(["demo", "--ids", "8", "--dir", str(folder)], capsys, monkeypatch)
    assert code == 0, err
    assert "Authorised through the sandbox's OAuth pages" in out
    downloaded = [line for line in out.splitlines() if "  downloaded  " in line]
    assert downloaded and all((folder / line.split()[-1]).is_file() for line in downloaded)
    assert "Second run: 8 skipped, 0 API calls, 0 bytes downloaded." in out
    assert oct((folder / "token.json").stat().st_mode & 0o777) == "0o600"
    assert "KiB" in out and not re.search(r"\d (MB|kB|KB)\b", out)  # one size formatter, binary units
    table = out[out.index("num_iid       state") :]
    assert re.search(r"\d+\.\d KiB  ", table), table


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["refresh", "--older-than", "1000000"], "'--older-than'"),
        (["catalog", "list", "--min-height", "99999999999999999999"], "'--min-height'"),
        (["catalog", "list", "--limit", "99999999999999999999"], "'--limit'"),
        (["queue", "list", "--offset", "99999999999999999999"], "'--offset'"),
        (["doctor", "--spend", "1", "--id", "99999999999999999999"], "'--id'"),
    ],
)
def test_numbers_too_big_for_the_catalog_are_refused_by_name(tmp_path, capsys, monkeypatch, args, option):
    code, _, err = run(["--config", str(tmp_path / "settings.toml"), *args], capsys, monkeypatch)
    assert code == 2 and option in err and "Traceback" not in err


def test_a_refresh_age_of_a_million_days_is_a_settings_error(tmp_path, capsys, monkeypatch):
    (tmp_path / "settings.toml").write_text("[harvest]\nrefresh_after_days = 1000000\n")
    code, _, err = run(["--config", str(tmp_path / "settings.toml"), "quota", "status"], capsys, monkeypatch)
    assert code == 78 and "refresh_after_days: must be at most 36500" in err
