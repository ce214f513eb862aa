"""The ``seller`` provider: a seller's own items in batches (top-protocol.md §10).

``taobao.items.seller.list.get`` lists up to ``batch_size`` (at most 20) ids a call with the seller's session and
asks only ``num_iid,title,nick,videos,mpic_video``. Ids absent from the answer are ``not_visible``: another shop's
item or an unknown id, the platform does not say which. An item's ``videos.video[].url`` is the Taoxiu record's URL
(a player page, not known to be an MP4), so the playable URL comes from ``alibaba.video.query``, one call per
*distinct* ``video_id`` that neither this run nor the catalog already knows; with ``video_url="mp4"`` the listed URL
is taken as the MP4 and no query is made.

A listing's video ids are remembered (:class:`~taobao_video.top.providers.base.VideoMemory`) before any query, so a
quota that runs out between the list call and the queries never pays for the list call again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

from taobao_video.errors import BadResponseError, ItemNotFound, QuotaExceeded, QuotaExhausted
from taobao_video.model import LookupOutcome
from taobao_video.top.lookup import Caller, LookupResult, VideoInfo, _int, _number, _plain_list, _text
from taobao_video.top.providers.base import KnownVideo, Listed, NoMemory, Pace, VideoMemory

log = logging.getLogger(__name__)

LIST_METHOD = "taobao.items.seller.list.get"
QUERY_METHOD = "alibaba.video.query"
LIST_FIELDS = "num_iid,title,nick,videos,mpic_video"
MAX_BATCH = 20  # the platform's own limit (the official SDK refuses more with code 41)


class SellerProvider:
    """Batches of a seller's ids → videos, through one client holding the seller's session."""

    name: str = "seller"
    calls: tuple[str, ...] = (LIST_METHOD, QUERY_METHOD)

    def __init__(
        self,
        client: Caller,
        *,
        memory: VideoMemory | None = None,
        batch_size: int = MAX_BATCH,
        video_url: Literal["player", "mp4"] = "player",
        on_spent: Callable[[QuotaExceeded], QuotaExhausted] | None = None,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be within 1..{MAX_BATCH}, got {batch_size}")
        self.client = client
        self.memory = memory or NoMemory()
        self.batch_size = batch_size
        self.video_url = video_url
        self.on_spent = on_spent
        self._queried: dict[str, KnownVideo | None] = {}  # this run's answers, by video_id (None: no such video)
        self._stale: set[str] = set()  # videos whose known URL proved dead this run: queried afresh

    def ids_for(self, calls: int) -> int:
        return max(0, calls) * self.batch_size

    def resolve(self, ids: Sequence[int], *, pace: Pace) -> Iterator[LookupResult]:
        ids = list(dict.fromkeys(ids))
        listed = self.memory.listed(ids)
        if listed:  # listed by a run the quota stopped before their query: no list call again
            yield from self._videos(listed, pace)
        fresh = [num_iid for num_iid in ids if num_iid not in listed]
        for start in range(0, len(fresh), self.batch_size):
            chunk = fresh[start : start + self.batch_size]
            pace()
            payload = self._call(LIST_METHOD, {"num_iids": ",".join(map(str, chunk)), "fields": LIST_FIELDS})
            request_id = str(payload.get("request_id") or "")
            found = _listed_items(payload)
            with_video: dict[int, Listed] = {}
            direct: list[LookupResult] = []
            for num_iid in chunk:
                item = found.get(num_iid)
                if item is None:
                    yield LookupResult(num_iid, LookupOutcome.NOT_VISIBLE, LIST_METHOD, request_id=request_id)
                    continue
                video = _first_video(item)
                if video is None:
                    yield LookupResult(num_iid, LookupOutcome.NO_VIDEO, LIST_METHOD, request_id=request_id)
                elif self.video_url == "mp4" and _text(video.get("url")):
                    direct.append(_direct(num_iid, item, video, request_id))
                elif not _video_id(item, video):
                    detail = "listed with a video but no video_id to query"
                    yield LookupResult(
                        num_iid, LookupOutcome.NO_VIDEO, LIST_METHOD, request_id=request_id, detail=detail
                    )
                else:
                    title, nick = _text(item.get("title")) or None, _text(item.get("nick")) or None
                    with_video[num_iid] = Listed(_video_id(item, video), title, nick)
            yield from direct
            if with_video:
                self.memory.remember(with_video)
                yield from self._videos(with_video, pace)

    def _videos(self, listed: dict[int, Listed], pace: Pace) -> Iterator[LookupResult]:
        """Each listed item's video: from this run's answers, the catalog, or one query per distinct video."""
        by_video: dict[str, list[int]] = {}
        for num_iid, entry in listed.items():
            by_video.setdefault(entry.video_id, []).append(num_iid)
        unknown = [vid for vid in by_video if vid not in self._queried]
        self._queried.update(self.memory.known([vid for vid in unknown if vid not in self._stale]))
        for video_id, members in by_video.items():
            request_id = ""
            if video_id not in self._queried:
                pace()
                known, request_id = self._query(video_id)
                self._queried[video_id] = known
            known = self._queried[video_id]
            for num_iid in members:
                entry = listed[num_iid]
                if known is None:
                    detail = f"{QUERY_METHOD} knows no video {video_id}"
                    yield LookupResult(
                        num_iid, LookupOutcome.NO_VIDEO, QUERY_METHOD, request_id=request_id, detail=detail
                    )
                    continue
                info = VideoInfo(
                    num_iid=num_iid,
                    url=known.url,
                    cover_url=known.cover_url,
                    duration=known.duration,
                    width=known.width,
                    height=known.height,
                    api_method=QUERY_METHOD,
                    title=entry.title,
                    nick=entry.nick,
                    video_id=video_id,
                )
                yield LookupResult(num_iid, LookupOutcome.VIDEO, QUERY_METHOD, video=info, request_id=request_id)

    def forget(self, video_id: str) -> None:
        """The URL handed out for ``video_id`` (this run's answer, or the catalog's) expired: query it again.
        Called from a download thread; a set's add and a dict's pop are atomic under the GIL."""
        self._stale.add(video_id)
        self._queried.pop(video_id, None)

    def _query(self, video_id: str) -> tuple[KnownVideo | None, str]:
        try:
            payload = self._call(QUERY_METHOD, {"video_id": video_id})
        except ItemNotFound:
            return None, ""
        request_id = str(payload.get("request_id") or "")
        inner = payload.get("video")
        video: dict[str, Any] = inner if isinstance(inner, dict) else payload
        url = _text(video.get("play_url"))
        if not url:
            return None, request_id
        duration = _number(video.get("duration"))
        known = KnownVideo(
            url=url,
            cover_url=_text(video.get("cover_url")) or None,
            duration=duration if duration and duration > 0 else None,
            width=_int(video.get("width")),
            height=_int(video.get("height")),
        )
        return known, request_id

    def _call(self, method: str, params: dict[str, object]) -> dict[str, Any]:
        try:
            return self.client.call(method, params)
        except QuotaExceeded as exc:  # the platform's word: the ledger refuses until its reset
            if self.on_spent is None:
                raise
            raise self.on_spent(exc) from None


def _listed_items(payload: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """``items.item[]`` (or ``items: [...]`` with simplify) by num_iid; no ``items`` at all when nothing matched."""
    if "items" not in payload:
        return {}
    found: dict[int, dict[str, Any]] = {}
    for item in _plain_list(payload.get("items"), "item"):
        try:
            found[int(str(item.get("num_iid")))] = item
        except ValueError:
            raise BadResponseError(f"{LIST_METHOD}: an item without a usable num_iid") from None
    return found


def _first_video(item: dict[str, Any]) -> dict[str, Any] | None:
    videos = _plain_list(item.get("videos"), "video")
    if videos:
        return videos[0]
    mpic = item.get("mpic_video")
    return mpic if isinstance(mpic, dict) and mpic.get("video_id") else None


def _video_id(item: dict[str, Any], video: dict[str, Any]) -> str:
    mpic = item.get("mpic_video")
    raw = video.get("video_id") or (mpic.get("video_id") if isinstance(mpic, dict) else None)
    return str(raw).strip() if raw not in (None, "") else ""


def _direct(num_iid: int, item: dict[str, Any], video: dict[str, Any], request_id: str) -> LookupResult:
    """``seller_video_url = "mp4"``: the listed URL is the video; the cover and duration come from mpic_video."""
    raw_mpic = item.get("mpic_video")
    mpic: dict[str, Any] = raw_mpic if isinstance(raw_mpic, dict) else {}
    duration = _number(mpic.get("video_duaration", mpic.get("video_duration")))  # sic: the platform's spelling
    info = VideoInfo(
        num_iid=num_iid,
        url=_text(video.get("url")),
        cover_url=_text(mpic.get("video_pic")) or None,
        duration=duration if duration and duration > 0 else None,
        width=None,
        height=None,
        api_method=LIST_METHOD,
        title=_text(item.get("title")) or None,
        nick=_text(item.get("nick")) or None,
        video_id=_video_id(item, video) or None,
    )
    return LookupResult(num_iid, LookupOutcome.VIDEO, LIST_METHOD, video=info, request_id=request_id)
