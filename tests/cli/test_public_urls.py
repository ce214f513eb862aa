"""`download.public_url_prefix`: video_public_url and cover_public_url in `catalog list` (csv, json, jsonl), every
`catalog export` format and `/api/videos`; the prefix + the file's path under the published folder, else the
platform's URL."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers.cli import run, write_settings
from helpers.serve import serving

from taobao_video.config.load import load_settings
from taobao_video.config.peek import peek
from taobao_video.errors import ConfigError
from taobao_video.sandbox import Sandbox
from taobao_video.store.catalog import open_existing
from taobao_video.web.server import CatalogSite

PREFIX = "https://media.example.com/taobao/"


@pytest.fixture
def published(live: Sandbox, tmp_path: Path, capsys: Any, monkeypatch: Any) -> tuple[Path, list[int], list[int]]:
    """Three videos harvested and two items without one, with the prefix set; one cover not on disk."""
    config = write_settings(tmp_path, live)
    text = config.read_text(encoding="utf-8").replace("[download]\n", f'[download]\npublic_url_prefix = "{PREFIX}"\n')
    config.write_text(text, encoding="utf-8")
    videos, empty = live.catalogue.sample("video", 3), live.catalogue.sample("no_video", 2)
    code, _, err = run(["--config", str(config), "harvest", *map(str, videos + empty)], capsys, monkeypatch)
    assert code == 0, err
    catalog = open_existing(f"sqlite:///{tmp_path / 'catalog.sqlite3'}")
    try:
        from taobao_video.store.covers import record_cover

        row = catalog.video(videos[2])
        assert row is not None and row.cover_url
        record_cover(catalog, videos[2], cover_url=row.cover_url, path=None, error="HTTP 500")
    finally:
        catalog.close()
    return config, videos, empty


def check(rows: list[dict[str, Any]], live: Sandbox, videos: list[int]) -> None:
    assert sorted(int(r["num_iid"]) for r in rows) == sorted(videos)
    for row in rows:
        num_iid = int(row["num_iid"])
        assert row["video_public_url"] == f"{PREFIX}videos/{num_iid}.mp4"
        if num_iid == videos[2]:
            assert row["cover_public_url"] == row["cover_url"] and "/cdn/cover/" in row["cover_url"]
        else:
            assert row["cover_public_url"] == f"{PREFIX}covers/{num_iid}.jpg"


def test_list_carries_the_public_urls_in_csv_json_and_jsonl(published, live, capsys, monkeypatch):
    config, videos, _ = published
    base = ["--config", str(config), "catalog", "list", "--format"]
    code, out, _ = run([*base, "csv"], capsys, monkeypatch)
    assert code == 0
    check(list(csv.DictReader(io.StringIO(out))), live, videos)
    code, out, _ = run([*base, "json"], capsys, monkeypatch)
    assert code == 0
    check(json.loads(out), live, videos)
    code, out, _ = run([*base, "jsonl"], capsys, monkeypatch)
    assert code == 0
    check([json.loads(line) for line in out.splitlines()], live, videos)


def test_an_item_without_a_video_carries_none(published, live, capsys, monkeypatch):
    config, _, empty = published
    args = ["--config", str(config), "catalog", "list", "--state", "no_video", "--format", "json"]
    code, out, _ = run(args, capsys, monkeypatch)
    assert code == 0
    rows = json.loads(out)
    assert sorted(r["num_iid"] for r in rows) == sorted(empty)
    assert all(r["video_public_url"] is None and r["cover_public_url"] is None for r in rows)


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "xlsx"])
def test_every_export_format_carries_them(published, live, capsys, monkeypatch, tmp_path, fmt):
    config, videos, _ = published
    target = tmp_path / f"out.{fmt}"
    code, _, err = run(["--config", str(config), "catalog", "export", "-o", str(target)], capsys, monkeypatch)
    assert code == 0, err
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    elif fmt == "json":
        rows = [{"num_iid": key, **value} for key, value in json.loads(target.read_text(encoding="utf-8")).items()]
    elif fmt == "jsonl":
        rows = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    else:
        from openpyxl import load_workbook

        sheet = load_workbook(target).active
        header, *body = [list(r) for r in sheet.iter_rows(values_only=True)]
        rows = [dict(zip(header, r, strict=True)) for r in body]
    check(rows, live, videos)


def test_the_api_carries_them_and_the_page_keeps_its_own_urls(published, live):
    config, videos, _ = published
    settings = load_settings(config, env={})
    with open_existing(settings.database.url) as catalog:
        site = CatalogSite(
            catalog,
            base_dir=settings.base_dir,
            videos_dir=settings.download.dir,
            public_url_prefix=settings.download.public_url_prefix,
        )
        with serving(site) as url:
            page = requests.get(url + "/api/videos", timeout=10).json()
    check(page["videos"], live, videos)
    for row in page["videos"]:
        if row["num_iid"] != videos[2]:
            assert row["cover_src"] == f"/covers/{row['num_iid']}.jpg"


def test_the_quick_read_and_the_full_load_agree(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text('[download]\ndir = "media/videos"\npublic_url_prefix = "https://cdn.example.org/v"\n')
    full, quick = load_settings(path, env={}), peek(path, env={})
    assert (
        quick is not None and full.download.public_url_prefix == quick.public_url_prefix == "https://cdn.example.org/v/"
    )
    assert quick.media_root == full.download.dir.parent == tmp_path / "media"


@pytest.mark.parametrize("bad", ["ftp://x/", "media.example.com/", "https://", 5])
def test_a_bad_prefix_is_a_configuration_error(tmp_path, bad):
    path = tmp_path / "settings.toml"
    path.write_text(f"[download]\npublic_url_prefix = {json.dumps(bad)}\n")
    assert peek(path, env={}) is None  # the full load reports it
    with pytest.raises(ConfigError, match=r"\[download\] public_url_prefix: .*http\(s\) URL"):
        load_settings(path, env={})
