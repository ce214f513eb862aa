"""`catalog verify` on an s3:// row whose key is not a plain key under the prefix: reported missing, not raised."""

from __future__ import annotations

import pytest

from taobao_video.jobs.verify_objects import check_cover_object, check_object
from taobao_video.storage import S3Options
from taobao_video.storage.s3 import S3Storage


class NoClient:
    def head_object(self, **kw):
        raise AssertionError(f"no request expected: {kw}")

    get_object = head_object


@pytest.mark.parametrize("path", ["s3://b-1/tv/../etc/1.mp4", "s3://b-1/tv/a//1.mp4", "s3://b-1/tv/"])
def test_check_object_reports_a_bad_key_instead_of_raising(path):
    storage = S3Storage("s3://b-1/tv", S3Options(), client=NoClient())
    problem = check_object(storage, path, size=1, sha256="0" * 64, deep=False)
    assert problem is not None and problem[0] == "missing"


@pytest.mark.parametrize("path", ["s3://b-1/tv/../etc/1.jpg", "s3://b-1/tv/covers//1.jpg"])
def test_check_cover_object_reports_a_bad_key_instead_of_raising(path):
    storage = S3Storage("s3://b-1/tv", S3Options(), client=NoClient())
    problem = check_cover_object(storage, path, width=None, height=None)
    assert problem is not None and problem[0] == "cover_missing"
