"""The seller channel (top-protocol.md §10): ``taobao.items.seller.list.get`` and ``alibaba.video.query``.

A shop is a seller nick with its items (``SandboxConfig.shops``; an item in no listed shop belongs to the nick the
catalogue gave it). The session says which shop is asking (the token's user nick), and a list call answers only
that shop's existing items: every other id (another shop's, unknown, deleted) is silently left out, and when
nothing matches ``items`` is left out too. At most 20 ids a call (code 41 otherwise, as the official SDK says).
An item's ``videos.video[].url`` is a player page (``seller_url_style="player"``) or the MP4 itself (``"mp4"``);
``alibaba.video.query`` takes one ``video_id`` and answers ``play_url``, ``cover_url``, ``duration`` (whole
seconds), ``width``, ``height``. ``SandboxConfig.shared_videos`` lets an item show another item's video, so one
``video_id`` backs several items.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from taobao_video.sandbox.config import LIST_METHOD, QUERY_METHOD, SandboxConfig
from taobao_video.sandbox.products import Catalogue, Item, num_iid_in
from taobao_video.sandbox.render import TopError
from taobao_video.sandbox.urls import Urls

MAX_IDS = 20


class SellerChannel:
    """Answers the two seller methods for the shop whose session asks."""

    def __init__(self, config: SandboxConfig, catalogue: Catalogue, urls: Urls) -> None:
        self._config = config
        self._catalogue = catalogue
        self._urls = urls
        self._shop_of = {num_iid: nick for nick, ids in config.shops.items() for num_iid in ids}

    def shop_of(self, num_iid: int) -> str:
        """The nick of the shop that sells ``num_iid``."""
        return self._shop_of.get(num_iid) or self._catalogue.item(num_iid).nick

    def answer(self, method: str, params: dict[str, str], nick: str, now: datetime) -> dict[str, Any]:
        if method == LIST_METHOD:
            return self._list(params, nick, now)
        if method == QUERY_METHOD:
            return self._query(params, now)
        raise ValueError(f"no seller logic for {method}")

    def _list(self, params: dict[str, str], nick: str, now: datetime) -> dict[str, Any]:
        if not params.get("fields"):
            raise TopError(40, "Missing Required Arguments:fields")
        raw = [part.strip() for part in params.get("num_iids", "").split(",") if part.strip()]
        if not raw:
            raise TopError(40, "Missing Required Arguments:num_iids")
        if len(raw) > MAX_IDS:
            too_many = "the array size of numIids must be less than 20"
            raise TopError(41, "Invalid Arguments:num_iids", sub_msg=too_many)
        named = [num_iid_in(part) for part in raw]
        if None in named:
            raise TopError(41, "Invalid Arguments:num_iids", sub_msg="num_iids must be positive integers")
        fields = {name.strip() for name in params["fields"].split(",")}
        items = []
        for num_iid in dict.fromkeys(num_iid for num_iid in named if num_iid is not None):
            item = self._catalogue.item(num_iid)
            if item.exists and self.shop_of(num_iid) == nick:
                items.append(self._item(item, nick, fields, now))
        return {"items": {"item": items}} if items else {}

    def _item(self, item: Item, nick: str, fields: set[str], now: datetime) -> dict[str, Any]:
        out: dict[str, Any] = {"num_iid": item.num_iid}
        if "title" in fields:
            out["title"] = item.title
        if "nick" in fields:
            out["nick"] = nick
        if not item.has_video:  # an item sharing another's video has that one's video facts (Catalogue.item)
            return out
        if "videos" in fields or "video" in fields:
            url = (
                self._urls.video_url(item, now)
                if self._config.seller_url_style == "mp4"
                else f"{self._urls.base}/player/{item.video_id}"
            )
            entry = {
                "id": item.video_record_id,
                "video_id": item.video_id,
                "url": url,
                "num_iid": item.num_iid,
                "created": item.created,
                "modified": item.modified,
            }
            out["videos"] = {"video": [entry]}
        if "mpic_video" in fields and item.mpic:
            out["mpic_video"] = {
                "video_id": item.video_id,
                "video_pic": self._urls.cover_url(item),
                "video_duaration": max(1, round(item.duration_s or 0)),  # sic: the platform's own spelling
                "video_status": 1,
                "num_iid": item.num_iid,
            }
        return out

    def _query(self, params: dict[str, str], now: datetime) -> dict[str, Any]:
        raw = params.get("video_id", "")
        if not raw:
            raise TopError(40, "Missing Required Arguments:video_id")
        num_iid = self._catalogue.num_iid_for(int(raw)) if raw.isdigit() else None
        if num_iid is None:
            raise TopError(15, "Remote service error", "isv.video-not-exist", f"video {raw} does not exist")
        video = self._catalogue.item(num_iid)
        return {
            "play_url": self._urls.video_url(video, now),
            "cover_url": self._urls.cover_url(video),
            "duration": max(1, round(video.duration_s or 0)),
            "width": video.width,
            "height": video.height,
            "aspect_ratio": f"{video.width}:{video.height}",
            "title": video.title,
            "audit_state": 1,
        }
