"""``db rebuild`` when the videos are in object storage: the bucket's listing is the truth. Each ``<num_iid>.mp4``
under the prefix is read back into a temporary spool file (streamed: memory stays bounded) and verified as a file
on disk would be (an MP4 that parses, and bytes that hash to the sha256 stored with the object); it then gets a
row whose ``video_path`` is its ``s3://`` location. An object that fails is reported as lost."""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from taobao_video.errors import DownloadError
from taobao_video.storage import Storage
from taobao_video.store.catalog import Catalog
from taobao_video.store.salvage import OldRows, video_rows

if TYPE_CHECKING:
    from taobao_video.jobs.rebuild import RebuildReport

_VIDEO_KEY = re.compile(r"(\d{1,19})\.mp4")


def record_objects(
    catalog: Catalog, storage: Storage, spool: Path, old: OldRows, report: RebuildReport, now: datetime
) -> None:
    """A row for every verified ``<num_iid>.mp4`` object at the top of the prefix (covers/ and others skipped)."""
    from taobao_video.jobs.rebuild import Found, LostFile, _verified, recovered_row

    rows = video_rows(old.rows("videos"))
    items = {row.get("num_iid"): row for row in old.rows("items")}
    spool.mkdir(parents=True, exist_ok=True)
    for found in storage.iter_objects():
        match = _VIDEO_KEY.fullmatch(found.key)
        if match is None:
            continue
        num_iid, where = int(match[1]), storage.location(found.key)
        stored = storage.stat(found.key)
        with _spooled(storage, found.key, spool) as path:
            try:
                digest, duration = _verified(path)
                if stored is None or digest.sha256 != stored.sha256:
                    raise DownloadError("changed", "its bytes do not hash to the sha256 stored with it")
            except (OSError, DownloadError) as exc:
                report.lost_files.append(LostFile(where, str(exc)))
                continue
        was, item = rows.get(num_iid), items.get(num_iid, {})
        url = (was.video_url if was else "") or str(item.get("video_url") or "")
        again = Found(where, digest.size, digest.sha256, duration, url)
        catalog.record_video(recovered_row(num_iid, again, was=was, item=item, found_at=now), now=now)
        report.videos += 1
        report.with_url += bool(url)


@contextlib.contextmanager
def _spooled(storage: Storage, key: str, spool: Path):  # type: ignore[no-untyped-def]
    """The object's bytes in a temporary file in ``spool`` (removed afterwards)."""
    with tempfile.NamedTemporaryFile(dir=spool, prefix=".rebuild-", suffix=".mp4") as file:
        with storage.open(key) as body:
            shutil.copyfileobj(body, file, 1 << 20)
        file.flush()
        yield Path(file.name)
