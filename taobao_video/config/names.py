"""The settings vocabulary, written once, stdlib only: variable and file names, the defaults the peek reads, the
sections and keys a file may hold, the secret rule and the relative-SQLite rule.

Both the full load (:mod:`~taobao_video.config.load`, which needs pydantic) and the read commands' cheap
:mod:`~taobao_video.config.peek` import these, so the two cannot disagree about where the settings are, what
counts as a secret or where a relative SQLite file is; and the CLI names the variable without importing either.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple, get_args
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CONFIG_ENV = "TAOBAO_VIDEO_CONFIG"  # the settings file, when --config does not name one
APP_KEY_ENV = "TAOBAO_APP_KEY"  # wins over [taobao] app_key; TAOBAO_APP_KEY_<NAME> per [[taobao.apps]] entry
APP_SECRET_ENV = "TAOBAO_APP_SECRET"  # the only home of the secret; TAOBAO_APP_SECRET_<NAME> per app
OVERRIDE_PREFIX = "TAOBAO_VIDEO__"  # TAOBAO_VIDEO__<SECTION>__<KEY> overrides any key of the file
NOTIFY_URLS_ENV = "TAOBAO_VIDEO_NOTIFY_URLS"  # Apprise URLs (secrets) added to [notify] urls, space-separated
DEFAULT_FILE = "settings.toml"  # in the working directory when neither names a file

# taobao.provider: the channels a num_iid's video can be reached through (top/providers/, README "Choosing a provider")
ProviderName = Literal["item", "seller", "gateway"]
PROVIDERS: tuple[ProviderName, ...] = get_args(ProviderName)

DEFAULT_DATABASE_URL = "sqlite:///data/catalog.sqlite3"  # [database] url
DEFAULT_TIMEZONE = "Asia/Shanghai"  # [quota] timezone: the free quota resets at midnight Beijing time

# AWS's and Aliyun's credential names too (aws_secret_access_key, aws_access_key_id, AccessKeyId, secret_key)
_SECRET_ENDINGS = ("secret", "token", "password", "passwd", "accesskey", "accesskeyid", "secretkey", "apikey")
# TOP's names for the OAuth token; [gateway] key; a URL's ?pass= (Apprise's mailto://…?pass=)
_SECRET_NAMES = ("session", "sessionkey", "key", "pass", "pwd")
GATEWAY_KEY_ENV = "TAOBAO_GATEWAY_KEY"  # the item-data gateway's key and secret: from the environment only
GATEWAY_SECRET_ENV = "TAOBAO_GATEWAY_SECRET"
URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")  # how a [database] url must start
_SQLITE_FILE = re.compile(r"(sqlite(?:\+\w+)?):///(.*)", re.DOTALL)


def app_env_suffix(name: str) -> str:
    """The suffix of an app's environment variables: ``TAOBAO_APP_SECRET_<SUFFIX>`` for app ``name``."""
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


# ------------------------------------------------------------------------------------ the sections and keys

# What a settings file may hold, spelt out for the stdlib-only peek (config/models.py is pydantic): a test keeps
# these equal to the models' fields, which the full load checks a file against.
SETTINGS_KEYS: dict[str, frozenset[str]] = {
    "taobao": frozenset(
        (
            "gateway_url oauth_url app_key app_secret sign_method api_method session_param oauth_grant redirect_uri "
            "token_file token_refresh_margin_s token_warn_days simplify item_video_duration_unit item_get_fields "
            "timeout_s max_retries max_ban_wait_s breaker_failures apps provider seller_batch_size seller_video_url"
        ).split()
    ),
    "quota": frozenset("daily_limit reserve timezone".split()),
    "download": frozenset(
        (
            "dir workers timeout_s max_bytes allowed_hosts retries deadline_s min_speed_bytes_s speed_window_s "
            "user_agent referer min_free_mb public_url_prefix"
        ).split()
    ),
    "harvest": frozenset(
        "qps no_video_ttl_days duration_tolerance_s lock_file lease_s refresh_share refresh_after_days".split()
    ),
    "database": frozenset(("url",)),
    "metrics": frozenset(("textfile",)),
    "notify": frozenset("urls on failure_threshold timeout_s".split()),
    "gateway": frozenset("url key secret daily_limit reserve params timeout_s".split()),
    "s3": frozenset("endpoint_url region addressing_style".split()),
}
APP_KEYS = frozenset("name app_key app_secret daily_limit reserve token_file".split())  # a [[taobao.apps]] entry


def public_prefix(value: Any) -> str | None:
    """``download.public_url_prefix`` checked: None for none (empty), else an http(s) URL ending in "/"; ValueError
    saying what is wrong."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value.strip()):
        raise ValueError(f"must be an http(s) URL such as https://media.example.com/taobao/, got {value!r}")
    value = value.strip()
    return value if value.endswith("/") else value + "/"


def unknown_places(data: Mapping[Any, Any]) -> Iterator[tuple[str, ...]]:
    """Every place in ``data`` (a parsed settings file) the full load rejects by its name or shape: an unknown
    section or key (a typo), a key outside any section, a section or an app entry that is not a table. Secrets are
    :func:`secret_places`' concern and left out."""
    for name in _unknown(data, SETTINGS_KEYS):
        yield (name,)
    for name, table in data.items():
        if name not in SETTINGS_KEYS or not isinstance(table, Mapping):
            continue
        for key in _unknown(table, SETTINGS_KEYS[name]):
            yield (name, key)
        apps = table.get("apps") if name == "taobao" else None
        for entry in apps if isinstance(apps, list) else ():
            if not isinstance(entry, Mapping):
                yield (name, "apps")
            else:
                yield from ((name, "apps", key) for key in _unknown(entry, APP_KEYS))


def _unknown(table: Mapping[Any, Any], known: Mapping[str, Any] | frozenset[str]) -> Iterator[str]:
    """The keys of ``table`` not in ``known`` (secrets aside); for the sections, also those that are no table."""
    for key, value in table.items():
        if isinstance(key, str) and is_secret_key(key):
            continue
        if key not in known or (known is SETTINGS_KEYS and not isinstance(value, Mapping)):
            yield str(key)


# ------------------------------------------------------------------------------------------ the secret rule


def compact_key(key: str) -> str:
    """A key as the secret rule compares it: ``App-Secret`` and ``app_secret`` are both ``appsecret``."""
    return key.strip().lower().replace("-", "").replace("_", "")


def is_secret_key(key: str) -> bool:
    """Whole key names that hold credentials; ``token_file`` and ``session_param`` are not among them."""
    compact = compact_key(key)
    return compact.endswith(_SECRET_ENDINGS) or compact in _SECRET_NAMES


def url_has_password(text: str) -> bool:
    """Whether ``text`` is a URL carrying a password: ``scheme://user:password@host``, or a query parameter named
    like a secret (``?pass=``, ``?token=``, ``?api_key=``, Apprise's ``+X-Token=`` header)."""
    if "://" not in text:
        return False
    try:
        parts = urlsplit(text)
        if parts.password:
            return True
        return any(value and is_secret_key(name.lstrip("+-:")) for name, value in parse_qsl(parts.query))
    except ValueError:
        return False


class SecretPlace(NamedTuple):
    """Where a settings table holds a secret: the keys leading to it, and whether it is a password in a URL."""

    path: tuple[str, ...]
    in_url: bool


def secret_places(data: Mapping[Any, Any], path: tuple[str, ...] = ()) -> Iterator[SecretPlace]:
    """Every secret in ``data`` (a parsed settings file): keys named like one, URLs with a password.

    Tables in arrays (``[[taobao.apps]]``) are searched too. The full load refuses a file for each place found;
    the peek steps aside when there is any.
    """
    for key, value in data.items():
        if not isinstance(key, str):
            continue  # the full load reports it as a key that is not a string
        here = (*path, key)
        if is_secret_key(key):
            yield SecretPlace(here, in_url=False)
        elif isinstance(value, Mapping):
            yield from secret_places(value, here)
        elif isinstance(value, (list, tuple)):
            for item in value:
                if isinstance(item, Mapping):
                    yield from secret_places(item, here)
                elif isinstance(item, str) and url_has_password(item):  # [notify] urls = ["mailto://u:pw@…"]
                    yield SecretPlace(here, in_url=True)
        elif isinstance(value, str) and url_has_password(value):
            yield SecretPlace(here, in_url=True)


# ------------------------------------------------------------------------------------------- other values


def known_time_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this machine knows (``Asia/Shanghai``)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def sqlite_url_in(url: str, base_dir: Path) -> str:
    """``url`` with a relative SQLite file made absolute against ``base_dir`` (SQLAlchemy would take it relative
    to the working directory); every other URL as it is."""
    match = _SQLITE_FILE.fullmatch(url)
    if match is None:
        return url
    path, sep, query = match.group(2).partition("?")
    if not path or path == ":memory:" or path.startswith("file:") or Path(path).is_absolute():
        return url
    absolute = os.path.normpath(base_dir / path)
    return f"{match.group(1)}:///{absolute}{sep}{query}"
