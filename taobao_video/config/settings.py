"""Settings: ``settings.toml`` plus the environment → one frozen, validated :class:`Settings`.

Precedence, later wins: the defaults below, the settings file, ``TAOBAO_VIDEO__<SECTION>__<KEY>`` variables,
``TAOBAO_APP_KEY``. The app secret comes only from ``TAOBAO_APP_SECRET``; a settings file holding any secret
(a key named like ``app_secret``, ``token``, ``password``…, or a URL with a password) is refused. Relative
paths resolve against the settings file's folder, never the working directory.

Every problem found is collected and raised as one :class:`~taobao_video.errors.ConfigError` (exit 78), one
line per problem, each naming the file (or the environment variable), the key and what is wrong.

To add a key, add one ``Field`` line to its section class; to add a section, write its class and add one line
to :class:`Settings`. Known keys, suggestions and environment overrides follow from the models.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple, NoReturn, get_args, get_origin
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from taobao_video.config.peek import sqlite_url_in
from taobao_video.errors import ConfigError

CONFIG_ENV = "TAOBAO_VIDEO_CONFIG"
APP_KEY_ENV = "TAOBAO_APP_KEY"
APP_SECRET_ENV = "TAOBAO_APP_SECRET"
OVERRIDE_PREFIX = "TAOBAO_VIDEO__"
DEFAULT_FILE = "settings.toml"

_SHOW_MAX = 60


# ---------------------------------------------------------------------------------------------- validators


def _fail(problem: str) -> PydanticCustomError:
    # The problem goes in as context, not as the template, so braces in a user's value cannot break it.
    return PydanticCustomError("settings", "{problem}", {"problem": problem})


def _show(value: Any) -> str:
    """A value as the user wrote it, shortened: 'abc', 5, true, a table."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a table"
    text = repr(value)
    return text if len(text) <= _SHOW_MAX else text[: _SHOW_MAX - 3] + "..."


def _http_url(value: Any, *, fragment_ok: bool = True) -> str:
    if not isinstance(value, str):
        raise _fail(f"must be an http(s) URL, got {_show(value)}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        raise _fail(f"must be an http(s) URL, got {_show(value)}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or re.search(r"\s", value):
        raise _fail(f"must be an http(s) URL, got {_show(value)}")
    if not fragment_ok and "#" in value:
        # RFC 6749 §3.1.2: the redirection endpoint URI MUST NOT include a fragment component.
        raise _fail(f"must not have a #fragment (OAuth forbids one in a redirect URI), got {_show(value)}")
    return value


def _base_dir(info: ValidationInfo) -> Path:
    context = info.context if isinstance(info.context, Mapping) else {}
    base = context.get("base_dir")
    return Path(base) if base is not None else Path.cwd()


def _resolve_path(value: Any, info: ValidationInfo) -> Path:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise _fail(f"must be a path, got {_show(value)}")
    try:
        path = Path(value).expanduser()
    except RuntimeError:
        raise _fail(f"cannot expand the home folder in {_show(value)}") from None
    return Path(os.path.normpath(_base_dir(info) / path))


_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")


def _database_url(value: Any, info: ValidationInfo) -> str:
    if not isinstance(value, str) or not _URL_SCHEME.match(value):
        raise _fail(f"must be a database URL such as sqlite:///data/catalog.sqlite3, got {_show(value)}")
    # sqlite:///relative is relative to the process's cwd in SQLAlchemy; pin it to the settings folder.
    return sqlite_url_in(value, _base_dir(info))


def _mask_url_password(url: str) -> str:
    return re.sub(r"(://[^/@:\s]*:)[^/@\s]*@", r"\1***@", url)


_HOST_PATTERN = re.compile(r"(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


def _host_patterns(value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        raise _fail(f"must be an array of host names, got {_show(value)}")
    hosts = []
    for number, host in enumerate(value, start=1):
        if not isinstance(host, str) or not _HOST_PATTERN.fullmatch(host):
            raise _fail(
                f"item {number} must be a host name or a *.domain pattern (no scheme, port or path), got {_show(host)}"
            )
        hosts.append(host.lower())
    if not hosts:
        raise _fail("must list at least one host (videos are downloaded only from these)")
    return tuple(hosts)


# ------------------------------------------------------------------------------------------------- models


class _Frozen(BaseModel):
    # strict: TOML is typed, so "5" is not an integer and "yes" is not a boolean.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class _Section(_Frozen):
    # Defaults go through the same validators, so default paths are resolved like written ones.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, validate_default=True)


_APP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")


def app_env_suffix(name: str) -> str:
    """The suffix of an app's environment variables: ``TAOBAO_APP_SECRET_<SUFFIX>`` for app ``name``."""
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


class AppSettings(_Frozen):
    """One ``[[taobao.apps]]`` entry: an app key with its own quota (and token file).

    The secret comes only from ``TAOBAO_APP_SECRET_<NAME>``; the key from ``app_key`` or ``TAOBAO_APP_KEY_<NAME>``.
    ``daily_limit`` and ``reserve`` default to ``[quota]``'s, ``token_file`` to ``token-<name>.json`` beside
    ``[taobao] token_file``.
    """

    name: str
    app_key: str = ""
    app_secret: SecretStr | None = None  # only from the environment
    daily_limit: int | None = Field(None, ge=1)
    reserve: int | None = Field(None, ge=0)
    token_file: Path | None = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _APP_NAME.fullmatch(value):
            raise _fail(f"must be 1-32 letters, digits, - or _ (it names the app in messages), got {_show(value)}")
        return value

    @field_validator("app_key")
    @classmethod
    def _check_app_key(cls, value: str) -> str:
        return _app_key(value)

    @field_validator("token_file", mode="before")
    @classmethod
    def _check_token_file(cls, value: Any, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve_path(value, info)


def _app_key(value: str) -> str:
    value = value.strip()
    if re.search(r"\s", value):
        raise _fail(f"must not contain spaces, got {_show(value)}")
    return value


class TaobaoSettings(_Section):
    """``[taobao]``: the TOP gateway, the app(s) and OAuth."""

    gateway_url: str = "https://eco.taobao.com/router/rest"
    oauth_url: str = "https://oauth.taobao.com"
    app_key: str = ""
    app_secret: SecretStr | None = None  # only from the environment (TAOBAO_APP_SECRET)
    sign_method: Literal["md5", "hmac", "hmac-sha256"] = "md5"
    api_method: Literal["taobao.item_video", "taobao.item.get", "auto"] = "auto"
    session_param: str = "session"
    oauth_grant: Literal["authorization_code", "client_credentials", "none"] = "authorization_code"
    redirect_uri: str = "http://127.0.0.1:8765/callback"
    token_file: Path = Path("data/token.json")
    token_refresh_margin_s: int = Field(300, ge=0)
    simplify: bool = False
    item_video_duration_unit: Literal["ms", "s"] = "ms"
    item_get_fields: str = "num_iid,title,pic_url,video,mpic_video"
    timeout_s: float = Field(20.0, gt=0, allow_inf_nan=False)
    max_retries: int = Field(4, ge=0, le=20)
    max_ban_wait_s: int = Field(120, ge=0)
    # Gateway attempts in a row that get no answer (refused, DNS, timeouts, resets) before a run stops sending and
    # exits 75 ("gateway unreachable"); net.CircuitBreaker.
    breaker_failures: int = Field(5, ge=1, le=100)
    apps: tuple[AppSettings, ...] = ()  # several app keys, each with its own quota; empty: app_key above

    @field_validator("apps", mode="before")
    @classmethod
    def _check_apps_shape(cls, value: Any) -> Any:
        if isinstance(value, list):
            return tuple(value)  # TOML arrays are lists; the model is frozen
        return value

    @field_validator("apps")
    @classmethod
    def _check_apps(cls, value: tuple[AppSettings, ...]) -> tuple[AppSettings, ...]:
        for what, seen in (("name", [app.name for app in value]), ("app_key", [app.app_key for app in value])):
            repeated = sorted({x for x in seen if x and seen.count(x) > 1})
            if repeated:
                raise _fail(f"each app needs its own {what}; repeated: {', '.join(repeated)}")
        return value

    @field_validator("gateway_url", "oauth_url", mode="before")
    @classmethod
    def _check_url(cls, value: Any) -> str:
        return _http_url(value)

    @field_validator("redirect_uri", mode="before")
    @classmethod
    def _check_redirect_uri(cls, value: Any) -> str:
        return _http_url(value, fragment_ok=False)

    @field_validator("token_file", mode="before")
    @classmethod
    def _check_path(cls, value: Any, info: ValidationInfo) -> Path:
        return _resolve_path(value, info)

    @field_validator("app_key")
    @classmethod
    def _check_app_key(cls, value: str) -> str:
        return _app_key(value)

    @field_validator("session_param")
    @classmethod
    def _check_param_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise _fail(f"must be a request parameter name such as session, got {_show(value)}")
        return value

    @field_validator("item_get_fields")
    @classmethod
    def _check_fields(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",")]
        if not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name) for name in names):
            raise _fail(f"must be comma-separated field names such as num_iid,title,video, got {_show(value)}")
        return ",".join(names)


class QuotaSettings(_Section):
    """``[quota]``: the app's daily call quota and the day it is counted in."""

    daily_limit: int = Field(1000, ge=1)
    reserve: int = Field(0, ge=0)
    timezone: str = "Asia/Shanghai"

    @field_validator("reserve")
    @classmethod
    def _check_reserve(cls, value: int, info: ValidationInfo) -> int:
        limit = info.data.get("daily_limit")
        if isinstance(limit, int) and value >= limit:
            raise _fail(f"must be less than daily_limit ({limit}), got {value}")
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise _fail(f"unknown time zone {_show(value)} (use an IANA name such as Asia/Shanghai)") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        """The quota day's time zone."""
        return ZoneInfo(self.timezone)


class DownloadSettings(_Section):
    """``[download]``: where videos go and how they are fetched."""

    dir: Path = Path("data/videos")
    workers: int = Field(8, ge=1, le=64)
    timeout_s: float = Field(30.0, gt=0, allow_inf_nan=False)
    max_bytes: int = Field(524_288_000, gt=0)
    allowed_hosts: tuple[str, ...] = ("*.taobao.com", "*.alicdn.com", "*.tbcdn.cn")
    retries: int = Field(3, ge=0, le=20)
    deadline_s: float = Field(900.0, gt=0, allow_inf_nan=False)
    min_speed_bytes_s: int = Field(4096, ge=0)
    speed_window_s: float = Field(30.0, gt=0, allow_inf_nan=False)
    user_agent: str = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
    )
    referer: str = "https://item.taobao.com/"

    @field_validator("dir", mode="before")
    @classmethod
    def _check_dir(cls, value: Any, info: ValidationInfo) -> Path:
        return _resolve_path(value, info)

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _check_hosts(cls, value: Any) -> tuple[str, ...]:
        return _host_patterns(value)


class HarvestSettings(_Section):
    """``[harvest]``: how the job paces lookups and what it does not ask again."""

    qps: float = Field(2.0, gt=0, allow_inf_nan=False)
    no_video_ttl_days: float = Field(30.0, ge=0, allow_inf_nan=False)
    duration_tolerance_s: float = Field(1.5, ge=0, allow_inf_nan=False)
    lock_file: Path = Path("data/harvest.lock")
    # How long a worker's claim on queued ids holds without renewal (claims.py): a dead worker's ids go to the
    # others after this long. Renewed every third of it, so it must outlast a database hiccup; a day at most.
    lease_s: float = Field(600.0, ge=3, le=86_400, allow_inf_nan=False)

    @field_validator("lock_file", mode="before")
    @classmethod
    def _check_lock_file(cls, value: Any, info: ValidationInfo) -> Path:
        return _resolve_path(value, info)


class DatabaseSettings(_Section):
    """``[database]``: the catalog's SQLAlchemy URL."""

    url: str = "sqlite:///data/catalog.sqlite3"

    @field_validator("url", mode="before")
    @classmethod
    def _check_url(cls, value: Any, info: ValidationInfo) -> str:
        return _database_url(value, info)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, _mask_url_password(value) if name == "url" and isinstance(value, str) else value


DEFAULT_APP = "default"


@dataclasses.dataclass(frozen=True)
class AppSpec:
    """One app key ready to use: its credentials, its quota and its token file."""

    name: str
    app_key: str
    app_secret: str = dataclasses.field(repr=False)
    daily_limit: int
    reserve: int
    token_file: Path


class Settings(_Frozen):
    """Everything the tool is configured with; build it with :func:`load_settings` or
    :func:`settings_from_mapping`.

    ``source`` names where the settings came from (the file's absolute path) and ``base_dir`` is the folder
    relative paths were resolved against. Each other field is one ``[section]`` of ``settings.toml``.
    """

    source: str
    base_dir: Path
    taobao: TaobaoSettings
    quota: QuotaSettings
    download: DownloadSettings
    harvest: HarvestSettings
    database: DatabaseSettings

    @model_validator(mode="after")
    def _check_app_quotas(self) -> Settings:
        for app in self.taobao.apps:
            limit = app.daily_limit or self.quota.daily_limit
            reserve = self.quota.reserve if app.reserve is None else app.reserve
            if reserve >= limit:
                raise _fail(f"[[taobao.apps]] {app.name}: reserve ({reserve}) must be less than daily_limit ({limit})")
        return self

    @property
    def app_names(self) -> tuple[str, ...]:
        """The configured apps' names; ``default`` when no ``[[taobao.apps]]`` are listed."""
        return tuple(app.name for app in self.taobao.apps) or (DEFAULT_APP,)

    def token_file(self, name: str) -> Path:
        """Where app ``name`` keeps its OAuth token (no credentials needed to know it)."""
        if not self.taobao.apps and name == DEFAULT_APP:
            return self.taobao.token_file
        app = next((app for app in self.taobao.apps if app.name == name), None)
        if app is None:
            raise ConfigError(f"no app named {name!r} in [[taobao.apps]] (configured: {', '.join(self.app_names)})")
        return app.token_file or self.taobao.token_file.with_name(f"token-{app.name}.json")

    def apps(self, *, with_secrets: bool = True) -> tuple[AppSpec, ...]:
        """Every configured app; ConfigError naming every variable to set.

        ``with_secrets=False`` is for reading the quota: only the keys are needed, and ``app_secret`` is empty.
        """
        problems: list[str] = []
        specs = []
        for name in self.app_names:
            try:
                specs.append(self.app(name, with_secret=with_secrets))
            except ConfigError as exc:
                problems.append(exc.problem)
        if problems:
            raise ConfigError("; ".join(problems), file=self.source)
        return tuple(specs)

    def app(self, name: str | None = None, *, with_secret: bool = True) -> AppSpec:
        """One app by name (None: the only one), credentials included, or a ConfigError saying what is missing."""
        names = self.app_names
        if name is None:
            if len(names) > 1:
                raise ConfigError(f"several apps are configured ({', '.join(names)}): pick one with --app NAME")
            name = names[0]
        if not self.taobao.apps and name == DEFAULT_APP:
            t, q = self.taobao, self.quota
            default_secret = t.app_secret.get_secret_value() if t.app_secret is not None else None
            missing = [] if t.app_key else [APP_KEY_ENV]
            if with_secret and default_secret is None:
                missing.append(APP_SECRET_ENV)
            if missing:
                hint = " (the app key may also go in [taobao] app_key)" if not t.app_key else ""
                raise ConfigError(
                    f"the Taobao app credentials are missing: set {' and '.join(missing)} in the environment{hint}",
                    file=self.source,
                )
            secret = default_secret or ""
            return AppSpec(DEFAULT_APP, t.app_key, secret, q.daily_limit, q.reserve, t.token_file)
        app = next((app for app in self.taobao.apps if app.name == name), None)
        if app is None:
            raise ConfigError(f"no app named {name!r} in [[taobao.apps]] (configured: {', '.join(names)})")
        suffix = app_env_suffix(app.name)
        missing = [] if app.app_key else [f"{APP_KEY_ENV}_{suffix}"]
        if with_secret and app.app_secret is None:
            missing.append(f"{APP_SECRET_ENV}_{suffix}")
        if missing:
            hint = " (the key may also go in its app_key)" if not app.app_key else ""
            raise ConfigError(
                f"app {app.name}: credentials missing: set {' and '.join(missing)} in the environment{hint}",
                file=self.source,
            )
        return AppSpec(
            name=app.name,
            app_key=app.app_key,
            app_secret=app.app_secret.get_secret_value() if app.app_secret is not None else "",
            daily_limit=app.daily_limit or self.quota.daily_limit,
            reserve=self.quota.reserve if app.reserve is None else app.reserve,
            token_file=self.token_file(app.name),
        )


def _section_models() -> dict[str, type[_Section]]:
    sections = {}
    for name, field in Settings.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, _Section):
            sections[name] = field.annotation
    return sections


_SECTIONS = _section_models()


# ------------------------------------------------------------------------------------------- the pipeline


class _Problem(NamedTuple):
    file: str | None
    key: str | None
    problem: str

    def line(self) -> str:
        return str(ConfigError(self.problem, file=self.file, key=self.key))


def _compact(key: str) -> str:
    return key.strip().lower().replace("-", "").replace("_", "")


def _is_secret(key: str) -> bool:
    """Whole key names that hold credentials; ``token_file`` and ``session_param`` are not among them."""
    compact = _compact(key)
    return compact.endswith(("secret", "token", "password", "passwd")) or compact in ("session", "sessionkey")


_SECRET_REFUSED = "secrets must not be stored in the settings file"


def _secret_advice(key: str, *, in_app: bool = False) -> str:
    compact = _compact(key)
    if compact.endswith("secret") and in_app:
        advice = f"set {APP_SECRET_ENV}_<NAME> (the app's name in capitals) in the environment instead"
    elif compact.endswith("secret"):
        advice = f"set {APP_SECRET_ENV} in the environment instead"
    elif compact.endswith("token") or compact.startswith("session"):
        advice = "OAuth tokens are kept in the token file named by [taobao] token_file"
    else:
        advice = "pass credentials through the environment instead"
    return f"{_SECRET_REFUSED}; {advice}"


def _label(path: tuple[str, ...]) -> str:
    return path[0] if len(path) == 1 else f"[{'.'.join(path[:-1])}] {path[-1]}"


def _url_has_password(text: str) -> bool:
    if "://" not in text or "@" not in text:
        return False
    try:
        return bool(urlsplit(text).password)
    except ValueError:
        return False


def _secret_problems(data: Mapping[Any, Any], source: str, path: tuple[str, ...] = ()) -> Iterator[_Problem]:
    for key, value in data.items():
        if not isinstance(key, str):
            continue
        here = (*path, key)
        if _is_secret(key):
            yield _Problem(source, _label(here), _secret_advice(key, in_app="apps" in path))
        elif isinstance(value, Mapping):
            yield from _secret_problems(value, source, here)
        elif isinstance(value, (list, tuple)):
            for item in value:
                if isinstance(item, Mapping):
                    yield from _secret_problems(item, source, here)
        elif isinstance(value, str) and _url_has_password(value):
            var = f"{OVERRIDE_PREFIX}{'__'.join(here).upper()}" if len(here) == 2 else "the URL"
            problem = f"holds a password in a URL; {_SECRET_REFUSED}; set {var} in the environment instead"
            yield _Problem(source, _label(here), problem)


def _known_keys(section: str) -> list[str]:
    return [key for key in _SECTIONS[section].model_fields if not _is_secret(key)]


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word.lower(), choices, n=1)
    return f"; did you mean {close[0]}?" if close else ""


def _unknown_key(section: str, key: str) -> str:
    known = _known_keys(section)
    return f"unknown key (known keys: {', '.join(known)}){_suggest(key, known)}"


def _unknown_section(name: str) -> str:
    known = sorted(_SECTIONS)
    return f"unknown section (known sections: {', '.join(known)}){_suggest(name, known)}"


def _unknown_top_level_key(key: str) -> str:
    homes = [f"[{section}] {key}" for section in sorted(_SECTIONS) if key in _known_keys(section)]
    hint = f"; did you mean {homes[0]}?" if homes else ""
    return f"unknown key outside any section (keys belong in a [section]: {', '.join(sorted(_SECTIONS))}){hint}"


def _file_sections(data: Mapping[Any, Any], source: str, problems: list[_Problem]) -> dict[str, dict[str, Any]]:
    """The known keys of the known sections; all else becomes a problem (secrets are reported apart)."""
    sections: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    for name, table in data.items():
        if not isinstance(name, str):
            problems.append(_Problem(source, None, f"keys must be strings, got {_show(name)}"))
        elif _is_secret(name):
            continue
        elif name not in _SECTIONS:
            problem = _unknown_section(name) if isinstance(table, Mapping) else _unknown_top_level_key(name)
            problems.append(_Problem(source, f"[{name}]" if isinstance(table, Mapping) else name, problem))
        elif not isinstance(table, Mapping):
            problems.append(_Problem(source, f"[{name}]", f"must be a table (a [{name}] section), got {_show(table)}"))
        else:
            for key, value in table.items():
                if not isinstance(key, str):
                    problems.append(_Problem(source, f"[{name}]", f"keys must be strings, got {_show(key)}"))
                elif _is_secret(key):
                    continue
                elif key not in _known_keys(name):
                    problems.append(_Problem(source, f"[{name}] {key}", _unknown_key(name, key)))
                else:
                    sections[name][key] = value
    return sections


def _wants_text(section: str, key: str) -> bool:
    annotation = _SECTIONS[section].model_fields[key].annotation
    if get_origin(annotation) is Literal:
        return all(isinstance(choice, str) for choice in get_args(annotation))
    return annotation in (str, Path)


def _env_value(raw: str, section: str, key: str) -> Any:
    """A variable's text as a TOML value when it is one (5000, true, ["a"]), else as the text itself."""
    try:
        parsed = tomllib.loads(f"v = {raw}")
    except (tomllib.TOMLDecodeError, RecursionError):
        return raw
    if set(parsed) != {"v"}:
        return raw
    value = parsed["v"]
    # An app key of digits or a folder named 2024 is text, whatever TOML would make of it.
    if _wants_text(section, key) and not isinstance(value, str):
        return raw
    return value


def _env_target(var: str) -> tuple[str, str] | str:
    """``(section, key)`` named by a TAOBAO_VIDEO__SECTION__KEY variable, or the problem with its name."""
    parts = var[len(OVERRIDE_PREFIX) :].split("__")
    if len(parts) != 2 or not all(parts):
        example = f"{OVERRIDE_PREFIX}QUOTA__DAILY_LIMIT"
        return f"not a settings override: expected {OVERRIDE_PREFIX}<SECTION>__<KEY>, e.g. {example}"
    section, key = parts[0].lower(), parts[1].lower()
    if section not in _SECTIONS:
        return f"[{section}]: {_unknown_section(section)}"
    if _is_secret(key):
        return f"not a settings override: the app secret is read from {APP_SECRET_ENV} only"
    if key not in _known_keys(section):
        return f"[{section}] {key}: {_unknown_key(section, key)}"
    return section, key


def _apply_env(
    sections: dict[str, dict[str, Any]],
    origins: dict[tuple[str, str], str],
    env: Mapping[str, str],
    problems: list[_Problem],
) -> None:
    """Layer the environment over the file's values, remembering which variable set which key."""
    for var in sorted(name for name in env if name.startswith(OVERRIDE_PREFIX)):
        target = _env_target(var)
        if isinstance(target, str):
            problems.append(_Problem(None, var, target))
            continue
        section, key = target
        sections[section][key] = _env_value(env[var], section, key)
        origins[target] = var
    app_key = (env.get(APP_KEY_ENV) or "").strip()
    if app_key:
        sections["taobao"]["app_key"] = app_key
        origins[("taobao", "app_key")] = APP_KEY_ENV
    secret = (env.get(APP_SECRET_ENV) or "").strip()
    sections["taobao"]["app_secret"] = SecretStr(secret) if secret else None
    apps = sections["taobao"].get("apps")
    if isinstance(apps, (list, tuple)):
        sections["taobao"]["apps"] = [_app_from_env(app, env) for app in apps]


def _app_from_env(app: Any, env: Mapping[str, str]) -> Any:
    """An ``[[taobao.apps]]`` entry with its key and secret from ``TAOBAO_APP_KEY_<NAME>``/``..._SECRET_<NAME>``."""
    if not isinstance(app, Mapping) or not isinstance(app.get("name"), str):
        return app  # validation reports the shape
    suffix = app_env_suffix(app["name"])
    entry = dict(app)
    key = (env.get(f"{APP_KEY_ENV}_{suffix}") or "").strip()
    if key:
        entry["app_key"] = key
    secret = (env.get(f"{APP_SECRET_ENV}_{suffix}") or "").strip()
    entry["app_secret"] = SecretStr(secret) if secret else None
    return entry


_TYPE_PROBLEMS = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "tuple_type": "must be an array",
    "list_type": "must be an array",
    "path_type": "must be a path",
    "model_type": "must be a table",
    "dict_type": "must be a table",
    "extra_forbidden": "unknown key",
}
_BOUND_PROBLEMS = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
}


def _describe(error: ErrorDetails) -> str:
    """One pydantic error as a sentence about the user's value."""
    kind, ctx, loc = error["type"], error.get("ctx") or {}, error["loc"]
    if kind == "settings":
        return str(ctx.get("problem", error["msg"]))
    got = f", got {_show(error['input'])}"
    if kind in _TYPE_PROBLEMS:
        return _TYPE_PROBLEMS[kind] + got
    if kind in _BOUND_PROBLEMS:
        bounds = {name: int(v) if isinstance(v, float) and v.is_integer() else v for name, v in ctx.items()}
        return _BOUND_PROBLEMS[kind].format(**bounds) + got
    if kind == "literal_error" and len(loc) >= 2 and loc[0] in _SECTIONS:
        choices = get_args(_SECTIONS[str(loc[0])].model_fields[str(loc[1])].annotation)
        return f"must be one of {' | '.join(map(str, choices))}{got}"
    return str(error["msg"]) + got


def _validation_problems(
    exc: ValidationError, source: str, origins: Mapping[tuple[str, str], str]
) -> Iterator[_Problem]:
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        problem = _describe(error)
        if len(loc) >= 2 and (loc[0], loc[1]) in origins:
            yield _Problem(None, origins[(loc[0], loc[1])], problem)
        elif len(loc) >= 2:
            yield _Problem(source, f"[{loc[0]}] {loc[1]}" + "".join(f"[{part}]" for part in loc[2:]), problem)
        else:
            yield _Problem(source, f"[{loc[0]}]" if loc else None, problem)


def _raise_problems(problems: list[_Problem]) -> NoReturn:
    if len(problems) == 1:
        only = problems[0]
        raise ConfigError(only.problem, file=only.file, key=only.key)
    lines = "\n".join(f"  {problem.line()}" for problem in problems)
    raise ConfigError(f"{len(problems)} problems in the settings:\n{lines}")


# ------------------------------------------------------------------------------------------------ the API


def settings_from_mapping(
    data: Mapping[str, Any],
    *,
    base_dir: str | os.PathLike[str] | None = None,
    source: str = "<settings>",
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Validate ``data`` (shaped like ``settings.toml``: ``{"taobao": {...}, "quota": {...}}``) into Settings.

    ``base_dir`` is the folder relative paths resolve against (default: the current directory), ``source`` the
    name used in messages. ``env`` defaults to *no* environment, so programmatic settings are exactly what the
    caller passes; pass ``os.environ`` to honour the variables. Raises ConfigError listing every problem.
    """
    env = {} if env is None else env
    base = Path(os.path.abspath(base_dir if base_dir is not None else Path.cwd()))
    if not isinstance(data, Mapping):
        raise ConfigError(f"settings must be a table of sections, got {_show(data)}", file=source)
    problems = list(_secret_problems(data, source))
    sections = _file_sections(data, source, problems)
    origins: dict[tuple[str, str], str] = {}
    _apply_env(sections, origins, env, problems)
    payload = {"source": source, "base_dir": base, **sections}
    try:
        settings = Settings.model_validate(payload, context={"base_dir": base})
    except ValidationError as exc:
        _raise_problems([*problems, *_validation_problems(exc, source, origins)])
    if problems:
        _raise_problems(problems)
    return settings


def _read_toml(file: Path) -> dict[str, Any]:
    source = str(file)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"settings file not found: {file} (pass --config PATH or set {CONFIG_ENV})") from None
    except IsADirectoryError:
        raise ConfigError(f"settings file is a directory, not a file: {file}") from None
    except PermissionError:
        raise ConfigError(f"cannot read settings file {file}: permission denied") from None
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {file}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")  # tolerate the BOM some Windows editors write
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"not UTF-8 text: invalid byte 0x{raw[exc.start]:02x} on line {line}", file=source) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", file=source) from None
    except RecursionError:
        raise ConfigError("invalid TOML: values nested too deeply", file=source) from None


def load_settings(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings file and the environment into a validated, frozen Settings.

    ``path`` None means ``$TAOBAO_VIDEO_CONFIG``, else ``./settings.toml``; ``env`` defaults to
    ``os.environ``.
    Relative paths in the file resolve against the file's folder. Raises ConfigError (exit 78) naming the
    file, the key and the problem, all problems at once.
    """
    env = os.environ if env is None else env
    if path is None:
        path = env.get(CONFIG_ENV) or DEFAULT_FILE
    try:
        file = Path(os.path.abspath(Path(path).expanduser()))
    except RuntimeError:
        raise ConfigError(f"cannot expand the home folder in the settings path {os.fspath(path)!r}") from None
    return settings_from_mapping(_read_toml(file), base_dir=file.parent, source=str(file), env=env)
