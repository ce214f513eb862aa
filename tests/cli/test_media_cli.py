"""The media records through the CLI: covers checked by `catalog verify` (and fetched again after --fix, without a
call), and `catalog list --min-height/--codec/--has-audio`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from helpers.catalog import T0, video_row
from helpers.cli import run, write_settings

from taobao_video.sandbox import Sandbox
from taobao_video.store.catalog import Catalog


def catalog(config: Path, *args: str) -> list[str]:
    return ["--config", str(config), "catalog", *args]


def test_verify_checks_covers_and_fix_has_the_next_run_fetch_them_without_a_call(
    live: Sandbox, tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    config = write_settings(tmp_path, live)
    ids = live.catalogue.sample("video", 4)
    code, out, err = run(["--config", str(config), "harvest", "--json", *map(str, ids)], capsys, monkeypatch)
    assert code == 0, err
    covers = tmp_path / "covers"
    assert sorted(p.name for p in covers.iterdir()) == sorted(f"{i}.jpg" for i in ids)
    gone, html, other_size = ids[:3]
    (covers / f"{gone}.jpg").unlink()
    (covers / f"{html}.jpg").write_bytes(b"<!DOCTYPE html><html><body>hotlink refused</body></html>")
    (covers / f"{other_size}.jpg").write_bytes(live.catalogue.cover(live.catalogue.sample("no_video", 1)[0]))

    code, out, _ = run(catalog(config, "verify"), capsys, monkeypatch)
    assert code == 1
    assert f"{gone}  cover_missing" in out and f"{html}  cover_not_image" in out
    assert f"{other_size}  cover_changed" in out and "8x8 pixels" in out
    assert "checked 4: 4 good, 3 bad (4 covers checked too)" in out
    code, out, _ = run(catalog(config, "verify", "--fix", "--json"), capsys, monkeypatch)
    report = json.loads(out)
    assert code == 0 and (report["bad"], report["fixed"], report["covers_checked"]) == (3, 3, 4)

    live.reset_stats()
    code, out, err = run(["--config", str(config), "daily", "--json"], capsys, monkeypatch)
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert sorted(e["num_iid"] for e in events if e["event"] == "cover" and e["outcome"] == "downloaded") == sorted(
        ids[:3]
    )
    assert events[-1]["api_calls"] == 0 and live.stats()["gateway"]["calls"] == 0
    for num_iid in ids:
        assert (covers / f"{num_iid}.jpg").read_bytes() == live.catalogue.cover(num_iid)
    code, out, _ = run(catalog(config, "verify"), capsys, monkeypatch)
    assert code == 0 and "checked 4: 4 good, 0 bad (4 covers checked too)" in out


def _media_catalog(folder: Path) -> Path:
    """Four videos: 1280 tall h264 with sound, 720 tall h264 silent, 1280 tall hevc with sound, one not probed."""
    import dataclasses

    specs = [
        (1, 1280, "h264", True),
        (2, 720, "h264", False),
        (3, 1280, "hevc", True),
        (4, 1920, None, None),
    ]
    with Catalog.open(f"sqlite:///{folder / 'catalog.sqlite3'}") as cat:
        for num_iid, height, codec, audio in specs:
            row = dataclasses.replace(
                video_row(num_iid, 10.0, 1000, T0), height=height, codec=codec, has_audio=audio, bitrate=800_000
            )
            cat.record_video(row, now=T0)
    path = folder / "settings.toml"
    path.write_text('[download]\ndir = "videos"\n[database]\nurl = "sqlite:///catalog.sqlite3"\n', encoding="utf-8")
    return path


def test_list_filters_by_height_codec_and_audio(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    config = _media_catalog(tmp_path)

    def listed(*args: str) -> list[int]:
        code, out, err = run(catalog(config, "list", "--format", "csv", *args), capsys, monkeypatch)
        assert code == 0, err
        return [int(row["num_iid"]) for row in csv.DictReader(io.StringIO(out))]

    assert listed("--min-height", "1280") == [1, 3, 4]
    assert listed("--codec", "h264") == [1, 2]
    assert listed("--codec", "HEVC") == [3]
    assert listed("--has-audio") == [1, 3]
    assert listed("--no-audio") == [2]
    assert listed("--min-height", "721", "--codec", "h264", "--has-audio") == [1]
    code, _, err = run(catalog(config, "list", "--codec", "h.264!"), capsys, monkeypatch)
    assert code == 2 and "--codec" in err and "codec name" in err and "Traceback" not in err
    code, out, _ = run(catalog(config, "list", "--format", "json", "--ids", "-"), capsys, monkeypatch, stdin="2\n")
    (row,) = json.loads(out)
    assert (row["codec"], row["has_audio"], row["bitrate"], row["height"]) == ("h264", False, 800_000, 720)
