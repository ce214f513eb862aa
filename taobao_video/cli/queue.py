"""`taobao-video queue`: the list of ids the daily run works through, a quota's worth at a time.

Thin commands: each opens the catalog named by the settings, calls one :class:`~taobao_video.store.catalog.Catalog`
method and prints the answer. Ids are parsed as harvest parses them (:func:`taobao_video.ids.iter_entries`) and
streamed into the catalog, so a file of a million ids takes seconds and flat memory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from taobao_video.cli.common import ROWS_MAX, file_option, ids_argument, require_input, settings_of
from taobao_video.errors import EXIT_USAGE
from taobao_video.model import MAX_PRIORITY, MIN_PRIORITY
from taobao_video.model import STATE_NAMES as STATES

if TYPE_CHECKING:
    from taobao_video.store.catalog import Catalog
    from taobao_video.store.records import ItemRow

_ERROR_CHARS = 60


@dataclasses.dataclass
class _Tally:
    ids: int = 0
    bad: int = 0


def _catalog(ctx: click.Context) -> Catalog:
    from taobao_video import wiring

    return wiring.catalog(settings_of(ctx))


@contextlib.contextmanager
def _sources(args: tuple[str, ...], files: tuple[str, ...]) -> Iterator[list[tuple[Iterable[str], str]]]:
    """The id sources in order (arguments, ``--file``s, then stdin), every file opened before anything is read."""
    from taobao_video.ids import open_id_source

    plain = [arg for arg in args if arg != "-"]
    paths = list(dict.fromkeys([*files, *("-" for arg in args if arg == "-")]))
    with contextlib.ExitStack() as stack:
        sources: list[tuple[Iterable[str], str]] = [(plain, "<arguments>")] if plain else []
        for path in paths:
            lines, name = open_id_source(path)
            if path != "-" and hasattr(lines, "close"):
                stack.callback(lines.close)
            sources.append((lines, name))
        yield sources


def _ids(sources: list[tuple[Iterable[str], str]], tally: _Tally) -> Iterator[int]:
    """Each source's ids, streaming; a bad line is reported on stderr by file and line number, and counted."""
    from taobao_video.ids import BadLine, iter_entries

    for lines, name in sources:
        for entry in iter_entries(lines, name):
            if isinstance(entry, BadLine):
                tally.bad += 1
                click.echo(f"taobao-video: skipping {entry}", err=True)
            else:
                tally.ids += 1
                yield entry


def _exit_for_input(ctx: click.Context, tally: _Tally, what: str) -> None:
    if not tally.ids:
        click.echo(f"taobao-video: no valid ids to {what}", err=True)
    if tally.bad or not tally.ids:
        ctx.exit(EXIT_USAGE)


@click.group("queue")
def queue() -> None:
    """The queue of ids that `taobao-video daily` works through, a quota's worth a day.

    Lookups go in queue order: higher priority first, then the order the ids were added. Ids already
    looked up cost no call; their downloads come first.

    \b
    Examples:
      taobao-video queue add --file ids.txt
      taobao-video queue add --priority 10 520813250866
      taobao-video queue stats
    """


@queue.command("add")
@ids_argument
@file_option
@click.option(
    "--priority",
    type=click.IntRange(MIN_PRIORITY, MAX_PRIORITY),
    default=0,
    show_default=True,
    help="Higher goes first. Raises ids already waiting at a lower priority.",
)
@click.pass_context
def queue_add(ctx: click.Context, ids: tuple[str, ...], files: tuple[str, ...], priority: int) -> None:
    """Add IDS (numbers or item URLs; '-' reads stdin) to the end of the queue at their priority.

    Ids already waiting with a lower priority are raised to --priority and keep their place among
    their new peers; ids already done (or known to have no video, or gone) are counted and left alone.
    A line that is not an id is reported with its line number and skipped (exit 2 at the end).

    \b
    Examples:
      taobao-video queue add --file ids.txt
      taobao-video queue add --priority 5 520813250866 https://detail.tmall.com/item.htm?id=601234567890
      grep -h '^[0-9]' exports/*.txt | taobao-video queue add -
    """
    require_input(ids, files)
    tally = _Tally()
    with _sources(ids, files) as sources, _catalog(ctx) as catalog:
        result = catalog.enqueue(_ids(sources, tally), priority=priority, now=datetime.now(UTC))
    click.echo(
        f"added {result.added}, reprioritised {result.reprioritised}, already queued {result.already_queued}, "
        f"already done {result.already_done} ({tally.bad} lines not ids)"
    )
    _exit_for_input(ctx, tally, "queue")


@queue.command("list")
@click.option(
    "--state", "states", multiple=True, type=click.Choice(STATES), help="Only items in this state. Repeatable."
)
@click.option("--limit", type=click.IntRange(0, ROWS_MAX), default=50, show_default=True, help="At most this many.")
@click.option("--offset", type=click.IntRange(0, ROWS_MAX), default=0, show_default=True, help="Skip this many first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per item.")
@click.pass_context
def queue_list(ctx: click.Context, states: tuple[str, ...], limit: int, offset: int, as_json: bool) -> None:
    """List items in queue order (priority, then the order they were added).

    \b
    Examples:
      taobao-video queue list --state pending --limit 20
      taobao-video queue list --state failed --json
    """
    with _catalog(ctx) as catalog:
        rows = catalog.queue_page(states=states or None, limit=limit, offset=offset)
    if as_json:
        for row in rows:
            click.echo(json.dumps(_row_record(row), ensure_ascii=False))
        return
    if not rows:
        click.echo("No items.")
        return
    click.echo(
        f"{'num_iid':<14}{'state':<11}{'priority':>8}  {'added (UTC)':<16}{'lookups':>8}{'attempts':>9}  last error"
    )
    for row in rows:
        error = " ".join((row.last_error or "").split())
        if len(error) > _ERROR_CHARS:
            error = error[: _ERROR_CHARS - 1] + "…"
        click.echo(
            f"{row.num_iid:<14}{row.state.value:<11}{row.priority:>8}  {row.added_at:%Y-%m-%d %H:%M}"
            f"{row.lookups:>8}{row.attempts:>9}  {error}".rstrip()
        )


def _row_record(row: ItemRow) -> dict[str, Any]:
    record = dataclasses.asdict(row)
    record["state"] = row.state.value
    for name, value in record.items():
        if isinstance(value, datetime):
            record[name] = value.isoformat()
    return record


@queue.command("stats")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.pass_context
def queue_stats(ctx: click.Context, as_json: bool) -> None:
    """Count the items in each state, the deferred ones (left for later by a run) and the total.

    \b
    Example:
      taobao-video queue stats --json
    """
    with _catalog(ctx) as catalog:
        stats = catalog.queue_stats()
    if as_json:
        click.echo(json.dumps(stats))
        return
    for name, count in stats.items():
        click.echo(f"{name:<10}{count:>10}")


@queue.command("remove")
@ids_argument
@file_option
@click.pass_context
def queue_remove(ctx: click.Context, ids: tuple[str, ...], files: tuple[str, ...]) -> None:
    """Take IDS (numbers or item URLs; '-' reads stdin) out of the queue.

    Items already downloaded are kept: their videos stay on disk and the catalog keeps describing them.

    \b
    Examples:
      taobao-video queue remove 520813250866
      taobao-video queue remove --file discontinued.txt
    """
    require_input(ids, files)
    tally = _Tally()
    with _sources(ids, files) as sources, _catalog(ctx) as catalog:
        result = catalog.remove_items(_ids(sources, tally))
    kept = result.kept
    line = f"removed {result.removed}, kept {kept} done, {result.unknown} not in the queue"
    if result.unknown:
        more = result.unknown - len(result.unknown_ids)
        line += f" ({', '.join(map(str, result.unknown_ids))}{f' and {more} more' if more else ''})"
    click.echo(line + (f"; {tally.bad} lines not ids" if tally.bad else ""))
    if kept:
        click.echo("Done items were kept: remove the videos with your own tools; the catalog keeps their rows.")
    _exit_for_input(ctx, tally, "remove")


@queue.command("retry-failed")
@click.pass_context
def queue_retry_failed(ctx: click.Context) -> None:
    """Put every failed item back in the queue.

    One whose download failed but whose video URL still works goes back to be downloaded without a
    call; the others (URL expired, lookup failed) are looked up again.

    \b
    Example:
      taobao-video queue retry-failed
    """
    with _catalog(ctx) as catalog:
        count = catalog.retry_failed(now=datetime.now(UTC))
    click.echo(f"put back {count} failed items")
