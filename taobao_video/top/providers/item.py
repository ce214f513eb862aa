"""The ``item`` provider: ``taobao.item_video`` / ``taobao.item.get``, one id per call, over every configured app
(today's behaviour: ``api_method`` and its fallback live in :class:`~taobao_video.top.lookup.ItemLookup`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from taobao_video.top.lookup import ITEM_GET, ITEM_VIDEO, LookupResult
from taobao_video.top.providers.base import Pace


class Resolver(Protocol):
    def lookup(self, num_iid: int) -> LookupResult: ...


class ItemProvider:
    """One call per id through ``resolver`` (an :class:`~taobao_video.top.apps.AppPool` or an ItemLookup)."""

    name: str = "item"
    batch_size: int = 1
    calls: tuple[str, ...] = (ITEM_VIDEO, ITEM_GET)

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver

    def ids_for(self, calls: int) -> int:
        return max(0, calls)

    def forget(self, video_id: str) -> None:
        """Nothing to forget: every lookup asks the platform afresh."""

    def resolve(self, ids: Sequence[int], *, pace: Pace) -> Iterator[LookupResult]:
        for num_iid in ids:
            pace()
            yield self.resolver.lookup(num_iid)
