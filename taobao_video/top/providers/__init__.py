"""Item providers: the channels a num_iid's video can be reached through (top-protocol.md §8, §10).

``item`` (``taobao.item_video`` / ``taobao.item.get``, one id a call), ``seller`` (``taobao.items.seller.list.get``
in batches plus ``alibaba.video.query`` per distinct video) and ``gateway`` (a third-party item-data service).
Each resolves a batch of ids into :class:`~taobao_video.top.lookup.LookupResult`; see :mod:`.base`.
"""

from taobao_video.top.providers.base import Provider

__all__ = ["Provider"]
