"""Command line: parse arguments, call the library, turn errors into messages and exit codes.

Exit codes (design.md): 0 done · 1 some items failed · 2 bad usage or input · 75 try later · 77 authorisation
needed · 78 configuration error.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import click

from taobao_video import __version__
from taobao_video.errors import EXIT_USAGE, TaobaoVideoError


def _settings(ctx: click.Context) -> Any:
    from taobao_video.config.settings import load_settings

    return load_settings(ctx.obj.get("config_path"))


class _LazyGroup(click.Group):
    """A group whose subcommands from other modules are imported only when one of them runs (or --help lists
    them): a `catalog list` need not import the sandbox emulator, the web server or the queue's code."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, str] = {}  # command name -> "module:attribute"

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            import importlib

            module, _, attribute = self.lazy[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(version=__version__, prog_name="taobao-video")
@click.option(
    "--config",
    "config_path",
    envvar="TAOBAO_VIDEO_CONFIG",
    type=click.Path(),
    help="Settings file (default: ./settings.toml; env TAOBAO_VIDEO_CONFIG).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Harvest the main-image videos of Taobao products into a local catalog.

    \b
    Exit codes: 0 done, 1 some items failed, 2 bad usage or input, 75 stopped early (quota spent, or
    another run holds the lock or some of the ids; try later), 77 authorisation needed, 78 configuration error.
    """
    ctx.obj = {"config_path": config_path}


def _app_option(command: Any) -> Any:
    return click.option(
        "--app",
        "app_name",
        metavar="NAME",
        help="Which [[taobao.apps]] entry (needed only when several are configured).",
    )(command)


def _one_app_name(settings: Any, app_name: str | None) -> str:
    """The app a command is about: the one named, or the only one configured."""
    from taobao_video.errors import ConfigError

    names = settings.app_names
    if app_name is None and len(names) > 1:
        raise ConfigError(f"several apps are configured ({', '.join(names)}): pick one with --app NAME")
    name = app_name or names[0]
    settings.token_file(name)  # an unknown name is a ConfigError naming the configured ones
    return str(name)


# -- auth -----------------------------------------------------------------------------------------------------


@cli.group()
def auth() -> None:
    """Authorise the app with Taobao (OAuth 2.0) and manage the token file."""


@auth.command("url")
@click.option("--state", help="The state to put in the URL (default: a random one, printed to stderr).")
@_app_option
@click.pass_context
def auth_url(ctx: click.Context, state: str | None, app_name: str | None) -> None:
    """Print the URL to open in a browser to authorise the app.

    After approving, the browser lands on the redirect URI with ?code=…; pass that code to
    `taobao-video auth login --code CODE`.
    """
    from taobao_video import wiring
    from taobao_video.top.oauth import new_state

    state = state or new_state()
    settings = _settings(ctx)
    click.echo(wiring.oauth_client(settings, settings.app(app_name)).authorize_url(state))
    click.echo(f"state: {state}", err=True)


@auth.command("login")
@click.option("--code", help="An authorisation code you copied from the redirect (skips the browser).")
@click.option("--no-browser", is_flag=True, help="Print the URL instead of opening a browser.")
@click.option("--timeout", "timeout_s", default=300.0, show_default=True, help="Seconds to wait for the redirect.")
@_app_option
@click.pass_context
def auth_login(ctx: click.Context, code: str | None, no_browser: bool, timeout_s: float, app_name: str | None) -> None:
    """Get a token: open the authorize page and catch the redirect on the loopback redirect URI.

    \b
    Example:
      taobao-video auth login            # opens a browser, waits for the redirect
      taobao-video auth login --code 7Xk…  # exchange a code you copied by hand
    """
    import webbrowser

    from taobao_video import wiring
    from taobao_video.top.oauth import new_state, wait_for_redirect

    settings = _settings(ctx)
    app = settings.app(app_name)
    manager = wiring.token_manager(settings, app)
    if code is None:
        state = new_state()
        url = manager.oauth.authorize_url(state)

        def ready() -> None:
            click.echo(f"Open this URL to authorise taobao-video (waiting {timeout_s:.0f} s):\n{url}", err=True)
            if not no_browser:
                webbrowser.open(url)

        code = wait_for_redirect(settings.taobao.redirect_uri, state, timeout_s=timeout_s, ready=ready)
    token = manager.login_with_code(code)
    click.echo(
        f"Authorised as {token.user_nick or token.user_id or 'unknown user'}; "
        f"token valid until {_when(token.expires_at)}; saved to {app.token_file}"
    )


@auth.command("refresh")
@_app_option
@click.pass_context
def auth_refresh(ctx: click.Context, app_name: str | None) -> None:
    """Refresh the token now (only tokens with a refresh token can be refreshed)."""
    from taobao_video import wiring

    settings = _settings(ctx)
    token = wiring.token_manager(settings, settings.app(app_name)).refresh_now()
    click.echo(f"Refreshed; token valid until {_when(token.expires_at)}")


@auth.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object (one per app when several).")
@_app_option
@click.pass_context
def auth_status(ctx: click.Context, as_json: bool, app_name: str | None) -> None:
    """Show who the token belongs to and when it expires (every app's, unless --app). Exit 77 when a token is
    missing or expired."""
    settings = _settings(ctx)
    names = [app_name] if app_name is not None else list(settings.app_names)
    usable = True
    for number, name in enumerate(names):
        if number and not as_json:
            click.echo("")
        usable &= _token_status(settings, name, as_json=as_json, labelled=len(settings.app_names) > 1)
    if not usable:
        ctx.exit(77)


def _token_status(settings: Any, name: str, *, as_json: bool, labelled: bool) -> bool:
    """Print one app's token status; True when it is usable."""
    from taobao_video.top.oauth import TokenStore

    path = settings.token_file(name)
    token = TokenStore(path).load()
    now = datetime.now(UTC)
    report: dict[str, Any] = {"app": name} if labelled else {}
    if token is None:
        report |= {"authorised": False, "token_file": str(path)}
    else:
        report |= {
            "authorised": token.expires_at > now,
            "user_nick": token.user_nick,
            "user_id": token.user_id,
            "grant": token.grant,
            "expires_at": token.expires_at.isoformat(),
            "expires_in_s": int((token.expires_at - now).total_seconds()),
            "refreshable_until": token.refresh_expires_at.isoformat() if token.refresh_expires_at else None,
            "token_file": str(path),
        }
    login = "taobao-video auth login" + (f" --app {name}" if labelled else "")
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
    elif token is None:
        click.echo(f"{'App ' + name + ': ' if labelled else ''}Not authorised: no token in {path}. Run `{login}`.")
    else:
        if labelled:
            click.echo(f"App:           {name}")
        state = "valid" if report["authorised"] else "EXPIRED"
        click.echo(f"User:          {token.user_nick or '-'} (id {token.user_id or '-'})")
        click.echo(f"Token:         {state}, expires {_when(token.expires_at)}")
        refresh = _when(token.refresh_expires_at) if token.refresh_expires_at else "not refreshable"
        click.echo(f"Refresh until: {refresh}")
        click.echo(f"Token file:    {path}")
    return bool(report["authorised"])


@auth.command("logout")
@_app_option
@click.pass_context
def auth_logout(ctx: click.Context, app_name: str | None) -> None:
    """Delete the token file."""
    from taobao_video.top.oauth import TokenStore

    settings = _settings(ctx)
    path = settings.token_file(_one_app_name(settings, app_name))
    click.echo(f"Deleted {path}" if TokenStore(path).delete() else f"No token file at {path}")


# -- lookup ---------------------------------------------------------------------------------------------------


@cli.command("lookup")
@click.argument("num_iids", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per id.")
@click.pass_context
def lookup(ctx: click.Context, num_iids: tuple[str, ...], as_json: bool) -> None:
    """Ask the platform for the videos of NUM_IIDS without downloading (one API call per id).

    Each call is counted in the quota ledger, and what it finds is kept in the catalog, so a later
    harvest downloads these videos without asking again.

    \b
    Example:
      taobao-video lookup 520813250866 601234567890
    """
    from taobao_video import wiring
    from taobao_video.jobs.harvest import record_lookup
    from taobao_video.model import utc_now

    ids = [_parse_id(raw) for raw in num_iids]
    settings = _settings(ctx)
    with wiring.catalog(settings) as catalog:
        finder, _ = wiring.metered_lookup(settings, catalog)
        for num_iid in ids:
            result = finder.lookup(num_iid)
            record_lookup(catalog, result, now=utc_now())
            _print_lookup(result, as_json)


def _parse_id(raw: str) -> int:
    text = raw.strip()
    if not text.isdigit() or not 1 <= len(text.lstrip("0") or "0") <= 15 or int(text) == 0:
        raise click.BadParameter(f"{raw!r} is not a num_iid (a positive whole number)", param_hint="NUM_IIDS")
    return int(text)


def _print_lookup(result: Any, as_json: bool) -> None:
    video = result.video
    if as_json:
        record = {
            "num_iid": result.num_iid,
            "outcome": result.outcome,
            "api_method": result.api_method,
            "request_id": result.request_id,
        }
        if video is not None:
            record.update(
                url=video.url,
                cover_url=video.cover_url,
                duration=video.duration,
                width=video.width,
                height=video.height,
            )
        if result.detail:
            record["detail"] = result.detail
        click.echo(json.dumps(record, ensure_ascii=False))
        return
    if video is None:
        click.echo(f"{result.num_iid}  {result.outcome}{'  ' + result.detail if result.detail else ''}")
    else:
        duration = f"{video.duration:.1f}s" if video.duration is not None else "?s"
        click.echo(f"{result.num_iid}  video  {duration}  {video.url}")


# -- harvest --------------------------------------------------------------------------------------------------


# The inputs of harvest and `queue add|remove` (queue_cli.py), parsed alike by ids.py.
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


@cli.command("harvest")
@ids_argument
@file_option
@click.option("--force", is_flag=True, help="Download again ids already in the catalog.")
@click.option("--workers", type=click.IntRange(1, 64), help="Parallel downloads (default: download.workers).")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line; the last is the summary.")
@click.pass_context
def harvest(
    ctx: click.Context, ids: tuple[str, ...], files: tuple[str, ...], force: bool, workers: int | None, as_json: bool
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
    import threading

    from taobao_video import wiring
    from taobao_video.cli.progress import RunOutput
    from taobao_video.ids import parse_inputs
    from taobao_video.jobs.interrupt import graceful_stop
    from taobao_video.jobs.lock import run_lock

    require_input(ids, files)
    parsed = parse_inputs(ids, files)
    for bad in parsed.bad:
        click.echo(f"taobao-video: skipping {bad}", err=True)
    if not parsed.ids:
        click.echo("taobao-video: no valid ids to harvest", err=True)
        ctx.exit(2)
    settings = _settings(ctx)
    lock = run_lock(settings.database.url, settings.harvest.lock_file, purpose="harvest")
    with lock as exclusive, graceful_stop(threading.Event()) as stop, wiring.catalog(settings) as catalog:
        output = RunOutput.choose(as_json)
        with output:
            job = wiring.harvester(
                settings,
                catalog,
                force=force,
                workers=workers,
                exclusive=exclusive,
                stop=stop,
                on_event=output.event,
                on_bytes=output.add_bytes,
            )
            report = job.run(parsed.ids)
        report.bad_lines = len(parsed.bad)
        output.summary(report)
    if job.fatal is not None:
        raise job.fatal
    ctx.exit(report.exit_code)


# -- daily ----------------------------------------------------------------------------------------------------


@cli.command("daily")
@click.option("--max-calls", type=click.IntRange(0), help="Spend at most this many API calls in this run.")
@click.option("--workers", type=click.IntRange(1, 64), help="Parallel downloads (default: download.workers).")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line; the last is the summary.")
@click.pass_context
def daily(ctx: click.Context, max_calls: int | None, workers: int | None, as_json: bool) -> None:
    """Work through the queue with what is left of today's API quota (the scheduled run).

    Downloads ids looked up earlier first (no call needed), then looks up queued ids in priority and
    insertion order, never spending more than today's quota minus quota.reserve. Exit 0 when the queue
    is drained, 75 when work is left for tomorrow, 1 when items failed.

    \b
    Examples:
      taobao-video queue add --file ids.txt
      taobao-video daily
      taobao-video daily --max-calls 200 --json
    """
    import threading

    from taobao_video import wiring
    from taobao_video.cli.progress import RunOutput
    from taobao_video.jobs.daily import run_daily
    from taobao_video.jobs.interrupt import graceful_stop
    from taobao_video.jobs.lock import run_lock

    settings = _settings(ctx)
    lock = run_lock(settings.database.url, settings.harvest.lock_file, purpose="daily")
    with lock as exclusive, graceful_stop(threading.Event()) as stop:
        with wiring.catalog(settings) as catalog:
            output = RunOutput.choose(as_json)
            with output:
                job = wiring.harvester(
                    settings,
                    catalog,
                    workers=workers,
                    exclusive=exclusive,
                    stop=stop,
                    on_event=output.event,
                    on_bytes=output.add_bytes,
                )
                report = run_daily(job, catalog, max_calls=max_calls)
            days = report.days_left
            pace = (
                f"about {days} more day{'s' if days != 1 else ''} at {report.calls_per_day} calls a day"
                if days is not None
                else "no calls are allowed per day"
            )
            note = (
                f"Queue: {report.pending} pending, {report.awaiting_download} awaiting download; {pace}."
                if report.remaining
                else "Queue drained."
            )
            output.summary(report.harvest, extra=report.as_dict(), note=note)
    if job.fatal is not None:
        raise job.fatal
    ctx.exit(report.exit_code)


# -- quota ----------------------------------------------------------------------------------------------------


@cli.group()
def quota() -> None:
    """The daily API call quota as the local ledger counts it."""


@quota.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def quota_status(ctx: click.Context, as_json: bool) -> None:
    """Used, limit, reserve and remaining calls today (per app and in all); when the quota resets; any platform
    ban.

    \b
    Example:
      taobao-video quota status --json
    """
    from taobao_video import wiring

    settings = _settings(ctx)
    with wiring.catalog(settings) as catalog:
        pool = wiring.quota_view(settings, catalog)
        statuses = pool.statuses()
        total = pool.status()
    tz_name = settings.quota.timezone
    several = len(statuses) > 1
    report = _quota_report(total, tz_name)
    if several:
        report["apps"] = {name: _quota_report(status, tz_name) for name, status in statuses.items()}
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(f"Quota day:  {total.day} ({tz_name})")
    if several:
        for name, status in statuses.items():
            banned = f", platform ban until {_when(status.banned_until)}" if status.banned_until else ""
            click.echo(
                f"  {name}: {status.used} of {status.daily_limit} used (reserve {status.reserve}), "
                f"{status.remaining} remaining{banned}"
            )
    click.echo(f"Used:       {total.used} of {total.daily_limit} (reserve {total.reserve})")
    click.echo(f"Remaining:  {total.remaining}")
    reset_quota_tz = total.resets_at.astimezone(settings.quota.tz).strftime("%Y-%m-%d %H:%M")
    click.echo(f"Resets at:  {reset_quota_tz} {tz_name} ({_when(total.resets_at)} local)")
    banned = _when(total.banned_until) if total.banned_until else "no"
    click.echo(f"Platform ban until: {banned}")


def _quota_report(status: Any, tz_name: str) -> dict[str, Any]:
    return {
        "day": status.day,
        "used": status.used,
        "daily_limit": status.daily_limit,
        "reserve": status.reserve,
        "remaining": status.remaining,
        "resets_at": status.resets_at.isoformat(),
        "timezone": tz_name,
        "banned_until": status.banned_until.isoformat() if status.banned_until else None,
    }


# -- schedule -------------------------------------------------------------------------------------------------


@cli.group()
def schedule() -> None:
    """Run `taobao-video daily` every day: systemd timer or cron entries."""


def _schedule_spec(ctx: click.Context, at: str) -> Any:
    from taobao_video.ops.schedule import ScheduleSpec, command_path

    return ScheduleSpec.from_settings(_settings(ctx), command=command_path(), at=at)


@schedule.command("print")
@click.option("--systemd", "kind", flag_value="systemd", default=True, help="A systemd service and timer (default).")
@click.option("--cron", "kind", flag_value="cron", help="A crontab line in this host's time zone.")
@click.option("--at", default="00:10", show_default=True, help="Start time in the quota time zone (HH:MM).")
@click.pass_context
def schedule_print(ctx: click.Context, kind: str, at: str) -> None:
    """Print ready-to-install entries with absolute paths to this command and the settings file.

    \b
    Examples:
      taobao-video schedule print --systemd
      taobao-video schedule print --cron >> mycrontab
    """
    from taobao_video.ops.schedule import cron_line, systemd_units

    spec = _schedule_spec(ctx, at)
    if kind == "cron":
        click.echo(cron_line(spec), nl=False)
        return
    for name, text in systemd_units(spec).items():
        click.echo(f"# --- {name} ---")
        click.echo(text)


@schedule.command("install")
@click.option("--user", "user", is_flag=True, required=True, help="Install as systemd user units (required).")
@click.option("--at", default="00:10", show_default=True, help="Start time in the quota time zone (HH:MM).")
@click.pass_context
def schedule_install(ctx: click.Context, user: bool, at: str) -> None:
    """Write the systemd user units (~/.config/systemd/user) and say how to enable them."""
    from taobao_video.ops.schedule import install_user_units

    spec = _schedule_spec(ctx, at)
    installed = install_user_units(spec)
    for path in installed:
        click.echo(f"wrote {path}")
    for note in installed.notes:
        click.echo(note)
    click.echo(f"Secrets: put TAOBAO_APP_KEY=… and TAOBAO_APP_SECRET=… lines in {spec.env_file} (chmod 600).")


# -- db -------------------------------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Manage the catalog database."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Create the catalog or migrate it to the current schema (runs automatically on every open)."""
    from taobao_video.store.dialects import masked
    from taobao_video.store.migrate import upgrade

    settings = _settings(ctx)
    click.echo(f"Catalog at revision {upgrade(settings.database.url)}: {masked(settings.database.url)}")


# -- demo -----------------------------------------------------------------------------------------------------


@cli.command("demo")
@click.option("--ids", "count", default=16, show_default=True, help="How many sample ids to harvest.")
@click.option("--seed", default=2026, show_default=True, help="Seed of the sandbox's item catalogue.")
@click.option(
    "--dir",
    "folder",
    default="data/demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the demo keeps its catalog, videos and token.",
)
@click.option("--json", "as_json", is_flag=True, help="Harvest events as JSON lines.")
@click.pass_context
def demo(ctx: click.Context, count: int, seed: int, folder: str, as_json: bool) -> None:
    """Run the main job against the bundled sandbox: no Taobao account needed.

    Starts the Taobao emulator on a free loopback port, authorises through its OAuth pages, harvests a
    mixed sample of product ids (with and without videos, missing, deleted) into the catalog and the
    videos folder, prints the catalog, and runs again to show that nothing is spent twice.
    """
    from taobao_video.jobs.demo import run_demo

    ctx.exit(run_demo(count=count, seed=seed, folder=folder, echo=click.echo, as_json=as_json))


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _register_groups() -> None:
    assert isinstance(cli, _LazyGroup)
    cli.lazy.update(
        queue="taobao_video.cli.queue:queue",
        sandbox="taobao_video.sandbox.cli:sandbox",
        serve="taobao_video.cli.serve:serve",
        catalog="taobao_video.cli.catalog:catalog",
    )


_register_groups()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, print library errors as one line and exit with their code."""
    try:
        code = cli.main(args=argv, prog_name="taobao-video", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except TaobaoVideoError as exc:
        click.echo(f"taobao-video: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
