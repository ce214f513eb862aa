"""The sandbox's own CDN addresses: stable play URLs, signed (``auth_key``) URLs, covers and pictures.

Signed URLs follow the Alibaba CDN "type A" scheme the real ``tbm-auth.alicdn.com`` links use:
``auth_key = <expiry unix ts>-0-0-<md5("<path>-<ts>-0-0-<secret>")>``; the secret is derived from the
seed, so a client cannot forge or extend a link.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from taobao_video.sandbox.products import Catalogue, Item


class Urls:
    """Builds and checks CDN URLs. ``base`` (``http://127.0.0.1:PORT``) is set once the server is bound."""

    def __init__(self, catalogue: Catalogue, signed_url_ttl_s: int) -> None:
        self.base = ""
        self._catalogue = catalogue
        self._ttl = timedelta(seconds=signed_url_ttl_s)

    def video_url(self, item: Item, now: datetime) -> str:
        """The play URL a lookup hands out now (signed ones expire ``signed_url_ttl_s`` from now)."""
        if item.url_style == "signed":
            path = f"/cdn/auth/{item.video_id}.mp4"
            expiry = int((now + self._ttl).timestamp())
            return f"{self.base}{path}?auth_key={self.auth_key(path, expiry)}"
        return f"{self.base}{stable_path(item)}"

    def cover_url(self, item: Item) -> str:
        return f"{self.base}/cdn/cover/{item.video_id}.jpg"

    def pic_url(self, item: Item) -> str:
        return f"{self.base}/cdn/pic/{item.num_iid}.jpg"

    def auth_key(self, path: str, expiry: int) -> str:
        return f"{expiry}-0-0-{self._digest(path, expiry)}"

    def check_auth_key(self, path: str, auth_key: str | None, now: datetime) -> str:
        """``ok``, ``expired`` or ``forged`` (missing, malformed or wrong digest)."""
        parts = (auth_key or "").split("-")
        if len(parts) != 4 or not parts[0].isdigit():
            return "forged"
        expiry = int(parts[0])
        if parts[1:3] != ["0", "0"] or not hmac.compare_digest(parts[3], self._digest(path, expiry)):
            return "forged"
        return "expired" if expiry < now.timestamp() else "ok"

    def _digest(self, path: str, expiry: int) -> str:
        return hashlib.md5(f"{path}-{expiry}-0-0-{self._catalogue.secret}".encode()).hexdigest()


def stable_path(item: Item) -> str:
    return f"/cdn/play/u/{item.owner_id}/p/1/e/6/t/1/{item.video_id}.mp4"
