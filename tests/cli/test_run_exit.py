"""The console script's exit (``cli.main.run``): the exit code of ``main``, atexit handlers run, output flushed,
and no traceback when the reader of the output has gone."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version

import pytest

from taobao_video.cli.main import _exit_code

SCRIPT = (
    "import atexit, sys\n"
    "from taobao_video.cli.main import run\n"
    "atexit.register(lambda: print('atexit ran', flush=True))\n"
    "sys.argv = ['taobao-video', *sys.argv[1:]]\n"
    "run()\n"
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=60)


def test_a_command_exits_with_its_code_after_the_atexit_handlers() -> None:
    done = _run("--version")
    assert done.returncode == 0
    assert done.stdout == f"taobao-video, version {version('taobao-video')}\natexit ran\n"
    bad = _run("no-such-command")
    assert bad.returncode == 2
    assert "No such command 'no-such-command'" in bad.stderr
    assert bad.stdout == "atexit ran\n"


def test_python_m_runs_the_same_entry_point() -> None:
    done = subprocess.run([sys.executable, "-m", "taobao_video", "--version"], capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"taobao-video, version {version('taobao-video')}\n"


def test_a_closed_pipe_ends_quietly() -> None:
    # `taobao-video --help | head -c 1`: the reader is gone before the help is flushed
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        command = [sys.executable, "-m", "taobao_video", "--help"]
        done = subprocess.run(command, stdout=write_end, stderr=subprocess.PIPE)
    finally:
        os.close(write_end)
    assert done.stderr == b"", done.stderr


@pytest.mark.parametrize(("code", "expected"), [(None, 0), (0, 0), (75, 75), (256 + 2, 2), ("a message", 1)])
def test_exit_codes_are_the_interpreters(code: object, expected: int) -> None:
    assert _exit_code(code) == expected
