"""S3-compatible object storage (AWS S3, Aliyun OSS, MinIO, SeaweedFS, Ceph) through boto3.

An object appears under its key only complete: a single PUT is atomic, and a multipart upload (files over
``MULTIPART_BYTES``) is invisible until its CompleteMultipartUpload; s3transfer aborts one that fails. A process
killed mid-upload leaves an unfinished multipart upload, which is never visible as an object and which
:meth:`S3Storage.clean_debris` aborts on a later run. Memory stays bounded: s3transfer reads the file a part at a
time (``PART_BYTES`` x ``UPLOAD_THREADS`` per upload in flight).

Each object carries its sha256 as user metadata (``x-amz-meta-sha256``), so ``stat`` (a HEAD) tells size and
hash without reading the bytes. Credentials come from boto3's own chain (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE`` and ``~/.aws``, an instance role), never from settings.toml.

botocore's exceptions are translated here, and only here: credentials, permissions and a missing bucket are a
ConfigError (exit 78, the user must act); anything else is a StorageError (exit 75: run again later).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Final

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from taobao_video.errors import ConfigError, StorageError, TaobaoVideoError
from taobao_video.storage.base import S3Options, StoredObject, check_key, split_object_url

MULTIPART_BYTES: Final = 16 * 2**20  # above this a file goes up in parts (bounded memory, resumable parts)
PART_BYTES: Final = 8 * 2**20
UPLOAD_THREADS: Final = 2  # parts of one file in flight at once: the download pool already runs several files
SHA256_META: Final = "sha256"
COPY_OBJECT_BYTES: Final = 5 * 2**30  # CopyObject's limit; larger objects are copied in parts
_USER_ERRORS: Final = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "NoSuchBucket",
        "AllAccessDisabled",
        "InvalidBucketName",
        "AuthorizationHeaderMalformed",
        "PermanentRedirect",
    }
)


def storage_error(exc: Exception, what: str) -> TaobaoVideoError:
    """A botocore failure as ours: the user's to fix (ConfigError) or worth a later run (StorageError)."""
    if isinstance(exc, NoCredentialsError):
        return ConfigError(
            f"{what}: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
        )
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        message = str(exc.response.get("Error", {}).get("Message", "")) or code
        if code in _USER_ERRORS:
            return ConfigError(f"{what}: {code}: {message}")
        if code in ("403", "Forbidden"):  # a HEAD has no body to say why: the keys or the bucket's policy refuse us
            return ConfigError(
                f"{what}: 403 Forbidden: the bucket refused these credentials; check AWS_ACCESS_KEY_ID, "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and the bucket's permissions"
            )
        return StorageError(code or "error", f"{what}: {code}: {message}")
    return StorageError("unreachable", f"{what}: {type(exc).__name__}: {exc}")


class S3Storage:
    """Objects under ``s3://BUCKET/PREFIX``; safe to use from several threads (boto3 clients are)."""

    def __init__(self, url: str, options: S3Options, *, client: Any = None) -> None:
        self.bucket, self.prefix = split_object_url(url)
        self.url = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self.options = options
        self._client = client if client is not None else self._new_client(options)
        self._transfer = TransferConfig(
            multipart_threshold=MULTIPART_BYTES,
            multipart_chunksize=PART_BYTES,
            max_concurrency=UPLOAD_THREADS,
            use_threads=True,
        )
        # parts read ahead of their upload (s3transfer's default is 10): bounded memory
        self._transfer.max_in_memory_upload_chunks = UPLOAD_THREADS

    @staticmethod
    def _new_client(options: S3Options) -> Any:
        config = Config(
            s3={"addressing_style": options.addressing_style},
            retries={"max_attempts": 5, "mode": "standard"},
            max_pool_connections=32,
            # send checksums only where the API requires them: several S3-compatible servers reject the newer
            # default trailing checksums on uploads
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = boto3.session.Session()
        return session.client(
            "s3", endpoint_url=options.endpoint_url or None, region_name=options.region, config=config
        )

    def __repr__(self) -> str:
        return f"S3Storage({self.url!r})"

    def name(self, key: str) -> str:
        """The object name of ``key``: the prefix, a slash, the key."""
        key = check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, source: Path, key: str, *, sha256: str, content_type: str = "video/mp4") -> StoredObject:
        """Upload ``source`` to ``key`` with its sha256 as metadata; visible only once complete."""
        size = source.stat().st_size
        extra = {"Metadata": {SHA256_META: sha256}, "ContentType": content_type}
        try:
            if size <= MULTIPART_BYTES:  # one PUT from the open file: no transfer manager and its threads per file
                with open(source, "rb") as body:
                    self._client.put_object(
                        Bucket=self.bucket, Key=self.name(key), Body=body, ContentLength=size, **extra
                    )
            else:
                self._client.upload_file(
                    str(source), self.bucket, self.name(key), ExtraArgs=extra, Config=self._transfer
                )
        except (BotoCoreError, ClientError) as exc:
            raise storage_error(exc, f"uploading {key} to {self.url}") from None
        except S3UploadFailedError as exc:  # boto3 re-raises the ClientError inside it as this (its __context__)
            cause = exc.__context__ if isinstance(exc.__context__, ClientError) else exc
            raise storage_error(cause, f"uploading {key} to {self.url}") from None
        return StoredObject(key, size, sha256)

    def stat(self, key: str) -> StoredObject | None:
        """Size and recorded sha256 from a HEAD; None when there is no such object."""
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=self.name(key))
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise storage_error(exc, f"checking {key} in {self.url}") from None
        except BotoCoreError as exc:
            raise storage_error(exc, f"checking {key} in {self.url}") from None
        meta = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}
        return StoredObject(key, int(head["ContentLength"]), meta.get(SHA256_META))

    def open(self, key: str, *, start: int = 0, end: int | None = None) -> AbstractContextManager[BinaryIO]:
        """The bytes ``start``..``end`` (inclusive; None: to the end) of ``key``, streamed."""
        return self._body(key, start, end)

    @contextmanager
    def _body(self, key: str, start: int, end: int | None) -> Iterator[BinaryIO]:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self.name(key)}
        if start or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            body = self._client.get_object(**args)["Body"]
        except (BotoCoreError, ClientError) as exc:
            raise storage_error(exc, f"reading {key} from {self.url}") from None
        try:
            yield body
        finally:
            body.close()

    def iter_objects(self, prefix: str = "") -> Iterator[StoredObject]:
        """Every object whose key starts with ``prefix``, in key order (from the listing: sha256 not included)."""
        base = f"{self.prefix}/" if self.prefix else ""
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=base + prefix):
                for entry in page.get("Contents", []):
                    yield StoredObject(entry["Key"][len(base) :], int(entry["Size"]), None)
        except (BotoCoreError, ClientError) as exc:
            raise storage_error(exc, f"listing {self.url}") from None

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self.name(key))
        except (BotoCoreError, ClientError) as exc:
            raise storage_error(exc, f"deleting {key} from {self.url}") from None

    def move(self, key: str, to: str) -> None:
        """Copy ``key`` to ``to`` inside the bucket (metadata and all: no byte leaves the server), then delete it.
        Up to 5 GiB one CopyObject; above, the transfer manager's multipart copy with the sha256 set again."""
        found = self.stat(key)
        if found is None:
            raise StorageError("missing", f"moving {key} in {self.url}: no such object")
        source = {"Bucket": self.bucket, "Key": self.name(key)}
        try:
            if found.size <= COPY_OBJECT_BYTES:
                self._client.copy_object(Bucket=self.bucket, Key=self.name(to), CopySource=source)
            else:
                extra = {"Metadata": {SHA256_META: found.sha256 or ""}}
                self._client.copy(source, self.bucket, self.name(to), ExtraArgs=extra, Config=self._transfer)
        except (BotoCoreError, ClientError) as exc:
            raise storage_error(exc, f"moving {key} to {to} in {self.url}") from None
        self.delete(key)

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.name(key)}"

    def clean_debris(self, *, older_than_s: float, now: datetime | None = None) -> int:
        """Abort the unfinished multipart uploads under the prefix started over ``older_than_s`` ago (a killed
        run's; younger ones may be another worker's, still going). Returns how many were aborted."""
        cutoff = (now or datetime.now(UTC)) - timedelta(seconds=older_than_s)
        base = f"{self.prefix}/" if self.prefix else ""
        aborted = 0
        try:
            paginator = self._client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=base):
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] <= cutoff:
                        self._client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        aborted += 1
        except (BotoCoreError, ClientError) as exc:
            raise storage_error(exc, f"cleaning unfinished uploads in {self.url}") from None
        return aborted

    def sha256(self, key: str) -> str:
        """Read the object back and hash it (``--deep``), a chunk at a time."""
        digest = hashlib.sha256()
        with self.open(key) as body:
            while chunk := body.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()
