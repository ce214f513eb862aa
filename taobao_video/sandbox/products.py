"""The emulated shop: every positive num_iid is an item whose facts follow from a hash of (seed, num_iid).

Kinds: about 60% ``video``, 20% ``no_video``, 10% ``not_found``, 10% ``deleted``. A video item has a video
id (a seed-keyed bijection of the num_iid, so the CDN maps it back without any state), a duration of 5.0 to
60.0 s, one of four picture sizes, a byte size within ``video_bytes`` (never below what the MP4 needs), a
URL style (``stable`` ~70%, ``signed`` ~30%) and ``mpic`` (a main-picture video, ~80%). Only hashlib is
used, never ``hash()``, so every process agrees.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial
from typing import Any

from taobao_video.sandbox.clock import TIMESTAMP_FORMAT
from taobao_video.sandbox.images import flat_jpeg, tiny_jpeg
from taobao_video.sandbox.mp4 import Mp4Video

ITEM_KINDS = ("video", "no_video", "not_found", "deleted")
PICTURE_SIZES = ((720, 720), (1280, 720), (544, 960), (480, 480))
MAX_NUM_IID = 10**13
SAMPLE_BASE = 520_000_000_000  # 12-digit ids, like today's Taobao items
_VIDEO_ID_SPACE = 10**14
_VIDEO_ID_FACTOR = 7_919_000_003  # coprime with 10**14, so num_iid -> video_id is a bijection
_ADJECTIVES = ("新款", "爆款", "正品", "加厚", "简约", "复古", "韩版", "纯棉", "便携", "高端", "网红", "原创")
_NOUNS = ("连衣裙", "保温杯", "蓝牙耳机", "帆布包", "运动鞋", "台灯", "手机壳", "茶具套装", "毛衣", "收纳盒")
_EPOCH = datetime(2019, 1, 1)
_NUM_IID = re.compile(r"[0-9]{1,13}")  # ASCII digits only: str.isdigit() also takes "²"


@dataclass(frozen=True)
class Item:
    """What the platform knows about one num_iid. Video fields are None unless ``kind == "video"``."""

    num_iid: int
    kind: str
    title: str
    nick: str
    price: str
    video_id: int | None = None
    video_record_id: int | None = None
    owner_id: int | None = None
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    size_bytes: int | None = None
    url_style: str | None = None
    mpic: bool | None = None
    mp4_seed: int | None = None
    created: str | None = None
    modified: str | None = None

    @property
    def has_video(self) -> bool:
        return self.kind == "video"

    @property
    def exists(self) -> bool:
        return self.kind in ("video", "no_video")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def num_iid_in(raw: str) -> int | None:
    """The num_iid a request parameter names: a positive integer of at most 13 ASCII digits (what the gateway,
    the seller channel and the item-data gateway accept), else None."""
    return int(raw) if _NUM_IID.fullmatch(raw) and int(raw) > 0 else None


class _Digest:
    """Integers cut from one SHAKE-256 digest of the item's identity (each fact its own bytes)."""

    def __init__(self, seed: int, num_iid: int) -> None:
        self._bytes = hashlib.shake_256(f"taobao_video.sandbox.item {seed} {num_iid}".encode()).digest(48)

    def take(self, start: int, length: int) -> int:
        return int.from_bytes(self._bytes[start : start + length], "big")


@lru_cache(maxsize=256)
def _cover_jpeg(width: int, height: int, level: int, label: str) -> bytes:
    return flat_jpeg(width, height, level, label)


@lru_cache(maxsize=4096)
def _min_size(duration_s: float, width: int, height: int) -> int:
    return Mp4Video.min_size(duration_s, width, height)


class Catalogue:
    """Deterministic, infinite item catalogue for one seed."""

    def __init__(
        self,
        seed: int,
        video_bytes: tuple[int, int],
        size_override: Mapping[int, int] | None = None,
        shared: Mapping[int, int] | None = None,
        changes: Mapping[int, datetime] | None = None,
        now: Callable[[], datetime] | None = None,
        losses: Mapping[int, datetime] | None = None,
        gains: Mapping[int, datetime] | None = None,
    ) -> None:
        self.seed = seed
        self._video_bytes = video_bytes
        self._override = dict(size_override or {})
        self._shared = dict(shared or {})  # item -> the video item whose stored video it uses (a shop reusing one)
        # item -> when its seller replaces its video (aware UTC): from then on the item has a second video (a new
        # video_id, duration and file), read against ``now`` (the sandbox's clock) on every request
        self._changes = dict(changes or {})
        # item -> when a video item loses its video (it has none from then on), or an item without one gains one
        self._losses, self._gains = dict(losses or {}), dict(gains or {})
        self._now = now or (lambda: datetime.now(UTC))
        for sharer, owner in self._shared.items():
            if owner in self._shared or sharer == owner:
                raise ValueError(f"item {sharer} must share the video of an item that has its own, not {owner}")
        key = hashlib.sha256(f"taobao_video.sandbox.catalogue {seed}".encode()).digest()
        self._video_id_offset = int.from_bytes(key[:8], "big") % _VIDEO_ID_SPACE
        self._sample_start = SAMPLE_BASE + int.from_bytes(key[8:16], "big") % 10**10
        self.secret = key[16:].hex()  # signs CDN auth keys; only the sandbox knows it
        self._videos: OrderedDict[int, Mp4Video] = OrderedDict()
        self._lock = threading.Lock()
        self._item = lru_cache(maxsize=16384)(partial(_build_item, self))  # items are immutable

    def item(self, num_iid: int) -> Item:
        """The item ``num_iid`` (1..10**13); an item sharing another's video has that item's video facts (the
        same ``video_id``, URL, file and cover) with its own title, seller and price."""
        if not 0 < num_iid <= MAX_NUM_IID:
            raise ValueError(f"num_iid must be within 1..10**13, not {num_iid}")
        owner = self._shared.get(num_iid)
        if owner is not None:
            own = self._item(num_iid)
            return replace(self.item(owner), num_iid=num_iid, title=own.title, nick=own.nick, price=own.price)
        item = _build_item(self, num_iid) if num_iid in self._losses or num_iid in self._gains else self._item(num_iid)
        if self.replaced(num_iid) and item.has_video:
            return _second_video(item, self.video_id_for(num_iid + MAX_NUM_IID))
        return item

    def replaced(self, num_iid: int) -> bool:
        """Whether the seller has replaced the item's video by now (``changes``)."""
        return self._passed(self._changes, num_iid)

    def _passed(self, moments: Mapping[int, datetime], num_iid: int) -> bool:
        when = moments.get(num_iid)
        return when is not None and self._now() >= when

    def sample(self, kind: str, n: int) -> list[int]:
        """The first ``n`` ids of ``kind`` walking up from the seed's start id (stable for a seed)."""
        if kind not in ITEM_KINDS:
            raise ValueError(f"kind must be one of {ITEM_KINDS}, not {kind!r}")
        found: list[int] = []
        num_iid = self._sample_start
        while len(found) < n:
            if self.kind(num_iid) == kind:
                found.append(num_iid)
            num_iid += 1
        return found

    def sample_mixed(self, n: int) -> list[int]:
        """``n`` consecutive ids from the seed's start id, kinds in their natural mix."""
        return list(range(self._sample_start, self._sample_start + n))

    def kind(self, num_iid: int) -> str:
        if num_iid in self._shared:
            return self.kind(self._shared[num_iid])
        if num_iid in self._override:
            return "video"
        bucket = _Digest(self.seed, num_iid).take(0, 2) % 100
        kind = "video" if bucket < 60 else "no_video" if bucket < 80 else "not_found" if bucket < 90 else "deleted"
        if kind == "video" and self._passed(self._losses, num_iid):
            return "no_video"
        if kind == "no_video" and self._passed(self._gains, num_iid):
            return "video"
        return kind

    def video(self, num_iid: int) -> Mp4Video:
        """The MP4 the CDN serves for a video item (cached; building one costs about a millisecond)."""
        item = self.item(num_iid)
        if not item.has_video:
            raise LookupError(f"item {num_iid} has no video (kind {item.kind})")
        key = item.video_id or num_iid  # a replaced video is another file
        with self._lock:
            video = self._videos.get(key)
            if video is not None:
                self._videos.move_to_end(key)
                return video
        assert item.duration_s and item.width and item.height and item.size_bytes and item.mp4_seed is not None
        video = Mp4Video(item.duration_s, item.width, item.height, item.size_bytes, item.mp4_seed)
        with self._lock:
            self._videos[key] = video
            if len(self._videos) > 64:
                self._videos.popitem(last=False)
        return video

    def cover(self, num_iid: int) -> bytes:
        """The cover picture of a video item (a JPEG as big as its video, the size the API states), or the main
        picture (8x8) of any other item."""
        num_iid = self._shared.get(num_iid, num_iid)  # one stored video, one cover
        item = self.item(num_iid)
        level, label = _Digest(self.seed, num_iid).take(41, 1), f"taobao sandbox {num_iid}"
        if item.width and item.height:
            return _cover_jpeg(item.width, item.height, level, label)
        return tiny_jpeg(level, label)

    def video_id_for(self, num_iid: int) -> int:
        return (num_iid * _VIDEO_ID_FACTOR + self._video_id_offset) % _VIDEO_ID_SPACE

    def num_iid_for(self, video_id: int) -> int | None:
        """The item behind a video id, or None when no video item has it."""
        inverse = pow(_VIDEO_ID_FACTOR, -1, _VIDEO_ID_SPACE)
        num_iid = ((video_id - self._video_id_offset) * inverse) % _VIDEO_ID_SPACE
        if MAX_NUM_IID < num_iid <= 2 * MAX_NUM_IID and self.replaced(num_iid - MAX_NUM_IID):
            num_iid -= MAX_NUM_IID  # the second video of an item whose seller replaced it
        elif not 0 < num_iid <= MAX_NUM_IID:
            return None
        if self.kind(num_iid) != "video" or self.item(num_iid).video_id != video_id:
            return None  # not a video item, or a video its seller has replaced since
        return num_iid

    def video_size(self, digest_value: int, duration_s: float, width: int, height: int, num_iid: int) -> int:
        if num_iid in self._override:
            return max(self._override[num_iid], _min_size(duration_s, width, height))
        low, high = self._video_bytes
        return max(low + digest_value % (high - low + 1), _min_size(duration_s, width, height))


def _second_video(item: Item, video_id: int) -> Item:
    """The item after its seller replaced its video: another video id, file and length (a different duration
    makes a different file), the same picture size."""
    assert item.duration_s is not None and item.mp4_seed is not None
    duration = item.duration_s + 3.0 if item.duration_s <= 57.0 else item.duration_s - 3.0
    return replace(item, video_id=video_id, duration_s=round(duration, 1), mp4_seed=item.mp4_seed ^ 0x5A5A)


def _build_item(catalogue: Catalogue, num_iid: int) -> Item:
    d = _Digest(catalogue.seed, num_iid)
    kind = catalogue.kind(num_iid)
    adjective, noun = _ADJECTIVES[d.take(2, 1) % len(_ADJECTIVES)], _NOUNS[d.take(3, 1) % len(_NOUNS)]
    title = f"{adjective}{noun} 沙箱商品{num_iid % 10000}"
    base = Item(num_iid, kind, title, nick=f"沙箱卖家{d.take(4, 1) % 50}", price=f"{9 + d.take(5, 2) % 990}.00")
    if kind != "video":
        return base
    duration_s = round(5 + d.take(7, 2) % 551 / 10, 1)
    width, height = PICTURE_SIZES[d.take(9, 1) % len(PICTURE_SIZES)]
    created = _EPOCH + timedelta(seconds=d.take(10, 4) % (5 * 365 * 86400))
    modified = created + timedelta(seconds=d.take(14, 3) % (90 * 86400))
    return replace(
        base,
        video_id=catalogue.video_id_for(num_iid),
        video_record_id=10**9 + d.take(17, 4) % 10**9,
        owner_id=10**9 + d.take(21, 4) % (2 * 10**9),
        duration_s=duration_s,
        width=width,
        height=height,
        size_bytes=catalogue.video_size(d.take(25, 4), duration_s, width, height, num_iid),
        url_style="stable" if d.take(29, 2) % 100 < 70 else "signed",
        mpic=d.take(31, 2) % 100 < 80,
        mp4_seed=d.take(33, 8),
        created=created.strftime(TIMESTAMP_FORMAT),
        modified=modified.strftime(TIMESTAMP_FORMAT),
    )
