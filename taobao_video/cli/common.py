"""What every command module shares: the settings of the invocation, the id inputs, the --app option, times."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from taobao_video.config.models import Settings
    from taobao_video.config.peek import CatalogSettings
    from taobao_video.store.catalog import Catalog

ROWS_MAX = 10**9  # --limit / --offset: more than any catalog holds, and well within the database's integers


def settings_of(ctx: click.Context) -> Settings:
    """The validated settings named by ``--config`` (or its environment variable, or ./settings.toml)."""
    from taobao_video import api

    return api.load_settings((ctx.obj or {}).get("config_path"))


def catalog_settings(ctx: click.Context) -> CatalogSettings:
    """The catalog's URL, the settings folder and the quota zone for a read command: peeked at when that is safe
    (no pydantic, see config/peek.py), else from the fully validated settings, which report any problem exactly."""
    from taobao_video.config.peek import CatalogSettings, peek

    found = peek((ctx.obj or {}).get("config_path"))
    if found is not None:
        return found
    full = settings_of(ctx)
    media_root = Path(full.download.dir).parent
    return CatalogSettings(
        full.source,
        full.base_dir,
        full.database.url,
        full.quota.timezone,
        full.download.public_url_prefix,
        media_root,
        full.download.object_url,
    )


def open_for_reading(settings: CatalogSettings) -> Catalog:
    """The catalog as the read commands open it: never created, never migrated."""
    from taobao_video.store.catalog import open_existing

    return open_existing(settings.database_url)


# The inputs of harvest and `queue add|remove`, parsed alike by ids.py.
ids_argument = click.argument("ids", nargs=-1)
file_option = click.option(
    "--file",
    "-f",
    "files",
    multiple=True,
    type=click.Path(dir_okay=True),
    help="A file of ids or item URLs, one per line ('-' for stdin). Repeatable.",
)


def require_input(ids: tuple[str, ...], files: tuple[str, ...]) -> None:
    if not ids and not files:
        raise click.UsageError("give ids as arguments, --file FILE, or '-' to read stdin")


def app_option(command: Any) -> Any:
    return click.option(
        "--app",
        "app_name",
        metavar="NAME",
        help="Which [[taobao.apps]] entry (needed only when several are configured).",
    )(command)


def when(moment: datetime | None) -> str:
    """A moment for people: this machine's local time and zone."""
    if moment is None:
        return "-"
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
