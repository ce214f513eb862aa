"""`taobao-video quota status`: the daily call quota as the local ledger counts it, per app and in all."""

from __future__ import annotations

import json
from typing import Any

import click

from taobao_video.cli.common import settings_of, when


@click.group()
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

    settings = settings_of(ctx)
    with wiring.catalog(settings) as catalog:
        pool = wiring.quota_pool(settings, catalog)
        statuses = pool.statuses()
        total = pool.status()
    warnings = wiring.token_warnings(settings)
    tz_name = settings.quota.timezone
    several = len(statuses) > 1
    report = _quota_report(total, tz_name)
    if several:
        report["apps"] = {name: _quota_report(status, tz_name) for name, status in statuses.items()}
    report["warnings"] = warnings
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(f"Quota day:  {total.day} ({tz_name})")
    if several:
        for name, status in statuses.items():
            banned = f", platform ban until {when(status.banned_until)}" if status.banned_until else ""
            click.echo(
                f"  {name}: {status.used} of {status.daily_limit} used (reserve {status.reserve}), "
                f"{status.remaining} remaining{banned}"
            )
    click.echo(f"Used:       {total.used} of {total.daily_limit} (reserve {total.reserve})")
    click.echo(f"Remaining:  {total.remaining}")
    reset_quota_tz = total.resets_at.astimezone(settings.quota.tz).strftime("%Y-%m-%d %H:%M")
    click.echo(f"Resets at:  {reset_quota_tz} {tz_name} ({when(total.resets_at)} local)")
    banned = when(total.banned_until) if total.banned_until else "no"
    click.echo(f"Platform ban until: {banned}")
    for warning in warnings:
        click.echo(f"Warning: {warning}")


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
