"""`taobao-video harvest`, `daily` and `lookup`: the runs, each one call of the public API (``api.py``).

The library tells everything through events (the records ``--json`` prints) and returns a report; these commands
only choose how to show the events (``progress.RunOutput``) and exit with the report's code.
"""

from __future__ import annotations

import json
from typing import Any

import click

from taobao_video.cli.common import file_option, ids_argument, require_input, settings_of
from taobao_video.errors import EXIT_USAGE


def _finish(ctx: click.Context, error: Exception | None, code: int) -> None:
    """Say the error that ended a run (after its summary) and exit with the run's code."""
    if error is not None:
        click.echo(f"taobao-video: {error}", err=True)
    ctx.exit(code)


@click.command("harvest")
@ids_argument
@file_option
@click.option("--force", is_flag=True, help="Download again ids already in the catalog.")
@click.option("--workers", type=click.IntRange(1, 64), help="Parallel downloads (default: download.workers).")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line; the last is the summary.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary (and warnings): for cron logs.")
@click.pass_context
def harvest(
    ctx: click.Context,
    ids: tuple[str, ...],
    files: tuple[str, ...],
    force: bool,
    workers: int | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Download the main-image videos of IDS (numbers or item URLs; '-' reads stdin).

    Ids already in the catalog cost nothing; the run stops cleanly when the daily quota is spent (exit 75)
    and the next run picks up where it stopped.

    \b
    Examples:
      taobao-video harvest 520813250866 601234567890
      taobao-video harvest --file ids.txt --json
      cat ids.txt | taobao-video harvest -
    """
    from taobao_video import api
    from taobao_video.cli.progress import RunOutput
    from taobao_video.ids import parse_inputs

    require_input(ids, files)
    parsed = parse_inputs(ids, files)
    for bad in parsed.bad:
        click.echo(f"taobao-video: skipping {bad}", err=True)
    if not parsed.ids:
        click.echo("taobao-video: no valid ids to harvest", err=True)
        ctx.exit(EXIT_USAGE)
    settings = settings_of(ctx)
    with RunOutput.choose(as_json, quiet=quiet, quota_tz=settings.quota.tz) as output:
        report = api.harvest(
            parsed.ids,
            settings=settings,
            force=force,
            workers=workers,
            bad_lines=len(parsed.bad),
            on_event=output.event,
            on_bytes=output.add_bytes,
        )
    _finish(ctx, report.error, report.exit_code)


@click.command("daily")
@click.option("--max-calls", type=click.IntRange(0), help="Spend at most this many API calls in this run.")
@click.option("--workers", type=click.IntRange(1, 64), help="Parallel downloads (default: download.workers).")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line; the last is the summary.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary (and warnings): for cron logs.")
@click.pass_context
def daily(ctx: click.Context, max_calls: int | None, workers: int | None, as_json: bool, quiet: bool) -> None:
    """Work through the queue with what is left of today's API quota (the scheduled run).

    Downloads ids looked up earlier first (no call needed), then looks up queued ids in priority and
    insertion order, never spending more than today's quota minus quota.reserve; then re-checks settled
    items with harvest.refresh_share of the calls the queue did not need (see `refresh`). It warns when
    the authorisation ends within taobao.token_warn_days, sends one [notify] message for what went
    wrong, and writes [metrics] textfile. Exit 0 when the queue is drained, 75 when work is left for
    tomorrow, 1 when items failed.

    \b
    Examples:
      taobao-video queue add --file ids.txt
      taobao-video daily
      taobao-video daily --max-calls 200 --json
    """
    from taobao_video import api
    from taobao_video.cli.progress import RunOutput

    settings = settings_of(ctx)
    with RunOutput.choose(as_json, quiet=quiet, quota_tz=settings.quota.tz) as output:
        report = api.daily(
            settings=settings, max_calls=max_calls, workers=workers, on_event=output.event, on_bytes=output.add_bytes
        )
    _finish(ctx, report.harvest.error, report.exit_code)


@click.command("lookup")
@click.argument("num_iids", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per id.")
@click.pass_context
def lookup(ctx: click.Context, num_iids: tuple[str, ...], as_json: bool) -> None:
    """Ask the platform for the videos of NUM_IIDS without downloading (a call per id; seller: 20 ids a call).

    Each call is counted in the quota ledger, and what it finds is kept in the catalog: a video found is
    queued for download, so the next harvest or daily run fetches it without asking again.

    \b
    Example:
      taobao-video lookup 520813250866 601234567890
    """
    from taobao_video import api

    ids = [_parse_id(raw) for raw in num_iids]
    api.lookup(ids, settings=settings_of(ctx), on_event=lambda event: _print_lookup(event, as_json))


def _parse_id(raw: str) -> int:
    text = raw.strip()
    if not text.isdigit() or not 1 <= len(text.lstrip("0") or "0") <= 15 or int(text) == 0:
        raise click.BadParameter(f"{raw!r} is not a num_iid (a positive whole number)", param_hint="NUM_IIDS")
    return int(text)


def _print_lookup(event: dict[str, Any], as_json: bool) -> None:
    record = {key: value for key, value in event.items() if key != "event"}
    if as_json:
        click.echo(json.dumps(record, ensure_ascii=False))
    elif "url" not in record:
        detail = record.get("detail")
        click.echo(f"{record['num_iid']}  {record['outcome']}{'  ' + detail if detail else ''}")
    else:
        duration = f"{record['duration']:.1f}s" if record["duration"] is not None else "?s"
        click.echo(f"{record['num_iid']}  video  {duration}  {record['url']}")
