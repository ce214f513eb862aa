"""`taobao-video catalog show`, `stats` and `verify`: one id in full, the totals, and the files re-read."""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from taobao_video.cli.common import catalog_settings, open_for_reading, settings_of
from taobao_video.errors import EXIT_FAILED
from taobao_video.model import STATE_NAMES as STATES
from taobao_video.storage.base import is_object_url

# -- show -----------------------------------------------------------------------------------------------------


@click.command("show")
@click.argument("num_iid")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.pass_context
def catalog_show(ctx: click.Context, num_iid: str, as_json: bool) -> None:
    """Everything known about NUM_IID (a number or an item URL): its video, its state, the API calls
    spent on it and its last error. Exit 1 when the catalog has never heard of it.

    \b
    Examples:
      taobao-video catalog show 520813250866
      taobao-video catalog show 'https://item.taobao.com/item.htm?id=520813250866' --json
    """
    import json

    from taobao_video.ids import parse_id
    from taobao_video.store.report import show

    try:
        wanted = parse_id(num_iid)
    except ValueError as exc:
        raise click.BadParameter(f"{exc}: {num_iid!r}", ctx=ctx, param_hint="NUM_IID") from None
    settings = catalog_settings(ctx)
    with open_for_reading(settings) as store:
        report = show(store, wanted)
    if report is None:
        if as_json:
            click.echo(json.dumps({"num_iid": wanted, "known": False}))
        else:
            click.echo(f"{wanted}: not in the catalog (never queued, looked up or downloaded)")
        ctx.exit(EXIT_FAILED)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    _print_show(report, settings.base_dir)


def _print_show(report: dict[str, Any], base_dir: Path) -> None:
    from taobao_video.model import format_bytes

    click.echo(f"num_iid:      {report['num_iid']}")
    click.echo(f"state:        {report['state'] or '- (no item row)'}")
    video = report["video"]
    if video is not None:
        stored = video["video_path"]
        path = stored if is_object_url(stored) else base_dir / stored  # an object's URL is shown as it is
        present = "" if is_object_url(stored) or Path(path).exists() else "  (MISSING on disk)"
        duration = f"{video['duration']:.3f} s" if video["duration"] is not None else "unknown"
        click.echo(f"file:         {path}{present}")
        click.echo(f"duration:     {duration}")
        click.echo(f"size:         {format_bytes(video['size_bytes'])} ({video['size_bytes']} bytes)")
        click.echo(f"resolution:   {video['width'] or '?'}x{video['height'] or '?'}")
        click.echo(f"sha256:       {video['sha256']}")
        click.echo(f"downloaded:   {_local(video['downloaded_at'])}")
        click.echo(f"video url:    {video['video_url']}")
        click.echo(f"cover url:    {video['cover_url'] or '-'}")
        click.echo(f"api method:   {video['api_method']}")
        click.echo(f"title:        {video['title'] or '-'}  (seller {video['nick'] or '-'})")
        sound = "with audio" if video["has_audio"] else "no audio"
        media = f"{video['codec']}, {video['fps']} fps, {video['bitrate']} bit/s, {sound}"
        click.echo(f"media:        {media if video['codec'] else 'not probed'}")
        click.echo(
            f"cover:        {video['cover_path'] or '-'}"
            + (f"  ({video['cover_error']})" if video["cover_error"] else "")
        )
        same = report["same_video"]
        click.echo(
            f"video id:     {video['video_id'] or '-'}"
            + (f"  (also used by {', '.join(map(str, same))})" if same else "")
        )
    for old in report.get("history", []):
        kept = old["video_path"] or "file deleted (--prune)"
        click.echo(f"replaced:     {_local(old['replaced_at'])}  video id {old['video_id'] or '-'}  kept at {kept}")
    item = report["item"]
    if item is not None:
        click.echo(f"added:        {_local(item['added_at'])}  (priority {item['priority']})")
        click.echo(
            f"last lookup:  {_local(item['checked_at'])}  "
            f"({item['lookups']} lookups, {item['attempts']} failed downloads)"
        )
        if video is None and item["video_url"]:
            click.echo(f"video url:    {item['video_url']}")
    calls = report["calls"]
    unsent = f" (and {calls['unsent']} attempts that never left this machine)" if calls.get("unsent") else ""
    click.echo(f"API calls:    {calls['total']}{unsent}")
    for call in calls["latest"]:
        click.echo(f"  {_local(call['at'])}  {call['method']}  {call['outcome']}  {call['elapsed_ms']} ms")
    if report["last_error"]:
        kind = f" ({report['error_kind']})" if report["error_kind"] else ""
        click.echo(f"last error:   {report['last_error']}{kind}")


def _local(text: str | None) -> str:
    if text is None:
        return "-"
    return datetime.fromisoformat(text).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


# -- stats ----------------------------------------------------------------------------------------------------


@click.command("stats")
@click.option("--days", type=click.IntRange(1, 366), default=14, show_default=True, help="Days of history shown.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.pass_context
def catalog_stats(ctx: click.Context, days: int, as_json: bool) -> None:
    """Totals: items by state, videos, bytes and hours, a duration histogram, downloads per day
    (local days) and API calls per quota day against the daily limit.

    \b
    Examples:
      taobao-video catalog stats
      taobao-video catalog stats --days 30 --json
    """
    import json

    from taobao_video.store.filters import local_zone
    from taobao_video.store.report import stats

    settings = catalog_settings(ctx)
    with open_for_reading(settings) as store:
        report = stats(store, now=datetime.now(UTC), tz=local_zone(), days=days, quota_tz=settings.quota_tz)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    _print_stats(report, settings.quota_timezone)


def _print_stats(report: dict[str, Any], quota_zone: str) -> None:
    from taobao_video.model import format_bytes
    from taobao_video.store.report import histogram_label, sparkline

    items = report["items"]
    click.echo(f"Items:    {items['total']}  " + ", ".join(f"{state} {items[state]}" for state in STATES))
    click.echo(
        f"Videos:   {report['videos']}, {format_bytes(report['bytes'])}, {report['hours']:.2f} hours "
        f"({report['seconds']:.0f} s)"
    )
    if report["disk_bytes"] != report["bytes"]:
        click.echo(f"On disk:  {format_bytes(report['disk_bytes'])} (items sharing a video share one file)")
    click.echo("Duration:")
    histogram = report["duration_histogram"]
    top = max((bucket["videos"] for bucket in histogram), default=0)
    for bucket in histogram:
        if bucket["from"] is None and not bucket["videos"]:
            continue
        bar = "#" * (round(40 * bucket["videos"] / top) if top else 0)
        click.echo(f"  {histogram_label(bucket):>15} {bucket['videos']:>9}  {bar}")
    per_day = report["downloads_per_day"]
    counts = [day["videos"] for day in per_day]
    click.echo(f"Downloads per day (local, {per_day[0]['day']} to {per_day[-1]['day']}): {sparkline(counts)}")
    for day in per_day:
        click.echo(f"  {day['day']}  {day['videos']:>7}")
    click.echo(f"API calls per quota day ({quota_zone}):")
    if not report["quota_days"]:
        click.echo("  none recorded")
    for row in report["quota_days"]:
        banned = "  platform ban" if row["banned_until"] else ""
        click.echo(f"  {row['day']}  {row['app_key']}  {row['used']:>5} of {row['daily_limit']}{banned}")


# -- verify ---------------------------------------------------------------------------------------------------


@click.command("verify")
@click.option("--sample", type=click.IntRange(min=1), metavar="N", help="Check N videos picked at random.")
@click.option(
    "--fix",
    is_flag=True,
    help="Put the bad ones back to be downloaded again from their stored URL (no API call) by the next "
    "`daily` or `harvest`.",
)
@click.option(
    "--deep", is_flag=True, help="Objects in S3: read each back and hash it (default: size and sha256 from a HEAD)."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object: counts and every problem.")
@click.pass_context
def catalog_verify(ctx: click.Context, sample: int | None, fix: bool, deep: bool, as_json: bool) -> None:
    """Re-read the video files: each must exist, have its recorded size and sha256, and still be an MP4;
    each cover on record must exist and be a JPEG, PNG or WebP of its recorded pixel size.

    Reports missing, truncated, grown, not-MP4, unreadable and changed files (and cover_missing,
    cover_not_image, cover_changed covers: --fix has the next run fetch those again, no call). Exit 1 when bad files
    are found and not fixed. --fix takes the run lock (no harvest meanwhile), removes their rows from
    `videos` and marks their items resolved, so the next run downloads them again without a call.

    \b
    Examples:
      taobao-video catalog verify --sample 100
      taobao-video catalog verify --fix && taobao-video daily
    """
    import json

    from taobao_video.jobs import runner

    gc.enable()

    def progress(num_iid: int, bad: Any) -> None:
        if bad is not None and not as_json:
            click.echo(f"{num_iid}  {bad.problem:<14} {bad.video_path}: {bad.detail}")

    report = runner.verify_files(settings_of(ctx), sample=sample, fix=fix, deep=deep, on_checked=progress)
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        covers = f" ({report.covers_checked} covers checked too)" if report.covers_checked else ""
        click.echo(f"checked {report.checked}: {report.ok} good, {len(report.bad)} bad{covers}")
        if report.fixed:
            click.echo(
                f"{report.fixed} put back to download from their stored URL: run `taobao-video daily` "
                "(or harvest them) to fetch them again"
            )
    ctx.exit(report.exit_code)
