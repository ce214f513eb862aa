"""The storage interface, its records, and the one place that picks a backend from ``download.dir``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

from taobao_video.errors import ConfigError

AddressingStyle = Literal["auto", "virtual", "path"]
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")  # S3's bucket naming rule (OSS's is a subset)
OBJECT_SCHEME = "s3://"


@dataclass(frozen=True)
class StoredObject:
    """One stored file: its key (relative to the storage's root), size and sha256 (None: not recorded with it)."""

    key: str
    size: int
    sha256: str | None


@dataclass(frozen=True)
class S3Options:
    """The ``[s3]`` section: where the S3 API is and how to address buckets. Credentials are not here: boto3
    reads them from the AWS environment variables, ``~/.aws`` or an instance role."""

    endpoint_url: str = ""  # empty: AWS itself
    region: str = "us-east-1"
    addressing_style: AddressingStyle = "auto"  # Aliyun OSS accepts only "virtual"


class Storage(Protocol):
    """Finished files under relative keys (``520000000001.mp4``, ``covers/520000000001.jpg``).

    ``put`` makes a complete, verified local file visible under ``key`` all at once (a reader never sees a part of
    it) and durable when it returns; ``stat``, ``open``, ``iter_objects``, ``delete`` and ``location`` read and
    manage what is there. Every failure is a :class:`~taobao_video.errors.TaobaoVideoError`.
    """

    url: str  # the root: a folder's path, or "s3://BUCKET/PREFIX"

    def put(self, source: Path, key: str, *, sha256: str, content_type: str = "video/mp4") -> StoredObject: ...

    def stat(self, key: str) -> StoredObject | None: ...

    def open(self, key: str, *, start: int = 0, end: int | None = None) -> AbstractContextManager[BinaryIO]: ...

    def iter_objects(self, prefix: str = "") -> Iterator[StoredObject]: ...

    def delete(self, key: str) -> None: ...

    def move(self, key: str, to: str) -> None: ...

    def location(self, key: str) -> str: ...

    def clean_debris(self, *, older_than_s: float) -> int: ...


def is_object_url(value: str) -> bool:
    """Whether ``download.dir`` names object storage rather than a folder."""
    return value.lower().startswith(OBJECT_SCHEME)


def split_object_url(url: str) -> tuple[str, str]:
    """``s3://BUCKET/PREFIX`` → (bucket, prefix without slashes at either end); ConfigError for a bad one."""
    if not is_object_url(url):
        raise ConfigError(f"download.dir: {url!r} is not an s3://BUCKET/PREFIX URL")
    bucket, _, prefix = url[len(OBJECT_SCHEME) :].partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ConfigError(
            f"download.dir: {bucket!r} is not a valid bucket name (3-63 lower-case letters, digits, '.' and '-')"
        )
    prefix = prefix.strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise ConfigError(f"download.dir: the prefix {prefix!r} has an empty, '.' or '..' part")
    return bucket, prefix


def open_storage(root: str | Path, s3: S3Options | None = None) -> Storage:
    """The backend for ``download.dir``: object storage for ``s3://…``, else the local folder."""
    if isinstance(root, str) and is_object_url(root):
        try:
            from taobao_video.storage.s3 import S3Storage  # boto3 is only imported when it is used
        except ImportError:
            raise ConfigError(
                f"download.dir = {root!r} needs boto3: pip install 'taobao-video[s3]' (or pip install boto3)"
            ) from None

        return S3Storage(root, s3 or S3Options())
    from taobao_video.storage.local import LocalStorage

    return LocalStorage(Path(root))


def check_key(key: str) -> str:
    """A relative key of plain parts (``covers/1.jpg``); ValueError for one that could leave the root."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts):
        raise ValueError(f"a storage key must be a relative path of plain names, not {key!r}")
    return key
