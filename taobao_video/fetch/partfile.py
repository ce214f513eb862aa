"""The ``.part`` file and its JSON sidecar: which source the partial bytes came from, so a ``.part`` is only
ever resumed into the file it belongs to."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from taobao_video.fetch.checks import strong_etag


@dataclass(frozen=True)
class PartPaths:
    final: Path
    part: Path
    sidecar: Path


@dataclass(frozen=True)
class PartSource:
    """What a ``.part`` holds the beginning of: the sidecar's content."""

    num_iid: int
    url: str  # without the query string
    size: int | None
    etag: str
    last_modified: str
    content_type: str = ""

    def validator(self) -> str:
        """The If-Range value that makes a server send the rest only if the file is unchanged."""
        return strong_etag(self.etag) or self.last_modified

    def save(self, path: Path) -> None:
        """Write atomically: a torn sidecar would make the .part look foreign (harmless, but a waste)."""
        temp = path.with_name(path.name + ".tmp")
        try:
            temp.write_text(json.dumps(asdict(self), separators=(",", ":")), encoding="utf-8")
            os.replace(temp, path)
        except BaseException:  # a full disk fails the write: leave no empty .tmp behind
            temp.unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> PartSource | None:
        """The sidecar's record, or None when it is missing, unreadable or not ours."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            source = cls(**data)
        except (OSError, ValueError, TypeError):
            return None
        fields_ok = isinstance(source.num_iid, int) and isinstance(source.url, str)
        size_ok = source.size is None or (isinstance(source.size, int) and source.size >= 0)
        text_ok = all(isinstance(v, str) for v in (source.etag, source.last_modified, source.content_type))
        return source if fields_ok and size_ok and text_ok else None


def discard(paths: PartPaths) -> None:
    paths.part.unlink(missing_ok=True)
    paths.sidecar.unlink(missing_ok=True)
