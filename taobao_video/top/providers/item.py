"""The ``item`` provider: ``taobao.item_video`` / ``taobao.item.get``, one id per call, over every configured app
(today's behaviour: ``api_method`` and its fallback live in :class:`~taobao_video.top.lookup.ItemLookup`)."""

from __future__ import annotations

from typing import Protocol

from taobao_video.top.lookup import ITEM_GET, ITEM_VIDEO, LookupResult
from taobao_video.top.providers.base import OneIdPerCall


class Resolver(Protocol):
    def lookup(self, num_iid: int) -> LookupResult: ...


class ItemProvider(OneIdPerCall):
    """One call per id through ``resolver`` (an :class:`~taobao_video.top.apps.AppPool` or an ItemLookup)."""

    name: str = "item"
    calls: tuple[str, ...] = (ITEM_VIDEO, ITEM_GET)

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver

    def lookup(self, num_iid: int) -> LookupResult:
        return self.resolver.lookup(num_iid)
