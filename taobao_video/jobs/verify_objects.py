"""``catalog verify`` for videos in object storage: a HEAD tells size and the sha256 recorded with the object;
``--deep`` reads the object back and hashes it (and checks it still starts like an MP4).

The problems are verify.py's: ``missing``, ``truncated``/``grown``, ``not_mp4`` and ``changed`` (an object whose
recorded sha256, or whose bytes with ``--deep``, are not the catalog's).
"""

from __future__ import annotations

from taobao_video.errors import TaobaoVideoError
from taobao_video.fetch.images import IMAGE_HEAD
from taobao_video.fetch.media import describe_bytes, hash_stream, is_mp4
from taobao_video.storage import Storage
from taobao_video.storage.base import check_key


def object_key(storage: Storage, video_path: str) -> str | None:
    """The key of a row's ``s3://…`` path in ``storage``; None when it names another bucket or prefix."""
    root = storage.url.rstrip("/") + "/"
    if not video_path.startswith(root):
        return None
    try:  # a row naming "../x", "a//b" or nothing under the prefix names no object of ours
        return check_key(video_path[len(root) :])
    except ValueError:
        return None


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
    with storage.open(key) as body:
        read = hash_stream(body)
    if not is_mp4(read.head):
        return "not_mp4", f"the object is {describe_bytes(read.head)}, not an MP4", read.size
    if read.sha256 != sha256 or read.size != size:
        return "changed", f"sha256 {read.sha256[:12]}…, {sha256[:12]}… recorded", read.size
    return None


def check_cover_object(
    storage: Storage | None, cover_path: str, *, width: int | None, height: int | None
) -> tuple[str, str] | None:
    """None when the cover object is an image of the recorded size (its first bytes, one ranged GET); else
    (problem, detail), as :func:`~taobao_video.jobs.verify.check_cover` says of a file."""
    from taobao_video.jobs.verify import judge_cover

    key = None if storage is None else object_key(storage, cover_path)
    if storage is None or key is None:
        return "cover_missing", f"{cover_path} is not under download.dir: set it to that bucket to check it"
    try:
        if storage.stat(key) is None:
            return "cover_missing", f"no object at {cover_path}"
        with storage.open(key, start=0, end=IMAGE_HEAD - 1) as body:
            head = body.read(IMAGE_HEAD)
    except TaobaoVideoError as exc:
        return "cover_missing", f"cannot read {cover_path}: {exc}"
    return judge_cover(head, width=width, height=height)


__all__ = ["check_cover_object", "check_object", "object_key"]
