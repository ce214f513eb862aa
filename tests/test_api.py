"""The public Python API (``import taobao_video as tv``): the README's examples run, events match ``--json``."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.cli import write_settings

import taobao_video as tv
from conftest import APP_KEY, CANARY_SECRET
from taobao_video.cli.main import main
from taobao_video.sandbox import AppConfig, Sandbox, SandboxConfig

REPO = Path(__file__).resolve().parents[1]
# The README's examples name ids of the demo's catalogue (seed 2026): 521424390973 has a video, …74 is gone.
SEED = 2026


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A settings folder pointing at a live sandbox with a token, as a user's would be; the working directory."""
    config = SandboxConfig(seed=SEED, apps=(AppConfig(key=APP_KEY, secret=CANARY_SECRET),))
    with Sandbox(config) as sb:
        write_settings(tmp_path, sb)
        monkeypatch.setenv("TAOBAO_APP_KEY", APP_KEY)
        monkeypatch.setenv("TAOBAO_APP_SECRET", CANARY_SECRET)
        monkeypatch.delenv("TAOBAO_VIDEO_CONFIG", raising=False)
        monkeypatch.chdir(tmp_path)
        yield tmp_path


def readme_python_examples() -> list[str]:
    """The ```python blocks of the README's "Use it from Python" section."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Use it from Python", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_the_readme_examples_run_and_print_what_the_readme_says(folder: Path) -> None:
    examples = readme_python_examples()
    assert len(examples) >= 2, "the section shows a harvest and a catalog query at least"
    namespace: dict[str, object] = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for code in examples:
            exec(compile(code, "README.md", "exec"), namespace)
    out = printed.getvalue()
    assert "downloaded 2" in out and "exit code 0" in out, out
    assert "videos/521424390973.mp4" in out, out
    assert (folder / "videos" / "521424390973.mp4").is_file()


def test_events_are_the_json_lines_and_the_summary_is_the_report(folder: Path) -> None:
    events: list[dict] = []
    report = tv.harvest([521424390973, "521424390974"], settings=tv.load_settings(), on_event=events.append)
    assert [e["event"] for e in events] == ["plan", "item", "item", "summary"]
    assert events[-1] == {"event": "summary", **report.as_dict()}
    assert report.exit_code == 0 and report.downloaded == 1 and report.not_found == 1

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as ended:
        main(["harvest", "--json", "521424390973", "521424390974"])
    assert ended.value.code == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["event"] for e in lines] == ["plan", "item", "item", "summary"]
    assert set(lines[-1]) == set(events[-1]), "the CLI prints the library's records"
    assert {e["outcome"] for e in lines[1:3]} == {"skipped"}, "the second run spends nothing"


def test_a_bad_id_is_a_usage_error_naming_it(folder: Path) -> None:
    with pytest.raises(tv.UsageError, match="'12ab' is not a num_iid"):
        tv.harvest(["12ab"], settings=tv.load_settings())
    with pytest.raises(tv.UsageError, match="-5"):
        tv.lookup([-5], settings=tv.load_settings())


def test_lookup_returns_results_and_keeps_them(folder: Path) -> None:
    settings = tv.load_settings()
    [found] = tv.lookup([521424390973], settings=settings)
    assert found.outcome == "video" and found.video is not None
    with tv.open_catalog(settings) as catalog:
        item = catalog.item(521424390973)
    assert item is not None and item.state == "resolved", "queued for download without another call"


def test_errors_are_one_tree_with_exit_codes() -> None:
    assert issubclass(tv.ConfigError, tv.TaobaoVideoError) and tv.ConfigError.exit_code == 78
    assert tv.AuthError.exit_code == 77 and tv.QuotaExhausted.exit_code == 75 and tv.UsageError.exit_code == 2
    with pytest.raises(AttributeError):
        _ = tv.no_such_function  # type: ignore[attr-defined]


def test_importing_the_package_stays_light() -> None:
    code = (
        "import sys, taobao_video as tv\n"
        "heavy = [m for m in ('sqlalchemy', 'requests', 'pydantic', 'rich', 'tenacity') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert callable(tv.harvest) and 'pydantic' not in sys.modules, 'the API loads on first use only'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
