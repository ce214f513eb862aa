"""`auth status` and `harvest` with a token file that is not a token: one line, `auth login`, exit 77."""

from __future__ import annotations

import json
import os

import pytest
from helpers.cli import run, write_settings

BAD = ["[]", json.dumps({"access_token": 5, "expires_at": "2030-01-01T00:00:00+00:00"}), "{}", "{oops"]


def _spoil(folder, text: str | None) -> str:
    path = folder / "token.json"
    path.unlink()
    if text is None:
        path.mkdir(mode=0o755)
    else:
        path.write_text(text)
        os.chmod(path, 0o600)
    return str(path)


@pytest.mark.parametrize("text", [*BAD, None], ids=["list", "int-token", "empty", "not-json", "folder"])
@pytest.mark.parametrize("command", [["auth", "status"], ["auth", "status", "--json"], ["harvest", "520813250866"]])
def test_a_bad_token_file_is_one_line_and_exit_77(live, tmp_path, capsys, monkeypatch, text, command):
    config = write_settings(tmp_path, live)
    path = _spoil(tmp_path, text)
    code, out, err = run(["--config", str(config), *command], capsys, monkeypatch)
    assert code == 77, (out, err)
    assert "Traceback" not in out + err and "Error:" not in err.replace("taobao-video:", "")
    assert path in out + err and "taobao-video auth login" in out + err
    assert "mode 755" not in out + err


def test_auth_status_json_stays_json_for_a_bad_token_file(live, tmp_path, capsys, monkeypatch):
    config = write_settings(tmp_path, live)
    path = _spoil(tmp_path, "[]")
    code, out, err = run(["--config", str(config), "auth", "status", "--json"], capsys, monkeypatch)
    report = json.loads(out)
    assert code == 77 and report["authorised"] is False and report["token_file"] == path
    assert "taobao-video auth login" in report["error"] and not err
