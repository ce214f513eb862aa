"""The checks the settings models share: each takes a value as the user wrote it and returns it cleaned, or raises
:func:`invalid` with a sentence about that value (the load adds the file and the key)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationInfo
from pydantic_core import PydanticCustomError

from taobao_video.config.names import URL_SCHEME, sqlite_url_in

_SHOW_MAX = 60
_HOST_PATTERN = re.compile(r"(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


def invalid(problem: str) -> PydanticCustomError:
    """The error a check raises: ``problem`` is the whole message, e.g. "must be a path, got 5"."""
    # The problem goes in as context, not as the template, so braces in a user's value cannot break it.
    return PydanticCustomError("settings", "{problem}", {"problem": problem})


def show(value: Any) -> str:
    """A value as the user wrote it, shortened: 'abc', 5, true, a table."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a table"
    text = repr(value)
    return text if len(text) <= _SHOW_MAX else text[: _SHOW_MAX - 3] + "..."


def http_url(value: Any, *, fragment_ok: bool = True) -> str:
    """An http(s) URL with a host (and a valid port); ``fragment_ok=False`` for an OAuth redirect URI."""
    if not isinstance(value, str):
        raise invalid(f"must be an http(s) URL, got {show(value)}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        raise invalid(f"must be an http(s) URL, got {show(value)}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or re.search(r"\s", value):
        raise invalid(f"must be an http(s) URL, got {show(value)}")
    if not fragment_ok and "#" in value:
        # RFC 6749 §3.1.2: the redirection endpoint URI MUST NOT include a fragment component.
        raise invalid(f"must not have a #fragment (OAuth forbids one in a redirect URI), got {show(value)}")
    return value


def _base_dir(info: ValidationInfo) -> Path:
    context = info.context if isinstance(info.context, Mapping) else {}
    base = context.get("base_dir")
    return Path(base) if base is not None else Path.cwd()


def resolve_path(value: Any, info: ValidationInfo) -> Path:
    """A path, ``~`` expanded, made absolute against the settings folder (the validation context's base_dir)."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise invalid(f"must be a path, got {show(value)}")
    try:
        path = Path(value).expanduser()
    except RuntimeError:
        raise invalid(f"cannot expand the home folder in {show(value)}") from None
    return Path(os.path.normpath(_base_dir(info) / path))


def database_url(value: Any, info: ValidationInfo) -> str:
    """A SQLAlchemy URL; a relative SQLite file is made absolute against the settings folder."""
    if not isinstance(value, str) or not URL_SCHEME.match(value):
        raise invalid(f"must be a database URL such as sqlite:///data/catalog.sqlite3, got {show(value)}")
    # sqlite:///relative is relative to the process's cwd in SQLAlchemy; pin it to the settings folder.
    return sqlite_url_in(value, _base_dir(info))


def mask_url_password(url: str) -> str:
    """``url`` with any password shown as ``***`` (for reprs)."""
    return re.sub(r"(://[^/@:\s]*:)[^/@\s]*@", r"\1***@", url)


def host_patterns(value: Any) -> tuple[str, ...]:
    """A non-empty array of host names or ``*.domain`` patterns, lower-cased."""
    if not isinstance(value, (list, tuple)):
        raise invalid(f"must be an array of host names, got {show(value)}")
    hosts = []
    for number, host in enumerate(value, start=1):
        if not isinstance(host, str) or not _HOST_PATTERN.fullmatch(host):
            raise invalid(
                f"item {number} must be a host name or a *.domain pattern (no scheme, port or path), got {show(host)}"
            )
        hosts.append(host.lower())
    if not hosts:
        raise invalid("must list at least one host (videos are downloaded only from these)")
    return tuple(hosts)


def clean_app_key(value: str) -> str:
    """An app key without surrounding blanks; one with a space inside is a paste error."""
    value = value.strip()
    if re.search(r"\s", value):
        raise invalid(f"must not contain spaces, got {show(value)}")
    return value


def below_daily_limit(reserve: int, info: ValidationInfo) -> int:
    """A ``reserve`` checked against its section's ``daily_limit`` (validated before it): calls kept back must
    leave some to spend."""
    limit = info.data.get("daily_limit")
    if isinstance(limit, int) and reserve >= limit:
        raise invalid(f"must be less than daily_limit ({limit}), got {reserve}")
    return reserve
