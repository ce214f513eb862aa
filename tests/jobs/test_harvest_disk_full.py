"""A harvest that meets a full disk (ENOSPC injected at the ``.part`` writes): the lookups stop at once, the run
stops with exit 75 and the error, nothing half-written is in the catalog, and a rerun after space is freed
finishes without a call for the ids already resolved."""

from __future__ import annotations

import sqlite3
import time

from helpers.disk import SmallDisk
from helpers.harvest import harvest, log_in, opened, sandbox_settings, sha256_of

from conftest import make_sandbox
from taobao_video import wiring
from taobao_video.errors import DiskFull
from taobao_video.fetch import stream
from taobao_video.model import StopReason


def test_a_full_disk_stops_the_lookups_and_a_rerun_resumes(clock, tmp_path, monkeypatch):
    with make_sandbox(clock, daily_limit=1000, video_bytes=(100_000, 200_000)) as sb:
        settings = sandbox_settings(sb, tmp_path, harvest={"qps": 5})  # paced: the downloads keep up with lookups
        log_in(sb, settings, clock)
        ids = sb.catalogue.sample("video", 20)
        monkeypatch.setattr(stream, "open", SmallDisk(250_000).open, raising=False)  # room for one or two videos
        events: list[dict] = []
        with opened(settings) as catalog:
            job = wiring.harvester(settings, catalog, clock=clock.now, sleep=time.sleep, on_event=events.append)
            report = job.run(ids)

        assert report.stopped is StopReason.DISK_FULL and report.exit_code == 75
        assert isinstance(report.error, DiskFull) and str(report.error).startswith("disk full: ")
        assert report.api_calls <= 4 and report.api_calls == sb.stats()["gateway"]["calls"]
        assert report.failed == 0 and report.downloaded + report.deferred == len(ids)
        assert report.partial_bytes > 0 and report.bytes >= report.partial_bytes
        stops = [event for event in events if event["event"] == "stop"]
        assert [stop["reason"] for stop in stops] == ["disk_full"]
        folder = tmp_path / "videos"
        assert not list(folder.glob("*.tmp"))
        db = sqlite3.connect(tmp_path / "catalog.sqlite3")
        rows = db.execute("SELECT num_iid, video_path, size_bytes, sha256 FROM videos").fetchall()
        states = dict(db.execute("SELECT num_iid, state FROM items").fetchall())
        db.close()
        assert len(rows) == report.downloaded
        for num_iid, path, size, sha in rows:  # every row is a whole, verified file
            assert (tmp_path / path).stat().st_size == size and sha256_of(tmp_path / path) == sha
            assert sha == sb.video(num_iid).sha256()
        not_asked = sum(state == "pending" for state in states.values())

        monkeypatch.undo()  # space freed
        sb.reset_stats()
        rerun, _ = harvest(settings, clock, ids)
        assert rerun.exit_code == 0 and rerun.downloaded == report.deferred
        assert rerun.api_calls == not_asked == sb.stats()["gateway"]["calls"]
        assert not list(folder.glob("*.part*")) and not list(folder.glob("*.tmp"))
