"""``demo --provider``: the sandbox set up for each provider, and the line that shows its economy (calls per id)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from taobao_video.config.names import GATEWAY_KEY_ENV, GATEWAY_SECRET_ENV
from taobao_video.sandbox import Sandbox, VendorKey
from taobao_video.sandbox.products import Catalogue

DEMO_SHOP = "沙箱小店"  # the shop that authorises the demo app (seller provider)
OTHER_SHOP = "隔壁小店"
DEMO_GATEWAY_KEY = "demo-key"  # the sandbox vendor's public demo credentials
DEMO_GATEWAY_SECRET = "demo-secret"
LIST, QUERY = "taobao.items.seller.list.get", "alibaba.video.query"


@dataclass(frozen=True)
class DemoSetup:
    """What a provider's demo changes: the sandbox's config, the settings' sections and the environment."""

    sandbox: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    oauth: bool = True  # the provider needs the OAuth session


def setup(provider: str, catalogue: Catalogue, ids: list[int]) -> DemoSetup:
    """The sandbox and settings for ``provider``: for ``seller``, a shop holding most of ``ids`` (every fifth
    belongs to another shop) with two items sharing one video; for ``gateway``, a vendor key."""
    if provider == "seller":
        others = ids[4::5]
        own = [num_iid for num_iid in ids if num_iid not in others]
        videos = [num_iid for num_iid in own if catalogue.kind(num_iid) == "video"]
        shared = {videos[1]: videos[0]} if len(videos) > 1 else {}
        return DemoSetup(
            sandbox={
                "shops": {DEMO_SHOP: tuple(own), OTHER_SHOP: tuple(others)},
                "shared_videos": shared,
                "user_nick": DEMO_SHOP,
            },
            settings={"taobao": {"provider": "seller"}},
        )
    if provider == "gateway":
        return DemoSetup(
            sandbox={"vendor_keys": (VendorKey(DEMO_GATEWAY_KEY, DEMO_GATEWAY_SECRET, daily_limit=1000),)},
            settings={"taobao": {"provider": "gateway"}, "gateway": {"params": {"cache": "no"}}},
            env={GATEWAY_KEY_ENV: DEMO_GATEWAY_KEY, GATEWAY_SECRET_ENV: DEMO_GATEWAY_SECRET},
            oauth=False,
        )
    return DemoSetup()


def economy(provider: str, sandbox: Sandbox, ids: int) -> str:
    """What the first harvest cost, from the sandbox's own counters: calls per id."""
    stats = sandbox.stats()
    if provider == "gateway":
        vendor = stats["itemdata"]
        calls, detail = vendor["charged"], f"{vendor['requests']} requests, {vendor['charged']} charged"
    else:
        gateway = stats["gateway"]
        calls, by_method = gateway["calls"], gateway["by_method"]
        detail = ", ".join(f"{count} {method}" for method, count in sorted(by_method.items()))
    return f"Provider {provider}: {calls} calls for {ids} ids = {calls / max(1, ids):.2f} calls per id ({detail})."
