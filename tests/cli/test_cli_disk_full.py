"""The videos folder as users break it: a real 3 MiB file system that fills up mid-run (exit 75 "disk full: N MB
free on …", lookups stopped, no `.tmp` debris, a rerun after freeing space resumes without a call for resolved
ids), and a folder that is a file, read-only or short of space, found before any call is spent."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.cli import run, write_settings
from helpers.disk import mount_tmpfs, unmount

from conftest import APP_KEY, CANARY_SECRET
from taobao_video.sandbox import AppConfig, Sandbox, SandboxConfig

# The in-process sandbox's own report of a client that hung up (socketserver prints it): not the command's output.
SANDBOX_NOISE = re.compile(r"-{40}\nException occurred during processing of request.*?\n-{40}\n", re.DOTALL)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 3 MiB file system."""
    where = tmp_path / "small"
    mount_tmpfs(where, "size=3m")
    yield where
    unmount(where)


@pytest.fixture
def big_videos() -> Iterator[Sandbox]:
    """Videos of about 1 MB: three fill the small disk."""
    config = SandboxConfig(
        seed=9, apps=(AppConfig(key=APP_KEY, secret=CANARY_SECRET),), video_bytes=(800_000, 1_100_000)
    )
    with Sandbox(config) as sb:
        yield sb


def settings_with(folder: Path, sb: Sandbox, download: str, **extra: str) -> Path:
    """The CLI tests' settings with ``[download]`` lines added (``dir`` among them replaces the default)."""
    path = write_settings(folder, sb, **extra)
    text = path.read_text()
    if "dir = " in download:
        text = text.replace('dir = "videos"\n', "")
    path.write_text(text.replace("[download]\n", f"[download]\n{download}\n"))
    return path


def videos_and_states(folder: Path) -> tuple[list[tuple], dict[int, str]]:
    db = sqlite3.connect(folder / "catalog.sqlite3")
    try:
        rows = db.execute("SELECT num_iid, video_path, size_bytes FROM videos").fetchall()
        return rows, dict(db.execute("SELECT num_iid, state FROM items").fetchall())
    finally:
        db.close()


@pytest.mark.parametrize("min_free_mb", [0, 0.5], ids=["enospc", "below-min-free"])
def test_a_disk_that_fills_up_stops_the_run_and_the_next_resumes(
    big_videos, small_disk, tmp_path, capsys, monkeypatch, min_free_mb
):
    sb = big_videos
    ids = sb.catalogue.sample("video", 12)
    config = settings_with(tmp_path, sb, f'dir = "{small_disk}"\nmin_free_mb = {min_free_mb}', qps="5")
    code, out, err = run(["--config", str(config), "harvest", "--json", *map(str, ids)], capsys, monkeypatch)
    summary = json.loads(out.splitlines()[-1])
    err = SANDBOX_NOISE.sub("", err)

    assert code == 75, err
    assert "Traceback" not in err and "taobao-video: disk full: " in err and f" free on {small_disk}" in err
    assert summary["stopped"] == "disk_full" and summary["error"].startswith("disk full: ")
    assert summary["api_calls"] <= 6 and summary["api_calls"] == sb.stats()["gateway"]["calls"]
    assert summary["failed"] == 0 and summary["downloaded"] + summary["deferred"] == len(ids)
    assert list(small_disk.glob("*.tmp")) == [] and list(small_disk.glob(".*.tmp")) == []
    rows, states = videos_and_states(tmp_path)
    assert len(rows) == summary["downloaded"] and all(
        Path(p if os.path.isabs(p) else tmp_path / p).stat().st_size == s for _, p, s in rows
    )
    not_asked = sum(state == "pending" for state in states.values())

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)  # space freed
    sb.reset_stats()
    code, out, err = run(["--config", str(config), "harvest", "--json", *map(str, ids)], capsys, monkeypatch)
    rerun = json.loads(out.splitlines()[-1])
    assert code == 0, err
    assert rerun["downloaded"] == summary["deferred"] and rerun["skipped"] == summary["downloaded"]
    assert rerun["api_calls"] == not_asked == sb.stats()["gateway"]["calls"]
    assert sorted(p.name for p in small_disk.iterdir()) == sorted(f"{num_iid}.mp4" for num_iid in ids)


# -- found before any call ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["harvest", "daily"])
def test_a_file_where_the_videos_folder_should_be_is_a_configuration_error(
    live, tmp_path, capsys, monkeypatch, command
):
    (tmp_path / "videos").write_text("not a folder")
    config = write_settings(tmp_path, live)
    ids = [str(i) for i in live.catalogue.sample("video", 3)] if command == "harvest" else []
    code, _, err = run(["--config", str(config), command, *ids], capsys, monkeypatch)
    assert code == 78 and "download.dir: " in err and "is not a folder" in err and "Traceback" not in err
    assert live.stats()["gateway"]["calls"] == 0


def test_a_read_only_videos_folder_is_a_configuration_error(live, tmp_path, capsys, monkeypatch):
    videos = tmp_path / "videos"
    if os.geteuid() == 0:  # root writes through permission bits: only a read-only mount refuses it
        mount_tmpfs(videos, "ro,size=1m")
    else:
        videos.mkdir()
        videos.chmod(0o555)
    try:
        config = write_settings(tmp_path, live)
        ids = live.catalogue.sample("video", 3)
        code, _, err = run(["--config", str(config), "harvest", *map(str, ids)], capsys, monkeypatch)
    finally:
        unmount(videos) if os.geteuid() == 0 else videos.chmod(0o755)
    assert code == 78 and f"cannot write in {videos}" in err and "Traceback" not in err
    assert live.stats()["gateway"]["calls"] == 0


def test_too_little_free_space_is_disk_full_before_any_call(live, tmp_path, capsys, monkeypatch):
    free_mb = shutil.disk_usage(tmp_path).free / 1e6
    config = settings_with(tmp_path, live, f"min_free_mb = {int(free_mb * 10) + 1000}")
    ids = live.catalogue.sample("video", 3)
    code, out, err = run(["--config", str(config), "harvest", "--json", *map(str, ids)], capsys, monkeypatch)
    assert code == 75 and "taobao-video: disk full: " in err and f" free on {tmp_path / 'videos'}" in err
    assert "download.min_free_mb asks for" in err and "Traceback" not in err
    assert live.stats()["gateway"]["calls"] == 0 and out == ""


def test_the_summary_says_disk_full_and_counts_the_partial_bytes():
    from taobao_video.cli.progress import summary_text

    summary = {
        "downloaded": 2,
        "skipped": 0,
        "no_video": 0,
        "not_found": 0,
        "failed": 0,
        "deferred": 10,
        "api_calls": 5,
        "quota_remaining": 995,
        "bytes": 3_400_000,
        "partial_bytes": 1_600_000,
        "seconds": 1.5,
        "stopped": "disk_full",
        "error": "disk full: 0 B free on /mnt/videos",
    }
    text = summary_text(summary)
    assert "3.2 MiB fetched" in text
    assert "Stopped: disk full: 0 B free on /mnt/videos; 10 ids deferred, partial downloads (1.5 MiB) kept" in text
    assert "(exit 75)" in text
    assert "partial downloads (1.5 MiB) kept for resuming" in summary_text({**summary, "stopped": "signal"})
