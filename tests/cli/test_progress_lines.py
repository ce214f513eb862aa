"""What a run prints for people: one size formatter (binary units), item lines, deferred and stop lines, the ETA."""

from __future__ import annotations

import io
import re

import pytest
from rich.progress import TimeRemainingColumn

from taobao_video.cli.bar import BytesColumn
from taobao_video.cli.progress import RunOutput, summary_text
from taobao_video.model import StopReason, format_bytes

SUMMARY = {
    "event": "summary",
    "seconds": 1.5,
    "downloaded": 3,
    "skipped": 0,
    "no_video": 0,
    "not_found": 0,
    "failed": 0,
    "deferred": 2,
    "api_calls": 3,
    "quota_remaining": 0,
    "bytes": 870_502,
    "stopped": "quota",
    "quota_resets_at": "2026-12-03T16:00:00+00:00",
}


@pytest.mark.parametrize(
    ("count", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (493_158, "481.6 KiB"), (5 * 1024**3, "5.0 GiB")],
)
def test_one_size_formatter_in_binary_units(count: int, text: str) -> None:
    assert format_bytes(count) == text


def _plain(*events: dict) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    output = RunOutput("plain", out=out, err=err)
    for event in events:
        output.event(event)
    return out.getvalue(), err.getvalue()


def test_a_downloaded_line_says_the_size_in_binary_units_and_the_videos_length() -> None:
    out, _ = _plain(
        {
            "event": "item",
            "num_iid": 529367886433,
            "outcome": "downloaded",
            "bytes": 493_158,
            "duration": 12.8,
            "video_path": "data/videos/529367886433.mp4",
        }
    )
    assert out == "529367886433  downloaded  481.6 KiB  video 12.8 s  data/videos/529367886433.mp4\n"


@pytest.mark.parametrize("reason", list(StopReason))
def test_a_deferred_line_says_why_in_words(reason: StopReason) -> None:
    out, _ = _plain({"event": "item", "num_iid": 1, "outcome": "deferred", "detail": reason.value})
    assert out.startswith("1  deferred  (stopped: ") and out.rstrip().endswith(")")
    assert f"deferred  {reason.value}" not in out
    if reason is StopReason.FATAL:
        assert "see below" in out


def test_a_deferred_line_keeps_a_detail_in_words() -> None:
    out, _ = _plain({"event": "item", "num_iid": 1, "outcome": "deferred", "detail": "stopped mid-download"})
    assert out == "1  deferred  (stopped mid-download)\n"


def test_stop_and_warning_notes_say_what_happened() -> None:
    _, err = _plain(
        {"event": "stop", "reason": "quota", "resets_at": "2026-12-03T16:00:00+00:00", "detail": ""},
        {"event": "stop", "reason": "fatal", "resets_at": None, "detail": "not authorised yet: run auth login"},
        {"event": "stop", "reason": "max_calls", "resets_at": None, "detail": ""},
        {"event": "warning", "num_iid": 7, "detail": "the API says 5.0 s but the file lasts 9.0 s"},
    )
    lines = err.splitlines()
    assert lines[0].startswith("stopped: today's API quota is spent; the rest waits for the reset at 2026-12-04 00:00")
    # a stop that needs the user is said once, by the error that ends the run (the deferred lines say "see below")
    assert lines[1] == "stopped: this run's --max-calls is used up"
    assert lines[2] == "7: warning: the API says 5.0 s but the file lasts 9.0 s"
    assert len(lines) == 3
    assert "note:" not in err


def test_the_summary_uses_the_same_units() -> None:
    assert "850.1 KiB fetched." in summary_text(SUMMARY)
    assert not re.search(r"\d (MB|kB|KB)\b", summary_text(SUMMARY))


def test_the_bar_has_an_eta_and_binary_units() -> None:
    output = RunOutput("rich", err=io.StringIO(), out=io.StringIO())
    output.event({"event": "plan", "ids": 4, "skipped": 0, "downloads": 0, "lookups": 4, "quota_remaining": 9})
    assert output._progress is not None
    columns = output._progress.columns
    assert any(isinstance(column, TimeRemainingColumn) for column in columns)
    output.add_bytes(3 * 1024 * 1024)
    task = output._progress.tasks[0]
    bytes_column = next(column for column in columns if isinstance(column, BytesColumn))
    assert str(bytes_column.render(task)).startswith("3.0 MiB • ")
    output.event({**SUMMARY})


@pytest.mark.parametrize(
    ("stopped", "extra", "line"),
    [
        ("max_calls", {}, "Stopped: this run's --max-calls is used up; 3 ids deferred (exit 75)."),
        ("rate_limited", {}, "Stopped: the platform's frequency limit; 3 ids deferred. Try later (exit 75)."),
        (
            "storage_failed",
            {"error": "upload of s3://shop/v/1.mp4: EndpointConnectionError: Could not connect"},
            "Stopped: the object storage failed (upload of s3://shop/v/1.mp4: EndpointConnectionError: Could not "
            "connect); 3 ids deferred, "
            "nothing lost: the next run uploads what is left without a call (exit 75).",
        ),
        ("signal", {}, "Stopped on request; 3 ids deferred, partial downloads kept for resuming."),
    ],
)
def test_every_stop_reason_has_its_line_in_the_summary(stopped: str, extra: dict, line: str) -> None:
    text = summary_text({**SUMMARY, "deferred": 3, "stopped": stopped, **extra})
    assert text.splitlines()[1] == line
    assert summary_text({**SUMMARY, "stopped": "fatal"}).count("\n") == 0  # the error itself says what to do
