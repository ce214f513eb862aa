"""harvest into a real S3-compatible bucket (SeaweedFS): objects complete with their sha256, nothing else in the
bucket, no object for a failed item, a rerun spends no call and uploads nothing."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from helpers.cli import run, write_settings

from conftest import APP_KEY, CANARY_SECRET
from taobao_video.sandbox import AppConfig, Sandbox, SandboxConfig
from taobao_video.sandbox.faults import Fault

PREFIX = "shop/videos"


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    probe = SandboxConfig(seed=9, apps=(AppConfig(key=APP_KEY, secret=CANARY_SECRET),), video_bytes=(40_000, 90_000))
    with Sandbox(probe) as first:
        broken = first.catalogue.sample("video", 1)[0]  # its CDN answers an HTML page: a failed item
    config = SandboxConfig(
        seed=9,
        apps=(AppConfig(key=APP_KEY, secret=CANARY_SECRET),),
        video_bytes=(40_000, 90_000),
        faults=(Fault("html_200", "cdn", num_iid=broken),),
    )
    with Sandbox(config) as sandbox:
        sandbox.broken = broken  # type: ignore[attr-defined]
        yield sandbox


def client(weed):
    return boto3.client("s3", endpoint_url=weed.endpoint_url, region_name="us-east-1")


def objects(weed, bucket: str) -> dict[str, tuple[int, str, object]]:
    """key → (size, sha256 metadata, last modified) of everything in the bucket."""
    s3 = client(weed)
    found = {}
    for entry in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        head = s3.head_object(Bucket=bucket, Key=entry["Key"])
        found[entry["Key"]] = (entry["Size"], head["Metadata"].get("sha256", ""), entry["LastModified"])
    return found


def sandbox_sha256(sb: Sandbox, num_iid: int) -> str:
    digest = hashlib.sha256()
    for chunk in sb.catalogue.video(num_iid).iter_chunks(chunk_size=1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def settings_into_bucket(folder: Path, sb: Sandbox, weed, bucket: str, monkeypatch) -> Path:
    config = write_settings(
        folder, sb, more_toml=f'[s3]\nendpoint_url = "{weed.endpoint_url}"\naddressing_style = "path"\n'
    )
    monkeypatch.setenv("TAOBAO_VIDEO__DOWNLOAD__DIR", f"s3://{bucket}/{PREFIX}")
    return config


def harvest(config: Path, ids: list[int], capsys, monkeypatch) -> tuple[int, dict]:
    code, out, err = run(["--config", str(config), "harvest", "--json", *map(str, ids)], capsys, monkeypatch)
    assert "Traceback" not in err
    return code, json.loads(out.splitlines()[-1])


def test_harvest_into_a_bucket_then_rerun_spends_nothing(sb, weed, s3_env, bucket, tmp_path, capsys, monkeypatch):
    config = settings_into_bucket(tmp_path, sb, weed, bucket, monkeypatch)
    ids = sorted({*sb.catalogue.sample_mixed(12), sb.broken})
    code, summary = harvest(config, ids, capsys, monkeypatch)
    assert code == 1 and summary["failed"] == 1 and summary["downloaded"] > 3, summary
    videos = [i for i in ids if sb.catalogue.kind(i) == "video" and i != sb.broken]
    stored = objects(weed, bucket)
    covers = {f"{PREFIX}/covers/{i}.jpg" for i in videos}  # each video's cover beside it
    assert set(stored) == {f"{PREFIX}/{i}.mp4" for i in videos} | covers  # no other keys; none for the failed item
    for num_iid in videos:
        body = client(weed).get_object(Bucket=bucket, Key=f"{PREFIX}/covers/{num_iid}.jpg")["Body"].read()
        assert body == sb.catalogue.cover(num_iid)
    for num_iid in videos:
        key = f"{PREFIX}/{num_iid}.mp4"
        body = client(weed).get_object(Bucket=bucket, Key=key)["Body"].read()
        assert (
            stored[key][:2] == (len(body), sandbox_sha256(sb, num_iid)) == (len(body), hashlib.sha256(body).hexdigest())
        )
    code, out, _ = run(["--config", str(config), "catalog", "list", "--format", "jsonl"], capsys, monkeypatch)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and sorted(row["num_iid"] for row in rows) == videos
    assert {row["video_path"] for row in rows} == {f"s3://{bucket}/{PREFIX}/{i}.mp4" for i in videos}
    assert {row["cover_path"] for row in rows} == {f"s3://{bucket}/{k}" for k in covers}
    code, out, _ = run(
        ["--config", str(config), "catalog", "list", "--missing", "--format", "jsonl"], capsys, monkeypatch
    )
    assert code == 0 and out.strip() == ""  # objects are not files gone from disk (verify checks them)
    monkeypatch.setenv("TAOBAO_VIDEO__DOWNLOAD__PUBLIC_URL_PREFIX", "https://cdn.example.com/shop/")  # the bucket's CDN
    code, out, _ = run(["--config", str(config), "catalog", "list", "--format", "jsonl"], capsys, monkeypatch)
    public = {(r["video_public_url"], r["cover_public_url"]) for r in map(json.loads, out.splitlines())}
    assert public == {
        (f"https://cdn.example.com/shop/{i}.mp4", f"https://cdn.example.com/shop/covers/{i}.jpg") for i in videos
    }
    monkeypatch.delenv("TAOBAO_VIDEO__DOWNLOAD__PUBLIC_URL_PREFIX")
    spool = tmp_path / "data" / "spool"
    assert [p for p in spool.rglob("*") if p.is_file()] == []  # every spool file went up, then away

    code, again = harvest(config, ids, capsys, monkeypatch)
    assert again["api_calls"] == 0 and again["downloaded"] == 0 and again["skipped"] >= len(videos)
    assert objects(weed, bucket) == stored  # 0 uploads: every object as it was, same time stamps


def test_verify_checks_objects_and_fix_restores_them_with_no_call(
    sb, weed, s3_env, bucket, tmp_path, capsys, monkeypatch
):
    config = settings_into_bucket(tmp_path, sb, weed, bucket, monkeypatch)
    videos = sb.catalogue.sample("video", 5)[1:]  # the first is the broken one
    code, summary = harvest(config, videos, capsys, monkeypatch)
    assert code == 0 and summary["downloaded"] == 4
    s3 = client(weed)
    gone, relabelled, rewritten, good = (f"{PREFIX}/{i}.mp4" for i in videos)
    s3.delete_object(Bucket=bucket, Key=gone)
    s3.copy_object(  # same bytes, another sha256 in its metadata
        Bucket=bucket,
        Key=relabelled,
        CopySource={"Bucket": bucket, "Key": relabelled},
        Metadata={"sha256": "0" * 64},
        MetadataDirective="REPLACE",
    )
    body = s3.get_object(Bucket=bucket, Key=rewritten)["Body"].read()
    meta = s3.head_object(Bucket=bucket, Key=rewritten)["Metadata"]
    s3.put_object(Bucket=bucket, Key=rewritten, Body=body[:-4] + b"XXXX", Metadata=meta)  # a HEAD cannot tell

    verify = ["--config", str(config), "catalog", "verify", "--json"]
    code, out, _ = run(verify, capsys, monkeypatch)
    report = json.loads(out)
    assert code == 1 and (report["checked"], report["ok"]) == (4, 2)
    assert {(p["num_iid"], p["problem"]) for p in report["problems"]} == {
        (videos[0], "missing"),
        (videos[1], "changed"),
    }
    code, out, _ = run([*verify, "--deep"], capsys, monkeypatch)
    report = json.loads(out)
    assert code == 1 and {p["num_iid"] for p in report["problems"]} == set(videos[:3])
    assert report["bytes_read"] > 0

    code, out, _ = run([*verify, "--deep", "--fix"], capsys, monkeypatch)
    assert code == 0 and json.loads(out)["fixed"] == 3
    code, again = harvest(config, videos, capsys, monkeypatch)
    assert code == 0 and again["api_calls"] == 0 and again["downloaded"] == 3 and again["skipped"] == 1
    stored = objects(weed, bucket)
    assert {key for key in stored if key.endswith(".mp4")} == {gone, relabelled, rewritten, good}
    for num_iid in videos:
        key = f"{PREFIX}/{num_iid}.mp4"
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(data).hexdigest() == stored[key][1] == sandbox_sha256(sb, num_iid)
    code, out, _ = run([*verify, "--deep"], capsys, monkeypatch)
    assert code == 0 and json.loads(out)["ok"] == 4 and json.loads(out)["covers_checked"] == 4
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")  # a HEAD refused: 403 and no body to say why
    code, _, err = run(verify, capsys, monkeypatch)
    assert code == 78 and "403 Forbidden: the bucket refused these credentials" in err and "Traceback" not in err
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)

    s3.delete_object(Bucket=bucket, Key=f"{PREFIX}/covers/{videos[3]}.jpg")  # a cover gone from the bucket
    code, out, _ = run([*verify, "--fix"], capsys, monkeypatch)
    report = json.loads(out)
    assert code == 0 and [(p["num_iid"], p["problem"]) for p in report["problems"]] == [(videos[3], "cover_missing")]
    code, again = harvest(config, videos, capsys, monkeypatch)
    assert code == 0 and again["api_calls"] == 0 and again["downloaded"] == 0
    body = s3.get_object(Bucket=bucket, Key=f"{PREFIX}/covers/{videos[3]}.jpg")["Body"].read()
    assert body == sb.catalogue.cover(videos[3])  # fetched again from its stored URL, uploaded again


def test_serve_streams_objects_with_ranges(sb, weed, s3_env, bucket, tmp_path, capsys, monkeypatch):
    import requests
    from helpers.serve import served_catalog

    from taobao_video.config.load import load_settings
    from taobao_video.storage import open_storage

    config = settings_into_bucket(tmp_path, sb, weed, bucket, monkeypatch)
    videos = sb.catalogue.sample("video", 3)[1:]
    assert harvest(config, videos, capsys, monkeypatch)[0] == 0
    settings = load_settings(config)
    assert settings.download.object_url is not None
    storage = open_storage(settings.download.object_url, settings.s3.options())
    whole = b"".join(sb.catalogue.video(videos[0]).iter_chunks(chunk_size=1 << 20))
    with served_catalog(settings, storage=storage) as url, requests.Session() as http:
        http.trust_env = False
        full = http.get(f"{url}/videos/{videos[0]}.mp4", timeout=10)
        assert (full.status_code, full.content) == (200, whole)
        assert full.headers["Accept-Ranges"] == "bytes" and full.headers["Content-Type"] == "video/mp4"
        part = http.get(f"{url}/videos/{videos[0]}.mp4", headers={"Range": "bytes=100-4195"}, timeout=10)
        assert part.status_code == 206 and part.content == whole[100:4196]
        assert part.headers["Content-Range"] == f"bytes 100-4195/{len(whole)}"
        tail = http.get(f"{url}/videos/{videos[0]}.mp4", headers={"Range": "bytes=-10"}, timeout=10)
        assert tail.status_code == 206 and tail.content == whole[-10:]
        etag = full.headers["ETag"]
        assert http.get(f"{url}/videos/{videos[0]}.mp4", headers={"If-None-Match": etag}, timeout=10).status_code == 304
        beyond = http.get(f"{url}/videos/{videos[0]}.mp4", headers={"Range": f"bytes={len(whole)}-"}, timeout=10)
        assert beyond.status_code == 416
        cover = http.get(f"{url}/covers/{videos[0]}.jpg", timeout=10)  # the cover, from the bucket too
        assert (cover.status_code, cover.content) == (200, sb.catalogue.cover(videos[0]))
        assert cover.headers["Content-Type"] == "image/jpeg"
        listed = http.get(f"{url}/api/videos", timeout=10).json()["videos"]
        assert {row["cover_src"] for row in listed} == {f"/covers/{i}.jpg" for i in videos}
        client(weed).delete_object(Bucket=bucket, Key=f"{PREFIX}/{videos[1]}.mp4")
        missing = http.get(f"{url}/videos/{videos[1]}.mp4", timeout=10)
        assert missing.status_code == 404 and "catalog verify" in missing.json()["error"]


def test_db_rebuild_from_the_bucket_listing(sb, weed, s3_env, bucket, tmp_path, capsys, monkeypatch):
    import sqlite3

    config = settings_into_bucket(tmp_path, sb, weed, bucket, monkeypatch)
    videos = sb.catalogue.sample("video", 4)[1:]
    assert harvest(config, videos, capsys, monkeypatch)[0] == 0
    db = sqlite3.connect(tmp_path / "catalog.sqlite3")
    before = db.execute("SELECT num_iid, video_path, size_bytes, sha256, video_url FROM videos ORDER BY 1").fetchall()
    db.close()
    s3 = client(weed)
    damaged = f"{PREFIX}/{videos[2]}.mp4"
    body = s3.get_object(Bucket=bucket, Key=damaged)["Body"].read()
    meta = s3.head_object(Bucket=bucket, Key=damaged)["Metadata"]
    s3.put_object(Bucket=bucket, Key=damaged, Body=body[:-4] + b"XXXX", Metadata=meta)
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/covers/{videos[0]}.jpg", Body=b"\xff\xd8 a cover")  # not a video
    (tmp_path / "catalog.sqlite3").write_bytes(b"this is not a database" * 100)  # damaged beyond reading

    code, out, _ = run(["--config", str(config), "db", "rebuild", "--json"], capsys, monkeypatch)
    report = json.loads(out)
    assert code == 0 and report["videos"] == 2, report
    assert [lost["name"] for lost in report["lost_files"]] == [f"s3://{bucket}/{damaged}"]
    db = sqlite3.connect(tmp_path / "catalog.sqlite3")
    after = db.execute("SELECT num_iid, video_path, size_bytes, sha256 FROM videos ORDER BY 1").fetchall()
    db.close()
    assert after == [row[:4] for row in before if row[0] != videos[2]]
    assert [p for p in (tmp_path / "data" / "spool").rglob("*") if p.is_file()] == []  # read-back copies gone


def test_a_missing_bucket_stops_the_run_with_78_before_any_call(
    sb, weed, s3_env, bucket, tmp_path, capsys, monkeypatch
):
    config = settings_into_bucket(tmp_path, sb, weed, "no-such-bucket-anywhere", monkeypatch)
    videos = sb.catalogue.sample("video", 3)[1:]
    code, _, err = run(["--config", str(config), "harvest", *map(str, videos)], capsys, monkeypatch)
    assert code == 78 and "NoSuchBucket" in err and "Traceback" not in err  # found before the first lookup
    assert not any((tmp_path / "data" / "spool").glob("*.mp4"))  # no upload, no spool file left behind
    monkeypatch.setenv("TAOBAO_VIDEO__DOWNLOAD__DIR", f"s3://{bucket}/{PREFIX}")  # the user fixes the setting
    code, summary = harvest(config, videos, capsys, monkeypatch)
    assert code == 0 and summary["downloaded"] == 2 and summary["api_calls"] == 2  # one call per id in all
    assert set(objects(weed, bucket)) == {f"{PREFIX}/{i}.mp4" for i in videos} | {
        f"{PREFIX}/covers/{i}.jpg" for i in videos
    }


def test_doctor_checks_the_bucket(sb, weed, s3_env, bucket, tmp_path, capsys, monkeypatch):
    config = settings_into_bucket(tmp_path, sb, weed, bucket, monkeypatch)
    doctor = ["--config", str(config), "doctor", "--json"]
    code, out, _ = run(doctor, capsys, monkeypatch)
    (line,) = [json.loads(x) for x in out.splitlines() if '"download dir"' in x]
    assert line["status"] == "ok" and f"s3://{bucket}/{PREFIX} answers a listing" in line["detail"]
    monkeypatch.setenv("TAOBAO_VIDEO__DOWNLOAD__DIR", "s3://no-such-bucket-anywhere/videos")
    code, out, _ = run(doctor, capsys, monkeypatch)
    (line,) = [json.loads(x) for x in out.splitlines() if '"download dir"' in x]
    assert code == 78 and line["status"] == "fail" and "NoSuchBucket" in line["detail"]


def test_refresh_moves_a_replaced_video_to_history_in_the_bucket(weed, s3_env, bucket, tmp_path, capsys, monkeypatch):
    from datetime import UTC, datetime, timedelta

    apps = (AppConfig(key=APP_KEY, secret=CANARY_SECRET),)
    with Sandbox(SandboxConfig(seed=9, apps=apps)) as probe:
        videos = probe.catalogue.sample("video", 3)
    changes_at = datetime.now(UTC) + timedelta(seconds=3)  # the seller replaces the first video after the harvest
    config = SandboxConfig(seed=9, apps=apps, video_bytes=(40_000, 90_000), video_changes={videos[0]: changes_at})
    with Sandbox(config) as sb:
        settings = settings_into_bucket(tmp_path, sb, weed, bucket, monkeypatch)
        assert harvest(settings, videos, capsys, monkeypatch)[0] == 0
        old = client(weed).get_object(Bucket=bucket, Key=f"{PREFIX}/{videos[0]}.mp4")["Body"].read()
        while datetime.now(UTC) < changes_at:
            time.sleep(0.1)
        refresh = ["--config", str(settings), "refresh", "--older-than", "0", "--json"]
        code, out, err = run(refresh, capsys, monkeypatch)
        summary = json.loads(out.splitlines()[-1])
        assert code == 0 and (summary["changed"], summary["unchanged"], summary["downloaded"]) == (1, 2, 1), err
        history_key = f"{PREFIX}/history/{videos[0]}-{hashlib.sha256(old).hexdigest()[:12]}.mp4"
        s3 = client(weed)
        assert s3.get_object(Bucket=bucket, Key=history_key)["Body"].read() == old  # the old version, kept
        new = s3.get_object(Bucket=bucket, Key=f"{PREFIX}/{videos[0]}.mp4")["Body"].read()
        assert hashlib.sha256(new).hexdigest() == sandbox_sha256(sb, videos[0]) != hashlib.sha256(old).hexdigest()
        code, out, _ = run(["--config", str(settings), "catalog", "show", str(videos[0])], capsys, monkeypatch)
        assert code == 0 and f"kept at s3://{bucket}/{history_key}" in out and "MISSING" not in out
