"""SIGKILL in the middle of a multipart upload: no partial object is ever visible, and the next run cleans the
unfinished upload and completes, with no call."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from helpers.cli import ENV, write_settings

from conftest import APP_KEY, CANARY_SECRET
from taobao_video.sandbox import AppConfig, Sandbox, SandboxConfig

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
PREFIX = "killed"


@pytest.mark.timeout(300)
def test_sigkill_mid_upload_leaves_no_partial_object_and_the_rerun_completes(weed, bucket, tmp_path):
    config = SandboxConfig(
        seed=5, apps=(AppConfig(key=APP_KEY, secret=CANARY_SECRET),), video_bytes=(60_000_000, 60_000_000)
    )
    s3 = boto3.client(
        "s3",
        endpoint_url=weed.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=weed.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=weed.env["AWS_SECRET_ACCESS_KEY"],
    )
    with Sandbox(config) as sb:
        num_iid = sb.catalogue.sample("video", 1)[0]
        settings = write_settings(
            tmp_path, sb, more_toml=f'[s3]\nendpoint_url = "{weed.endpoint_url}"\naddressing_style = "path"\n'
        )
        env = {
            **os.environ,
            **ENV,
            **weed.env,
            "PYTHONPATH": str(REPO),
            "TAOBAO_VIDEO__DOWNLOAD__DIR": f"s3://{bucket}/{PREFIX}",
            "NO_PROXY": "127.0.0.1",
        }
        command = [sys.executable, "-m", "taobao_video", "--config", str(settings), "harvest", "--json", str(num_iid)]
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not s3.list_multipart_uploads(Bucket=bucket).get("Uploads"):  # the upload has begun
            assert process.poll() is None, "the run ended before its upload could be caught"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []  # nothing visible, not even a part
        assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads")  # the killed run's debris, invisible

        rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, check=False)
        summary = json.loads(rerun.stdout.splitlines()[-1])
        assert rerun.returncode == 0 and summary["downloaded"] == 1 and summary["api_calls"] == 0, rerun.stderr
        keys = [entry["Key"] for entry in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        assert keys == [f"{PREFIX}/{num_iid}.mp4"]
        data = s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read()
        expected = hashlib.sha256(b"".join(sb.catalogue.video(num_iid).iter_chunks(chunk_size=1 << 20))).hexdigest()
        assert hashlib.sha256(data).hexdigest() == expected
        assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []  # cleaned by the rerun
