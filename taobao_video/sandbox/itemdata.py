"""``/taobao/item_get/``: a third-party item-data gateway in the onebound/万邦 convention (top-protocol.md §10).

``GET ?key=&secret=&num_iid=[&cache=&result_type=&lang=]`` → HTTP 200 with PHP-style JSON (``\\/`` escapes)::

    {"item": {"num_iid": "…", "title": …, "nick": …, "pic_url": "//…", "video": {"url": "//…/x.mp4"} or []},
     "error": "", "reason": "", "error_code": "0000", "request_id": …, "api_info": "today:7 max:30000"}

Order of checks, the first failure answers (``error_code``, charged or not):

 1. unknown ``key`` → 4004; wrong ``secret`` → 4005 (not charged).
 2. the key's charged calls today (Beijing day) at its ``daily_limit`` → 4013 "已超量" (not charged), the body
    GBK-encoded under a UTF-8 header, as seen once in the wild.
 3. ``num_iid`` missing or not a positive integer of at most 13 digits → 4003 (not charged).
 4. an id in ``vendor_transient`` with answers left → 4002 upstream failure (not charged).
 5. charged from here on: an item that does not exist → 2000 "no result"; else the item.

Video and picture URLs are scheme-less (``//127.0.0.1:PORT/cdn/…``), as vendors send them.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl

from taobao_video.sandbox.clock import quota_day
from taobao_video.sandbox.config import SandboxConfig, VendorKey
from taobao_video.sandbox.products import Catalogue, num_iid_in
from taobao_video.sandbox.render import RequestIds
from taobao_video.sandbox.response import JSON_TYPE, Response
from taobao_video.sandbox.urls import Urls

PATH = "/taobao/item_get/"
_REASONS = {
    "2000": "no result: 商品不存在",
    "4002": "upstream error, please retry",
    "4003": "parameter error: num_iid",
    "4004": "key error: 该key不存在",
    "4005": "secret error: secret不正确",
    "4013": "已超量: 今日调用次数已用完",
}


class VendorStats:
    """Requests seen, charged calls, answers by code and by key. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests = 0
            self._charged = 0
            self._by_code: Counter[str] = Counter()

    def seen(self, code: str, charged: bool) -> None:
        with self._lock:
            self._requests += 1
            self._charged += int(charged)
            self._by_code[code] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": self._requests, "charged": self._charged, "by_code": dict(self._by_code)}


class ItemDataGateway:
    """Answers ``/taobao/item_get/``; ``handle`` never raises for bad input."""

    def __init__(self, config: SandboxConfig, *, catalogue: Catalogue, urls: Urls, now: Callable[[], datetime]) -> None:
        self._config = config
        self._catalogue = catalogue
        self._urls = urls
        self._now = now
        self._ids = RequestIds(config.seed + 1)
        self._lock = threading.Lock()
        self._used: dict[tuple[str, date], int] = {}
        self._transient = dict(config.vendor_transient)
        self.stats = VendorStats()

    def used(self, key: str) -> int:
        """Charged calls of ``key`` today."""
        with self._lock:
            return self._used.get((key, quota_day(self._now())), 0)

    def handle(self, verb: str, query: str) -> Response:
        params = dict(parse_qsl(query, keep_blank_values=True))
        code, item = self._answer(verb, params)
        charged = code in ("0000", "2000")
        self.stats.seen(code, charged)
        return self._render(code, item, params.get("key", ""))

    def _answer(self, verb: str, params: dict[str, str]) -> tuple[str, dict[str, Any] | None]:
        key = self._key(params.get("key", ""))
        if verb != "GET" or key is None:
            return "4004", None
        if params.get("secret", "") != key.secret:
            return "4005", None
        today = (key.key, quota_day(self._now()))
        with self._lock:
            if key.daily_limit is not None and self._used.get(today, 0) >= key.daily_limit:
                return "4013", None
        num_iid = num_iid_in(params.get("num_iid", ""))
        if num_iid is None:
            return "4003", None
        with self._lock:
            if self._transient.get(num_iid, 0) > 0:
                self._transient[num_iid] -= 1
                return "4002", None
            self._used[today] = self._used.get(today, 0) + 1
        item = self._catalogue.item(num_iid)
        if not item.exists:
            return "2000", None
        video: Any = []
        if item.has_video:
            url = self._urls.video_url(item, self._now())
            video = {"url": _schemeless(url)}
        facts = {
            "num_iid": str(item.num_iid),
            "title": item.title,
            "nick": item.nick,
            "price": item.price,
            "pic_url": _schemeless(self._urls.pic_url(item)),
            "detail_url": f"https://item.taobao.com/item.htm?id={item.num_iid}",
            "video": video,
        }
        return "0000", facts

    def _key(self, text: str) -> VendorKey | None:
        return next((key for key in self._config.vendor_keys if key.key == text), None)

    def _render(self, code: str, item: dict[str, Any] | None, key: str) -> Response:
        limit = next((k.daily_limit for k in self._config.vendor_keys if k.key == key), None)
        body: dict[str, Any] = {
            "item": item if item is not None else {},
            "error": "" if code == "0000" else _REASONS.get(code, "error"),
            "reason": "" if code == "0000" else _REASONS.get(code, "error"),
            "error_code": code,
            "request_id": self._ids.next(),
            "api_info": f"today:{self.used(key)} max:{limit if limit is not None else 'unlimited'}",
        }
        # PHP's json_encode escapes every slash (and, by default, every non-ASCII character)
        text = json.dumps(body, ensure_ascii=code != "4013").replace("/", "\\/")
        encoding = "gbk" if code == "4013" else "utf-8"
        return Response(200, [("Content-Type", JSON_TYPE)], text.encode(encoding))


def _schemeless(url: str) -> str:
    return url.split(":", 1)[1] if url.startswith(("http://", "https://")) else url
