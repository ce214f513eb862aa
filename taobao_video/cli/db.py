"""`taobao-video db`: manage the catalog database."""

from __future__ import annotations

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
