"""``/covers/<num_iid>.<ext>``: a cover on disk, served like the videos (only from the covers folder, only the
file its row names, regular files only, with ETag and Range), and what the page needs to show it.

The page shows the local cover and never the CDN's: hotlink protection is why covers are copied in the first
place, and the page's policy (``img-src 'self' data:``) keeps the browser from asking any other host.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taobao_video.store.records import VideoRow
    from taobao_video.web.server import Reply

COVER_PATH = re.compile(r"/covers/(\d{1,19})\.(jpg|png|webp)")
COVER_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


def cover_src(row: dict[str, Any]) -> str | None:
    """The page's own URL of a row's cover on disk (``/covers/<id>.<ext>``), or None when there is none."""
    path = row.get("cover_path")
    if not path:
        return None
    ext = path.rsplit(".", 1)[-1].lower()
    return f"/covers/{row['num_iid']}.{ext}" if ext in COVER_TYPES else None


def cover_reply(
    row: VideoRow | None,
    num_iid: int,
    ext: str,
    *,
    base_dir: Path,
    covers_root: Path,
    headers: Any,
    log: Callable[[str], None],
) -> Reply:
    """The cover of ``num_iid`` if its ``row`` (None: no video row) names ``covers/<num_iid>.<ext>`` inside
    ``covers_root``; else 404."""
    from taobao_video.web.server import error_reply, file_reply, open_regular

    if row is None or not row.cover_path or not row.cover_path.lower().endswith("." + ext):
        return error_reply(404, f"no cover {num_iid}.{ext} in the catalog")
    try:
        resolved = (base_dir / row.cover_path).resolve()
    except (OSError, RuntimeError, ValueError):
        resolved = None
    root = covers_root.resolve()
    if resolved is None or resolved == root or not resolved.is_relative_to(root):
        log(f"refused to serve the cover of {num_iid}: {row.cover_path!r} is outside {root}")
        return error_reply(404, f"the cover of {num_iid} is not in the covers folder")
    try:
        file = open_regular(resolved)
    except OSError:
        return error_reply(404, f"the cover of {num_iid} is missing ({row.cover_path}): see `catalog verify`")
    return file_reply(file, headers, content_type=COVER_TYPES[ext])
