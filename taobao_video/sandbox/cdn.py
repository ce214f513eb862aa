"""``/cdn/...``: the video CDN (top-protocol.md §9) with Range, ETag, signed URLs and injected faults.

Paths: ``/cdn/play/u/<owner>/p/1/e/6/t/1/<video_id>.mp4`` (stable), ``/cdn/auth/<video_id>.mp4?auth_key=…``
(signed; expired or forged → 403), ``/cdn/cover/<video_id>.jpg`` and ``/cdn/pic/<num_iid>.jpg``. GET and
HEAD only. Bodies stream from ``Mp4Video.iter_chunks``: a 1 GiB video never sits in memory.

Range: one ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` → 206 with ``Content-Range``; unsatisfiable → 416
``bytes */size``; several ranges or a malformed header → 200 with the whole body (RFC 9110 allows both);
``If-Range`` that matches neither the ETag nor Last-Modified → 200 whole body.

Faults (target ``cdn``) strike video requests after the item is resolved and before the signature is checked;
covers have faults of their own (target ``cover``); main pictures are always served.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from hashlib import sha1
from urllib.parse import parse_qsl

from taobao_video.sandbox.clock import SHANGHAI, TIMESTAMP_FORMAT
from taobao_video.sandbox.faults import CDN_KINDS, COVER_KINDS, Fault, FaultPlan
from taobao_video.sandbox.products import MAX_NUM_IID, Catalogue, Item
from taobao_video.sandbox.response import Cut, Headers, Response, html_response, json_response, text_response
from taobao_video.sandbox.stats import Stats
from taobao_video.sandbox.urls import Urls, stable_path
from taobao_video.web.byteranges import UNSATISFIABLE, content_range, unsatisfied_range, wanted_range

CHUNK = 256 * 1024
_STABLE = re.compile(r"/cdn/play/u/(\d+)/p/1/e/6/t/1/(\d+)\.mp4")
_SIGNED = re.compile(r"/cdn/auth/(\d+)\.mp4")
_COVER = re.compile(r"/cdn/cover/(\d+)\.jpg")
_PICTURE = re.compile(r"/cdn/pic/(\d+)\.jpg")


class Cdn:
    """Answers ``/cdn/`` requests."""

    def __init__(
        self, catalogue: Catalogue, urls: Urls, faults: FaultPlan, stats: Stats, now: Callable[[], datetime]
    ) -> None:
        self._catalogue = catalogue
        self._urls = urls
        self._faults = faults
        self._stats = stats
        self._now = now

    def handle(self, verb: str, path: str, query: str, headers: Headers) -> Response:
        num_iid, response = self._route(verb, path, query, headers)
        if _COVER.fullmatch(path) or _PICTURE.fullmatch(path):  # pictures are counted apart from the videos
            self._stats.picture_request(num_iid)
            return response
        self._stats.cdn_request(num_iid, response.status)
        response.on_sent = self._stats.cdn_bytes
        return response

    def _route(self, verb: str, path: str, query: str, headers: Headers) -> tuple[int | None, Response]:
        if verb not in ("GET", "HEAD"):
            return None, text_response(405, "method not allowed\n")
        if match := _COVER.fullmatch(path):
            num_iid = self._catalogue.num_iid_for(int(match[1]))
            fault = self._faults.pick("cover", COVER_KINDS, verb, num_iid) if num_iid is not None else None
            if fault is not None and fault.kind != "truncate":
                return num_iid, _fault_page(fault)
            return num_iid, self._picture(num_iid, cut=fault is not None)
        if match := _PICTURE.fullmatch(path):
            num_iid = int(match[1]) if 0 < int(match[1]) <= MAX_NUM_IID else None
            exists = num_iid is not None and self._catalogue.item(num_iid).exists
            return num_iid, self._picture(num_iid if exists else None)
        item, signed = self._video_item(path)
        if item is None:
            return None, text_response(404, "not found\n")
        fault = self._faults.pick("cdn", CDN_KINDS, verb, item.num_iid)
        if fault is not None and fault.kind in ("http_500", "html_200", "expired", "wrong_type"):
            return item.num_iid, _fault_page(fault)
        if signed:
            state = self._urls.check_auth_key(path, dict(parse_qsl(query)).get("auth_key"), self._now())
            if state != "ok":
                return item.num_iid, text_response(403, f"auth_key {state}\n")
        honour_range = fault is None or fault.kind != "no_range"
        return item.num_iid, self._video(item, headers, honour_range, fault)

    def _video_item(self, path: str) -> tuple[Item | None, bool]:
        """The video item a play path names (None when it names none), and whether the path is signed."""
        match = _STABLE.fullmatch(path) or _SIGNED.fullmatch(path)
        if match is None:
            return None, False
        num_iid = self._catalogue.num_iid_for(int(match[match.lastindex or 1]))
        if num_iid is None:
            return None, False
        item = self._catalogue.item(num_iid)
        signed = match.re is _SIGNED
        if not signed and stable_path(item) != path:  # the owner segment must match too
            return None, False
        return item, signed

    def _picture(self, num_iid: int | None, *, cut: bool = False) -> Response:
        if num_iid is None:
            return text_response(404, "not found\n")
        headers = [("Content-Type", "image/jpeg"), ("Cache-Control", "max-age=86400")]
        body = self._catalogue.cover(num_iid)
        return Response(200, headers, body, length=len(body), cut=Cut(len(body) // 2, "close") if cut else None)

    def _video(self, item: Item, headers: Headers, honour_range: bool, fault: Fault | None) -> Response:
        video = self._catalogue.video(item.num_iid)
        size = video.size
        tag = sha1(f"{self._catalogue.seed}:{item.num_iid}:{size}".encode()).hexdigest()[:20]
        etag = f'"{tag}"'
        modified = datetime.strptime(item.modified or "", TIMESTAMP_FORMAT).replace(tzinfo=SHANGHAI)
        last_modified = format_datetime(modified.astimezone(UTC), usegmt=True)
        common = [
            ("Content-Type", "video/mp4"),
            ("Accept-Ranges", "bytes"),
            ("ETag", etag),
            ("Last-Modified", last_modified),
        ]
        wanted = headers.get("Range") if honour_range else None
        span = wanted_range(wanted, headers.get("If-Range"), size, (etag, last_modified))
        if span == UNSATISFIABLE:
            return Response(416, [("Content-Range", unsatisfied_range(size)), ("Content-Type", "text/plain")], b"")
        status, start, end = (206, span[0], span[1]) if isinstance(span, tuple) else (200, 0, size - 1)
        if isinstance(span, tuple):
            common.append(("Content-Range", content_range(span, size)))
        length = end - start + 1
        body = video.iter_chunks(start, end + 1, CHUNK)
        return Response(status, common, body, length=length, cut=_cut(fault, length))


def _cut(fault: Fault | None, length: int) -> Cut | None:
    if fault is None or fault.kind not in ("reset", "truncate", "stall"):
        return None
    if fault.kind == "truncate":
        return Cut(length // 2, "close")
    return Cut(min(length // 2, 1 << 20), fault.kind, fault.seconds)


def _fault_page(fault: Fault) -> Response:
    if fault.kind == "http_500":
        return html_response(500, "500 Internal Server Error", "Tengine")
    if fault.kind == "html_200":
        return html_response(200, "访问被拒绝", "您的访问出现异常，请稍后再试。")
    if fault.kind == "expired":
        return text_response(403, "auth_key expired\n")
    return json_response({"code": "FAIL_SYS_EXPIRED", "message": "资源不存在或已过期"})
