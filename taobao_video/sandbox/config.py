"""What a sandbox emulates: its apps, lifetimes, catalogue sizes, faults and clock. Frozen values."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from taobao_video.sandbox.clock import utc_now
from taobao_video.sandbox.faults import Fault

ITEM_VIDEO = "taobao.item_video"
ITEM_GET = "taobao.item.get"
TIME_GET = "taobao.time.get"  # the platform's clock: every app may call it, no session needed
LIST_METHOD = "taobao.items.seller.list.get"  # the seller channel (seller.py)
QUERY_METHOD = "alibaba.video.query"
KNOWN_METHODS: frozenset[str] = frozenset({ITEM_VIDEO, ITEM_GET, LIST_METHOD, QUERY_METHOD})


@dataclass(frozen=True)
class AppConfig:
    """One app registered on the platform.

    ``daily_limit`` None means no daily quota (calls are still counted); ``qps`` None means no frequency
    limit. ``methods`` are the APIs the app has permission for (others answer code 11).
    ``client_credentials`` allows that grant (undocumented by Taobao, offered by TOP-compatible gateways).
    """

    key: str = "test"
    secret: str = "test"
    daily_limit: int | None = None
    qps: int | None = None
    methods: frozenset[str] = KNOWN_METHODS
    client_credentials: bool = True

    def __post_init__(self) -> None:
        if not self.key or not self.secret:
            raise ValueError("an app needs a non-empty key and secret")
        if self.daily_limit is not None and self.daily_limit < 0:
            raise ValueError(f"daily_limit must be >= 0 or None, not {self.daily_limit}")
        if self.qps is not None and self.qps < 1:
            raise ValueError(f"qps must be >= 1 or None, not {self.qps}")
        object.__setattr__(self, "methods", frozenset(self.methods))


@dataclass(frozen=True)
class VendorKey:
    """A key of the emulated item-data gateway: its secret and its daily limit (None: no limit)."""

    key: str
    secret: str
    daily_limit: int | None = None


@dataclass(frozen=True)
class SandboxConfig:
    """The whole emulated platform. ``clock`` returns aware UTC (default: real time).

    ``platform_methods`` are the APIs the platform offers at all (others answer code 22);
    ``item_video_api=False`` is shorthand for a platform without ``taobao.item_video`` (the official gateway,
    where that third-party API does not exist).
    ``video_size_override`` maps a num_iid to a video size in bytes and makes that item a video item (for
    the 1 GiB download test and benchmarks). ``shared_videos`` maps an item to a video item whose stored video
    (``video_id``, file, cover) it uses too, as a shop reusing one video for many items does. ``video_changes``
    maps an item to the moment (aware UTC, on ``clock``) its seller replaces its video: from then on lookups give
    a new ``video_id``, duration and file. ``video_losses`` and ``video_gains`` map an item to the moment a video
    item loses its video, or an item without one gains one.
    """

    seed: int = 0
    apps: tuple[AppConfig, ...] = (AppConfig(),)
    require_session: bool = True
    session_params: tuple[str, ...] = ("session", "access_token")
    token_ttl_s: int = 86400
    refresh_ttl_s: int = 30 * 86400
    code_ttl_s: int = 1800
    signed_url_ttl_s: int = 3600
    timestamp_skew_s: int = 600
    video_bytes: tuple[int, int] = (64 * 1024, 512 * 1024)
    video_size_override: Mapping[int, int] = field(default_factory=dict)
    shared_videos: Mapping[int, int] = field(default_factory=dict)
    video_changes: Mapping[int, datetime] = field(default_factory=dict)
    video_losses: Mapping[int, datetime] = field(default_factory=dict)
    video_gains: Mapping[int, datetime] = field(default_factory=dict)
    faults: tuple[Fault, ...] = ()
    clock: Callable[[], datetime] = utc_now
    platform_methods: frozenset[str] = KNOWN_METHODS
    item_video_api: bool = True
    deny_authorize: bool = False
    user_nick: str = "沙箱买家"
    # The seller channel (seller.py): shop nick -> its items; whether a listed videos.video[].url is a player
    # page or the MP4 itself.
    shops: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    seller_url_style: str = "player"
    # The item-data gateway (itemdata.py): its keys, and ids answered with a transient 4002 so many times first.
    vendor_keys: tuple[VendorKey, ...] = ()
    vendor_transient: Mapping[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        low, high = self.video_bytes
        if not 0 < low <= high:
            raise ValueError(f"video_bytes must be (min, max) with 0 < min <= max, not {self.video_bytes}")
        keys = [app.key for app in self.apps]
        if len(set(keys)) != len(keys):
            raise ValueError(f"app keys must be unique: {keys}")
        if self.token_ttl_s <= 0 or self.refresh_ttl_s < 0 or self.signed_url_ttl_s <= 0:
            raise ValueError("token_ttl_s and signed_url_ttl_s must be > 0, refresh_ttl_s >= 0")
        object.__setattr__(self, "apps", tuple(self.apps))
        object.__setattr__(self, "faults", tuple(self.faults))
        object.__setattr__(self, "session_params", tuple(self.session_params))
        platform = frozenset(self.platform_methods)
        object.__setattr__(self, "platform_methods", platform if self.item_video_api else platform - {ITEM_VIDEO})
        object.__setattr__(self, "video_size_override", MappingProxyType(dict(self.video_size_override)))
        object.__setattr__(self, "shops", MappingProxyType({k: tuple(v) for k, v in self.shops.items()}))
        object.__setattr__(self, "shared_videos", MappingProxyType(dict(self.shared_videos)))
        object.__setattr__(self, "vendor_keys", tuple(self.vendor_keys))
        object.__setattr__(self, "vendor_transient", MappingProxyType(dict(self.vendor_transient)))
        if self.seller_url_style not in ("player", "mp4"):
            raise ValueError(f"seller_url_style must be player or mp4, not {self.seller_url_style!r}")

    def app(self, key: str) -> AppConfig | None:
        """The app with this key, or None."""
        for app in self.apps:
            if app.key == key:
                return app
        return None
