"""The two settings a read-only catalog command needs, without validating the whole file.

``catalog list``, ``stats`` and ``show`` need the catalog's URL, the settings folder (``video_path`` is relative
to it) and the quota time zone. Importing pydantic and validating every section took 0.21-0.27 s of CPU for the
shipped settings.toml on this project's 2-vCPU VM (under load), :func:`peek` 0.02-0.03 s: more than such a command
may add to its start-up in all (issue 6: within 1.5x of ``import sqlalchemy.orm, click``). So :func:`peek`
reads just these from the same file, the same way :func:`~taobao_video.config.load.load_settings` does (the names,
the secret rule and the SQLite rule come from :mod:`~taobao_video.config.names`, like the full load's), and
answers None whenever the full rules could matter:

* no settings file, unreadable, not UTF-8 or not TOML;
* any ``TAOBAO_VIDEO__…`` override in the environment;
* a secret anywhere in the file (a key named like a secret or token, a URL with a password): the full load
  refuses such a file, so a read command must refuse it too;
* an unknown section or key anywhere (a typo: ``[quota] timezon``, ``[download] workerz``), or a section that
  is not a table: the full load refuses it with a "did you mean", and a read command must not pass it silently;
* a ``[database] url`` or ``[quota] timezone`` that is not plainly valid.

On None the caller runs :func:`~taobao_video.config.load.load_settings`, which gives the exact error. A test
compares :func:`peek` with :func:`load_settings` on generated files. What peek does not look at (the other
sections) is validated by the commands that use it.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from zoneinfo import ZoneInfo

from taobao_video.config.names import (
    CONFIG_ENV,
    DEFAULT_DATABASE_URL,
    DEFAULT_FILE,
    DEFAULT_TIMEZONE,
    OVERRIDE_PREFIX,
    URL_SCHEME,
    known_time_zone,
    public_prefix,
    secret_places,
    sqlite_url_in,
    unknown_places,
)


@dataclasses.dataclass(frozen=True)
class CatalogSettings:
    """What a read-only catalog command needs; the same values as the full Settings' fields of these names."""

    source: str
    base_dir: Path
    database_url: str
    quota_timezone: str
    public_url_prefix: str | None = None  # download.public_url_prefix
    media_root: Path | None = None  # the parent of download.dir: what the prefix publishes
    object_root: str | None = None  # download.dir = "s3://BUCKET/PREFIX": then the prefix publishes that

    @property
    def quota_tz(self) -> ZoneInfo:
        return ZoneInfo(self.quota_timezone)


def peek(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> CatalogSettings | None:
    """The catalog settings of the file ``load_settings(path, env)`` would read, or None (see the module doc)."""
    env = os.environ if env is None else env
    if any(name.startswith(OVERRIDE_PREFIX) for name in env):
        return None
    try:
        file = Path(os.path.abspath(Path(path or env.get(CONFIG_ENV) or DEFAULT_FILE).expanduser()))
        data = tomllib.loads(file.read_bytes().decode("utf-8-sig"))
    except (OSError, RuntimeError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None
    if any(secret_places(data)) or any(unknown_places(data)):
        return None
    database, quota, download = data.get("database", {}), data.get("quota", {}), data.get("download", {})
    if not isinstance(database, dict) or not isinstance(quota, dict) or not isinstance(download, dict):
        return None
    media = _media(download, file.parent)
    if media is None:
        return None
    url = database.get("url", DEFAULT_DATABASE_URL)
    zone = quota.get("timezone", DEFAULT_TIMEZONE)
    if not isinstance(url, str) or not URL_SCHEME.match(url) or not isinstance(zone, str):
        return None
    if not known_time_zone(zone):
        return None
    return CatalogSettings(str(file), file.parent, sqlite_url_in(url, file.parent), zone, *media)


def _media(download: dict[str, object], folder: Path) -> tuple[str | None, Path] | None:
    """(public_url_prefix, media root) as the full load reads them, or None when only it can judge them."""
    videos = download.get("dir", "data/videos")
    if not isinstance(videos, str) or not videos or "://" in videos:
        return None
    try:
        prefix = public_prefix(download.get("public_url_prefix"))
    except ValueError:
        return None
    return prefix, Path(os.path.normpath(folder / Path(videos).expanduser())).parent
