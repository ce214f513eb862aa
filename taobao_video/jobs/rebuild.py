"""``taobao-video db rebuild``: a fresh SQLite catalog from the verified files, the damaged one kept beside it.

The files are the truth: every ``<num_iid>.mp4`` under ``download.dir`` that reads as an MP4 (an ``ftyp`` box and a
movie header mutagen can parse) gets a ``videos`` row with its size, sha256 and duration read from the file
itself. What only the old catalog knew comes from its readable rows (``store/salvage.py``): the source and cover
URLs, the picture size and API method of each video, the queue (pending, no_video, not_found, failed, … items),
the call log and the quota ledger (so a rebuild never spends a day's quota twice). A ``.part`` sidecar names the
source of a download in progress. A file that fails verification is reported as lost and not recorded; an item
the old file called done whose file is gone goes back to be downloaded.

The new catalog is built in a temporary file and renamed into place only when complete; the damaged file (and its
``-wal`` / ``-shm``, which belong to it) is renamed to ``<file>.damaged-<UTC time>``. A crash midway leaves the
damaged file where it was. The run lock keeps harvests out meanwhile.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taobao_video.errors import DownloadError, UsageError
from taobao_video.fetch.downloader import SIDECAR_SUFFIX
from taobao_video.fetch.media import describe_bytes, hash_file, is_mp4, mp4_duration
from taobao_video.fetch.partfile import PartSource
from taobao_video.jobs.lock import run_lock
from taobao_video.model import utc_now
from taobao_video.store.catalog import Catalog
from taobao_video.store.dialects import sqlite_file
from taobao_video.store.records import VideoRow
from taobao_video.store.salvage import KEPT_TABLES, OldRows, read_rows, restore_rows, settle_items, video_rows

if TYPE_CHECKING:
    from taobao_video.config.models import Settings

RECOVERED_METHOD = "recovered"  # api_method of a video whose old row was lost
_VIDEO_NAME = re.compile(r"(\d{1,19})\.mp4")
_SIDE_FILES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class LostFile:
    name: str
    reason: str


@dataclass
class RebuildReport:
    videos: int = 0
    with_url: int = 0  # videos whose source URL was recovered
    items: int = 0  # queue items (not done) recovered from the old file
    put_back: int = 0  # items the old file called done whose file did not survive: to be downloaded again
    calls: int = 0
    quota_days: int = 0
    lost_files: list[LostFile] = field(default_factory=list)
    damaged_places: int = 0  # stretches of old rows on unreadable pages
    unreadable: list[str] = field(default_factory=list)  # old tables nothing could be read of
    backup: Path | None = None  # where the damaged file now is (None: there was none)

    def as_dict(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in self.__dict__.items() if k not in ("lost_files", "backup")},
            "lost_files": [lost.__dict__ for lost in self.lost_files],
            "backup": None if self.backup is None else str(self.backup),
        }


def rebuild(settings: Settings, *, now: Callable[[], datetime] = utc_now) -> RebuildReport:
    """Rebuild the SQLite catalog of ``settings`` (see the module docstring). UsageError (exit 2) on PostgreSQL,
    where the server keeps its own pages and a backup (pg_dump) is the way back."""
    file = sqlite_file(settings.database.url)
    if file is None:
        raise UsageError(
            "db rebuild rebuilds a SQLite catalog file; on PostgreSQL run `taobao-video db check`, and restore a "
            "backup (pg_restore) if the server reports damage"
        )
    videos_dir = Path(settings.download.dir)
    with run_lock(settings.database.url, settings.harvest.lock_file, purpose="db rebuild"):
        report = RebuildReport()
        old = read_rows(file) if file.exists() else OldRows()
        report.damaged_places, report.unreadable = old.damaged_places, old.unreadable
        moment = now()
        stamp = moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        fresh = file.with_name(f"{file.name}.rebuilding-{stamp}")
        _remove(fresh)
        with Catalog.open(f"sqlite:///{fresh}") as catalog:
            kept = {table: restore_rows(catalog, table, old.rows(table)) for table in KEPT_TABLES}
            report.calls, report.quota_days = kept["calls"], kept["quota_days"]
            if settings.download.object_url is None:
                _record_files(catalog, settings.base_dir, videos_dir, old, report, moment)
            else:  # the bucket's listing is the truth (rebuild_objects.py)
                from taobao_video.jobs.rebuild_objects import record_objects
                from taobao_video.storage import open_storage

                storage = open_storage(settings.download.object_url, settings.s3.options())
                record_objects(catalog, storage, videos_dir, old, report, moment)
            report.put_back = settle_items(catalog)
        report.items = kept["items"] - sum(1 for row in old.rows("items") if row.get("state") == "done")
        if file.exists():
            report.backup = file.with_name(f"{file.name}.damaged-{stamp}")
            _move(file, report.backup)
        _move(fresh, file)
        return report


def _record_files(
    catalog: Catalog, base_dir: Path, videos_dir: Path, old: OldRows, report: RebuildReport, now: datetime
) -> None:
    rows = video_rows(old.rows("videos"))
    items = {row.get("num_iid"): row for row in old.rows("items")}
    for path in sorted(videos_dir.glob("*.mp4")) if videos_dir.is_dir() else []:
        match = _VIDEO_NAME.fullmatch(path.name)
        if match is None or not path.is_file():
            continue
        num_iid = int(match[1])
        try:
            digest, duration = _verified(path)
        except (OSError, DownloadError) as exc:
            report.lost_files.append(LostFile(str(path), str(exc)))
            continue
        was = rows.get(num_iid)
        item = items.get(num_iid, {})
        sidecar = PartSource.load(path.with_name(path.name + SIDECAR_SUFFIX))
        url = (was.video_url if was else "") or str(item.get("video_url") or "") or (sidecar.url if sidecar else "")
        mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        found = Found(os.path.relpath(path, base_dir), digest.size, digest.sha256, duration, url)
        catalog.record_video(recovered_row(num_iid, found, was=was, item=item, found_at=mtime), now=now)
        report.videos += 1
        report.with_url += bool(url)


@dataclass(frozen=True)
class Found:
    """A file found again, verified: where it is, its size, sha256 and duration, and the URL it came from."""

    video_path: str
    size: int
    sha256: str
    duration: float | None
    url: str


def recovered_row(
    num_iid: int, found: Found, *, was: VideoRow | None, item: dict[str, Any], found_at: datetime
) -> VideoRow:
    """The row of a file found again: the old row as it was (title, cover, probe facts and all) with the file's
    own facts, else what the item row knew (its ``api_method`` ``recovered`` when it knew none)."""
    if was is not None:
        return replace(
            was,
            video_path=found.video_path,
            duration=found.duration,
            size_bytes=found.size,
            sha256=found.sha256,
            video_url=found.url or was.video_url,
        )
    return VideoRow(
        num_iid=num_iid,
        video_path=found.video_path,
        duration=found.duration,
        size_bytes=found.size,
        sha256=found.sha256,
        video_url=found.url,
        cover_url=_text(item.get("cover_url")),
        width=_int(item.get("width")),
        height=_int(item.get("height")),
        api_method=_text(item.get("api_method")) or RECOVERED_METHOD,
        downloaded_at=found_at,
        title=_text(item.get("title")),
        nick=_text(item.get("nick")),
        video_id=_text(item.get("video_id")),
    )


def _verified(path: Path) -> tuple[Any, float]:
    """The file's digest and duration when it is an MP4 that parses; DownloadError saying why not."""
    digest = hash_file(path)
    if not is_mp4(digest.head):
        raise DownloadError("not_mp4", f"the file is {describe_bytes(digest.head)}, not an MP4")
    duration = mp4_duration(path)
    if not duration:
        raise DownloadError("unreadable_mp4", "the file does not parse as MP4 (no movie length)")
    return digest, duration


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def _remove(file: Path) -> None:
    for suffix in ("", *_SIDE_FILES):
        file.with_name(file.name + suffix).unlink(missing_ok=True)


def _move(source: Path, target: Path) -> None:
    """Rename a SQLite file with its -wal/-shm/-journal: a WAL left behind would be replayed into the wrong file."""
    for suffix in _SIDE_FILES:
        side = source.with_name(source.name + suffix)
        if side.exists():
            os.replace(side, target.with_name(target.name + suffix))
    os.replace(source, target)
