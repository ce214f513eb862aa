"""Issue 12's situations run as a user runs them (a real process): one line, the documented exit code, and never
a Python traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.catalog import build_known

from taobao_video.store.catalog import Catalog


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    here = tmp_path_factory.mktemp("no-traceback")
    with Catalog.open(f"sqlite:///{here / 'catalog.sqlite3'}") as cat:
        build_known(cat, here)
    (here / "settings.toml").write_text(
        '[taobao]\ntoken_file = "token.json"\n[download]\ndir = "videos"\n[database]\nurl = "sqlite:///catalog.sqlite3"\n'
    )
    (here / "typo.toml").write_text('[database]\nurl = "sqlite:///catalog.sqlite3"\n[quota]\ntimezon = "UTC"\n')
    (here / "token.json").write_text('{"access_token": 5}')
    os.chmod(here / "token.json", 0o600)
    (here / "folder-token.toml").write_text('[taobao]\ntoken_file = "a-folder"\n')
    (here / "a-folder").mkdir(mode=0o755)
    return here


CASES = [
    (["auth", "status"], 77, "taobao-video auth login"),
    (["--config", "{folder}/folder-token.toml", "auth", "status"], 77, "is a folder, not a file"),
    (["harvest", "520813250866"], 77, "taobao-video auth login"),
    (["catalog", "export", "-o", "{folder}/missing/videos.csv"], 1, "does not exist"),
    (["catalog", "export", "-o", "{folder}/videos.xls"], 2, "cannot tell the format"),
    (["catalog", "export", "-o", "/proc/videos.csv"], 1, "cannot write /proc/videos.csv"),
    (["--config", "{folder}/typo.toml", "catalog", "list"], 78, "did you mean timezone"),
    (["queue", "remove", "99999"], 0, "1 not in the queue (99999)"),
]


@pytest.mark.parametrize(("args", "code", "said"), CASES, ids=[" ".join(case[0][:3]) for case in CASES])
def test_no_traceback(folder: Path, args: list[str], code: int, said: str) -> None:
    argv = [part.format(folder=folder) for part in args]
    if "--config" not in argv:
        argv = ["--config", str(folder / "settings.toml"), *argv]
    env = {**os.environ, "TAOBAO_APP_KEY": "12345678", "TAOBAO_APP_SECRET": "s" * 32}
    env.pop("TAOBAO_VIDEO_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "taobao_video", *argv], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == code, (done.stdout, done.stderr)
    assert said in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2, done.stderr
