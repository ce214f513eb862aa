"""`taobao-video schedule`: run `taobao-video daily` every day from a systemd timer or cron."""

from __future__ import annotations

from typing import Any

import click

from taobao_video.cli.common import settings_of


@click.group()
def schedule() -> None:
    """Run `taobao-video daily` every day: systemd timer or cron entries."""


def _schedule_spec(ctx: click.Context, at: str) -> Any:
    from taobao_video.ops.schedule import ScheduleSpec, command_path

    return ScheduleSpec.from_settings(settings_of(ctx), command=command_path(), at=at)


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
