"""`taobao-video refresh`: re-check downloaded (and video-less) items within the refresh budget."""

from __future__ import annotations

import json
from typing import Any

import click

from taobao_video.cli.common import settings_of
from taobao_video.errors import EXIT_TEMPFAIL


@click.command("refresh")
@click.option(
    "--older-than",
    "older_than",
    type=click.FloatRange(min=0, max=36500),
    metavar="DAYS",
    help="Re-check items last looked up more than DAYS ago (default: harvest.refresh_after_days).",
)
@click.option("--max-calls", type=click.IntRange(0), help="Spend at most this many API calls (within the budget).")
@click.option("--prune", is_flag=True, help="Delete the files of replaced videos instead of keeping them.")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line; the last is the summary.")
@click.pass_context
def refresh(ctx: click.Context, older_than: float | None, max_calls: int | None, prune: bool, as_json: bool) -> None:
    """Re-check items already done (or known to have no video), oldest check first, and download the
    videos their sellers replaced.

    Spends at most harvest.refresh_share of the calls left today after the queue's pending ids (so
    `daily` keeps what new ids need), and no more than --max-calls. An unchanged item costs one call
    and nothing else (with the seller channel a twentieth of one: 20 ids a list call); a changed one
    downloads its new video (no further call), and the old version moves to the video_history table,
    its file to videos/history/ (in a bucket: PREFIX/history/; deleted with --prune). Exit 0 when
    done (the budget spent included), 75 when a ban, the quota, the gateway or Ctrl-C stopped it (the rest
    waits for the next refresh), 1 when items failed.

    \b
    Examples:
      taobao-video refresh --older-than 30
      taobao-video refresh --max-calls 100 --json
      taobao-video refresh --prune
    """
    from taobao_video import api

    def event(record: dict[str, Any]) -> None:
        if as_json:
            click.echo(json.dumps(record, ensure_ascii=False, default=str))
        elif record["event"] == "refresh":
            click.echo(
                f"{record['num_iid']}  {record['outcome']}" + (f": {record['detail']}" if "detail" in record else "")
            )
        elif record["event"] == "item" and record.get("outcome") == "downloaded":
            click.echo(f"{record['num_iid']}  new video downloaded ({record.get('video_path', '')})")
        elif record["event"] in ("warning", "stop"):
            click.echo(f"taobao-video: {record.get('detail') or record.get('reason')}", err=True)

    report = api.refresh(
        settings=settings_of(ctx), older_than_days=older_than, max_calls=max_calls, prune=prune, on_event=event
    )
    if not as_json:
        click.echo(
            f"refresh: {report.checked} checked ({report.due} due, budget {report.budget} calls): "
            f"{report.unchanged} unchanged, {report.changed} changed, {report.gained} gained a video, "
            f"{report.gone} gone, {report.failed} failed; {report.downloaded} downloaded, {report.api_calls} calls, "
            f"{report.quota_remaining} left today"
        )
    if report.error is not None:
        click.echo(f"taobao-video: {report.error}", err=True)
    elif report.exit_code == EXIT_TEMPFAIL and report.stopped is not None:
        from taobao_video.cli.progress import STOP_WORDS

        left = report.due - report.checked
        click.echo(
            f"stopped: {STOP_WORDS[report.stopped]}; {left} due items wait for the next refresh (exit 75)", err=True
        )
    ctx.exit(report.exit_code)
