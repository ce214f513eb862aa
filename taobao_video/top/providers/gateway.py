"""The ``gateway`` provider: any item's video through a third-party item-data gateway, one id per call.

The item's ``video`` is an object ``{"url": ...}`` when there is one and ``[]`` when there is none; URLs may be
scheme-less (``//cloud.video.taobao.com/...``). The vendor's "no such item" (2000) is a normal ``not_found``; its
quota error (4013) marks the gateway's own ledger spent until the next quota day.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from taobao_video.errors import ItemNotFound, QuotaExceeded, QuotaExhausted
from taobao_video.model import LookupOutcome
from taobao_video.top.itemdata import METHOD, ItemDataClient
from taobao_video.top.lookup import LookupResult, VideoInfo, _int, _number, _text
from taobao_video.top.providers.base import OneIdPerCall


class GatewayProvider(OneIdPerCall):
    """One vendor call per id."""

    name: str = "gateway"
    calls: tuple[str, ...] = (METHOD,)

    def __init__(
        self, client: ItemDataClient, *, on_spent: Callable[[QuotaExceeded], QuotaExhausted] | None = None
    ) -> None:
        self.client = client
        self.on_spent = on_spent

    def lookup(self, num_iid: int) -> LookupResult:
        try:
            item, request_id = self.client.item(num_iid)
        except ItemNotFound as exc:
            return LookupResult(num_iid, LookupOutcome.NOT_FOUND, METHOD, request_id=exc.request_id, detail=exc.msg)
        except QuotaExceeded as exc:
            if self.on_spent is None:
                raise
            raise self.on_spent(exc) from None
        return self._result(num_iid, item, request_id)

    def _result(self, num_iid: int, item: dict[str, Any], request_id: str) -> LookupResult:
        video = item.get("video")
        if isinstance(video, list):  # [] when there is none; a list of one from some clones
            video = video[0] if video else None
        url = _text(video.get("url")) if isinstance(video, dict) else ""
        if not url:
            return LookupResult(num_iid, LookupOutcome.NO_VIDEO, METHOD, request_id=request_id)
        assert isinstance(video, dict)
        duration = _number(video.get("duration"))
        cover = _text(video.get("cover_url") or video.get("pic_url"))
        info = VideoInfo(
            num_iid=num_iid,
            url=self.client.absolute(url),
            cover_url=self.client.absolute(cover) if cover else None,
            duration=duration if duration and duration > 0 else None,
            width=_int(video.get("width")),
            height=_int(video.get("height")),
            api_method=METHOD,
            title=_text(item.get("title")) or None,
            nick=_text(item.get("nick")) or None,
            video_id=_text(str(video.get("video_id") or "")) or None,
        )
        return LookupResult(num_iid, LookupOutcome.VIDEO, METHOD, video=info, request_id=request_id)
