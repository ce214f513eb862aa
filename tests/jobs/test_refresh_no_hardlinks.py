"""Where the file system has no hard links, an item sharing a video records the owner's own path
(``videos/<owner>.mp4``). A refresh that finds the owner's video replaced moves that file to the history and
downloads the new version to the same path: the sharer must first get a copy of its own, or its row would name
another video's bytes."""

from __future__ import annotations

from datetime import timedelta

from helpers.harvest import harvest, log_in, opened, sandbox_settings, sha256_of
from helpers.links import OWNER, SHARER, VIDEO_BYTES, no_hard_links

from conftest import START, Sleeps, make_sandbox
from taobao_video.jobs.refresh import refresh
from taobao_video.store.history import mark_checked


def test_refreshing_the_owner_leaves_the_sharers_file_intact_without_hard_links(clock, tmp_path, monkeypatch):
    no_hard_links(monkeypatch)
    changes = {OWNER: START + timedelta(days=2)}
    with make_sandbox(
        clock, daily_limit=1000, video_bytes=VIDEO_BYTES, shared_videos={SHARER: OWNER}, video_changes=changes
    ) as sb:
        settings = sandbox_settings(sb, tmp_path)
        log_in(sb, settings, clock)
        report, _ = harvest(settings, clock, [OWNER, SHARER])
        assert report.downloaded == 2
        with opened(settings) as catalog:
            sharer = catalog.video(SHARER)
        assert sharer.shares_file and sharer.video_path == f"videos/{OWNER}.mp4"  # the fallback: the owner's path
        clock.advance(3 * 86400)
        log_in(sb, settings, clock)
        with opened(settings) as catalog:
            mark_checked(catalog, SHARER, now=clock.now())  # re-checked lately: only the owner is due
        done = refresh(settings, older_than_days=1, clock=clock.now, sleep=Sleeps())
        assert (done.changed, done.downloaded) == (1, 1)
        with opened(settings) as catalog:
            after = catalog.video(SHARER)
        # the sharer got a copy of its own before the owner's file went to the history: its bytes are still its video
        assert after.video_path == f"videos/{SHARER}.mp4" and not after.shares_file
        assert after.sha256 == sharer.sha256 == sha256_of(settings.base_dir / after.video_path)
