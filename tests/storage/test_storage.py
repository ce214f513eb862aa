"""The storage backends: the local folder and S3 (against a real SeaweedFS), through the one interface."""

from __future__ import annotations

import hashlib
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from taobao_video.errors import ConfigError, StorageError
from taobao_video.storage import S3Options, open_storage, split_object_url
from taobao_video.storage.local import LocalStorage
from taobao_video.storage.s3 import MULTIPART_BYTES, S3Storage


def blob(path: Path, size: int, seed: int = 0) -> str:
    data = hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1)
    path.write_bytes(data[:size])
    return hashlib.sha256(data[:size]).hexdigest()


def s3(weed, bucket: str, prefix: str = "videos/tv") -> S3Storage:
    store = open_storage(f"s3://{bucket}/{prefix}", S3Options(endpoint_url=weed.endpoint_url, addressing_style="path"))
    assert isinstance(store, S3Storage)
    return store


@pytest.mark.parametrize("url", ["s3://ab", "s3://UPPER/x", "s3://-bad/x", "s3://ok-bucket/a//b", "s3://ok/../x"])
def test_bad_object_urls_are_config_errors(url):
    with pytest.raises(ConfigError, match=r"download\.dir"):
        split_object_url(url)


def test_object_urls_split_into_bucket_and_prefix():
    assert split_object_url("s3://videos/") == ("videos", "")
    assert split_object_url("s3://videos.example/a/b/") == ("videos.example", "a/b")


def test_keys_cannot_leave_the_root(tmp_path):
    store = LocalStorage(tmp_path)
    for key in ("", "/etc/passwd", "../x", "a/../../x", "a//b"):
        with pytest.raises(ValueError, match="storage key"):
            store.stat(key)


def test_local_put_stat_range_list_delete(tmp_path):
    store = open_storage(tmp_path / "root")
    source = tmp_path / "spool.bin"
    digest = blob(source, 10_000)
    stored = store.put(source, "covers/1.jpg", sha256=digest, content_type="image/jpeg")
    assert (stored.key, stored.size) == ("covers/1.jpg", 10_000) and not source.exists()
    assert store.stat("covers/1.jpg") == type(stored)("covers/1.jpg", 10_000, None)  # a folder keeps no hash
    assert store.stat("covers/2.jpg") is None
    whole = (tmp_path / "root" / "covers" / "1.jpg").read_bytes()
    with store.open("covers/1.jpg", start=100, end=1099) as body:
        assert body.read() == whole[100:1100]
    assert [o.key for o in store.iter_objects()] == ["covers/1.jpg"]
    assert store.location("covers/1.jpg") == str(tmp_path / "root" / "covers" / "1.jpg")
    store.delete("covers/1.jpg")
    assert list(store.iter_objects()) == []


def test_s3_put_carries_sha256_and_reads_back_by_range(weed, bucket, tmp_path):
    store = s3(weed, bucket)
    source = tmp_path / "1.mp4"
    digest = blob(source, 300_000)
    store.put(source, "1.mp4", sha256=digest)
    assert source.exists()  # the spool file is the caller's to remove once the row is committed
    assert store.stat("1.mp4") == type(store.stat("1.mp4"))("1.mp4", 300_000, digest)
    assert store.stat("2.mp4") is None
    with store.open("1.mp4", start=1000, end=1999) as body:
        assert body.read() == source.read_bytes()[1000:2000]
    assert store.sha256("1.mp4") == digest
    assert store.location("1.mp4") == f"s3://{bucket}/videos/tv/1.mp4"
    assert [(o.key, o.size) for o in store.iter_objects()] == [("1.mp4", 300_000)]
    store.delete("1.mp4")
    assert list(store.iter_objects()) == [] and store.stat("1.mp4") is None


def test_s3_multipart_upload_of_a_large_file(weed, bucket, tmp_path):
    store = s3(weed, bucket, prefix="")
    source = tmp_path / "big.mp4"
    digest = blob(source, MULTIPART_BYTES + 3 * 2**20 + 7, seed=2)
    store.put(source, "big.mp4", sha256=digest)
    assert store.stat("big.mp4") == type(store.stat("big.mp4"))("big.mp4", source.stat().st_size, digest)
    assert store.sha256("big.mp4") == digest


def test_s3_unfinished_uploads_are_invisible_and_cleaned(weed, bucket, tmp_path):
    store = s3(weed, bucket)
    client = store._client
    started = client.create_multipart_upload(Bucket=bucket, Key="videos/tv/9.mp4")  # as a killed run leaves it
    client.upload_part(
        Bucket=bucket, Key="videos/tv/9.mp4", UploadId=started["UploadId"], PartNumber=1, Body=b"x" * 100
    )
    assert list(store.iter_objects()) == [] and store.stat("9.mp4") is None
    assert store.clean_debris(older_than_s=3600) == 0  # young: maybe another worker's, still going
    assert store.clean_debris(older_than_s=0, now=datetime.now(UTC) + timedelta(seconds=5)) == 1
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_s3_wrong_credentials_are_a_config_error(weed, bucket, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    store = s3(weed, bucket)
    source = tmp_path / "1.mp4"
    digest = blob(source, 1000)
    with pytest.raises(ConfigError) as caught:
        store.put(source, "1.mp4", sha256=digest)
    assert "not-the-secret" not in str(caught.value) and "SignatureDoesNotMatch" in str(caught.value)


def test_s3_missing_bucket_is_a_config_error(weed, s3_env, tmp_path):
    store = s3(weed, "no-such-bucket-here")
    with pytest.raises(ConfigError, match="NoSuchBucket"):
        list(store.iter_objects())


def test_s3_unreachable_is_a_storage_error(s3_env, tmp_path):
    store = open_storage("s3://videos/x", S3Options(endpoint_url="http://127.0.0.1:9", addressing_style="path"))
    store._client.meta.config.retries = {"max_attempts": 1}
    with pytest.raises(StorageError) as caught:
        store.stat("1.mp4")
    assert caught.value.exit_code == 75


def test_s3_puts_from_several_threads(weed, bucket, tmp_path):
    store = s3(weed, bucket)
    digests = {}
    for index in range(8):
        digests[f"{index}.mp4"] = blob(tmp_path / f"{index}.mp4", 50_000 + index, seed=index)
    threads = [
        threading.Thread(target=store.put, args=(tmp_path / key, key), kwargs={"sha256": digest})
        for key, digest in digests.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {o.key: store.stat(o.key).sha256 for o in store.iter_objects()} == digests  # type: ignore[union-attr]
    assert sorted(os.listdir(tmp_path)) == sorted(digests)  # the sources stay: the caller removes them after recording


def test_settings_name_a_bucket_and_the_spool(tmp_path):
    from taobao_video.config.load import settings_from_mapping

    data = {"download": {"dir": "s3://shop-videos/taobao/"}, "s3": {"endpoint_url": "http://127.0.0.1:8333/"}}
    settings = settings_from_mapping(data, base_dir=tmp_path, env={})
    assert settings.download.object_url == "s3://shop-videos/taobao"
    assert settings.download.dir == tmp_path / "data" / "spool"  # downloads wait here for their upload
    assert settings.s3.options() == S3Options(endpoint_url="http://127.0.0.1:8333", addressing_style="auto")
    plain = settings_from_mapping({}, base_dir=tmp_path, env={})
    assert (plain.download.object_url, plain.download.dir) == (None, tmp_path / "data" / "videos")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"download": {"dir": "s3://Bad_Bucket/x"}}, "not a valid bucket name"),
        ({"s3": {"addressing_style": "both"}}, "auto | virtual | path"),
        ({"s3": {"endpoint_url": "ftp://host"}}, "http(s)://host"),
    ],
)
def test_bad_s3_settings_are_refused(tmp_path, data, message):
    from taobao_video.config.load import settings_from_mapping

    with pytest.raises(ConfigError) as caught:
        settings_from_mapping(data, base_dir=tmp_path, env={})
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("aws_secret_access_key", "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"),
        ("aws_access_key_id", "AKIAIOSFODNN7EXAMPLE"),
        ("AccessKeySecret", "aliyun-secret-5f3c9e"),
    ],
)
def test_credentials_in_the_file_are_refused_without_showing_them(tmp_path, key, secret):
    from taobao_video.config.load import settings_from_mapping

    with pytest.raises(ConfigError) as caught:
        settings_from_mapping({"s3": {key: secret}}, base_dir=tmp_path, env={})
    assert "secrets must not be stored" in str(caught.value)
    assert secret not in str(caught.value)


def test_a_storage_error_survives_copy_and_pickle():
    import copy
    import pickle

    error = StorageError("unreachable", "uploading 1.mp4 to s3://b/p: EndpointConnectionError", retryable=False)
    for again in (copy.deepcopy(error), pickle.loads(pickle.dumps(error))):
        assert (type(again), str(again), again.reason, again.retryable) == (
            StorageError,
            str(error),
            "unreachable",
            False,
        )
        assert again.exit_code == 75
