"""The two business APIs' answers (top-protocol.md §8), built from catalogue items.

``taobao.item_video``: ``{"video": {url, cover_url, duration (ms), width, height, title, video_id}}`` filtered by
``fields`` (default ``url,duration,cover_url``); no ``video`` key for an item without one.
``taobao.item.get``: ``{"item": {...}}`` with the requested fields; ``videos`` (double-wrapped list, asked as
``video``, ``videos``, ``video.url``, …) and ``mpic_video`` (only for main-picture videos) appear only when
asked and only for items that have a video.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from taobao_video.sandbox.config import ITEM_GET, ITEM_VIDEO
from taobao_video.sandbox.products import Item
from taobao_video.sandbox.render import control_text
from taobao_video.sandbox.urls import Urls

ITEM_VIDEO_DEFAULT_FIELDS = "url,duration,cover_url"
_ITEM_FIELDS = ("num_iid", "title", "nick", "price", "pic_url")


def parse_fields(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def answer(
    method: str, item: Item, fields: list[str], *, urls: Urls, now: datetime, control_chars: bool = False
) -> dict[str, Any]:
    """The payload of a successful call (without ``request_id`` and without the ``*_response`` wrapper)."""
    if method == ITEM_VIDEO:
        return _item_video(item, fields or parse_fields(ITEM_VIDEO_DEFAULT_FIELDS), urls, now, control_chars)
    if method == ITEM_GET:
        return _item_get(item, fields, urls, now, control_chars)
    raise ValueError(f"no business logic for {method}")


def simplified(payload: dict[str, Any]) -> dict[str, Any]:
    """``simplify=true``: lists lose their inner wrapper (``{"videos": {"video": [..]}}`` → ``[..]``)."""
    out: dict[str, Any] = {}
    for key, value in payload.items():
        if isinstance(value, dict):
            inner = list(value.values())
            if len(value) == 1 and isinstance(inner[0], list):
                out[key] = [simplified(v) if isinstance(v, dict) else v for v in inner[0]]
            else:
                out[key] = simplified(value)
        else:
            out[key] = value
    return out


def _item_video(item: Item, fields: list[str], urls: Urls, now: datetime, control_chars: bool) -> dict[str, Any]:
    if not item.has_video:
        return {"remark": control_text("")} if control_chars else {}
    facts: dict[str, Any] = {
        "url": urls.video_url(item, now),
        "cover_url": urls.cover_url(item),
        "duration": round((item.duration_s or 0) * 1000),
        "width": item.width,
        "height": item.height,
        "title": item.title,
        "video_id": item.video_id,
    }
    video = {name: facts[name] for name in fields if name in facts}
    if control_chars:
        video["title"] = control_text(item.title)
    return {"video": video}


def _item_get(item: Item, fields: list[str], urls: Urls, now: datetime, control_chars: bool) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "num_iid": item.num_iid,
        "title": item.title,
        "nick": item.nick,
        "price": item.price,
        "pic_url": urls.pic_url(item),
    }
    out = {name: facts[name] for name in _ITEM_FIELDS if name in fields}
    if control_chars:
        out["title"] = control_text(item.title)
    if not item.has_video:
        return {"item": out}
    if any(_asks(name, "video") or _asks(name, "videos") for name in fields):
        out["videos"] = {
            "video": [
                {
                    "id": item.video_record_id,
                    "video_id": item.video_id,
                    "url": urls.video_url(item, now),
                    "num_iid": item.num_iid,
                    "created": item.created,
                    "modified": item.modified,
                }
            ]
        }
    if item.mpic and any(_asks(name, "mpic_video") for name in fields):
        out["mpic_video"] = {
            "video_id": item.video_id,
            "video_pic": urls.cover_url(item),
            "video_duaration": max(1, round(item.duration_s or 0)),  # sic: the platform's own spelling
            "video_status": 1,
            "num_iid": item.num_iid,
        }
    return {"item": out}


def _asks(field: str, name: str) -> bool:
    return field == name or field.startswith(name + ".")
