"""Ctrl-C and SIGTERM on a real `harvest` process whose downloads are stalled by the CDN: the first signal ends the
run within 2 seconds (transfers cut off, `.part` files parked, the summary written, exit 75), a second one exits 130
at once, and a rerun resumes the parked files without a call for the ids already resolved."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import ENV, write_settings
from helpers.worker_procs import REPO

from conftest import APP_KEY, CANARY_SECRET
from taobao_video.sandbox import AppConfig, Sandbox, SandboxConfig
from taobao_video.sandbox.faults import Fault

pytestmark = pytest.mark.timeout(120)

STOP_WITHIN_S = 2.0
STARTED: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def no_child_left() -> Iterator[None]:
    """A failed test must not leave its child running against a stalled sandbox."""
    yield
    while STARTED:
        child = STARTED.pop()
        if child.poll() is None:
            child.kill()
            child.wait(10)


@pytest.fixture
def stalling() -> Iterator[Sandbox]:
    """Videos of 2-3 MB whose bodies stop after their first MiB for two minutes."""
    config = SandboxConfig(
        seed=9,
        apps=(AppConfig(key=APP_KEY, secret=CANARY_SECRET),),
        video_bytes=(2_000_000, 3_000_000),
        faults=(Fault("stall", "cdn", seconds=120),),
    )
    with Sandbox(config) as sb:
        yield sb


# The CLI in a child whose transfers cannot be cut off (as a stuck TLS read or a hung file system could be): the
# first Ctrl-C then cannot end the run promptly, which is what a second one is for.
UNSTOPPABLE = (
    "from taobao_video.fetch.downloader import Downloader; Downloader.abort = lambda self: None; "
    "from taobao_video.cli.main import main; main()"
)


def start_harvest(config: Path, ids: list[int], out: Path, *, cli: str = "") -> subprocess.Popen[bytes]:
    """`harvest --json IDS` as a child process, its stdout to ``out`` and stderr beside it; ``cli``: the code to
    run instead of ``python -m taobao_video``."""
    env = {**os.environ, **ENV, "PYTHONPATH": str(REPO)}
    env.pop("TAOBAO_VIDEO_CONFIG", None)
    program = ["-c", cli] if cli else ["-m", "taobao_video"]
    with out.open("wb") as stdout, out.with_suffix(".err").open("wb") as stderr:
        args = [sys.executable, *program, "--config", str(config), "harvest", "--json", *map(str, ids)]
        child = subprocess.Popen(args, env=env, stdout=stdout, stderr=stderr)
    STARTED.append(child)
    return child


def parts(folder: Path) -> dict[str, int]:
    videos = folder / "videos"
    found = videos.glob("*.part") if videos.is_dir() else []
    return {p.name: p.stat().st_size for p in found}


def wait_for_stalled_downloads(folder: Path, process: subprocess.Popen[bytes], count: int) -> None:
    """Until ``count`` downloads are well into their first MiB (where the CDN stalls them)."""
    deadline = time.monotonic() + 30
    while sum(size >= 2**19 for size in parts(folder).values()) < count:
        assert process.poll() is None, "the run ended before its downloads stalled"
        assert time.monotonic() < deadline, f"the downloads never got going: {parts(folder)}"
        time.sleep(0.05)


def ended_within(process: subprocess.Popen[bytes], since: float) -> float:
    process.wait(timeout=60)
    return time.monotonic() - since


def summary(out: Path) -> dict[str, Any]:
    lines = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    assert lines and lines[-1]["event"] == "summary", out.with_suffix(".err").read_text()
    return lines[-1]


def pending_ids(folder: Path) -> int:
    db = sqlite3.connect(folder / "catalog.sqlite3")
    try:
        return int(db.execute("SELECT count(*) FROM items WHERE state = 'pending'").fetchone()[0])
    finally:
        db.close()


def rerun_resumes(sb: Sandbox, config: Path, ids: list[int], folder: Path, parked: dict[str, int]) -> None:
    """With the CDN healthy again, a rerun finishes every id, asks only about the ids never looked up, and resumes
    the parked files instead of fetching them again."""
    sb.clear_faults()
    sb.reset_stats()
    not_asked = pending_ids(folder)
    out = folder / "rerun.jsonl"
    process = start_harvest(config, ids, out)
    assert process.wait(timeout=90) == 0, out.with_suffix(".err").read_text()
    done = summary(out)
    assert done["downloaded"] == len(ids) and done["deferred"] == 0
    assert done["api_calls"] == not_asked == sb.stats()["gateway"]["calls"]
    total = sum(sb.video(num_iid).size for num_iid in ids)
    assert sb.stats()["cdn"]["bytes_sent"] <= total - sum(parked.values())  # the parked bytes were not sent again
    assert parts(folder) == {} and not list((folder / "videos").glob("*.tmp"))


def test_the_first_ctrl_c_ends_a_stalled_run_within_2_seconds(stalling, tmp_path):
    ids = stalling.catalogue.sample("video", 10)
    config = write_settings(tmp_path, stalling)
    out = tmp_path / "run.jsonl"
    process = start_harvest(config, ids, out)
    wait_for_stalled_downloads(tmp_path, process, 4)
    signalled = time.monotonic()
    process.send_signal(signal.SIGINT)
    took = ended_within(process, signalled)
    err = out.with_suffix(".err").read_text()

    assert process.returncode == 75, err
    assert took < STOP_WITHIN_S, f"the run took {took:.1f} s to stop"
    done = summary(out)
    parked = parts(tmp_path)
    assert done["stopped"] == "signal" and done["deferred"] == len(ids) - done["downloaded"]
    assert done["partial_bytes"] >= 4 * 2**19 and done["bytes"] >= done["partial_bytes"]
    assert len(parked) >= 4 and all(size >= 2**19 for size in parked.values())
    assert "retrying" not in err and "Traceback" not in err
    rerun_resumes(stalling, config, ids, tmp_path, parked)


def test_sigterm_stops_the_same_way(stalling, tmp_path):
    ids = stalling.catalogue.sample("video", 6)
    config = write_settings(tmp_path, stalling)
    out = tmp_path / "run.jsonl"
    process = start_harvest(config, ids, out)
    wait_for_stalled_downloads(tmp_path, process, 2)
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    took = ended_within(process, signalled)
    assert process.returncode == 75 and took < STOP_WITHIN_S, (took, out.with_suffix(".err").read_text())
    assert summary(out)["partial_bytes"] >= 2 * 2**19


def test_a_second_ctrl_c_exits_130_at_once_and_loses_nothing(stalling, tmp_path):
    ids = stalling.catalogue.sample("video", 10)
    config = write_settings(tmp_path, stalling)
    out = tmp_path / "run.jsonl"
    process = start_harvest(config, ids, out, cli=UNSTOPPABLE)
    wait_for_stalled_downloads(tmp_path, process, 4)
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert process.poll() is None, "the first Ctrl-C should not have ended this run"
    signalled = time.monotonic()
    process.send_signal(signal.SIGINT)
    took = ended_within(process, signalled)
    err = out.with_suffix(".err").read_text()

    assert process.returncode == 130, err
    assert took < STOP_WITHIN_S, f"the run took {took:.1f} s to exit"
    assert "Traceback" not in err
    parked = parts(tmp_path)
    assert len(parked) >= 4
    rerun_resumes(stalling, config, ids, tmp_path, parked)


def test_a_ctrl_c_while_the_gateway_stalls_ends_the_run_within_2_seconds(tmp_path):
    config = SandboxConfig(
        seed=9, apps=(AppConfig(key=APP_KEY, secret=CANARY_SECRET),), faults=(Fault("stall", "gateway", seconds=120),)
    )
    with Sandbox(config) as sb:
        ids = sb.catalogue.sample("video", 5)
        settings = write_settings(tmp_path, sb)
        out = tmp_path / "run.jsonl"
        process = start_harvest(settings, ids, out)
        deadline = time.monotonic() + 30
        while sb.stats()["gateway"]["calls"] < 1:  # the first lookup is sent, and its answer never comes
            assert process.poll() is None and time.monotonic() < deadline, out.with_suffix(".err").read_text()
            time.sleep(0.05)
        time.sleep(0.3)
        signalled = time.monotonic()
        process.send_signal(signal.SIGINT)
        took = ended_within(process, signalled)
        err = out.with_suffix(".err").read_text()
        assert process.returncode == 75 and took < STOP_WITHIN_S, (took, err)
        done = summary(out)
        assert done["stopped"] == "signal" and done["deferred"] == len(ids) and "Traceback" not in err

        sb.clear_faults()
        rerun = tmp_path / "rerun.jsonl"
        assert start_harvest(settings, ids, rerun).wait(timeout=60) == 0, rerun.with_suffix(".err").read_text()
        assert summary(rerun)["downloaded"] == len(ids)


def test_a_ctrl_c_stops_lookup_within_2_seconds_with_75_keeping_what_was_found(tmp_path):
    apps = (AppConfig(key=APP_KEY, secret=CANARY_SECRET),)
    with Sandbox(SandboxConfig(seed=9, apps=apps)) as probe:  # the catalogue is the seed's: pick the ids first
        ids = probe.catalogue.sample("video", 6)
    stall = Fault("stall", "gateway", num_iid=ids[1], seconds=120)  # the first is answered, the second never
    with Sandbox(SandboxConfig(seed=9, apps=apps, faults=(stall,))) as sb:
        settings = write_settings(tmp_path, sb)
        env = {**os.environ, **ENV, "PYTHONPATH": str(REPO)}
        args = [sys.executable, "-m", "taobao_video", "--config", str(settings), "lookup", "--json", *map(str, ids)]
        process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        STARTED.append(process)
        deadline = time.monotonic() + 30
        while sb.stats()["gateway"]["calls"] < 2:  # the second call is in flight, and its answer never comes
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        signalled = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        took = time.monotonic() - signalled
        assert process.returncode == 75 and took < STOP_WITHIN_S and "Traceback" not in err, (took, err)
        found = [json.loads(line) for line in out.splitlines()]
        assert len(found) == 1 and sb.stats()["gateway"]["calls"] == 2  # nothing sent after the stop
        assert f"stopped: {len(ids) - len(found)} of {len(ids)} ids not looked up; what was found is kept" in err
        db = sqlite3.connect(tmp_path / "catalog.sqlite3")
        resolved = db.execute("SELECT COUNT(*) FROM items WHERE state = 'resolved'").fetchone()[0]
        db.close()
        assert resolved == len(found)  # kept: the next harvest downloads them without asking again
