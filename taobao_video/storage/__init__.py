"""Where finished files live: a local folder (the default) or S3-compatible object storage, behind one interface.

::

    store = open_storage("s3://videos/tv", S3Options(endpoint_url="http://127.0.0.1:8333"))
    store.put(Path("spool/520000000001.mp4"), "520000000001.mp4", sha256=digest)   # visible only complete
    store.stat("520000000001.mp4")         # StoredObject(key, size, sha256) or None
    with store.open("520000000001.mp4", start=100, end=199) as body: ...
    store.location("520000000001.mp4")     # what a catalog row holds: "s3://videos/tv/520000000001.mp4"

The interface is generic (a verified local file under a relative key), not video-only: covers use it too.
``base.py`` holds the interface and the records, ``local.py`` the folder, ``s3.py`` the object store (boto3).
"""

from __future__ import annotations

from taobao_video.storage.base import S3Options, Storage, StoredObject, is_object_url, open_storage, split_object_url

__all__ = ["S3Options", "Storage", "StoredObject", "is_object_url", "open_storage", "split_object_url"]
