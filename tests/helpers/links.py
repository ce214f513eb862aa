"""A file system without hard links (FAT, some network shares, a spool on another device): every ``os.link`` fails
with EXDEV, so an item sharing a video records the owner's own path."""

from __future__ import annotations

import errno
import os

import pytest

from taobao_video.sandbox.products import Catalogue

VIDEO_BYTES = (40_000, 90_000)  # make_sandbox(video_bytes=VIDEO_BYTES, shared_videos={SHARER: OWNER})
OWNER = Catalogue(11, VIDEO_BYTES).sample("video", 1)[0]  # an item with a video of its own
SHARER = Catalogue(11, VIDEO_BYTES).sample("no_video", 1)[0]  # an item the sandbox makes show OWNER's video


def no_hard_links(monkeypatch: pytest.MonkeyPatch) -> None:
    """Until the test ends, ``os.link`` fails as it does where the file system has no hard links."""

    def no_link(src: object, dst: object, *args: object, **kwargs: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
