"""`taobao-video db`: manage the catalog database."""

from __future__ import annotations

from typing import Any

import click

from taobao_video.cli.common import settings_of


@click.group()
def db() -> None:
    """Manage the catalog database."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Create the catalog or migrate it to the current schema (runs automatically on every open)."""
    from taobao_video.store.dialects import masked
    from taobao_video.store.migrate import upgrade

    settings = settings_of(ctx)
    click.echo(f"Catalog at revision {upgrade(settings.database.url)}: {masked(settings.database.url)}")


@db.command("check")
@click.pass_context
def db_check(ctx: click.Context) -> None:
    """Check the catalog: SQLite's integrity check, the schema version and tables, and that done items have
    their video rows. Prints what it found; exit 0 and "ok", else 78 and what to run.

    \b
    Examples:
      taobao-video db check
      taobao-video db check || taobao-video db rebuild
    """
    from taobao_video.cli.common import catalog_settings
    from taobao_video.errors import EXIT_CONFIG
    from taobao_video.store.health import check_catalog

    report = check_catalog(catalog_settings(ctx).database_url)
    for line in report.found + report.problems:
        click.echo(line)
    if report.ok:
        click.echo("ok")
        return
    click.echo(f"taobao-video: {report.advice}", err=True)
    ctx.exit(EXIT_CONFIG)


@db.command("rebuild")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: what was recovered and what was lost.")
@click.pass_context
def db_rebuild(ctx: click.Context, as_json: bool) -> None:
    """Build a fresh SQLite catalog from the verified video files, keeping the damaged one as a backup.

    Every <num_iid>.mp4 under download.dir that still reads as an MP4 gets its row back (size, sha256 and
    duration from the file; URLs and the queue from whatever rows of the old file are readable). Files that
    fail verification are listed as lost and not recorded. The old file is renamed to
    <file>.damaged-<UTC time> beside it. SQLite only; takes the run lock.

    \b
    Examples:
      taobao-video db check || taobao-video db rebuild
      taobao-video db rebuild && taobao-video catalog verify
    """
    import json

    from taobao_video.jobs.rebuild import rebuild

    report = rebuild(settings_of(ctx))
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
        return
    for lost in report.lost_files:
        click.echo(f"lost: {lost.name}: {lost.reason}")
    click.echo(_rebuild_summary(report))


def _rebuild_summary(report: Any) -> str:
    lost = []
    if report.lost_files:
        lost.append(f"{_count(len(report.lost_files), 'file')} that failed verification (listed above)")
    if report.damaged_places:
        lost.append(f"the rows in {_count(report.damaged_places, 'damaged place')} of the old file")
    if report.unreadable:
        lost.append("everything in " + ", ".join(report.unreadable))
    text = (
        f"Recovered {_count(report.videos, 'video')} ({report.with_url:,} with their source URL), "
        f"{_count(report.items, 'queue item')}, {_count(report.calls, 'logged call')}, "
        f"{_count(report.quota_days, 'quota day')}"
    )
    text += f"; lost: {', '.join(lost)}." if lost else "; nothing lost."
    if report.put_back:
        text += f" Put back to download again by the next run: {_count(report.put_back, 'item')} whose file is lost."
    if report.backup is not None:
        text += f" The damaged file is kept as {report.backup}."
    return text


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
