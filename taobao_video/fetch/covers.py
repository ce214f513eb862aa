"""Cover pictures: one small GET per cover, checked and renamed into ``covers/<num_iid>.<ext>``.

The same rules as the videos' (``downloader.py``), on the downloader's own session and settings: every hop of a
redirect must be an allowed host over http(s), ``max_bytes`` caps the body (a cover is refused well before a
video would be: :data:`COVER_MAX_BYTES`), a transient failure is retried with the one retry shape, and the body
goes to a ``.part`` of this call's own that is renamed into place only once it is complete, synced and shown by
its magic bytes to be a JPEG, PNG or WebP (its pixel size read from the header). A cover is small, so a failed
one is fetched again from the start, never resumed.

This module only fetches: the caller records the result (or the error) and decides when to try again. Writing
the file is :meth:`CoverFetcher._store`'s job alone, so it can move behind a storage interface.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from taobao_video import net
from taobao_video.errors import DownloadError
from taobao_video.fetch.cdn import content_length, network_error, open_url
from taobao_video.fetch.checks import content_error, host_allowed, public_url, status_error, wrong_type
from taobao_video.fetch.images import IMAGE_HEAD, ImageError, image_info
from taobao_video.fetch.media import describe_bytes
from taobao_video.fsutil import fsync_dir

if TYPE_CHECKING:
    from taobao_video.fetch.downloader import Downloader

COVER_MAX_BYTES: Final = 20 * 2**20  # Taobao's main pictures are a few hundred kB; 20 MiB is no picture we want
_CHUNK: Final = 64 * 1024
EXTENSIONS: Final = {"jpeg": "jpg", "png": "png", "webp": "webp"}  # by image kind


@dataclass(frozen=True)
class CoverResult:
    """A verified cover in its final place."""

    path: Path
    kind: str  # jpeg, png or webp
    width: int
    height: int
    size: int


class CoverFetcher:
    """Fetches covers into ``dest_dir`` with ``downloader``'s session, host allowlist, timeouts and retries.
    Safe to call from several threads (each call writes a ``.part`` of its own)."""

    def __init__(
        self,
        downloader: Downloader,
        dest_dir: Path,
        *,
        max_bytes: int = COVER_MAX_BYTES,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.dest_dir = Path(dest_dir)
        self._dl = downloader
        self.max_bytes = min(max_bytes, downloader.max_bytes)
        self._sleep = sleep

    def fetch(self, url: str, *, num_iid: int) -> CoverResult:
        """Download the cover at ``url`` as ``<num_iid>.<ext>``; DownloadError (``reason`` as for videos, plus
        ``not_image``) when it cannot be had, OSError when it cannot be written."""
        retrying = net.retrying(
            "cover",
            attempts=self._dl.retries + 1,
            should_retry=lambda exc: isinstance(exc, DownloadError) and exc.retryable,
            backoff_initial_s=self._dl.backoff_initial_s,
            backoff_max_s=self._dl.backoff_max_s,
            sleep=self._sleep,
        )
        return retrying(self._attempt, url, num_iid)

    def _attempt(self, url: str, num_iid: int) -> CoverResult:
        headers = {**self._dl.headers, "Accept": "image/webp,image/png,image/jpeg,image/*;q=0.8"}
        response, final_url = open_url(self._dl.http, url, headers, timeout_s=self._dl.timeout_s, check_url=self._check)
        with response:
            if response.status_code != 200:
                raise status_error(response.status_code, final_url, response.reason or "")
            announced = wrong_type(response.headers.get("Content-Type", ""))
            if announced is not None:
                raise content_error("not_image", f"the server sent {announced}, not a picture", final_url)
            length = content_length(response)
            if length is not None and length > self.max_bytes:
                raise content_error(
                    "too_large", f"{length} bytes is more than a cover may be ({self.max_bytes})", final_url
                )
            body = self._read(response, final_url, length)
        try:
            info = image_info(body[:IMAGE_HEAD])
        except ImageError as exc:
            raise content_error("not_image", f"{exc}: {describe_bytes(body[:512])}", final_url) from None
        return self._store(num_iid, info.kind, body, info.width, info.height)

    def _read(self, response: object, url: str, length: int | None) -> bytes:
        import requests

        assert isinstance(response, requests.Response)
        parts: list[bytes] = []
        received = 0
        try:
            for chunk in response.iter_content(_CHUNK):
                received += len(chunk)
                if received > self.max_bytes:
                    raise content_error("too_large", f"more than {self.max_bytes} bytes: not a cover", url)
                parts.append(chunk)
        except net.NETWORK_ERRORS as exc:
            raise network_error(exc, url, answering=True, received=received, total=length) from None
        if length is not None and received != length:
            message = f"{public_url(url)}: {received} of {length} bytes arrived"
            raise DownloadError("truncated", message, retryable=True, url=public_url(url))
        return b"".join(parts)

    def _store(self, num_iid: int, kind: str, body: bytes, width: int, height: int) -> CoverResult:
        """Write ``body`` to a ``.part``, sync it, rename it into place; a cover of another kind goes."""
        self.dest_dir.mkdir(parents=True, exist_ok=True)
        final = self.dest_dir / f"{num_iid}.{EXTENSIONS[kind]}"
        part = final.with_name(f"{final.name}.{uuid.uuid4().hex[:12]}.part")
        try:
            with part.open("wb") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(part, final)
        finally:
            part.unlink(missing_ok=True)
        fsync_dir(self.dest_dir)
        for other, ext in EXTENSIONS.items():
            if other != kind:
                (self.dest_dir / f"{num_iid}.{ext}").unlink(missing_ok=True)
        return CoverResult(final, kind, width, height, len(body))

    def _check(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https"):
            raise content_error("bad_scheme", f"scheme {parts.scheme or '(none)'!r} is not http(s)", url)
        host = parts.hostname or ""
        if not host_allowed(host, self._dl.allowed_hosts):
            allowed = ", ".join(self._dl.allowed_hosts)
            raise content_error("host_not_allowed", f"host {host!r} is not in allowed_hosts ({allowed})", url)


__all__ = ["COVER_MAX_BYTES", "EXTENSIONS", "CoverFetcher", "CoverResult"]
