"""``catalog verify`` for videos in object storage: a HEAD tells size and the sha256 recorded with the object;
``--deep`` reads the object back and hashes it (and checks it still starts like an MP4).

The problems are verify.py's: ``missing``, ``truncated``/``grown``, ``not_mp4`` and ``changed`` (an object whose
recorded sha256, or whose bytes with ``--deep``, are not the catalog's).
"""

from __future__ import annotations

import hashlib

from taobao_video.fetch.media import MP4_HEAD, describe_bytes, is_mp4
from taobao_video.storage import Storage


def object_key(storage: Storage, video_path: str) -> str | None:
    """The key of a row's ``s3://…`` path in ``storage``; None when it names another bucket or prefix."""
    root = storage.url.rstrip("/") + "/"
    return video_path[len(root) :] if video_path.startswith(root) else None


def check_object(
    storage: Storage, video_path: str, *, size: int, sha256: str, deep: bool
) -> tuple[str, str, int] | None:
    """None when the object is the one recorded; else (problem, detail, bytes read)."""
    key = object_key(storage, video_path)
    if key is None:
        return "missing", f"{video_path} is not under download.dir ({storage.url})", 0
    found = storage.stat(key)
    if found is None:
        return "missing", f"no object at {video_path}", 0
    if found.size != size:
        kind = "truncated" if found.size < size else "grown"
        return kind, f"{found.size} bytes, {size} recorded", 0
    if found.sha256 != sha256:
        shown = f"{found.sha256[:12]}…" if found.sha256 else "none"
        return "changed", f"the object's sha256 metadata is {shown}, {sha256[:12]}… recorded", 0
    if not deep:
        return None
    digest, head, read = hashlib.sha256(), b"", 0
    with storage.open(key) as body:
        while chunk := body.read(1 << 20):
            if len(head) < MP4_HEAD:
                head += chunk[: MP4_HEAD - len(head)]
            digest.update(chunk)
            read += len(chunk)
    if not is_mp4(head):
        return "not_mp4", f"the object is {describe_bytes(head)}, not an MP4", read
    if digest.hexdigest() != sha256 or read != size:
        return "changed", f"sha256 {digest.hexdigest()[:12]}…, {sha256[:12]}… recorded", read
    return None


__all__ = ["check_object", "object_key"]
