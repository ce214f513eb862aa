"""Public URLs of the files in the catalog: ``download.public_url_prefix`` + the file's path under the media root
(the folder holding ``videos/`` and ``covers/``), else the platform's own URL. Standard library only.

With ``public_url_prefix = "https://media.example.com/taobao/"`` and the default folders, video 520813250866 is
``https://media.example.com/taobao/videos/520813250866.mp4`` and its cover
``https://media.example.com/taobao/covers/520813250866.jpg``; a row whose file is not in the catalog (an item
listed by ``--state`` without a video, a cover not fetched yet) carries the Taobao URL instead, or None.

With object storage (``download.dir = "s3://BUCKET/PREFIX"``) the prefix publishes ``s3://BUCKET/PREFIX/`` (a CDN
or the bucket's website in front of it): video 520813250866 is ``<prefix>520813250866.mp4``, its cover
``<prefix>covers/520813250866.jpg``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

PUBLIC_COLUMNS: tuple[str, ...] = ("video_public_url", "cover_public_url")


class PublicUrls:
    """Adds :data:`PUBLIC_COLUMNS` to listing rows. ``base_dir`` is what ``video_path``/``cover_path`` are relative
    to (the settings folder), ``media_root`` what is published at ``prefix``."""

    def __init__(self, prefix: str, *, base_dir: Path, media_root: Path, object_root: str | None = None) -> None:
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self.base_dir, self.media_root = Path(base_dir), Path(os.path.abspath(media_root))
        self.object_root = None if object_root is None else object_root.rstrip("/") + "/"

    def url(self, relative: str | None, fallback: str | None) -> str | None:
        """The public URL of a file at ``relative`` (to ``base_dir``, or an ``s3://`` URL), or ``fallback`` when
        there is no file."""
        if not relative:
            return fallback or None
        if "://" in relative:  # an object: published when it lies under the storage's root
            if self.object_root is None or not relative.startswith(self.object_root):
                return fallback or None
            return self.prefix + quote(relative[len(self.object_root) :], safe="/")
        under = os.path.relpath(os.path.abspath(self.base_dir / relative), self.media_root)
        if under.startswith(".."):  # a file kept outside the published folder has no public URL of its own
            return fallback or None
        return self.prefix + quote(Path(under).as_posix(), safe="/")

    def add(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """``row`` with ``video_public_url`` and ``cover_public_url``."""
        return {
            **row,
            "video_public_url": self.url(row.get("video_path"), row.get("video_url")),
            "cover_public_url": self.url(row.get("cover_path"), row.get("cover_url")),
        }

    def rows(self, rows: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
        return (self.add(row) for row in rows)


__all__ = ["PUBLIC_COLUMNS", "PublicUrls"]
