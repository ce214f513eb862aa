"""`taobao-video harvest` through main(): JSON events, exit codes, bad input, the lock, and SIGKILL at random."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.cli import ENV, run, write_settings

from conftest import APP_KEY, CANARY_SECRET
from taobao_video.jobs.lock import RunLock
from taobao_video.sandbox import AppConfig, Sandbox, SandboxConfig

REPO = Path(__file__).resolve().parents[2]


def test_json_events_and_summary(live, tmp_path, capsys, monkeypatch):
    config = write_settings(tmp_path, live)
    ids = live.catalogue.sample_mixed(10)
    code, out, err = run(["--config", str(config), "harvest", "--json", *map(str, ids)], capsys, monkeypatch)
    events = [json.loads(line) for line in out.splitlines()]
    summary = events[-1]
    assert summary["event"] == "summary"
    for key in (
        "downloaded",
        "skipped",
        "no_video",
        "not_found",
        "failed",
        "deferred",
        "api_calls",
        "quota_remaining",
        "bytes",
        "seconds",
    ):
        assert key in summary
    assert summary["api_calls"] == 10 and summary["quota_remaining"] == 990
    assert code == 0, err
    assert sum(1 for e in events if e["event"] == "item") == 10


def test_plain_output_is_one_line_per_item(live, tmp_path, capsys, monkeypatch):
    config = write_settings(tmp_path, live)
    ids = live.catalogue.sample("video", 3) + live.catalogue.sample("no_video", 1)
    code, out, _ = run(["--config", str(config), "harvest", *map(str, ids)], capsys, monkeypatch)
    lines = out.splitlines()
    assert code == 0
    assert sum(1 for line in lines if " downloaded " in line) == 3
    assert sum(1 for line in lines if line.endswith("no_video") or " no_video" in line) == 1
    assert "Done in" in out


def test_stdin_and_urls(live, tmp_path, capsys, monkeypatch):
    config = write_settings(tmp_path, live)
    num_iid = live.catalogue.sample("video", 1)[0]
    text = f"https://item.taobao.com/item.htm?spm=x&id={num_iid}&ns=1\n{num_iid}\n"
    code, out, _ = run(["--config", str(config), "harvest", "--json", "-"], capsys, monkeypatch, stdin=text)
    assert code == 0 and json.loads(out.splitlines()[-1])["downloaded"] == 1


def test_no_ids_at_all_is_usage(tmp_path, capsys, monkeypatch):
    code, _, err = run(["harvest"], capsys, monkeypatch)
    assert code == 2 and "give ids" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "no valid ids"), (b"\x00\xff\xfe garbage \x80\n", "not text"), (b"-5\n" + b"9" * 30 + b"\n", "too long")],
)
def test_bad_files_exit_2_with_line_numbers(live, tmp_path, capsys, monkeypatch, content, message):
    config = write_settings(tmp_path, live)
    ids_file = tmp_path / "ids.txt"
    ids_file.write_bytes(content)
    code, _, err = run(["--config", str(config), "harvest", "--file", str(ids_file)], capsys, monkeypatch)
    assert code == 2 and message in err and "Traceback" not in err
    if content:
        assert f"{ids_file}:1:" in err


def test_good_lines_are_done_despite_bad_ones(live, tmp_path, capsys, monkeypatch):
    config = write_settings(tmp_path, live)
    good = live.catalogue.sample("video", 2)
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(f"{good[0]}\nbanana\n{'7' * 1_000_000}\n商品\n{good[1]}\n", encoding="utf-8")
    code, out, err = run(["--config", str(config), "harvest", "--json", "--file", str(ids_file)], capsys, monkeypatch)
    assert code == 2
    assert f"{ids_file}:2:" in err and f"{ids_file}:3: line too long" in err and f"{ids_file}:4:" in err
    summary = json.loads(out.splitlines()[-1])
    assert summary["downloaded"] == 2 and summary["bad_lines"] == 3


def test_a_directory_instead_of_a_file(tmp_path, capsys, monkeypatch):
    code, _, err = run(["harvest", "--file", str(tmp_path)], capsys, monkeypatch)
    assert code == 2 and "is a directory" in err


def test_lock_held_exits_75_naming_the_holder(live, tmp_path, capsys, monkeypatch):
    config = write_settings(tmp_path, live)
    with RunLock(tmp_path / "harvest.lock", purpose="harvest"):
        code, _, err = run(["--config", str(config), "harvest", "123456789012"], capsys, monkeypatch)
    assert code == 75 and f"pid {os.getpid()}" in err


def test_quota_stop_exits_75_and_says_when(live, tmp_path, capsys, monkeypatch):
    config = write_settings(tmp_path, live, more_toml="[quota]\ndaily_limit = 3\n")
    ids = live.catalogue.sample_mixed(5)
    code, out, _ = run(["--config", str(config), "harvest", *map(str, ids)], capsys, monkeypatch)
    assert code == 75
    assert "quota is spent; 2 ids wait for the reset at" in out and "Beijing" in out


def test_db_upgrade(live, tmp_path, capsys, monkeypatch):
    config = write_settings(tmp_path, live)
    code, out, _ = run(["--config", str(config), "db", "upgrade"], capsys, monkeypatch)
    assert code == 0 and "revision" in out
    assert (tmp_path / "catalog.sqlite3").exists()


# -- SIGKILL at random moments ----------------------------------------------------------------------------------


def _state(folder: Path) -> tuple[list[tuple], list[tuple], list[str]]:
    db = sqlite3.connect(folder / "catalog.sqlite3")
    videos = db.execute(
        "SELECT num_iid, video_path, duration, size_bytes, sha256, video_url, width, height, "
        "api_method FROM videos ORDER BY num_iid"
    ).fetchall()
    items = db.execute("SELECT num_iid, state FROM items ORDER BY num_iid").fetchall()
    db.close()
    files = sorted(p.name for p in (folder / "videos").iterdir() if not p.name.endswith((".part", ".part.json")))
    return videos, items, files


def _rows_promise_their_files(folder: Path) -> int:
    """Every ``videos`` row's file is there, complete, with the row's sha256 (group commit: a row only after its
    file is durable); returns how many rows there are."""
    db = sqlite3.connect(folder / "catalog.sqlite3")
    rows = db.execute("SELECT num_iid, video_path, size_bytes, sha256 FROM videos").fetchall()
    db.close()
    for num_iid, video_path, size, sha256 in rows:
        data = (folder / video_path).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (size, sha256), f"{num_iid}: the row lies"
    return len(rows)


def _harvest_process(config: Path, ids_file: Path) -> subprocess.Popen:
    env = {**os.environ, **ENV, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "taobao_video", "--config", str(config), "harvest", "--file", str(ids_file)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.timeout(300)
def test_sigkill_at_random_moments_loses_nothing(tmp_path):
    config = SandboxConfig(
        seed=21, apps=(AppConfig(key=APP_KEY, secret=CANARY_SECRET),), video_bytes=(2_000_000, 5_000_000)
    )
    rng = random.Random(1234)
    with Sandbox(config) as sb:
        ids = sb.catalogue.sample_mixed(40)
        ids_file = tmp_path / "ids.txt"
        ids_file.write_text("\n".join(map(str, ids)) + "\n")

        reference = tmp_path / "reference"
        done = _harvest_process(write_settings(reference, sb, qps="8"), ids_file).wait(timeout=120)
        assert done == 0

        crashed = tmp_path / "crashed"
        crashed_config = write_settings(crashed, sb, qps="8")  # paced, so kills land mid-run
        kills, rows = 0, []
        for _ in range(5):
            process = _harvest_process(crashed_config, ids_file)
            time.sleep(rng.uniform(0.8, 2.5))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.wait(timeout=60)
            if (crashed / "catalog.sqlite3").exists():
                rows.append(_rows_promise_their_files(crashed))
        assert rows and rows[-1] > 0, "no batch was committed before the kills: kill later"
        assert kills >= 3, "the runs finished before they could be killed: make the files bigger"
        assert _harvest_process(crashed_config, ids_file).wait(timeout=120) == 0

        ref_videos, ref_items, ref_files = _state(reference)
        videos, items, files = _state(crashed)
        assert [v[:5] for v in videos] == [v[:5] for v in ref_videos]  # signed URLs differ run to run
        assert len(videos) == len({v[0] for v in videos}) > 0
        assert items == ref_items
        assert files == ref_files
        assert _rows_promise_their_files(crashed) == len(videos)
        leftovers = [p.name for p in (crashed / "videos").iterdir() if p.name.endswith((".part", ".part.json"))]
        assert leftovers == []


def test_lookup_is_metered_and_remembered(live, tmp_path, capsys, monkeypatch):
    config = write_settings(tmp_path, live)
    ids = [live.catalogue.sample(kind, 1)[0] for kind in ("video", "no_video", "not_found")]
    code, _, err = run(["--config", str(config), "lookup", *map(str, ids)], capsys, monkeypatch)
    assert code == 0, err
    db = sqlite3.connect(tmp_path / "catalog.sqlite3")
    assert db.execute("SELECT sum(used) FROM quota_days").fetchone()[0] == 3
    assert db.execute("SELECT count(*) FROM calls").fetchone()[0] == 3
    db.close()
    live.reset_stats()
    code, out, _ = run(["--config", str(config), "harvest", "--json", *map(str, ids)], capsys, monkeypatch)
    summary = json.loads(out.splitlines()[-1])
    assert (summary["downloaded"], summary["skipped"], summary["api_calls"]) == (1, 2, 0)
    assert live.stats()["gateway"]["calls"] == 0


def test_quiet_prints_only_the_summary_for_cron(live, tmp_path, capsys, monkeypatch):
    config = write_settings(tmp_path, live)
    ids = live.catalogue.sample_mixed(6)
    code, out, err = run(["--config", str(config), "harvest", "--quiet", *map(str, ids)], capsys, monkeypatch)
    assert code == 0, err
    assert out.startswith("Done in ") and len(out.strip().splitlines()) == 1, out
    assert str(ids[0]) not in out + err and "to look up" not in err, "no plan line, no item lines"
    code, out, _ = run(["--config", str(config), "harvest", "-q", "--json", *map(str, ids)], capsys, monkeypatch)
    assert [json.loads(line)["event"] for line in out.splitlines()][-1] == "summary", "--json stays as it is"
    assert len(out.splitlines()) == 2 + len(ids)
