"""The settings models: one frozen pydantic class per ``[section]`` of ``settings.toml``, and :class:`Settings`.

To add a key, add one ``Field`` line to its section class; to add a section, write its class and add one line
to :class:`Settings`. Known keys, suggestions and environment overrides follow from the models
(:mod:`~taobao_video.config.load`). Build a Settings with :func:`~taobao_video.config.load.load_settings` or
:func:`~taobao_video.config.load.settings_from_mapping`, which turn a validation error into the user's message.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from taobao_video.config.base import FrozenModel, SectionModel
from taobao_video.config.checks import (
    below_daily_limit,
    clean_app_key,
    database_url,
    host_patterns,
    http_url,
    invalid,
    mask_url_password,
    resolve_path,
    show,
)
from taobao_video.config.names import (
    APP_KEY_ENV,
    APP_SECRET_ENV,
    DEFAULT_DATABASE_URL,
    DEFAULT_TIMEZONE,
    ProviderName,
    app_env_suffix,
    known_time_zone,
)
from taobao_video.config.services import GatewaySettings, MetricsSettings, NotifySettings, S3Settings
from taobao_video.errors import ConfigError
from taobao_video.storage.base import is_object_url, split_object_url

SPOOL_DIR = "data/spool"  # with dir = "s3://…": where downloads wait for their upload, beside the settings file


_APP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")


class AppSettings(FrozenModel):
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
            raise invalid(f"must be 1-32 letters, digits, - or _ (it names the app in messages), got {show(value)}")
        return value

    @field_validator("app_key")
    @classmethod
    def _check_app_key(cls, value: str) -> str:
        return clean_app_key(value)

    @field_validator("token_file", mode="before")
    @classmethod
    def _check_token_file(cls, value: Any, info: ValidationInfo) -> Path | None:
        return None if value is None else resolve_path(value, info)


class TaobaoSettings(SectionModel):
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
    # Warn this many days before the authorisation runs out for good (auth status, quota status, every daily).
    token_warn_days: int = Field(3, ge=0, le=365)
    simplify: bool = False
    item_video_duration_unit: Literal["ms", "s"] = "ms"
    item_get_fields: str = "num_iid,title,nick,pic_url,video,mpic_video"
    timeout_s: float = Field(20.0, gt=0, allow_inf_nan=False)
    max_retries: int = Field(4, ge=0, le=20)
    max_ban_wait_s: int = Field(120, ge=0)
    # Consecutive attempts that fail to reach the gateway before a run stops with exit 75 (gateway unreachable):
    # past a few, the network or the gateway is down and every further id would only fail the same way.
    breaker_failures: int = Field(5, ge=1, le=100)
    apps: tuple[AppSettings, ...] = ()  # several app keys, each with its own quota; empty: app_key above
    # Which channel resolves ids (README "Choosing a provider"): item = item_video/item.get one id a call;
    # seller = the authorised seller's own items, 20 a call, plus alibaba.video.query per new video;
    # gateway = the item-data service of [gateway].
    provider: ProviderName = "item"
    seller_batch_size: int = Field(20, ge=1, le=20)  # ids per taobao.items.seller.list.get call (20 at most)
    seller_video_url: Literal["player", "mp4"] = "player"  # mp4: videos.video[].url is playable, skip the query

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
                raise invalid(f"each app needs its own {what}; repeated: {', '.join(repeated)}")
        return value

    @field_validator("gateway_url", "oauth_url", mode="before")
    @classmethod
    def _check_url(cls, value: Any) -> str:
        return http_url(value)

    @field_validator("redirect_uri", mode="before")
    @classmethod
    def _check_redirect_uri(cls, value: Any) -> str:
        return http_url(value, fragment_ok=False)

    @field_validator("token_file", mode="before")
    @classmethod
    def _check_path(cls, value: Any, info: ValidationInfo) -> Path:
        return resolve_path(value, info)

    @field_validator("app_key")
    @classmethod
    def _check_app_key(cls, value: str) -> str:
        return clean_app_key(value)

    @field_validator("session_param")
    @classmethod
    def _check_param_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise invalid(f"must be a request parameter name such as session, got {show(value)}")
        return value

    @field_validator("item_get_fields")
    @classmethod
    def _check_fields(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",")]
        if not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name) for name in names):
            raise invalid(f"must be comma-separated field names such as num_iid,title,video, got {show(value)}")
        return ",".join(names)


class QuotaSettings(SectionModel):
    """``[quota]``: the app's daily call quota and the day it is counted in."""

    daily_limit: int = Field(1000, ge=1)
    reserve: int = Field(0, ge=0)
    timezone: str = DEFAULT_TIMEZONE

    @field_validator("reserve")
    @classmethod
    def _check_reserve(cls, value: int, info: ValidationInfo) -> int:
        return below_daily_limit(value, info)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        if not known_time_zone(value):
            raise invalid(f"unknown time zone {show(value)} (use an IANA name such as Asia/Shanghai)")
        return value

    @property
    def tz(self) -> ZoneInfo:
        """The quota day's time zone."""
        return ZoneInfo(self.timezone)


class DownloadSettings(SectionModel):
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
    # A run looks nothing up unless the videos folder has this much free space (checked before the first call
    # and before each lookup), so no call is spent on a video that could not be stored.
    min_free_mb: float = Field(64.0, ge=0, allow_inf_nan=False)
    user_agent: str = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
    )
    referer: str = "https://item.taobao.com/"
    # Where the folder holding videos/ and covers/ is published (a web server, a bucket's site): exports and the
    # API then carry video_public_url and cover_public_url (store/public.py). Empty: none.
    public_url_prefix: str | None = None

    @field_validator("public_url_prefix", mode="before")
    @classmethod
    def _check_prefix(cls, value: Any) -> str | None:
        from taobao_video.config.names import public_prefix

        try:
            return public_prefix(value)
        except ValueError as exc:
            raise invalid(str(exc)) from None

    # dir = "s3://BUCKET/PREFIX": videos go to object storage ([s3]); ``dir`` is then the local spool where a
    # download waits for its upload (SPOOL_DIR beside the settings file) and ``object_url`` names the bucket.
    _object_url: str | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _object_storage(cls, data: Any, handler: ModelWrapValidatorHandler[DownloadSettings]) -> DownloadSettings:
        url = data.get("dir") if isinstance(data, dict) else None
        if not (isinstance(url, str) and is_object_url(url)):
            return handler(data)
        try:
            bucket, prefix = split_object_url(url)
        except ConfigError:
            return handler(data)  # the field's own check says what is wrong, under its key (file or variable)
        model = handler({**data, "dir": SPOOL_DIR})
        model._object_url = f"s3://{bucket}/{prefix}".rstrip("/")
        return model

    @property
    def object_url(self) -> str | None:
        """``s3://BUCKET/PREFIX`` when videos go to object storage, else None (the folder ``dir``)."""
        return self._object_url

    @field_validator("dir", mode="before")
    @classmethod
    def _check_dir(cls, value: Any, info: ValidationInfo) -> Path:
        if isinstance(value, str) and is_object_url(value):  # a bad s3:// URL (a good one never gets here)
            try:
                split_object_url(value)
            except ConfigError as exc:
                raise invalid(f"{value!r}: " + str(exc).removeprefix("download.dir: ")) from None
        return resolve_path(value, info)

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _check_hosts(cls, value: Any) -> tuple[str, ...]:
        return host_patterns(value)


class HarvestSettings(SectionModel):
    """``[harvest]``: how the job paces lookups and what it does not ask again."""

    qps: float = Field(2.0, gt=0, allow_inf_nan=False)
    no_video_ttl_days: float = Field(30.0, ge=0, le=36500, allow_inf_nan=False)
    duration_tolerance_s: float = Field(1.5, ge=0, allow_inf_nan=False)
    lock_file: Path = Path("data/harvest.lock")
    # How long a worker's claim on queued ids holds without renewal (claims.py): a dead worker's ids go to the
    # others after this long. Renewed every third of it, so it must outlast a database hiccup; a day at most.
    lease_s: float = Field(600.0, ge=3, le=86_400, allow_inf_nan=False)
    # The share of the calls left after the queue's need (pending ids) that a refresh may spend re-checking
    # downloaded items (jobs/refresh.py); daily refreshes with it after its own work. 0: never refresh.
    refresh_share: float = Field(0.2, ge=0, le=1, allow_inf_nan=False)
    # Re-check items last checked this long ago (at most a century: a longer age is a typo).
    refresh_after_days: float = Field(30.0, ge=0, le=36500, allow_inf_nan=False)

    @field_validator("lock_file", mode="before")
    @classmethod
    def _check_lock_file(cls, value: Any, info: ValidationInfo) -> Path:
        return resolve_path(value, info)


class DatabaseSettings(SectionModel):
    """``[database]``: the catalog's SQLAlchemy URL."""

    url: str = DEFAULT_DATABASE_URL

    @field_validator("url", mode="before")
    @classmethod
    def _check_url(cls, value: Any, info: ValidationInfo) -> str:
        return database_url(value, info)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, mask_url_password(value) if name == "url" and isinstance(value, str) else value


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


class Settings(FrozenModel):
    """Everything the tool is configured with; build it with :func:`~taobao_video.config.load.load_settings` or
    :func:`~taobao_video.config.load.settings_from_mapping`.

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
    metrics: MetricsSettings
    notify: NotifySettings
    gateway: GatewaySettings
    s3: S3Settings

    @model_validator(mode="after")
    def _check_app_quotas(self) -> Settings:
        for app in self.taobao.apps:
            limit = app.daily_limit or self.quota.daily_limit
            reserve = self.quota.reserve if app.reserve is None else app.reserve
            if reserve >= limit:
                raise invalid(
                    f"[[taobao.apps]] {app.name}: reserve ({reserve}) must be less than daily_limit ({limit})"
                )
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


def _section_models() -> dict[str, type[SectionModel]]:
    sections = {}
    for name, field in Settings.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, SectionModel):
            sections[name] = field.annotation
    return sections


SECTIONS = _section_models()  # "taobao" → TaobaoSettings…: the sections and keys a settings file may hold
