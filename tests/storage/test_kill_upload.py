"""SIGKILL in the middle of a multipart upload: no partial object is ever visible, and the next run cleans the
unfinished upload and completes, with no call."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
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
        assert keys == [f"{PREFIX}/{num_iid}.mp4", f"{PREFIX}/covers/{num_iid}.jpg"]  # the cover only after its video
        data = s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read()
        expected = hashlib.sha256(b"".join(sb.catalogue.video(num_iid).iter_chunks(chunk_size=1 << 20))).hexdigest()
        assert hashlib.sha256(data).hexdigest() == expected
        assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []  # cleaned by the rerun


@pytest.mark.timeout(300)
def test_the_bucket_going_away_mid_run_stops_it_with_75_and_nothing_is_lost(tmp_path):
    from contextlib import ExitStack

    from helpers.weed import running_weed, weed_binary

    binary = weed_binary()
    if binary is None:
        pytest.skip("SeaweedFS (weed) is not installed")
    config = SandboxConfig(seed=5, apps=(AppConfig(key=APP_KEY, secret=CANARY_SECRET),), video_bytes=(40_000, 90_000))
    with Sandbox(config) as sb, ExitStack() as first_server:
        weed = first_server.enter_context(running_weed(binary))
        ids = sb.catalogue.sample("video", 8)
        settings = write_settings(tmp_path, sb, qps="2")  # paced: the run lasts a few seconds

        def run_harvest(endpoint: str, bucket: str) -> subprocess.Popen[str]:
            s3_section = f'[s3]\nendpoint_url = "{endpoint}"\naddressing_style = "path"\n'
            text = settings.read_text(encoding="utf-8").split("[s3]")[0]
            settings.write_text(text + s3_section, encoding="utf-8")
            env = {**os.environ, **ENV, **weed.env, "PYTHONPATH": str(REPO), "NO_PROXY": "127.0.0.1"}
            env["TAOBAO_VIDEO__DOWNLOAD__DIR"] = f"s3://{bucket}/{PREFIX}"
            command = [sys.executable, "-m", "taobao_video", "--config", str(settings), "harvest", "--json"]
            return subprocess.Popen(
                [*command, *map(str, ids)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )

        s3 = boto3.client(
            "s3",
            endpoint_url=weed.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=weed.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=weed.env["AWS_SECRET_ACCESS_KEY"],
        )
        s3.create_bucket(Bucket="going-away")
        process = run_harvest(weed.endpoint_url, "going-away")
        deadline = time.monotonic() + 60
        while not s3.list_objects_v2(Bucket="going-away").get("Contents"):  # the first upload is in
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        first_server.close()  # the server goes away mid-run
        out, err = process.communicate(timeout=120)
        summary = json.loads(out.splitlines()[-1])
        assert process.returncode == 75 and summary["stopped"] == "storage_failed", (out[-500:], err[-500:])
        assert "Traceback" not in err and 0 < summary["downloaded"] < len(ids)
        done_before = summary["downloaded"]
        calls_before = summary["api_calls"]
        db = sqlite3.connect(tmp_path / "catalog.sqlite3")
        states = dict(db.execute("SELECT state, COUNT(*) FROM items GROUP BY state").fetchall())
        db.close()
        assert "failed" not in states, states  # the uploads cut off wait, resolved, for the next run (daily too)

        with running_weed(binary) as again:  # back (an empty one here): the rest goes up with no new call
            weed_env = again.env
            s3 = boto3.client(
                "s3",
                endpoint_url=again.endpoint_url,
                region_name="us-east-1",
                aws_access_key_id=weed_env["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=weed_env["AWS_SECRET_ACCESS_KEY"],
            )
            s3.create_bucket(Bucket="going-away")
            process = run_harvest(again.endpoint_url, "going-away")
            out, err = process.communicate(timeout=120)
            summary = json.loads(out.splitlines()[-1])
            assert process.returncode == 0, err[-1000:]
            assert summary["downloaded"] == len(ids) - done_before  # the rest; the rows already made are kept
            assert summary["api_calls"] == len(ids) - calls_before  # ids never looked up; no id looked up twice
            keys = [entry["Key"] for entry in s3.list_objects_v2(Bucket="going-away").get("Contents", [])]
            assert len([key for key in keys if key.endswith(".mp4")]) == len(ids) - done_before
