"""The settings of what a run talks to besides the platform and its own disk: ``[gateway]`` (an item-data
service), ``[s3]`` (object storage), ``[metrics]`` and ``[notify]``. One frozen model per section, as in
``models.py``, which puts them in :class:`~taobao_video.config.models.Settings`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from taobao_video.config.base import SectionModel
from taobao_video.config.checks import below_daily_limit, http_url, invalid, resolve_path, show
from taobao_video.config.names import GATEWAY_KEY_ENV, GATEWAY_SECRET_ENV, URL_SCHEME
from taobao_video.errors import ConfigError
from taobao_video.storage.base import S3Options


class GatewaySettings(SectionModel):
    """``[gateway]``: a third-party item-data service (top-protocol.md §10); the key and secret come only from
    ``TAOBAO_GATEWAY_KEY`` and ``TAOBAO_GATEWAY_SECRET``."""

    url: str = ""  # the full item endpoint, e.g. https://vendor.example/taobao/item_get/ (needed by provider gateway)
    key: SecretStr | None = None  # only from the environment (TAOBAO_GATEWAY_KEY)
    secret: SecretStr | None = None  # only from the environment (TAOBAO_GATEWAY_SECRET)
    daily_limit: int = Field(1000, ge=1)
    reserve: int = Field(0, ge=0)
    params: tuple[tuple[str, str], ...] = ()  # extra query parameters, written as a table: { cache = "no" }
    timeout_s: float = Field(20.0, gt=0, allow_inf_nan=False)

    @field_validator("url", mode="before")
    @classmethod
    def _check_url(cls, value: Any) -> str:
        return "" if value == "" else http_url(value)

    @field_validator("reserve")
    @classmethod
    def _check_reserve(cls, value: int, info: ValidationInfo) -> int:
        return below_daily_limit(value, info)

    @field_validator("params", mode="before")
    @classmethod
    def _check_params(cls, value: Any) -> tuple[tuple[str, str], ...]:
        if isinstance(value, tuple):
            return value
        if not isinstance(value, dict):
            raise invalid(f'must be a table of text values such as {{ cache = "no" }}, got {show(value)}')
        not_text = [name for name, text in value.items() if not isinstance(text, str)]
        if not_text:
            name = not_text[0]
            raise invalid(f'{name} must be text, such as {name} = "{value[name]}", got {show(value[name])}')
        if "num_iid" in value:
            raise invalid("must not set num_iid: each request names its own item")
        clash = sorted({"key", "secret"} & set(value))
        if clash:
            raise invalid(f"must not set {' and '.join(clash)} (they come from {GATEWAY_KEY_ENV} and _SECRET)")
        return tuple(sorted(value.items()))

    def credentials(self, source: str) -> tuple[str, str]:
        """The vendor key and secret, or a ConfigError naming the variables (or the url) to set."""
        if not self.url:
            raise ConfigError("taobao.provider is gateway but [gateway] url is empty", file=source, key="[gateway] url")
        pairs = ((GATEWAY_KEY_ENV, self.key), (GATEWAY_SECRET_ENV, self.secret))
        _require(pairs, source)
        assert self.key is not None and self.secret is not None
        return self.key.get_secret_value(), self.secret.get_secret_value()

    def key_only(self, source: str) -> str:
        """The vendor key alone, for reading its quota ledger (which is named after the key): a read command needs
        neither the secret nor the url. A ConfigError names the variable when it is not set."""
        _require(((GATEWAY_KEY_ENV, self.key),), source)
        assert self.key is not None
        return self.key.get_secret_value()


def _require(pairs: tuple[tuple[str, SecretStr | None], ...], source: str) -> None:
    missing = [name for name, value in pairs if value is None]
    if missing:
        raise ConfigError(
            f"taobao.provider is gateway but {' and '.join(missing)} is not set in the environment", file=source
        )


class S3Settings(SectionModel):
    """``[s3]``: the S3 API used when ``download.dir = "s3://BUCKET/PREFIX"``. Credentials are not settings: boto3
    reads the AWS environment variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``), ``~/.aws`` or a role."""

    endpoint_url: str = ""  # empty: AWS; MinIO/SeaweedFS/OSS: their URL
    region: str = "us-east-1"
    addressing_style: Literal["auto", "virtual", "path"] = "auto"  # Aliyun OSS accepts only "virtual"

    @field_validator("endpoint_url")
    @classmethod
    def _check_endpoint(cls, value: str) -> str:
        if value and not re.fullmatch(r"https?://[^\s/?#]+/?", value):
            raise invalid(f"must be an http(s)://host[:port] URL or empty (AWS), got {value!r}")
        return value.rstrip("/")

    def options(self) -> S3Options:
        return S3Options(endpoint_url=self.endpoint_url, region=self.region, addressing_style=self.addressing_style)


class MetricsSettings(SectionModel):
    """``[metrics]``: Prometheus text-format metrics rewritten at the end of every run (node_exporter's textfile
    collector reads them); empty: none."""

    textfile: Path | None = None

    @field_validator("textfile", mode="before")
    @classmethod
    def _check_textfile(cls, value: Any, info: ValidationInfo) -> Path | None:
        return None if value in (None, "") else resolve_path(value, info)


NOTIFY_EVENTS = ("failure", "auth", "quota_platform", "token_expiring", "summary")


class NotifySettings(SectionModel):
    """``[notify]``: where a harvest or daily run sends its one end-of-run message (Apprise URLs), and for which
    events (ops/notify.py). URLs from ``TAOBAO_VIDEO_NOTIFY_URLS`` are added to these; all are kept secret."""

    urls: tuple[SecretStr, ...] = ()
    on: tuple[Literal["failure", "auth", "quota_platform", "token_expiring", "summary"], ...] = (
        "failure",
        "auth",
        "quota_platform",
        "token_expiring",
    )
    # A run notifies "failure" when more ids than this failed (0: any failed id).
    failure_threshold: int = Field(0, ge=0)
    timeout_s: float = Field(10.0, gt=0, le=300, allow_inf_nan=False)

    @field_validator("urls", mode="before")
    @classmethod
    def _check_urls(cls, value: Any) -> tuple[SecretStr, ...]:
        # Never echo a value here: Apprise URLs carry tokens and passwords.
        if not isinstance(value, (list, tuple)):
            raise invalid('must be an array of Apprise URLs, e.g. ["json://host/path"]')
        urls = []
        for url in value:
            text = url.get_secret_value() if isinstance(url, SecretStr) else url
            if not isinstance(text, str) or not URL_SCHEME.match(text.strip()):
                raise invalid("each entry must be an Apprise URL such as json://host/path (scheme://...)")
            urls.append(SecretStr(text.strip()))
        return tuple(urls)

    @field_validator("on", mode="before")
    @classmethod
    def _check_on(cls, value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            raise invalid(f"must be an array of events, e.g. {show(list(NOTIFY_EVENTS[:2]))}")
        unknown = [event for event in value if event not in NOTIFY_EVENTS]
        if unknown:
            raise invalid(f"unknown event {show(unknown[0])} (known: {', '.join(NOTIFY_EVENTS)})")
        return tuple(value)
