"""`taobao-video catalog`: which videos do I have, how long, where on disk; export, verify, ask in SQL.

Thin commands over ``query.py``, ``catalog_report.py``, ``verify.py``, ``formats.py`` and ``readonly_sql.py``. The
catalog is opened with :func:`taobao_video.store.catalog.open_existing`: never created, never migrated (a catalog on an
older schema is a "run `taobao-video db upgrade`", exit 78). Start-up matters here (issue 6: a listing within
1.5x of importing SQLAlchemy and click), so imports happen inside the commands, and rich only for a table.

Output: ``--format table`` (the default on a terminal) shows the main columns with rich; csv (the default when
stdout is not a terminal: a header line and RFC 4180 quoting, ready for a spreadsheet or ``cut``), json (one
array) and jsonl (one object per line) carry every column under the ``videos`` column names.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

from taobao_video.model import STATE_NAMES as STATES

if TYPE_CHECKING:
    from taobao_video.config.peek import CatalogSettings
    from taobao_video.store.catalog import Catalog
    from taobao_video.store.query import VideoQuery

# query.SORT_KEYS, spelt out so that `--help` imports nothing more (a test keeps them equal).
SORT_KEYS = ("num_iid", "duration", "downloaded_at", "size")
TABLE_ROWS = 100  # a table without --limit shows this many (a terminal is no place for a million rows)
_OPTION_OF_FIELD = {"q": "--ids", "ids": "--ids", "state": "--state"}


def _settings(ctx: click.Context) -> Any:
    from taobao_video.config.settings import load_settings

    return load_settings((ctx.obj or {}).get("config_path"))


def _catalog_settings(ctx: click.Context) -> CatalogSettings:
    """The catalog's URL, the settings folder and the quota zone: peeked at when that is safe (no pydantic, see
    settings_peek.py), else from the fully validated settings, which also report any problem exactly."""
    from taobao_video.config.peek import CatalogSettings, peek

    path = (ctx.obj or {}).get("config_path")
    found = peek(path)
    if found is not None:
        return found
    full = _settings(ctx)
    return CatalogSettings(full.source, full.base_dir, full.database.url, full.quota.timezone)


def _open(settings: CatalogSettings) -> Catalog:
    from taobao_video.store.catalog import open_existing

    return open_existing(settings.database_url)


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
        click.option("--missing", is_flag=True, help="Only rows whose file is gone from disk."),
        click.option("--sort", type=click.Choice(SORT_KEYS), default="num_iid", show_default=True, help="Order."),
        click.option("--desc", is_flag=True, help="Largest (or newest) first."),
        click.option("--limit", type=click.IntRange(min=0), help="At most this many rows."),
        click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many rows first."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _build_query(ctx: click.Context, params: dict[str, Any], *, limit: int | None) -> tuple[VideoQuery, int]:
    """The VideoQuery of the filter options, and how many lines of ``--ids`` were not ids (reported already)."""
    from taobao_video.store.query import QueryError, VideoQuery, parse_moment, parse_states

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
    settings = _catalog_settings(ctx)
    with _open(settings) as store:
        rows = iter_rows(store, query, base_dir=settings.base_dir)
        if fmt == "table":
            shown = _print_table(query.columns, rows)
            if params["limit"] is None and shown == TABLE_ROWS:
                _note_more(store, query, settings.base_dir)
        else:
            _write(sys.stdout, fmt, query.columns, ([row[name] for name in query.columns] for row in rows))
    if bad:
        ctx.exit(2)


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

    from taobao_video.store.report import format_bytes

    shown = [name for name in ("num_iid", "duration", "size_bytes", "downloaded_at", "video_path") if name in columns]
    shown += [name for name in ("state", "error_kind", "last_error") if name in columns]
    titles = {"size_bytes": "size", "downloaded_at": "downloaded (local)", "duration": "duration (s)"}
    table = Table(box=None, header_style="bold")
    for name in shown:
        table.add_column(titles.get(name, name), justify="right" if name in ("duration", "size_bytes") else "left")
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
        count += 1
    console = Console()
    if count:
        console.print(table)
    else:
        console.print("No rows match.")
    return count


# -- show -----------------------------------------------------------------------------------------------------


@catalog.command("show")
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
    settings = _catalog_settings(ctx)
    with _open(settings) as store:
        report = show(store, wanted)
    if report is None:
        if as_json:
            click.echo(json.dumps({"num_iid": wanted, "known": False}))
        else:
            click.echo(f"{wanted}: not in the catalog (never queued, looked up or downloaded)")
        ctx.exit(1)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    _print_show(report, settings.base_dir)


def _print_show(report: dict[str, Any], base_dir: Path) -> None:
    from taobao_video.store.report import format_bytes

    click.echo(f"num_iid:      {report['num_iid']}")
    click.echo(f"state:        {report['state'] or '- (no item row)'}")
    video = report["video"]
    if video is not None:
        path = base_dir / video["video_path"]
        present = "" if path.exists() else "  (MISSING on disk)"
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


@catalog.command("stats")
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

    from taobao_video.store.query import local_zone
    from taobao_video.store.report import stats

    settings = _catalog_settings(ctx)
    with _open(settings) as store:
        report = stats(store, now=datetime.now(UTC), tz=local_zone(), days=days, quota_tz=settings.quota_tz)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    _print_stats(report, settings.quota_timezone)


def _print_stats(report: dict[str, Any], quota_zone: str) -> None:
    from taobao_video.store.report import format_bytes, histogram_label, sparkline

    items = report["items"]
    click.echo(f"Items:    {items['total']}  " + ", ".join(f"{state} {items[state]}" for state in STATES))
    click.echo(
        f"Videos:   {report['videos']}, {format_bytes(report['bytes'])}, {report['hours']:.2f} hours "
        f"({report['seconds']:.0f} s)"
    )
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


# -- export ---------------------------------------------------------------------------------------------------


@catalog.command("export")
@_filter_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("csv", "json", "jsonl")),
    help="csv, json (a mapping {num_iid: {video_path, duration, …}}) or jsonl; default: from the --output "
    "name's extension, else json.",
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="Write here (atomically: all or nothing); default stdout."
)
@click.pass_context
def catalog_export(ctx: click.Context, fmt: str | None, output: str | None, **params: Any) -> None:
    """Write the catalog (or the rows the filters pick) as csv, json or jsonl.

    The json form is a lookup file: an object keyed by num_iid (as text), each value the other
    columns. A file named by --output appears complete or not at all (temp file, fsync, rename).

    \b
    Examples:
      taobao-video catalog export --format json --output videos.json
      taobao-video catalog export -o videos.csv --min-duration 5
      taobao-video catalog export --format jsonl | gzip > videos.jsonl.gz
    """
    from taobao_video.cli.formats import write_csv, write_jsonl, write_mapping
    from taobao_video.fsutil import atomic_text_file
    from taobao_video.store.query import iter_rows

    if fmt is None:
        suffix = Path(output).suffix.lower().lstrip(".") if output else ""
        fmt = suffix if suffix in ("csv", "json", "jsonl") else "json"
    query, bad = _build_query(ctx, params, limit=params["limit"])
    writer = {"csv": write_csv, "json": write_mapping, "jsonl": write_jsonl}[fmt]
    settings = _catalog_settings(ctx)
    with _open(settings) as store:
        rows = ([row[name] for name in query.columns] for row in iter_rows(store, query, base_dir=settings.base_dir))
        if output is None:
            writer(sys.stdout, query.columns, rows)
        else:
            with atomic_text_file(Path(output), mode=0o644) as handle:
                count = writer(handle, query.columns, rows)
            click.echo(f"wrote {count} rows to {output}", err=True)
    if bad:
        ctx.exit(2)


# -- verify ---------------------------------------------------------------------------------------------------


@catalog.command("verify")
@click.option("--sample", type=click.IntRange(min=1), metavar="N", help="Check N videos picked at random.")
@click.option(
    "--fix",
    is_flag=True,
    help="Put the bad ones back to be downloaded again from their stored URL (no API call) by the next "
    "`daily` or `harvest`.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object: counts and every problem.")
@click.pass_context
def catalog_verify(ctx: click.Context, sample: int | None, fix: bool, as_json: bool) -> None:
    """Re-read the video files: each must exist, have its recorded size and sha256, and still be an MP4.

    Reports missing, truncated, grown, not-MP4, unreadable and changed files. Exit 1 when bad files
    are found and not fixed. --fix takes the run lock (no harvest meanwhile), removes their rows from
    `videos` and marks their items resolved, so the next run downloads them again without a call.

    \b
    Examples:
      taobao-video catalog verify --sample 100
      taobao-video catalog verify --fix && taobao-video daily
    """
    import contextlib
    import json

    from taobao_video.jobs.lock import RunLock
    from taobao_video.jobs.verify import verify
    from taobao_video.store.catalog import open_existing

    gc.enable()
    settings = _settings(ctx)

    def progress(num_iid: int, bad: Any) -> None:
        if bad is not None and not as_json:
            click.echo(f"{num_iid}  {bad.problem:<14} {bad.video_path}: {bad.detail}")

    lock = RunLock(settings.harvest.lock_file, purpose="catalog verify --fix") if fix else contextlib.nullcontext()
    with lock, open_existing(settings.database.url) as store:
        report = verify(
            store, settings.base_dir, sample=sample, fix=fix, now=lambda: datetime.now(UTC), on_checked=progress
        )
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        click.echo(f"checked {report.checked}: {report.ok} good, {len(report.bad)} bad")
        if report.fixed:
            click.echo(
                f"{report.fixed} put back to download from their stored URL: run `taobao-video daily` "
                "(or harvest them) to fetch them again"
            )
    ctx.exit(report.exit_code)


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
    settings = _catalog_settings(ctx)
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
