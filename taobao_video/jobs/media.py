"""What a harvest learns from a downloaded file beyond its bytes: the media probe's columns.

The pipeline calls :func:`probe_columns` once a video is complete and renamed into place; a file FFmpeg cannot
read keeps its video (mutagen already read its duration) with the probe columns empty, and the caller is told why.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from taobao_video.fetch.probe import ProbeError, probe

_EMPTY: dict[str, Any] = {"codec": None, "bitrate": None, "fps": None, "has_audio": None, "container": None}


def probe_columns(path: Path, *, warn: Callable[[str], None]) -> dict[str, Any]:
    """The ``videos`` probe columns of the file at ``path`` (all None, with a warning, when it cannot be read)."""
    try:
        return probe(path).columns()
    except (ProbeError, OSError) as exc:
        warn(f"the media probe could not read {path.name}: {exc}")
        return dict(_EMPTY)
