"""How a run shows itself: JSON lines (``--json``), one plain line per item (cron logs), or a rich bar (terminal)."""

from __future__ import annotations

import json
import sys
import threading
from datetime import datetime
from types import TracebackType
from typing import IO, Any

from rich import filesize
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn
from rich.text import Text

from taobao_video.jobs.harvest import HarvestReport

BEIJING_LABEL = "Beijing"


class BytesColumn(ProgressColumn):
    """Bytes fetched so far and the average speed (the task's own counter counts items)."""

    def render(self, task: Task) -> Text:
        done = int(task.fields.get("bytes", 0))
        speed = done / task.elapsed if task.elapsed else 0.0
        return Text(f"{filesize.decimal(done)} • {filesize.decimal(int(speed))}/s", style="progress.download")


class RunOutput:
    """Receives the harvester's events (from several threads) and prints them in the chosen mode."""

    def __init__(self, mode: str, *, out: IO[str] | None = None, err: IO[str] | None = None) -> None:
        self.mode = mode  # "json" | "plain" | "rich" | "quiet"
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._progress: Progress | None = None
        self._task: Any = None
        self._bytes = 0
        self._lock = threading.Lock()

    @classmethod
    def choose(cls, as_json: bool) -> RunOutput:
        if as_json:
            return cls("json")
        return cls("rich" if sys.stderr.isatty() else "plain")

    def __enter__(self) -> RunOutput:
        if self.mode == "rich":
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("items •"),
                BytesColumn(),
                console=Console(file=self.err),
                transient=False,
            )
            self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    # -- events -----------------------------------------------------------------------------------------------

    def event(self, event: dict[str, Any]) -> None:
        if self.mode == "quiet":
            return
        if self.mode == "json":
            self._json(event)
        elif event["event"] == "plan":
            self._plan(event)
        elif event["event"] == "item":
            self._item(event)
        elif event["event"] in ("warning", "stop"):
            self._note(event)

    def add_bytes(self, count: int) -> None:
        if self._progress is not None and self._task is not None:
            with self._lock:
                self._bytes += count
                self._progress.update(self._task, bytes=self._bytes)

    def _json(self, event: dict[str, Any]) -> None:
        self.out.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
        self.out.flush()

    def _plan(self, event: dict[str, Any]) -> None:
        text = (
            f"{event['ids']} ids: {event['skipped']} already done, {event['downloads']} to download from known "
            f"URLs, {event['lookups']} to look up ({event['quota_remaining']} calls left today)"
        )
        if self._progress is not None:
            self._progress.console.print(text)
            self._task = self._progress.add_task("harvest", total=event["ids"], bytes=0)
        else:
            self.err.write(text + "\n")

    def _item(self, event: dict[str, Any]) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1)
            if event["outcome"] == "failed":
                self._progress.console.print(f"[red]{_item_line(event)}")
            return
        self.out.write(_item_line(event) + "\n")
        self.out.flush()

    def _note(self, event: dict[str, Any]) -> None:
        text = f"note: {event.get('detail') or event.get('reason')}"
        if event.get("num_iid"):
            text = f"{event['num_iid']}: {text}"
        if self._progress is not None:
            self._progress.console.print(f"[yellow]{text}")
        else:
            self.err.write(text + "\n")

    # -- the end ----------------------------------------------------------------------------------------------

    def summary(self, report: HarvestReport, *, extra: dict[str, Any] | None = None, note: str = "") -> None:
        """The last word of a run: the JSON summary (with ``extra`` keys), or the summary text and ``note``."""
        if self.mode == "quiet":
            return
        if self.mode == "json":
            self._json({"event": "summary", **report.as_dict(), **(extra or {})})
            return
        stream = self.err if self._progress is not None else self.out
        stream.write(summary_text(report) + (f"\n{note}" if note else "") + "\n")
        stream.flush()


def _item_line(event: dict[str, Any]) -> str:
    parts = [str(event["num_iid"]), event["outcome"]]
    if event["outcome"] == "downloaded":
        parts.append(f"{event.get('bytes', 0) / 1e6:.1f} MB")
        if event.get("duration") is not None:
            parts.append(f"{event['duration']:.1f} s")
        parts.append(str(event.get("video_path", "")))
    elif event.get("error_kind"):
        parts.append(f"{event['error_kind']}: {event.get('detail', '')}")
    elif event.get("detail"):
        parts.append(str(event["detail"]))
    return "  ".join(parts)


def summary_text(report: HarvestReport) -> str:
    lines = [
        f"Done in {report.seconds:.1f} s: {report.downloaded} downloaded, {report.skipped} skipped, "
        f"{report.no_video} without video, {report.not_found} not found, {report.failed} failed, "
        f"{report.deferred} deferred; {report.api_calls} API calls "
        f"({report.quota_remaining} left today), {report.bytes / 1e6:.1f} MB fetched."
    ]
    if report.stopped == "quota":
        lines.append(
            f"Stopped: today's API quota is spent; {report.deferred} ids wait for "
            f"{_reset_text(report.quota_resets_at)}. Run again then (exit 75)."
        )
    elif report.stopped == "max_calls":
        lines.append(f"Stopped: this run's --max-calls is used up; {report.deferred} ids deferred (exit 75).")
    elif report.stopped == "rate_limited":
        lines.append(f"Stopped: the platform's frequency limit; {report.deferred} ids deferred. Try later (exit 75).")
    elif report.stopped == "gateway_unreachable":
        since = (
            report.unreachable_since.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z") if report.unreachable_since else "?"
        )
        lines.append(
            f"Stopped: the gateway is unreachable since {since}; {report.deferred} ids deferred, nothing lost. "
            "Run again later (exit 75)."
        )
    elif report.stopped == "signal":
        lines.append(f"Stopped on request; {report.deferred} ids deferred, partial downloads kept for resuming.")
    if report.held:
        lines.append(f"{report.held} ids were left to other workers that are on them; run again later (exit 75).")
    if report.bad_lines:
        lines.append(f"{report.bad_lines} input lines were not ids (listed above).")
    return "\n".join(lines)


def _reset_text(moment: datetime | None) -> str:
    if moment is None:
        return "the quota reset"
    from zoneinfo import ZoneInfo

    beijing = moment.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    local = moment.astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return f"the reset at {beijing} {BEIJING_LABEL} time ({local})"
