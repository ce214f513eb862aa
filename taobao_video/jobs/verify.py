"""Re-check the downloaded files against the catalog; with ``fix``, put the bad ones back in line for download.

For each ``videos`` row (or a random sample of them): the file must exist, have the recorded size, start like an
MP4 (``ftyp``), parse as one (mutagen reads its movie header) and hash to the recorded sha256. A file that fails
is reported with the first check it failed, in that order, so a replaced file says whether it is still a video:

    missing         no file at video_path
    truncated       shorter than recorded            grown     longer than recorded
    not_mp4         does not start with an ftyp box (what it looks like instead is in the detail)
    unreadable_mp4  an ftyp box, but mutagen cannot read the movie
    changed         a readable MP4 of the right size whose bytes are not the ones downloaded

A cover on record (``cover_path``) is checked too, after its video: it must exist and be a JPEG, PNG or WebP of
the recorded pixel size (``cover_missing``, ``cover_not_image``, ``cover_changed``). A bad cover never makes its
video bad; ``fix`` clears its ``cover_path`` (the error kept in ``cover_error``), so the next run fetches it again
from its stored ``cover_url``: no API call. A cover in object storage is checked by its first bytes (one ranged
GET).

``fix`` repairs the catalog, never the file (the next download writes over it): in one transaction per id, the
``videos`` row is deleted (it describes a file that is no longer there as recorded, and design.md keeps that table
for downloaded, verified videos) and the item goes back to ``resolved`` with the row's ``video_url``, so the next
``taobao-video daily`` or ``harvest`` downloads it again from the stored URL without an API call. Should that URL
have expired (a signed URL answers 403), the harvest looks the item up again as it always does: one call.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taobao_video.errors import EXIT_FAILED, EXIT_OK, DownloadError
from taobao_video.fetch.images import IMAGE_HEAD, ImageError, image_info
from taobao_video.fetch.media import describe_bytes, hash_file, is_mp4, mp4_duration
from taobao_video.jobs.verify_objects import check_cover_object, check_object
from taobao_video.storage.base import is_object_url

if TYPE_CHECKING:
    from taobao_video.storage import Storage
    from taobao_video.store.catalog import Catalog
    from taobao_video.store.records import VideoRow

_PAGE = 500
PROBLEMS = ("missing", "truncated", "grown", "not_mp4", "unreadable_mp4", "changed")
COVER_PROBLEMS = ("cover_missing", "cover_not_image", "cover_changed")


@dataclasses.dataclass(frozen=True)
class BadFile:
    num_iid: int
    video_path: str
    problem: str  # one of PROBLEMS or COVER_PROBLEMS
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class VerifyReport:
    checked: int = 0
    ok: int = 0
    bytes_read: int = 0
    bad: list[BadFile] = dataclasses.field(default_factory=list)
    fixed: int = 0  # bad files whose item went back to "resolved" (or whose cover is to be fetched again)
    covers_checked: int = 0

    @property
    def exit_code(self) -> int:
        """0 all good (or every bad one fixed), 1 bad files left as they were."""
        return EXIT_FAILED if len(self.bad) > self.fixed else EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "ok": self.ok,
            "bad": len(self.bad),
            "fixed": self.fixed,
            "covers_checked": self.covers_checked,
            "bytes_read": self.bytes_read,
            "problems": [bad.as_dict() for bad in self.bad],
        }


def check_file(path: Path, *, size: int, sha256: str) -> tuple[str, str, int] | None:
    """None when the file at ``path`` is the one recorded; else (problem, detail, bytes read)."""
    try:
        actual = path.stat().st_size
    except FileNotFoundError:
        return "missing", f"no file at {path}", 0
    except OSError as exc:
        return "missing", f"cannot read {path}: {exc.strerror or exc}", 0
    if actual != size:
        kind = "truncated" if actual < size else "grown"
        return kind, f"{actual} bytes, {size} recorded", 0
    try:
        digest = hash_file(path)
    except OSError as exc:
        return "missing", f"cannot read {path}: {exc.strerror or exc}", 0
    read = digest.size
    if not is_mp4(digest.head):
        return "not_mp4", f"the file is {describe_bytes(digest.head)}, not an MP4", read
    if digest.sha256 == sha256:
        return None
    unreadable = _unreadable_mp4(path)
    if unreadable:
        return "unreadable_mp4", unreadable, read
    return "changed", f"sha256 {digest.sha256[:12]}…, {sha256[:12]}… recorded", read


def check_cover(path: Path, *, width: int | None, height: int | None) -> tuple[str, str] | None:
    """None when the cover at ``path`` is an image of the recorded size; else (problem, detail)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(IMAGE_HEAD)
    except FileNotFoundError:
        return "cover_missing", f"no file at {path}"
    except OSError as exc:
        return "cover_missing", f"cannot read {path}: {exc.strerror or exc}"
    return judge_cover(head, width=width, height=height)


def judge_cover(head: bytes, *, width: int | None, height: int | None) -> tuple[str, str] | None:
    """None when ``head`` (a cover's first bytes) is an image of the recorded size; else (problem, detail)."""
    try:
        info = image_info(head)
    except ImageError as exc:
        return "cover_not_image", f"{exc}: the file is {describe_bytes(head)}"
    if (info.width, info.height) != (width, height):
        return "cover_changed", f"{info.width}x{info.height} pixels, {width}x{height} recorded"
    return None


def _unreadable_mp4(path: Path) -> str:
    """Why ``path`` cannot be read as an MP4 movie, or '' when it can."""
    try:
        length = mp4_duration(path)
    except DownloadError as exc:
        return str(exc)
    return "" if length else "the file does not parse as MP4 (no movie length)"


def verify(
    catalog: Catalog,
    base_dir: Path,
    *,
    sample: int | None = None,
    fix: bool = False,
    now: Callable[[], datetime],
    rng: random.Random | None = None,
    on_checked: Callable[[int, BadFile | None], None] = lambda num_iid, bad: None,
    storage: Storage | None = None,
    deep: bool = False,
) -> VerifyReport:
    """Check every video's file (or ``sample`` of them, picked by ``rng``); ``fix`` requeues the bad ones.

    ``base_dir`` is the folder ``video_path`` is relative to (the settings folder). ``on_checked`` is told of
    each id as it is done (for a progress display). Rows in object storage (``s3://…``) are checked in
    ``storage`` (verify_objects.py): a HEAD, or with ``deep`` the bytes read back and hashed.
    """
    report = VerifyReport()
    for row in _rows(catalog, sample, rng or random.Random()):
        if is_object_url(row.video_path) and storage is not None:
            problem = check_object(storage, row.video_path, size=row.size_bytes, sha256=row.sha256, deep=deep)
        elif is_object_url(row.video_path):
            problem = "missing", "an object, but download.dir is a folder: set it to the bucket to check it", 0
        else:
            problem = check_file(base_dir / row.video_path, size=row.size_bytes, sha256=row.sha256)
        report.checked += 1
        bad = None
        if problem is None:
            report.ok += 1
            report.bytes_read += row.size_bytes
        else:
            kind, detail, read = problem
            report.bytes_read += read
            bad = BadFile(row.num_iid, row.video_path, kind, detail)
            report.bad.append(bad)
            if fix and catalog.requeue_download(row.num_iid, reason=f"catalog verify: {kind}: {detail}", now=now()):
                report.fixed += 1
                on_checked(row.num_iid, bad)
                continue  # its row is gone: the next run fetches the video and its cover again
        on_checked(row.num_iid, bad)
        cover_bad = _verify_cover(catalog, base_dir, row, report, fix=fix, storage=storage) if row.cover_path else None
        if cover_bad is not None:
            on_checked(row.num_iid, cover_bad)
    return report


def _verify_cover(
    catalog: Catalog, base_dir: Path, row: VideoRow, report: VerifyReport, *, fix: bool, storage: Storage | None
) -> BadFile | None:
    from taobao_video.store.covers import record_cover

    assert row.cover_path is not None
    report.covers_checked += 1
    size = {"width": row.cover_width, "height": row.cover_height}
    if is_object_url(row.cover_path):
        problem = check_cover_object(storage, row.cover_path, **size)
    else:
        problem = check_cover(base_dir / row.cover_path, **size)
    if problem is None:
        return None
    kind, detail = problem
    bad = BadFile(row.num_iid, row.cover_path, kind, detail)
    report.bad.append(bad)
    if fix and row.cover_url:
        error = f"catalog verify: {kind}: {detail}"
        if record_cover(catalog, row.num_iid, cover_url=row.cover_url, path=None, error=error):
            report.fixed += 1
    return bad


def _rows(catalog: Catalog, sample: int | None, rng: random.Random) -> Iterator[VideoRow]:
    """Every video row in id order, or ``sample`` of them chosen uniformly (a reservoir over the ids).

    Read a page at a time by id, each page its own short transaction: checking a big folder takes hours, and a
    read transaction held that long would keep SQLite from checkpointing a harvest's writes meanwhile.
    """
    if sample is not None and sample < 0:
        raise ValueError(f"sample must be 0 or more, got {sample}")
    if sample is None:
        for page in _id_pages(catalog):
            found = catalog.videos(page)
            yield from (found[num_iid] for num_iid in page if num_iid in found)
        return
    chosen: list[int] = []
    seen = 0
    for page in _id_pages(catalog):
        for num_iid in page:
            if seen < sample:
                chosen.append(num_iid)
            elif (pick := rng.randrange(seen + 1)) < sample:
                chosen[pick] = num_iid
            seen += 1
    chosen.sort()
    for start in range(0, len(chosen), _PAGE):
        page = chosen[start : start + _PAGE]
        found = catalog.videos(page)
        yield from (found[num_iid] for num_iid in page if num_iid in found)  # one deleted meanwhile is not bad


def _id_pages(catalog: Catalog) -> Iterator[list[int]]:
    last = 0
    while page := catalog.video_ids_after(last, limit=_PAGE):
        yield page
        last = page[-1]
