"""The settings snippet `sandbox serve` prints works as it is: a newcomer's first harvest against it succeeds."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from taobao_video.cli.main import main
from taobao_video.sandbox.products import Catalogue

SERVE = [sys.executable, "-m", "taobao_video", "sandbox", "serve", "--port", "0", "--seed", "4"]


def _serve_and_read(extra: list[str]) -> tuple[subprocess.Popen[str], list[str]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([*SERVE, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    lines = [process.stdout.readline()]
    while lines[-1] and not lines[-1].startswith("export TAOBAO_APP_SECRET"):
        lines.append(process.stdout.readline())
    return process, lines


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=20)


@pytest.mark.parametrize("extra", [[], ["--no-session"]], ids=["default", "no-session"])
def test_the_printed_snippet_harvests_as_it_is(tmp_path: Path, capsys, monkeypatch, extra: list[str]) -> None:
    process, lines = _serve_and_read(extra)
    try:
        start, end = lines.index("# settings.toml\n"), lines.index("# environment\n")
        (tmp_path / "settings.toml").write_text("".join(lines[start + 1 : end]), encoding="utf-8")
        for line in lines[end + 1 :]:
            match = re.fullmatch(r"export (\w+)=(\S+)\n", line)
            if match:
                monkeypatch.setenv(match[1], match[2])
        monkeypatch.delenv("TAOBAO_VIDEO_CONFIG", raising=False)
        monkeypatch.chdir(tmp_path)
        ids = Catalogue(4, (65536, 524288)).sample("video", 2)
        with pytest.raises(SystemExit) as done:
            main(["harvest", *map(str, ids)])
        out, err = capsys.readouterr()
        assert done.value.code == 0, (out, err)
        assert out.count(" downloaded ") == 2 and "host_not_allowed" not in out + err
        assert sorted(p.name for p in (tmp_path / "data" / "videos").iterdir()) == sorted(f"{i}.mp4" for i in ids)
    finally:
        _stop(process)


def test_without_client_credentials_the_snippet_says_to_log_in() -> None:
    process, lines = _serve_and_read(["--no-client-credentials"])
    try:
        assert process.stdout is not None
        text = "".join(lines) + process.stdout.readline()
        assert 'oauth_grant = "authorization_code"' in text and "taobao-video auth login" in text
        assert 'allowed_hosts = ["127.0.0.1"]' in text
    finally:
        _stop(process)
