"""`[metrics] textfile`: Prometheus text-format metrics after every run, parsed back with prometheus_client's own
parser and compared with the run's summary."""

from __future__ import annotations

from pathlib import Path

from helpers.cli import run, write_settings
from prometheus_client.parser import text_string_to_metric_families

from taobao_video.sandbox import Sandbox


def samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    families = text_string_to_metric_families(path.read_text(encoding="utf-8"))
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families
        for sample in family.samples
    }


def test_a_harvest_writes_metrics_equal_to_its_summary(live: Sandbox, tmp_path: Path, capsys, monkeypatch) -> None:
    import json

    prom = tmp_path / "textfile" / "taobao_video.prom"
    config = write_settings(tmp_path, live, more_toml=f'[metrics]\ntextfile = "{prom}"\n')
    ids = live.catalogue.sample_mixed(8)
    code, out, err = run(["--config", str(config), "harvest", "--json", *map(str, ids)], capsys, monkeypatch)
    assert code == 0, err
    summary = json.loads(out.splitlines()[-1])
    got = samples(prom)
    run_label = (("command", "harvest"),)
    assert got[("taobao_video_last_run_exit_code", run_label)] == 0
    for outcome in ("downloaded", "skipped", "no_video", "not_found", "failed", "deferred"):
        assert got[("taobao_video_last_run_items", (("command", "harvest"), ("outcome", outcome)))] == summary[outcome]
    assert got[("taobao_video_last_run_bytes", run_label)] == summary["bytes"]
    assert got[("taobao_video_last_run_api_calls", run_label)] == summary["api_calls"]
    assert got[("taobao_video_queue_items", (("state", "done"),))] == summary["downloaded"]
    assert got[("taobao_video_api_calls_used_today", (("app", "default"),))] == summary["api_calls"]
    assert got[("taobao_video_api_calls_left_today", (("app", "default"),))] == summary["quota_remaining"]
    assert ("taobao_video_token_expiry_timestamp_seconds", (("app", "default"),)) in got
    success = got[("taobao_video_last_success_timestamp_seconds", run_label)]
    assert success == got[("taobao_video_last_run_end_timestamp_seconds", run_label)]

    # A run that fails keeps the last success where it was.
    code, _, _ = run(["--config", str(config), "harvest", "--json", "abc", str(ids[0])], capsys, monkeypatch)
    assert code == 2
    again = samples(prom)
    assert again[("taobao_video_last_run_exit_code", run_label)] == 2
    assert again[("taobao_video_last_success_timestamp_seconds", run_label)] == success

    # A line someone added by hand is dropped; the last success of the other command is not.
    prom.write_text(prom.read_text() + "oops, not prometheus text\n")
    code, _, err = run(["--config", str(config), "daily", "--json"], capsys, monkeypatch)
    assert code == 0, err
    assert "oops" not in prom.read_text(encoding="utf-8")
    kept = samples(prom)
    assert kept[("taobao_video_last_run_exit_code", (("command", "daily"),))] == 0
    assert ("taobao_video_last_success_timestamp_seconds", run_label) in kept  # harvest's, carried over


def test_an_unwritable_textfile_is_a_warning_not_a_failure(live: Sandbox, tmp_path: Path, capsys, monkeypatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the metrics folder should be")
    config = write_settings(tmp_path, live, more_toml=f'[metrics]\ntextfile = "{blocker / "taobao_video.prom"}"\n')
    ids = live.catalogue.sample("video", 2)
    code, _, err = run(["--config", str(config), "harvest", *map(str, ids)], capsys, monkeypatch)
    assert code == 0 and "the metrics file" in err and "was not written" in err and "Traceback" not in err


def test_serve_shows_the_same_metrics_at_slash_metrics(live: Sandbox, tmp_path: Path, capsys, monkeypatch) -> None:
    """The real `serve` command on the catalog a harvest and a daily run just wrote: /metrics parses to exactly
    the textfile's samples (nothing changed in between), both commands' last runs included."""
    import os
    import signal
    import subprocess
    import sys

    import requests
    from helpers.cli import ENV

    prom = tmp_path / "taobao_video.prom"
    config = write_settings(tmp_path, live, more_toml=f'[metrics]\ntextfile = "{prom}"\n')
    ids = live.catalogue.sample_mixed(5)
    code, _, err = run(["--config", str(config), "harvest", *map(str, ids)], capsys, monkeypatch)
    assert code == 0, err
    code, _, err = run(
        ["--config", str(config), "queue", "add", *map(str, live.catalogue.sample("video", 7))], capsys, monkeypatch
    )
    assert code == 0, err
    code, _, err = run(["--config", str(config), "daily"], capsys, monkeypatch)
    assert code == 0, err
    written = samples(prom)
    assert (("taobao_video_last_run_exit_code", (("command", "harvest"),))) in written  # the harvest's, kept
    assert (("taobao_video_last_run_exit_code", (("command", "daily"),))) in written
    env = {**os.environ, **ENV}
    process = subprocess.Popen(
        [sys.executable, "-m", "taobao_video", "--config", str(config), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = process.stdout.readline()
        url = line.split(" at ", 1)[1].split()[0].rstrip("/")
        answer = requests.get(url + "/metrics", timeout=10)
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        served = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.text)
            for sample in family.samples
        }
        assert served == written
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)
