"""``serve`` for videos in object storage: the bytes are streamed from the bucket through this server, with the
same Range, If-Range and If-None-Match handling as files on disk (one ranged GET per answer; nothing is read into
memory whole). Proxying rather than redirecting to a presigned URL keeps the page on one origin (its Content
Security Policy allows media only from itself) and the bucket private."""

from __future__ import annotations

import io
from contextlib import ExitStack
from typing import Any

from taobao_video.storage import Storage
from taobao_video.web.byteranges import UNSATISFIABLE, content_range, unsatisfied_range, wanted_range


class ObjectReader(io.RawIOBase):
    """A stored object as a readable file for ``socket.sendfile`` (which seeks once, then reads): the GET starts
    at the first read, from the offset sought, to ``end``."""

    def __init__(self, storage: Storage, key: str, end: int) -> None:
        super().__init__()
        self._storage, self._key, self._end = storage, key, end
        self._offset = 0
        self._stack = ExitStack()
        self._body: Any = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._body is None

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Before the first read: where to start. After it (sendfile's closing seek to the end): no effect."""
        if whence != io.SEEK_SET:
            raise io.UnsupportedOperation("an object can only be sought from its start")
        if self._body is None:
            self._offset = offset
        return offset

    def fileno(self) -> int:
        raise io.UnsupportedOperation("an object has no file descriptor")  # sendfile falls back to send

    def readinto(self, buffer: Any) -> int:
        if self._body is None:
            self._body = self._stack.enter_context(self._storage.open(self._key, start=self._offset, end=self._end))
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._stack.close()
        super().close()


def object_reply(
    storage: Storage, key: str, headers: Any, *, content_type: str = "video/mp4"
) -> tuple[int, list[tuple[str, str]], Any, int, int] | None:
    """(status, headers, reader or None, offset, length) for a stored object by the request's Range, If-Range and
    If-None-Match; None when there is no such object. The ETag is the recorded sha256: it changes with the bytes."""
    found = storage.stat(key)
    if found is None:
        return None
    size = found.size
    # the recorded sha256 changes with the bytes; without it (an object put by another tool) only a weak tag,
    # which If-Range never matches, so a resumed read can never splice two versions
    etag = f'"{found.sha256}"' if found.sha256 else f'W/"{size}"'
    common = [("Content-Type", content_type), ("Accept-Ranges", "bytes"), ("ETag", etag)]
    if etag in (headers.get("If-None-Match") or "") and not headers.get("Range"):
        return 304, common[2:], None, 0, 0
    span = wanted_range(headers.get("Range"), headers.get("If-Range"), size, (etag,))
    if span == UNSATISFIABLE:
        return 416, [("Content-Range", unsatisfied_range(size))], None, 0, 0
    if span is None:
        return 200, common, ObjectReader(storage, key, size - 1), 0, size
    start, end = span
    reader = ObjectReader(storage, key, end)
    return 206, [*common, ("Content-Range", content_range(span, size))], reader, start, end - start + 1


__all__ = ["ObjectReader", "object_reply"]
