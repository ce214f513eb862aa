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
