"""Without hard links a sharer's Finished names the owner's file; when syncing it fails, the group commit deletes
that path: the owner's committed, verified video is gone while its row stays."""

from __future__ import annotations

import errno
import os

from helpers.harvest import harvest, log_in, opened, sandbox_settings

from conftest import make_sandbox
from taobao_video.sandbox.products import Catalogue

OWNER = Catalogue(11, (40_000, 90_000)).sample("video", 1)[0]
SHARER = Catalogue(11, (40_000, 90_000)).sample("no_video", 1)[0]


def test_a_failed_sync_of_a_sharer_never_deletes_the_owners_file(clock, tmp_path, monkeypatch):
    def no_links(src, dst, *a, **k):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    with make_sandbox(clock, daily_limit=1000, video_bytes=(40_000, 90_000), shared_videos={SHARER: OWNER}) as sb:
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
