"""`taobao-video catalog`: which videos do I have, how long, where on disk; export, ask in SQL (``show``, ``stats``
and ``verify`` are in ``catalog_views.py``).

Thin commands over ``store/filters.py`` + ``store/query.py``, ``cli/formats.py`` and ``store/readonly_sql.py``. The
catalog is opened with :func:`taobao_video.store.catalog.open_existing`: never created, never migrated (a catalog on an
older schema is a "run `taobao-video db upgrade`", exit 78). Start-up matters here (issue 6: a listing within
1.5x of importing SQLAlchemy and click), so imports happen inside the commands, and rich only for a table.

Output: ``--format table`` (the default on a terminal) shows the main columns with rich; csv (the default when
stdout is not a terminal: a header line and RFC 4180 quoting, ready for a spreadsheet or ``cut``), json (one
array) and jsonl (one object per line) carry every column under the ``videos`` column names.
"""

from __future__ import annotations

import gc
import itertools
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

import click

from taobao_video.cli.catalog_views import catalog_show, catalog_stats, catalog_verify
from taobao_video.cli.common import ROWS_MAX, catalog_settings, open_for_reading
from taobao_video.errors import EXIT_USAGE, TaobaoVideoError
from taobao_video.model import STATE_NAMES as STATES

if TYPE_CHECKING:
    from taobao_video.config.peek import CatalogSettings
    from taobao_video.store.catalog import Catalog
    from taobao_video.store.filters import VideoQuery

# query.SORT_KEYS, spelt out so that `--help` imports nothing more (a test keeps them equal).
SORT_KEYS = ("num_iid", "duration", "downloaded_at", "size")
TABLE_ROWS = 100  # a table without --limit shows this many (a terminal is no place for a million rows)
_OPTION_OF_FIELD = {"q": "--ids", "ids": "--ids", "state": "--state"}


# list and sql print rows the same ways.
_rows_format = click.option(
    "--format",
    "fmt",
    type=click.Choice(("table", "csv", "json", "jsonl")),
    help="Output format (default: table on a terminal, csv otherwise).",
)


def _default_format(out: TextIO) -> str:
    return "table" if out.isatty() else "csv"


# -- the filters, shared by list and export ---------------------------------------------------------------------


def _filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--min-duration", type=float, metavar="SECONDS", help="Only videos at least this long."),
        click.option("--max-duration", type=float, metavar="SECONDS", help="Only videos at most this long."),
        click.option(
            "--since",
            metavar="DATE",
            help="Downloaded on or after: YYYY-MM-DD (midnight, local time) or an ISO datetime "
            "(2026-11-22T08:00, local; or with an offset: +08:00, Z).",
        ),
        click.option(
            "--until",
            metavar="DATE",
            help="Downloaded before: an ISO datetime, or YYYY-MM-DD to include that whole (local) day.",
        ),
        click.option(
            "--state",
            "states",
            multiple=True,
            metavar="STATE",
            help=f"List items in these states instead ({', '.join(STATES)}); repeatable or a comma list. "
            "Adds the columns state, error_kind, last_error.",
        ),
        click.option(
            "--ids",
            "ids_file",
            type=click.Path(dir_okay=False),
            metavar="FILE",
            help="Only these ids: a file of ids or item URLs, one per line ('-' for stdin).",
        ),
        click.option(
            "--missing",
            is_flag=True,
            help="Only rows whose file is gone from disk (objects in a bucket: see `catalog verify`).",
        ),
        click.option(
            "--min-height",
            type=click.IntRange(0, 100_000),
            metavar="PIXELS",
            help="Only videos this tall or more.",
        ),
        click.option("--codec", metavar="NAME", help="Only videos in this codec, as probed (h264, hevc, …)."),
        click.option("--has-audio/--no-audio", default=None, help="Only videos with (or without) a sound track."),
        click.option("--video-id", metavar="ID", help="Only the items that use this stored video."),
        click.option("--sort", type=click.Choice(SORT_KEYS), default="num_iid", show_default=True, help="Order."),
        click.option("--desc", is_flag=True, help="Largest (or newest) first."),
        click.option("--limit", type=click.IntRange(0, ROWS_MAX), help="At most this many rows."),
        click.option("--offset", type=click.IntRange(0, ROWS_MAX), default=0, help="Skip this many rows first."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _build_query(ctx: click.Context, params: dict[str, Any], *, limit: int | None) -> tuple[VideoQuery, int]:
    """The VideoQuery of the filter options, and how many lines of ``--ids`` were not ids (reported already)."""
    from taobao_video.store.filters import QueryError, VideoQuery, parse_moment, parse_states

    ids, bad = None, 0
    if params["ids_file"] is not None:
        ids, bad = _read_ids(params["ids_file"])
    try:
        query = VideoQuery(
            min_duration=params["min_duration"],
            max_duration=params["max_duration"],
            since=parse_moment("since", params["since"]),
            until=parse_moment("until", params["until"], end_of_day=True),
            states=parse_states(params["states"]) if params["states"] else None,
            ids=ids,
            missing=params["missing"],
            min_height=params["min_height"],
            codec=params["codec"].strip().lower() if params["codec"] else None,
            has_audio=params["has_audio"],
            video_id=params["video_id"],
            sort=params["sort"],
            desc=params["desc"],
            limit=limit,
            offset=params["offset"],
        )
    except QueryError as exc:
        option = _OPTION_OF_FIELD.get(exc.field, "--" + exc.field.replace("_", "-"))
        raise click.BadParameter(f"{exc.problem} (got {exc.value!r})", ctx=ctx, param_hint=option) from None
    return query, bad


def _read_ids(path: str) -> tuple[frozenset[int], int]:
    from taobao_video.ids import parse_inputs

    parsed = parse_inputs(["-"] if path == "-" else [], [] if path == "-" else [path])
    for line in parsed.bad:
        click.echo(f"taobao-video: skipping {line}", err=True)
    return frozenset(parsed.ids), len(parsed.bad)


# -- the group ------------------------------------------------------------------------------------------------


@click.group("catalog")
def catalog() -> None:
    """Ask the catalog: list and filter videos, one id in full, totals, export, verify the files, SQL.

    Read-only except `verify --fix`. The catalog is a plain database that `sqlite3`, Datasette or
    pandas can open too; the README lists every table and column.

    \b
    Examples:
      taobao-video catalog list --min-duration 10 --sort duration --desc --limit 20
      taobao-video catalog stats
      taobao-video catalog export --format json --output videos.json
    """
    # These commands are short-lived and build no garbage cycles worth collecting, while the collector's full
    # passes over the modules being imported cost them 30-40 ms of start-up (issue 6's target). Back on when the
    # command ends (main() may run in a longer-lived process), and at once in verify, which can run for hours.
    if gc.isenabled():
        gc.disable()
        click.get_current_context().call_on_close(gc.enable)


for _command in (catalog_show, catalog_stats, catalog_verify):
    catalog.add_command(_command)


@catalog.command("list")
@_filter_options
@_rows_format
@click.pass_context
def catalog_list(ctx: click.Context, fmt: str | None, **params: Any) -> None:
    """List the downloaded videos (or, with --state, the items in those states), filtered and sorted.

    csv, json and jsonl carry every column of the `videos` table under its name; the table shows the
    main ones, and at most 100 rows unless --limit says otherwise. A line of --ids that is not an id
    is reported with its line number and skipped (exit 2 at the end).

    \b
    Examples:
      taobao-video catalog list --min-duration 10 --limit 100 --format json
      taobao-video catalog list --since 2026-11-01 --sort size --desc --format csv > big.csv
      taobao-video catalog list --state failed,not_found --format jsonl
      taobao-video catalog list --missing
      taobao-video catalog list --ids wanted.txt --format csv
    """
    from taobao_video.store.query import iter_rows

    fmt = fmt or _default_format(sys.stdout)
    limit = params["limit"]
    if fmt == "table" and limit is None:
        limit = TABLE_ROWS
    query, bad = _build_query(ctx, params, limit=limit)
    settings = catalog_settings(ctx)
    with open_for_reading(settings) as store:
        # The first row is read before anything is printed: a catalog that fails (damaged, say) leaves stdout empty.
        fetched = iter_rows(store, query, base_dir=settings.base_dir)
        first = next(fetched, None)
        rows = itertools.chain([] if first is None else [first], fetched)
        if fmt == "table":
            shown = _print_table(query.columns, rows)
            if params["limit"] is None and shown == TABLE_ROWS:
                _note_more(store, query, settings.base_dir)
        else:
            columns, published = _with_public_urls(settings, query.columns, rows)
            _write(sys.stdout, fmt, columns, ([row[name] for name in columns] for row in published))
    if bad:
        ctx.exit(EXIT_USAGE)


def _with_public_urls(
    settings: CatalogSettings, columns: Sequence[str], rows: Iterable[dict[str, Any]]
) -> tuple[Sequence[str], Iterable[dict[str, Any]]]:
    """With ``download.public_url_prefix`` set: the columns and rows with ``video_public_url`` and
    ``cover_public_url`` added (store/public.py); else as they are."""
    if settings.public_url_prefix is None or settings.media_root is None:
        return columns, rows
    from taobao_video.store.public import PUBLIC_COLUMNS, PublicUrls

    public = PublicUrls(
        settings.public_url_prefix,
        base_dir=settings.base_dir,
        media_root=settings.media_root,
        object_root=settings.object_root,
    )
    return (*columns, *PUBLIC_COLUMNS), public.rows(rows)


def _note_more(store: Catalog, query: VideoQuery, base_dir: Path) -> None:
    from taobao_video.store.query import count_rows

    total = count_rows(store, query, base_dir=base_dir)
    if total > query.offset + TABLE_ROWS:
        click.echo(
            f"{TABLE_ROWS} of {total} rows shown (from {query.offset}); use --limit/--offset, or --format csv for all",
            err=True,
        )


def _write(out: TextIO, fmt: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    from taobao_video.cli.formats import write_rows

    return write_rows(out, fmt, columns, rows)


def _print_table(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> int:
    from rich.console import Console
    from rich.table import Table

    from taobao_video.model import format_bytes

    shown = [name for name in ("num_iid", "duration", "size_bytes", "downloaded_at", "video_path") if name in columns]
    shown += [name for name in ("state", "error_kind", "last_error") if name in columns]
    titles = {"size_bytes": "size", "downloaded_at": "downloaded (local)", "duration": "duration (s)"}
    table = Table(box=None, header_style="bold")
    for name in shown:
        justify: Literal["left", "right"] = "right" if name in ("duration", "size_bytes") else "left"
        # On a narrow terminal the id keeps its width (one cut to 52142439… is of no use); the rest may fold.
        table.add_column(titles.get(name, name), justify=justify, no_wrap=name == "num_iid", overflow="fold")
    id_width = 0
    count = 0
    for row in rows:
        cells = []
        for name in shown:
            value = row[name]
            if value is None:
                cells.append("-")
            elif name == "size_bytes":
                cells.append(format_bytes(value))
            elif name == "duration":
                cells.append(f"{value:.1f}")
            elif isinstance(value, datetime):
                cells.append(value.astimezone().strftime("%Y-%m-%d %H:%M"))
            else:
                cells.append(" ".join(str(value).split())[:80])
        table.add_row(*cells)
        id_width = max(id_width, len(cells[0]))
        count += 1
    table.columns[0].min_width = id_width
    console = Console()
    if count:
        console.print(table)
    else:
        console.print("No rows match.")
    return count


# -- export ---------------------------------------------------------------------------------------------------


@catalog.command("export")
@_filter_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("csv", "json", "jsonl", "xlsx")),
    help="csv, json (a mapping {num_iid: {video_path, duration, …}}), jsonl or xlsx (one sheet, the csv's "
    "columns); default: from the --output name's extension (an unknown one is refused), else json.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    help="Write here (atomically: all or nothing; its folder must exist); default stdout.",
)
@click.pass_context
def catalog_export(ctx: click.Context, fmt: str | None, output: str | None, **params: Any) -> None:
    """Write the catalog (or the rows the filters pick) as csv, json, jsonl or xlsx.

    The json form is a lookup file: an object keyed by num_iid (as text), each value the other
    columns. A file named by --output appears complete or not at all (temp file, fsync, rename);
    when it cannot be written (no such folder, no permission, disk full) that is one line and exit 1.

    \b
    Examples:
      taobao-video catalog export --format json --output videos.json
      taobao-video catalog export -o videos.csv --min-duration 5
      taobao-video catalog export -o videos.xlsx
      taobao-video catalog export --format jsonl | gzip > videos.jsonl.gz
    """
    from taobao_video.cli.formats import export_format
    from taobao_video.store.query import iter_rows

    fmt = export_format(fmt, output)
    target = None if output is None else _export_target(output)
    if target is None and fmt == "xlsx" and sys.stdout.isatty():
        raise click.UsageError("an xlsx is not for a terminal: give --output FILE.xlsx (or redirect stdout)")
    query, bad = _build_query(ctx, params, limit=params["limit"])
    settings = catalog_settings(ctx)
    with open_for_reading(settings) as store:
        columns, found = _with_public_urls(settings, query.columns, iter_rows(store, query, base_dir=settings.base_dir))
        rows = ([row[name] for name in columns] for row in found)
        try:
            count = _export(fmt, target, columns, rows)
        except OSError as exc:
            why = exc.strerror or str(exc)
            where = f"{output}: {why}; nothing was written" if output else f"stdout: {why}"
            raise TaobaoVideoError(f"cannot write {where}") from None
    if target is not None:
        click.echo(f"wrote {count} rows to {output}", err=True)
    if bad:
        ctx.exit(EXIT_USAGE)


def _export_target(output: str) -> Path:
    """The --output path, refused (exit 1) when its folder does not exist: a typo'd folder is not created."""
    path = Path(output)
    folder = path.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise TaobaoVideoError(f"cannot write {output}: the folder {folder} {what} (create it first)")
    return path


def _export(fmt: str, target: Path | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Rows to ``target`` (atomically) or stdout in ``fmt``; returns how many."""
    import shutil
    import tempfile

    from taobao_video.cli.formats import write_csv, write_jsonl, write_mapping, write_xlsx
    from taobao_video.fsutil import atomic_path, atomic_text_file

    if fmt == "xlsx":
        if target is not None:
            with atomic_path(target, mode=0o644) as tmp:
                return write_xlsx(tmp, columns, rows)
        with tempfile.TemporaryDirectory() as folder:
            count = write_xlsx(Path(folder) / "videos.xlsx", columns, rows)
            with (Path(folder) / "videos.xlsx").open("rb") as handle:
                shutil.copyfileobj(handle, sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return count
    writer = {"csv": write_csv, "json": write_mapping, "jsonl": write_jsonl}[fmt]
    if target is None:
        return writer(sys.stdout, columns, rows)
    with atomic_text_file(target, mode=0o644) as handle:
        return writer(handle, columns, rows)


# -- sql ------------------------------------------------------------------------------------------------------


@catalog.command("sql")
@click.argument("statement")
@_rows_format
@click.pass_context
def catalog_sql(ctx: click.Context, statement: str, fmt: str | None) -> None:
    """Run one read-only SQL STATEMENT on the catalog and print the rows.

    The database is opened read-only (SQLite: mode=ro, query_only and an authorizer that allows only
    reading; PostgreSQL: a read-only transaction): writes, ATTACH and PRAGMAs that change anything are
    refused with exit 2. The README lists the tables and columns.

    \b
    Examples:
      taobao-video catalog sql "SELECT num_iid, duration FROM videos WHERE duration > 30 ORDER BY duration DESC"
      taobao-video catalog sql "SELECT state, count(*) AS n FROM items GROUP BY state" --format json
    """
    from taobao_video.store.readonly_sql import run

    fmt = fmt or _default_format(sys.stdout)
    settings = catalog_settings(ctx)
    with run(settings.database_url, statement) as (columns, rows):
        if fmt == "table":
            _print_sql_table(columns, rows)
        else:
            _write(sys.stdout, fmt, columns, rows)


def _print_sql_table(columns: Sequence[str], rows: Iterator[Sequence[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for name in columns:
        table.add_column(name)
    for row in rows:
        table.add_row(*("NULL" if value is None else str(value) for value in row))
    Console().print(table)
