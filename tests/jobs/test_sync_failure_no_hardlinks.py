"""Without hard links a sharer's Finished names the owner's file; when syncing it fails, the sharer is not recorded
and the group commit leaves that path alone: the owner's committed, verified video stays with its row."""

from __future__ import annotations

import errno
import os

from helpers.harvest import harvest, log_in, opened, sandbox_settings
from helpers.links import OWNER, SHARER, VIDEO_BYTES, no_hard_links

from conftest import make_sandbox


def test_a_failed_sync_of_a_sharer_never_deletes_the_owners_file(clock, tmp_path, monkeypatch):
    no_hard_links(monkeypatch)
    with make_sandbox(clock, daily_limit=1000, video_bytes=VIDEO_BYTES, shared_videos={SHARER: OWNER}) as sb:
        settings = sandbox_settings(sb, tmp_path)
        log_in(sb, settings, clock)
        assert harvest(settings, clock, [OWNER])[0].downloaded == 1
        owner_file = tmp_path / "videos" / f"{OWNER}.mp4"
        assert owner_file.exists()

        real_fsync = os.fsync

        def failing_fsync(fd):
            if os.path.realpath(f"/proc/self/fd/{fd}") == str(owner_file.resolve()):
                raise OSError(errno.EIO, "Input/output error")
            return real_fsync(fd)

        monkeypatch.setattr(os, "fsync", failing_fsync)
        report, _ = harvest(settings, clock, [SHARER])  # shares OWNER's file (its path: no hard links)
        monkeypatch.setattr(os, "fsync", real_fsync)
        assert report.failed == 1  # the sharer is not recorded: fine
        with opened(settings) as catalog:
            assert catalog.video(OWNER) is not None
        assert owner_file.exists(), "the owner's recorded video was deleted by the sharer's failed sync"
