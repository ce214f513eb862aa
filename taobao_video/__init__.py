"""taobao-video: a quota-aware, resumable harvester of Taobao product main-image videos.

The public API (``import taobao_video as tv``)::

    tv.load_settings(path=None) -> Settings
    tv.harvest(ids, settings=…, force=False, workers=None, on_event=None, on_bytes=None, stop=None) -> HarvestReport
    tv.daily(settings=…, max_calls=None, workers=None, on_event=None, …) -> DailyReport
    tv.lookup(ids, settings=…, on_event=None) -> list[LookupResult]
    tv.refresh(settings=…, older_than_days=None, max_calls=None, prune=False, on_event=None) -> RefreshReport
    tv.open_catalog(settings=…) -> Catalog
    tv.TaobaoVideoError and its subclasses (each with an exit_code)

The functions load lazily (``taobao_video.api``): importing the package costs only the exception tree, so the
command line's quick paths stay quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from taobao_video.errors import (
    ApiError,
    AuthError,
    CatalogDamaged,
    ConfigError,
    DownloadError,
    LockHeldError,
    QuotaExceeded,
    QuotaExhausted,
    TaobaoVideoError,
    TransportError,
    UsageError,
)

if TYPE_CHECKING:
    from taobao_video.api import daily, harvest, load_settings, lookup, open_catalog, refresh

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "AuthError",
    "CatalogDamaged",
    "ConfigError",
    "DownloadError",
    "LockHeldError",
    "QuotaExceeded",
    "QuotaExhausted",
    "TaobaoVideoError",
    "TransportError",
    "UsageError",
    "__version__",
    "daily",
    "harvest",
    "load_settings",
    "lookup",
    "open_catalog",
    "refresh",
]

_API = frozenset({"daily", "harvest", "load_settings", "lookup", "open_catalog", "refresh"})


def __getattr__(name: str) -> Any:
    if name in _API:
        from taobao_video import api

        return getattr(api, name)
    raise AttributeError(f"module 'taobao_video' has no attribute {name!r}")
