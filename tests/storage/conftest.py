"""A real S3-compatible server (SeaweedFS) for the session, and a fresh bucket per test."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest
from helpers.weed import ACCESS_KEY, CI_HINT, SECRET_KEY, Weed, missing_reason, running_weed, weed_binary

_buckets = itertools.count(1)
IN_CI = bool(os.environ.get("CI"))


@pytest.fixture(scope="session")
def weed() -> Iterator[Weed]:
    """``weed mini`` on loopback for the whole session (tests/helpers/weed.py). Skipped when SeaweedFS or boto3 is
    missing, except under CI where that is a failure."""
    reason = missing_reason()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"{reason}: {CI_HINT}", pytrace=False)
        pytest.skip(f"{reason} ({CI_HINT} to run the object storage tests)")
    binary = weed_binary()
    assert binary is not None
    with running_weed(binary) as server:
        yield server


@pytest.fixture
def s3_env(weed: Weed, monkeypatch: pytest.MonkeyPatch) -> Weed:
    """The server's credentials in this process's environment, where boto3's chain finds them."""
    for name, value in weed.env.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    return weed


@pytest.fixture
def bucket(s3_env: Weed) -> str:
    """A new, empty bucket on the server."""
    import boto3

    name = f"tv-test-{next(_buckets)}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_env.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    client.create_bucket(Bucket=name)
    return name
