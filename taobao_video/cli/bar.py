"""The terminal's progress bar (rich), in a module of its own: a ``--json`` or ``--quiet`` run, or cron's plain
lines, never import rich (about 30 ms and 3.5 MB of a run's start)."""

from __future__ import annotations

from typing import IO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text

from taobao_video.model import format_bytes


class BytesColumn(ProgressColumn):
    """Bytes fetched so far and the average speed (the task's own counter counts items)."""

    def render(self, task: Task) -> Text:
        done = int(task.fields.get("bytes", 0))
        speed = done / task.elapsed if task.elapsed else 0.0
        return Text(f"{format_bytes(done)} • {format_bytes(speed)}/s", style="progress.download")


def new_bar(stream: IO[str]) -> Progress:
    """A started bar on ``stream``: items done of all, bytes and speed, time left."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("items •"),
        BytesColumn(),
        TextColumn("• ETA"),
        TimeRemainingColumn(),
        console=Console(file=stream),
        transient=False,
    )
    progress.start()
    return progress


__all__ = ["BytesColumn", "new_bar"]
