"""The two settings a read-only catalog command needs, without validating the whole file.

``catalog list``, ``stats`` and ``show`` need the catalog's URL, the settings folder (``video_path`` is relative
to it) and the quota time zone. Importing pydantic and validating every section took 0.21-0.27 s of CPU for the
shipped settings.toml on this project's 2-vCPU VM (under load), :func:`peek` 0.02-0.03 s: more than such a command
may add to its start-up in all (issue 6: within 1.5x of ``import sqlalchemy.orm, click``). So :func:`peek`
reads just these from the same file, the same way :func:`~taobao_video.config.settings.load_settings` does, and
answers None whenever the full rules could matter:

* no settings file, unreadable, not UTF-8 or not TOML;
* any ``TAOBAO_VIDEO__…`` override in the environment;
* anything that looks like a secret anywhere in the file (a key named like a secret or token, a URL with a
  password): the full load refuses such a file, so a read command must refuse it too;
* a ``[database] url`` or ``[quota] timezone`` that is not plainly valid.

On None the caller runs :func:`~taobao_video.config.settings.load_settings`, which gives the exact error. A test
compares :func:`peek` with :func:`load_settings` on generated files. What peek does not look at (the other
sections) is validated by the commands that use it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CONFIG_ENV = "TAOBAO_VIDEO_CONFIG"  # the same names as settings.py (a test keeps them equal)
OVERRIDE_PREFIX = "TAOBAO_VIDEO__"
DEFAULT_FILE = "settings.toml"
DEFAULT_DATABASE_URL = "sqlite:///data/catalog.sqlite3"
DEFAULT_TIMEZONE = "Asia/Shanghai"
_SECRET_ENDINGS = ("secret", "token", "password", "passwd")  # settings._is_secret's rule
_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_SQLITE_FILE = re.compile(r"(sqlite(?:\+\w+)?):///(.*)", re.DOTALL)


@dataclasses.dataclass(frozen=True)
class CatalogSettings:
    """What a read-only catalog command needs; the same values as the full Settings' fields of these names."""

    source: str
    base_dir: Path
    database_url: str
    quota_timezone: str

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
    if _looks_secret(data):
        return None
    database, quota = data.get("database", {}), data.get("quota", {})
    if not isinstance(database, dict) or not isinstance(quota, dict):
        return None
    url = database.get("url", DEFAULT_DATABASE_URL)
    zone = quota.get("timezone", DEFAULT_TIMEZONE)
    if not isinstance(url, str) or not _URL_SCHEME.match(url) or not isinstance(zone, str):
        return None
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return CatalogSettings(str(file), file.parent, sqlite_url_in(url, file.parent), zone)


def sqlite_url_in(url: str, base_dir: Path) -> str:
    """``url`` with a relative SQLite file made absolute against ``base_dir`` (SQLAlchemy would take it relative
    to the working directory); every other URL as it is. settings.py resolves ``[database] url`` with this."""
    match = _SQLITE_FILE.fullmatch(url)
    if match is None:
        return url
    path, sep, query = match.group(2).partition("?")
    if not path or path == ":memory:" or path.startswith("file:") or Path(path).is_absolute():
        return url
    absolute = os.path.normpath(base_dir / path)
    return f"{match.group(1)}:///{absolute}{sep}{query}"


def _looks_secret(value: Any) -> bool:
    """Anything the full load refuses as a secret: its rule for key names, a URL with a password."""
    if isinstance(value, dict):
        return any(_secret_key(key) or _looks_secret(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_looks_secret(item) for item in value)
    if not isinstance(value, str) or "://" not in value or "@" not in value:
        return False
    try:
        return bool(urlsplit(value).password)
    except ValueError:
        return True


def _secret_key(key: Any) -> bool:
    compact = str(key).strip().lower().replace("-", "").replace("_", "")
    return compact.endswith(_SECRET_ENDINGS) or compact in ("session", "sessionkey")
