"""Video lookup: ``taobao.item_video`` and ``taobao.item.get`` answers → one ``VideoInfo`` (top-protocol.md §8).

An item without a video and an item that no longer exists are normal outcomes (``LookupResult.outcome``), not errors.
With ``api_method="auto"`` the lookup starts with item_video and, when the app may not call it (code 22 or 11),
switches to item.get once and stays there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from taobao_video.errors import BadResponseError, ItemNotFound, MethodUnavailable
from taobao_video.model import LookupOutcome

log = logging.getLogger(__name__)

ITEM_VIDEO = "taobao.item_video"
ITEM_GET = "taobao.item.get"
API_METHODS = (ITEM_VIDEO, ITEM_GET, "auto")
# title and video_id: third-party gateways that state them do so when asked; the others ignore unknown fields.
ITEM_VIDEO_FIELDS = "url,duration,cover_url,width,height,title,video_id"


class Caller(Protocol):
    def call(self, method: str, params: dict[str, object]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class VideoInfo:
    """One main-image video as the API describes it. ``duration`` is in seconds, None when the API is silent."""

    num_iid: int
    url: str
    cover_url: str | None
    duration: float | None
    width: int | None
    height: int | None
    api_method: str
    title: str | None = None  # the item's title, when the answer carries it
    nick: str | None = None  # the seller's nick (or shop id)
    video_id: str | None = None  # the platform's id of the stored video: one video may back many items


@dataclass(frozen=True)
class LookupResult:
    """What one lookup found: a video, no video, or no such item."""

    num_iid: int
    outcome: LookupOutcome
    api_method: str
    video: VideoInfo | None = None
    request_id: str = ""
    detail: str = ""


class ItemLookup:
    """Resolves num_iids to videos through one client, remembering which API works for this app."""

    def __init__(
        self,
        client: Caller,
        *,
        api_method: str = "auto",
        duration_unit: Literal["ms", "s"] = "ms",
        item_get_fields: str = "num_iid,title,nick,pic_url,video,mpic_video",
    ) -> None:
        if api_method not in API_METHODS:
            raise ValueError(f"api_method must be one of {', '.join(API_METHODS)}")
        self.client = client
        self.auto = api_method == "auto"
        self.method = ITEM_VIDEO if self.auto else api_method
        self.duration_unit = duration_unit
        self.item_get_fields = item_get_fields

    def lookup(self, num_iid: int) -> LookupResult:
        """Ask the platform about one item; MethodUnavailable only when no API is left to try."""
        try:
            return self._lookup_with(self.method, num_iid)
        except MethodUnavailable as exc:
            if not (self.auto and self.method == ITEM_VIDEO):
                raise
            log.warning("%s is not available to this app (%s); using %s from now on", ITEM_VIDEO, exc, ITEM_GET)
            self.method = ITEM_GET
            return self._lookup_with(ITEM_GET, num_iid)

    def _lookup_with(self, method: str, num_iid: int) -> LookupResult:
        try:
            if method == ITEM_VIDEO:
                payload = self.client.call(ITEM_VIDEO, {"num_iid": num_iid, "fields": ITEM_VIDEO_FIELDS})
                return self._from_item_video(num_iid, payload)
            payload = self.client.call(ITEM_GET, {"num_iid": num_iid, "fields": self.item_get_fields})
            return self._from_item_get(num_iid, payload)
        except ItemNotFound as exc:
            return LookupResult(
                num_iid, LookupOutcome.NOT_FOUND, method, request_id=exc.request_id, detail=exc.sub_code or exc.sub_msg
            )

    def _from_item_video(self, num_iid: int, payload: dict[str, Any]) -> LookupResult:
        request_id = str(payload.get("request_id") or "")
        video = payload.get("video")
        if isinstance(video, list):  # some gateways wrap it in a list
            video = video[0] if video else None
        if not isinstance(video, dict) or not _text(video.get("url")):
            return LookupResult(num_iid, LookupOutcome.NO_VIDEO, ITEM_VIDEO, request_id=request_id)
        duration = _number(video.get("duration"))
        if duration is not None and self.duration_unit == "ms":
            duration /= 1000.0
        info = VideoInfo(
            num_iid=num_iid,
            url=_text(video.get("url")),
            cover_url=_text(video.get("cover_url")) or None,
            duration=duration if duration and duration > 0 else None,
            width=_int(video.get("width")),
            height=_int(video.get("height")),
            api_method=ITEM_VIDEO,
            title=_text(video.get("title")) or None,
            video_id=_ident(video.get("video_id")) or None,
        )
        return LookupResult(num_iid, LookupOutcome.VIDEO, ITEM_VIDEO, video=info, request_id=request_id)

    def _from_item_get(self, num_iid: int, payload: dict[str, Any]) -> LookupResult:
        request_id = str(payload.get("request_id") or "")
        item = payload.get("item")
        if not isinstance(item, dict):
            raise BadResponseError(f"{ITEM_GET}: the answer for {num_iid} has no item object")
        url = next((_text(v.get("url")) for v in _plain_list(item.get("videos"), "video") if _text(v.get("url"))), "")
        raw_mpic = item.get("mpic_video")
        mpic: dict[str, Any] = raw_mpic if isinstance(raw_mpic, dict) else {}
        if not url:
            detail = "main-image video without a playable URL" if mpic else ""
            return LookupResult(num_iid, LookupOutcome.NO_VIDEO, ITEM_GET, request_id=request_id, detail=detail)
        # video_duaration is the platform's own spelling; accept the corrected one too.
        duration = _number(mpic.get("video_duaration", mpic.get("video_duration")))
        info = VideoInfo(
            num_iid=num_iid,
            url=url,
            cover_url=_text(mpic.get("video_pic")) or None,
            duration=duration if duration and duration > 0 else None,
            width=None,
            height=None,
            api_method=ITEM_GET,
            title=_text(item.get("title")) or None,
            nick=_text(item.get("nick")) or None,
            video_id=_ident(mpic.get("video_id")) or _video_id(item) or None,
        )
        return LookupResult(num_iid, LookupOutcome.VIDEO, ITEM_GET, video=info, request_id=request_id)


def _plain_list(value: Any, inner: str) -> list[dict[str, Any]]:
    """A TOP list either way it comes: ``{"video": [...]}`` (default) or ``[...]`` (simplify=true)."""
    if isinstance(value, dict):
        value = value.get(inner, [])
        if isinstance(value, dict):  # a single element, unwrapped by some gateways
            value = [value]
    if not isinstance(value, list):
        return []
    return [entry for entry in value if isinstance(entry, dict)]


def _video_id(item: dict[str, Any]) -> str:
    """The ``video_id`` of the first entry of ``videos`` that has one, or ""."""
    return next((_ident(v.get("video_id")) for v in _plain_list(item.get("videos"), "video") if v.get("video_id")), "")


def _ident(value: Any) -> str:
    """An id as text: the platform sends ``video_id`` as a JSON number or a string."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _text(value)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number > 0 else None
