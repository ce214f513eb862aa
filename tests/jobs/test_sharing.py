"""One copy per video against the sandbox: items sharing a stored video (``shared_videos``) cost one download and
one file, by ``video_id`` before downloading or by ``sha256`` after; the catalog says which items use a video and
counts the file once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from helpers.harvest import harvest, log_in, opened, sandbox_settings

from conftest import make_sandbox
from taobao_video.sandbox.products import Catalogue
from taobao_video.store.catalog import engine_of
from taobao_video.store.report import stats
from taobao_video.store.shares import shared_bytes, users_of

OWNERS = Catalogue(11, (40_000, 90_000)).sample("video", 2)
SHARERS = Catalogue(11, (40_000, 90_000)).sample("no_video", 3)  # become items of the owners' videos
SHARED = {SHARERS[0]: OWNERS[0], SHARERS[1]: OWNERS[0], SHARERS[2]: OWNERS[1]}


@pytest.fixture
def world(clock, tmp_path):
    with make_sandbox(clock, daily_limit=1000, video_bytes=(40_000, 90_000), shared_videos=SHARED) as sb:
        settings = sandbox_settings(sb, tmp_path)
        log_in(sb, settings, clock)
        yield sb, settings


def inode(settings, row):
    return (settings.base_dir / row.video_path).stat().st_ino


def test_a_known_video_id_costs_no_download_and_shares_the_file(world, clock):
    sb, settings = world
    report, _ = harvest(settings, clock, [OWNERS[0]])
    assert report.downloaded == 1
    videos_sent = sb.stats()["cdn"]["requests"]
    report, events = harvest(settings, clock, SHARERS[:2])
    assert report.downloaded == 2 and report.api_calls == 2 and report.bytes == 0
    assert sb.stats()["cdn"]["requests"] == videos_sent  # no video request at all
    shared = [e for e in events if e["event"] == "item"]
    assert all("nothing downloaded" in e["detail"] for e in shared)
    with opened(settings) as catalog:
        rows = catalog.videos([OWNERS[0], *SHARERS[:2]])
        owner = rows[OWNERS[0]]
        for num_iid in SHARERS[:2]:
            row = rows[num_iid]
            assert row.video_path == f"videos/{num_iid}.mp4" and inode(settings, row) == inode(settings, owner)
            assert (row.sha256, row.size_bytes, row.video_id, row.codec) == (
                owner.sha256,
                owner.size_bytes,
                owner.video_id,
                "h264",
            )
            assert row.shares_file is True and row.title == sb.catalogue.item(num_iid).title != owner.title
            assert (settings.base_dir / row.cover_path).read_bytes() == sb.catalogue.cover(OWNERS[0])
        assert not owner.shares_file
        assert users_of(catalog, SHARERS[1]) == sorted([OWNERS[0], *SHARERS[:2]])
        assert shared_bytes(catalog) == 2 * owner.size_bytes
        figures = stats(catalog, now=datetime.now(UTC), tz=UTC)
        assert figures["bytes"] == 3 * owner.size_bytes and figures["disk_bytes"] == owner.size_bytes


def test_two_items_of_one_video_in_one_run_download_it_once(world, clock):
    sb, settings = world
    report, _ = harvest(settings, clock, [OWNERS[1], SHARERS[2], OWNERS[0], *SHARERS[:2]])
    assert report.downloaded == 5 and report.failed == 0
    by_item = sb.stats()["cdn"]["by_item"]
    assert by_item == {str(OWNERS[0]): 1, str(OWNERS[1]): 1}  # the CDN knows a video by its owner
    with opened(settings) as catalog:
        rows = catalog.videos([*OWNERS, *SHARERS])
        assert len({inode(settings, row) for row in rows.values()}) == 2
        assert sum(bool(row.shares_file) for row in rows.values()) == 3
        figures = stats(catalog, now=datetime.now(UTC), tz=UTC)
        assert figures["disk_bytes"] == rows[OWNERS[0]].size_bytes + rows[OWNERS[1]].size_bytes


def test_the_same_bytes_found_after_a_download_are_kept_once(world, clock):
    sb, settings = world
    harvest(settings, clock, [OWNERS[1]])
    with opened(settings) as catalog, engine_of(catalog).begin() as connection:  # as if no video_id had been given
        connection.exec_driver_sql("UPDATE videos SET video_id = NULL")
    report, _ = harvest(settings, clock, [SHARERS[2]])
    assert report.downloaded == 1 and sb.stats()["cdn"]["by_item"] == {str(OWNERS[1]): 2}  # downloaded, then shared
    with opened(settings) as catalog:
        owner, sharer = catalog.video(OWNERS[1]), catalog.video(SHARERS[2])
        assert sharer.shares_file and inode(settings, sharer) == inode(settings, owner)
        assert sharer.video_path == f"videos/{SHARERS[2]}.mp4"
        assert users_of(catalog, OWNERS[1]) == sorted([OWNERS[1], SHARERS[2]])
        assert stats(catalog, now=datetime.now(UTC), tz=UTC)["disk_bytes"] == owner.size_bytes
    assert not list((settings.base_dir / "videos").glob("*.link"))


def test_show_and_list_answer_which_items_use_a_video(world, clock, tmp_path, capsys, monkeypatch):
    import json

    from helpers.cli import run

    sb, settings = world
    harvest(settings, clock, [OWNERS[0], *SHARERS[:2]])
    config = tmp_path / "settings.toml"
    config.write_text('[download]\ndir = "videos"\n[database]\nurl = "sqlite:///catalog.sqlite3"\n')
    code, out, _ = run(["--config", str(config), "catalog", "show", str(SHARERS[0]), "--json"], capsys, monkeypatch)
    assert code == 0 and json.loads(out)["same_video"] == sorted([OWNERS[0], SHARERS[1]])
    code, out, _ = run(["--config", str(config), "catalog", "show", str(OWNERS[0])], capsys, monkeypatch)
    video_id = sb.catalogue.item(OWNERS[0]).video_id
    assert f"video id:     {video_id}  (also used by {', '.join(map(str, sorted(SHARERS[:2])))})" in out
    args = ["--config", str(config), "catalog", "list", "--video-id", str(video_id), "--format", "json"]
    code, out, _ = run(args, capsys, monkeypatch)
    assert code == 0 and [row["num_iid"] for row in json.loads(out)] == sorted([OWNERS[0], *SHARERS[:2]])
    code, out, _ = run(["--config", str(config), "catalog", "stats"], capsys, monkeypatch)
    assert "On disk:" in out and "items sharing a video share one file" in out
