"""How a run shows itself: JSON lines (``--json``), one plain line per item (cron logs), or a rich bar (terminal)."""

from __future__ import annotations

import json
import sys
import threading
from datetime import datetime
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from taobao_video.model import BEIJING, StopReason, format_bytes, zone_label

if TYPE_CHECKING:
    from rich.progress import Progress

# Why a run stopped, in words: the stop note and the lines of the ids it deferred say it the same way.
STOP_WORDS = {
    StopReason.QUOTA: "today's API quota is spent",
    StopReason.MAX_CALLS: "this run's --max-calls is used up",
    StopReason.RATE_LIMITED: "the platform's frequency limit",
    StopReason.UNREACHABLE: "the gateway is unreachable",
    StopReason.SIGNAL: "stopped on request",
    StopReason.DISK_FULL: "the videos folder's disk is full",
    StopReason.STORAGE: "the object storage failed",
    StopReason.FATAL: "authorisation or settings need you — see below",
}


class RunOutput:
    """Receives the harvester's events (from several threads) and prints them in the chosen mode."""

    def __init__(
        self, mode: str, *, quota_tz: ZoneInfo = BEIJING, out: IO[str] | None = None, err: IO[str] | None = None
    ) -> None:
        self.mode = mode  # "json" | "plain" | "rich" | "summary" (--quiet: the summary and warnings) | "quiet"
        self.quota_tz = quota_tz  # the zone the quota day is counted in: resets are shown in it
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._progress: Progress | None = None
        self._task: Any = None
        self._bytes = 0
        self._lock = threading.Lock()

    @classmethod
    def choose(cls, as_json: bool, *, quiet: bool = False, quota_tz: ZoneInfo = BEIJING) -> RunOutput:
        if as_json:
            return cls("json", quota_tz=quota_tz)
        if quiet:
            return cls("summary", quota_tz=quota_tz)
        return cls("rich" if sys.stderr.isatty() else "plain", quota_tz=quota_tz)

    def __enter__(self) -> RunOutput:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._stop_bar()

    def _start_bar(self, total: int) -> None:
        from taobao_video.cli.bar import new_bar

        self._progress = new_bar(self.err)
        self._bytes = 0
        self._task = self._progress.add_task("harvest", total=total, bytes=0)

    def _stop_bar(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = self._task = None

    def say(self, text: str) -> None:
        """A line of prose around a run: never on stdout in JSON mode, where stdout carries only events."""
        stream = self.err if self.mode in ("json", "rich") else self.out
        stream.write(text + "\n")
        stream.flush()

    # -- events -----------------------------------------------------------------------------------------------

    def event(self, event: dict[str, Any]) -> None:
        if self.mode == "quiet":
            return
        if self.mode == "json":
            self._json(event)
        elif self.mode == "summary" and event["event"] not in ("summary", "warning"):
            return
        elif event["event"] == "plan":
            self._plan(event)
        elif event["event"] == "item":
            self._item(event)
        elif event["event"] in ("warning", "stop"):
            self._note(event)
        elif event["event"] == "summary":
            self._summary(event)

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
        if self.mode == "rich":
            self._start_bar(event["ids"])
            assert self._progress is not None
            self._progress.console.print(text)
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
        if event["event"] == "stop" and event.get("reason") == StopReason.FATAL:
            return  # the error itself is the run's last line (cli/main.py): said once, where "see below" points
        if event["event"] == "stop":
            text = stop_note(event, self.quota_tz)
        else:
            text = f"warning: {event.get('detail') or event.get('reason')}"
        if event.get("num_iid"):
            text = f"{event['num_iid']}: {text}"
        if self._progress is not None:
            self._progress.console.print(f"[yellow]{text}")
        else:
            self.err.write(text + "\n")

    # -- the end ----------------------------------------------------------------------------------------------

    def _summary(self, summary: dict[str, Any]) -> None:
        """The last word of a run: the summary text, and for a daily run where the queue stands."""
        self._stop_bar()
        stream = self.err if self.mode == "rich" else self.out
        lines = [summary_text(summary, self.quota_tz)]
        if "remaining" in summary:
            lines.append(queue_note(summary))
        if summary.get("refresh"):  # daily's refresh with what the queue did not need (jobs/refresh.py)
            r = summary["refresh"]
            lines.append(
                f"Refresh: {r['checked']} checked (budget {r['budget']} calls): {r['unchanged']} unchanged, "
                f"{r['changed']} changed, {r['gained']} gained a video, {r['gone']} gone; {r['downloaded']} downloaded"
            )
        stream.write("\n".join(lines) + "\n")
        stream.flush()


def _item_line(event: dict[str, Any]) -> str:
    parts = [str(event["num_iid"]), event["outcome"]]
    if event["outcome"] == "downloaded":
        parts.append(format_bytes(event.get("bytes", 0)))
        if event.get("duration") is not None:
            parts.append(f"video {event['duration']:.1f} s")  # the video's length, not the download's time
        parts.append(str(event.get("video_path", "")))
    elif event["outcome"] == "deferred" and event.get("detail"):
        parts.append(f"({deferred_why(str(event['detail']))})")
    elif event.get("error_kind"):
        parts.append(f"{event['error_kind']}: {event.get('detail', '')}")
    elif event.get("detail"):
        parts.append(str(event["detail"]))
    return "  ".join(parts)


def deferred_why(detail: str) -> str:
    """Why an id was deferred, in words: a stop reason's, or the detail as it came."""
    try:
        reason = StopReason(detail)
    except ValueError:
        return detail
    return f"stopped: {STOP_WORDS.get(reason, reason.value)}"


def stop_note(event: dict[str, Any], quota_tz: ZoneInfo = BEIJING) -> str:
    """The line a run prints when it stops taking new work, from its ``stop`` event."""
    detail = event.get("detail") or ""
    try:
        reason: StopReason | None = StopReason(str(event.get("reason")))
    except ValueError:
        reason = None
    if reason is StopReason.QUOTA:
        resets = event.get("resets_at")
        moment = datetime.fromisoformat(resets) if resets else None
        return f"stopped: {STOP_WORDS[reason]}; the rest waits for {_reset_text(moment, quota_tz)}"
    if reason is StopReason.FATAL:
        return f"stopped: {detail or 'authorisation or settings need you'}"
    words = STOP_WORDS.get(reason, "") if reason is not None else ""
    return "stopped: " + "; ".join(part for part in (words or str(event.get("reason") or ""), detail) if part)


def summary_text(summary: dict[str, Any], quota_tz: ZoneInfo = BEIJING) -> str:
    """The plain-text summary of a run from its ``summary`` event."""
    deferred = summary["deferred"]
    lines = [
        f"Done in {summary['seconds']:.1f} s: {summary['downloaded']} downloaded, {summary['skipped']} skipped, "
        f"{summary['no_video']} without video, {summary['not_found']} not found, "
        + (f"{summary['not_visible']} not visible, " if summary.get("not_visible") else "")  # the seller channel's
        + f"{summary['failed']} failed, "
        f"{deferred} deferred; {summary['api_calls']} API calls "
        f"({summary['quota_remaining']} left today), {format_bytes(summary['bytes'])} fetched."
    ]
    stop = _stop_line(summary, quota_tz)
    if stop:
        lines.append(stop)
    if summary.get("held"):
        lines.append(f"{summary['held']} ids were left to other workers that are on them; run again later (exit 75).")
    if summary.get("bad_lines"):
        lines.append(f"{summary['bad_lines']} input lines were not ids (listed above).")
    return "\n".join(lines)


def _stop_line(summary: dict[str, Any], quota_tz: ZoneInfo) -> str:
    """What the summary says of why the run stopped early (STOP_WORDS) and what to do; '' when it did not."""
    try:
        reason = StopReason(str(summary.get("stopped")))
    except ValueError:
        return ""
    deferred, words = summary["deferred"], STOP_WORDS[reason]
    if reason is StopReason.QUOTA:
        resets = summary.get("quota_resets_at")
        moment = datetime.fromisoformat(resets) if resets else None
        return f"Stopped: {words}; {deferred} ids wait for {_reset_text(moment, quota_tz)}. Run again then (exit 75)."
    if reason is StopReason.MAX_CALLS:
        return f"Stopped: {words}; {deferred} ids deferred (exit 75)."
    if reason is StopReason.RATE_LIMITED:
        return f"Stopped: {words}; {deferred} ids deferred. Try later (exit 75)."
    if reason is StopReason.UNREACHABLE:
        since = summary.get("unreachable_since")
        when = datetime.fromisoformat(since).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z") if since else "?"
        return f"Stopped: {words} since {when}; {deferred} ids deferred, nothing lost. Run again later (exit 75)."
    if reason is StopReason.DISK_FULL:
        return (
            f"Stopped: {summary.get('error') or words}; {deferred} ids deferred, partial downloads"
            f"{_partial(summary)} kept, nothing lost. Free some space and run again (exit 75)."
        )
    if reason is StopReason.STORAGE:
        error = summary.get("error")
        return (
            f"Stopped: {words}{f' ({error})' if error else ''}; {deferred} ids deferred, nothing lost: the next run "
            "uploads what is left without a call (exit 75)."
        )
    if reason is StopReason.SIGNAL:
        return f"Stopped on request; {deferred} ids deferred, partial downloads{_partial(summary)} kept for resuming."
    return ""  # FATAL: the error itself is printed, with what to do


def _partial(summary: dict[str, Any]) -> str:
    """ " (1.5 MiB)": what the parked ``.part`` files of this run hold, when there are any."""
    partial = summary.get("partial_bytes") or 0
    return f" ({format_bytes(partial)})" if partial else ""


def queue_note(summary: dict[str, Any]) -> str:
    """Where the queue stands after a daily run, from its ``summary`` event."""
    if not summary["remaining"]:
        return "Queue drained."
    days, per_day = summary["days_left"], summary["calls_per_day"]
    pace = (
        f"about {days} more day{'s' if days != 1 else ''} at {per_day} calls a day"
        if days is not None
        else "no calls are allowed per day"
    )
    return f"Queue: {summary['pending']} pending, {summary['awaiting_download']} awaiting download; {pace}."


def _reset_text(moment: datetime | None, quota_tz: ZoneInfo) -> str:
    if moment is None:
        return "the quota reset"
    in_zone = moment.astimezone(quota_tz).strftime("%Y-%m-%d %H:%M")
    local = moment.astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return f"the reset at {in_zone} {zone_label(quota_tz)} time ({local})"
