"""`taobao-video refresh` as a user runs it, against a sandbox on the real clock whose seller replaces one video a
moment after the harvest."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from helpers.cli import run, write_settings

from conftest import APP_KEY, CANARY_SECRET
from taobao_video.sandbox import AppConfig, Sandbox, SandboxConfig
from taobao_video.sandbox.products import Catalogue

VIDEOS = Catalogue(9, (40_000, 90_000)).sample("video", 3)


def test_refresh_downloads_the_replaced_video_and_says_what_it_did(tmp_path: Path, capsys: Any, monkeypatch: Any):
    changes_at = datetime.now(UTC) + timedelta(seconds=1.5)
    config = SandboxConfig(
        seed=9,
        apps=(AppConfig(key=APP_KEY, secret=CANARY_SECRET),),
        video_bytes=(40_000, 90_000),
        video_changes={VIDEOS[0]: changes_at},
    )
    with Sandbox(config) as sb:
        settings = write_settings(tmp_path, sb)
        code, _, err = run(["--config", str(settings), "harvest", *map(str, VIDEOS)], capsys, monkeypatch)
        assert code == 0, err
        time.sleep(max(0.0, (changes_at - datetime.now(UTC)).total_seconds()) + 0.1)
        code, out, err = run(
            ["--config", str(settings), "refresh", "--older-than", "0", "--max-calls", "2", "--json"],
            capsys,
            monkeypatch,
        )
        assert code == 0, err
        events = [json.loads(line) for line in out.splitlines()]
        summary = events[-1]
        assert summary["event"] == "summary" and summary["budget"] == 2 and summary["checked"] == 2
        assert summary["api_calls"] == 2 == sb.stats()["gateway"]["by_method"].get("taobao.item_video", 0) - 3
        outcomes = {e["num_iid"]: e["outcome"] for e in events if e["event"] == "refresh"}
        assert outcomes == {VIDEOS[0]: "changed", VIDEOS[1]: "unchanged"}  # the two checked longest ago, by id
        code, out, err = run(["--config", str(settings), "refresh", "--older-than", "0"], capsys, monkeypatch)
        assert code == 0, err
        lines = out.splitlines()
        oldest_first = [VIDEOS[2], VIDEOS[0], VIDEOS[1]]  # the third was last checked by the harvest
        assert lines[:3] == [f"{i}  unchanged" for i in oldest_first]
        assert lines[-1] == (
            "refresh: 3 checked (3 due, budget 199 calls): 3 unchanged, 0 changed, 0 gained a video, 0 gone, "
            "0 failed; 0 downloaded, 3 calls, 992 left today"
        )  # 199 = 20% of the 995 calls left after the harvest (3) and the first refresh (2)
        history = sorted((tmp_path / "videos" / "history").iterdir())
        assert len(history) == 1 and history[0].name.startswith(f"{VIDEOS[0]}-")
        assert (tmp_path / "videos" / f"{VIDEOS[0]}.mp4").read_bytes() == b"".join(sb.video(VIDEOS[0]).iter_chunks())
