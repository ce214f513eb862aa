"""`serve` over a catalog damaged while it runs: 503 naming the file and the fix, never a 500 or a traceback."""

from __future__ import annotations

from pathlib import Path

import requests
from helpers.damage import overwrite_tables
from helpers.serve import harvested, served_catalog


def test_damage_under_a_running_server_is_a_503_naming_the_fix(tmp_path: Path) -> None:
    with harvested(tmp_path, first=3, second=1, no_video=1) as data:
        file = data.settings.base_dir / "catalog.sqlite3"
        overwrite_tables(file)
        with served_catalog(data.settings) as url:
            for path in ("/api/videos", "/api/stats", f"/videos/{next(iter(data.rows))}.mp4"):
                answer = requests.get(url + path, timeout=10)
                assert answer.status_code == 503, (path, answer.text)
                body = answer.json()
                assert body["status"] == 503 and str(file) in body["error"], body
                assert "taobao-video db rebuild" in body["error"]
            assert requests.get(url + "/", timeout=10).status_code == 200  # the page itself still loads
