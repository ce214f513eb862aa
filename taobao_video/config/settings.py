"""The old home of the settings, kept while branches written against it merge: the names now live in
:mod:`~taobao_video.config.names` (variables, the secret rule), :mod:`~taobao_video.config.models` (the
models) and :mod:`~taobao_video.config.load` (reading them). Import from those; this module goes once nothing
imports it.
"""

from taobao_video.config.load import load_settings, settings_from_mapping
from taobao_video.config.models import (
    DEFAULT_APP,
    AppSettings,
    AppSpec,
    DatabaseSettings,
    DownloadSettings,
    HarvestSettings,
    QuotaSettings,
    Settings,
    TaobaoSettings,
)
from taobao_video.config.names import (
    APP_KEY_ENV,
    APP_SECRET_ENV,
    CONFIG_ENV,
    DEFAULT_FILE,
    OVERRIDE_PREFIX,
    app_env_suffix,
)

__all__ = [
    "APP_KEY_ENV",
    "APP_SECRET_ENV",
    "CONFIG_ENV",
    "DEFAULT_APP",
    "DEFAULT_FILE",
    "OVERRIDE_PREFIX",
    "AppSettings",
    "AppSpec",
    "DatabaseSettings",
    "DownloadSettings",
    "HarvestSettings",
    "QuotaSettings",
    "Settings",
    "TaobaoSettings",
    "app_env_suffix",
    "load_settings",
    "settings_from_mapping",
]
