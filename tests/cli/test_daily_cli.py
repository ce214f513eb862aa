"""`taobao-video daily`: where the queue stands, in the text and in the JSON, at the real daily pace."""

from __future__ import annotations

import json
import re

from helpers.cli import run, write_settings


def test_days_left_is_the_real_pace_not_max_calls_and_text_and_json_agree(live, tmp_path, capsys, monkeypatch):
    config = write_settings(tmp_path, live, more_toml="[quota]\ndaily_limit = 1000\nreserve = 10\n")
    ids = live.catalogue.sample("video", 3) + live.catalogue.sample("no_video", 1)
    code, _, err = run(["--config", str(config), "queue", "add", *map(str, ids * 1)], capsys, monkeypatch)
    assert code == 0, err
    code, out, err = run(["--config", str(config), "daily", "--max-calls", "1", "--json"], capsys, monkeypatch)
    summary = json.loads(out.splitlines()[-1])
    assert code == 75 and summary["pending"] == 3
    assert summary["calls_per_day"] == 990 and summary["days_left"] == 1
    code, out, err = run(["--config", str(config), "daily", "--max-calls", "1"], capsys, monkeypatch)
    match = re.search(r"Queue: (\d+) pending, \d+ awaiting download; about (\d+) more days? at (\d+) calls a day", out)
    assert match, out
    pending, days, per_day = map(int, match.groups())
    assert (pending, days, per_day) == (2, 1, 990)
