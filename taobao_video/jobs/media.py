"""What a harvest learns and keeps beside a downloaded video: the media probe's columns and the cover.

The pipeline calls :func:`probe_columns` and :meth:`Covers.columns` once a video is complete and renamed into
place, before its row is written; a file FFmpeg cannot read keeps its video (mutagen already read its duration)
with the probe columns empty, and a cover that cannot be had keeps its video too, with ``cover_error`` saying why.
:meth:`Covers.backlog` then lists the videos already in the catalog whose cover is missing (failed before, or
harvested before covers were kept); :meth:`Covers.fetch_missing` fetches one from its stored ``cover_url``: no
API call. With object storage (``download.dir = "s3://…"``) a verified cover waits in the spool until its video's
object is in (:meth:`Covers.upload`: a cover never goes up for a video that does not), then goes to
``covers/<num_iid>.<ext>`` under the videos' prefix and its local copy is removed; ``cover_path`` is then the
object's ``s3://`` URL.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Collection
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from taobao_video.errors import DownloadError, TaobaoVideoError
from taobao_video.fetch.covers import CoverFetcher
from taobao_video.fetch.media import mp4_duration
from taobao_video.fetch.probe import ProbeError, probe
from taobao_video.jobs.plan import Job
from taobao_video.storage import Storage, is_object_url
from taobao_video.store.catalog import Catalog
from taobao_video.store.claims import WorkClaims
from taobao_video.store.covers import missing_covers, record_cover
from taobao_video.store.records import VideoRow

log = logging.getLogger(__name__)

_EMPTY: dict[str, Any] = {"codec": None, "bitrate": None, "fps": None, "has_audio": None, "container": None}
_IMAGE_TYPES = {".jpg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}  # by the cover's extension
BACKLOG_PER_RUN = 1000  # missing covers a run fetches after its own work, oldest first


def checked_duration(
    job: Job, path: Path, tolerance_s: float, on_event: Callable[[dict[str, Any]], None]
) -> float | None:
    """The API's duration, else the file's; the file must parse as MP4 and agree with the API."""
    try:
        from_file = mp4_duration(path)
    except DownloadError:
        path.unlink(missing_ok=True)
        raise
    if job.api_duration is None:
        return round(from_file, 3)
    if abs(job.api_duration - from_file) > tolerance_s:
        on_event(
            {
                "event": "warning",
                "num_iid": job.num_iid,
                "detail": f"the API says {job.api_duration:.1f} s but the file lasts {from_file:.1f} s; "
                "recording the file's duration",
            }
        )
        return round(from_file, 3)
    return job.api_duration


def probe_columns(path: Path, *, warn: Callable[[str], None]) -> dict[str, Any]:
    """The ``videos`` probe columns of the file at ``path`` (all None, with a warning, when it cannot be read)."""
    try:
        return probe(path).columns()
    except (ProbeError, OSError) as exc:
        warn(f"the media probe could not read {path.name}: {exc}")
        return dict(_EMPTY)


def item_facts(row: VideoRow) -> dict[str, Any]:
    """What a downloaded item's event tells beside its outcome: where the files went and the product facts."""
    facts = {"video_path": row.video_path, "cover_path": row.cover_path, "cover_error": row.cover_error}
    return {**facts, "title": row.title, "nick": row.nick, "video_id": row.video_id}


class Covers:
    """Fetches covers for one run and says what to record; ``base_dir`` is what ``cover_path`` is relative to."""

    def __init__(self, fetcher: CoverFetcher, catalog: Catalog, base_dir: Path, storage: Storage | None = None) -> None:
        self.fetcher, self.catalog, self.base_dir = fetcher, catalog, base_dir
        self.storage = storage  # object storage: covers are uploaded beside the videos; None: they stay on disk

    def columns(self, num_iid: int, cover_url: str | None) -> dict[str, Any]:
        """The cover columns of a video being recorded: the cover fetched now, or the error (never raised)."""
        if not cover_url:
            return {"cover_path": None, "cover_width": None, "cover_height": None, "cover_error": None}
        try:
            result = self.fetcher.fetch(cover_url, num_iid=num_iid)
        except (DownloadError, OSError) as exc:
            return {"cover_path": None, "cover_width": None, "cover_height": None, "cover_error": _said(exc)}
        return {
            "cover_path": os.path.relpath(result.path, self.base_dir),
            "cover_width": result.width,
            "cover_height": result.height,
            "cover_error": None,
        }

    def upload(self, row: VideoRow) -> VideoRow:
        """``row`` with its cover moved from the spool into object storage (its sha256 recorded with it), or with
        ``cover_error`` saying why it could not be; as it is without object storage or a cover on disk."""
        columns = self._uploaded({"cover_path": row.cover_path})
        return dataclasses.replace(row, **columns) if columns else row

    def _uploaded(self, columns: dict[str, Any]) -> dict[str, Any]:
        local = columns.get("cover_path")
        if self.storage is None or not local or is_object_url(local):
            return {}
        source = self.base_dir / local
        key = f"covers/{source.name}"
        try:
            digest = hashlib.sha256(source.read_bytes()).hexdigest()
            self.storage.put(source, key, sha256=digest, content_type=_IMAGE_TYPES.get(source.suffix, "image/jpeg"))
        except (OSError, TaobaoVideoError) as exc:
            return {"cover_path": None, "cover_width": None, "cover_height": None, "cover_error": _said(exc)}
        finally:
            source.unlink(missing_ok=True)
        return {"cover_path": self.storage.location(key)}

    def backlog(self, ids: list[int] | None = None) -> list[tuple[int, str]]:
        """Videos in the catalog (among ``ids`` when given) whose cover is missing: (num_iid, cover_url)."""
        return missing_covers(self.catalog, limit=BACKLOG_PER_RUN, ids=ids)

    def fetch_missing(self, num_iid: int, cover_url: str) -> dict[str, Any]:
        """Fetch one missing cover from its stored URL and record the outcome; the columns written."""
        columns = self.columns(num_iid, cover_url)
        columns |= self._uploaded(columns)  # object storage: its video is in already
        record_cover(
            self.catalog,
            num_iid,
            cover_url=cover_url,
            path=columns["cover_path"],
            width=columns["cover_width"],
            height=columns["cover_height"],
            error=columns["cover_error"],
        )
        return columns

    def submit_backlog(
        self,
        pool: Executor,
        ids: list[int] | None,
        skip: Collection[int],
        stop: threading.Event,
        on_event: Callable[[dict[str, Any]], None],
        claims: WorkClaims | None = None,
    ) -> None:
        """Hand the backlog (but ``skip``: tried by this run already) to ``pool``; each tells ``on_event`` a
        ``cover`` event. Nothing once ``stop`` is set. With ``claims`` (the run's), only the ids this run could
        claim: another worker working the same backlog takes the others (the run releases its claims at its end)."""
        if stop.is_set():
            return
        wanted = [(num_iid, url) for num_iid, url in self.backlog(ids) if num_iid not in skip]
        if claims is not None and wanted:
            taken = claims.claim_ids([num_iid for num_iid, _ in wanted])[0]
            wanted = self.backlog(taken) if taken else []  # still missing: not fetched by another meanwhile
        for num_iid, cover_url in wanted:
            pool.submit(self._fetch_missing_told, num_iid, cover_url, stop, on_event)

    def _fetch_missing_told(
        self, num_iid: int, cover_url: str, stop: threading.Event, on_event: Callable[[dict[str, Any]], None]
    ) -> None:
        if stop.is_set():
            return
        try:
            columns = self.fetch_missing(num_iid, cover_url)
        except Exception:  # a bug or a database failure must not vanish in a worker thread
            log.exception("fetching the cover of %s failed unexpectedly", num_iid)
            return
        outcome = "failed" if columns["cover_error"] else "downloaded"
        on_event({"event": "cover", "num_iid": num_iid, "outcome": outcome, **_present(columns)})


def _present(columns: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in columns.items() if value is not None}


def _said(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return f"cannot write the cover: {exc.strerror or exc}"
    return str(exc) if isinstance(exc, DownloadError) else f"cannot store the cover: {exc}"
