"""``taobao-video doctor``: check the whole setup before the first run, or after one failed (ops/doctor.py)."""

from __future__ import annotations

import json

import click

_MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "--  "}


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per check; the last line is the verdict.")
@click.option(
    "--spend",
    type=click.IntRange(0, 10),
    default=0,
    show_default=True,
    help="API calls it may spend: one real lookup per configured API method, to learn which this app may call "
    "(seller: a list call, and its video query with 2).",
)
@click.option(
    "--id",
    "num_iid",
    type=click.IntRange(1, 10**15 - 1),
    help="The id those lookups ask for (default: one from the catalog).",
)
@click.option("--notify-test", is_flag=True, help="Send a test message to every notify URL.")
@click.pass_context
def doctor(ctx: click.Context, as_json: bool, spend: int, num_iid: int | None, notify_test: bool) -> None:
    """Check the setup in order, one line per check with ok, WARN or FAIL and the fix.

    Settings, credentials (one signed taobao.time.get), token and its expiry, clock skew against the
    gateway, gateway reachable, API methods (only with --spend), CDN host allowlist, download.dir (a
    bucket: one listing), catalog, run lock, today's quota, notify URLs. With taobao.provider = seller
    or gateway, the lookup is made as a harvest makes it; the gateway provider needs no token or clock.

    \b
    Exit codes: 0 all ok, 1 warnings only, else the worst failure's kind:
    78 configuration, 77 authorisation needed, 75 try later (gateway unreachable, disk full).

    \b
    Examples:
      taobao-video doctor
      taobao-video doctor --spend 2 --notify-test
    """
    from taobao_video.cli.common import settings_of
    from taobao_video.ops import doctor as library

    def show(check: library.Check) -> None:
        if as_json:
            click.echo(json.dumps({"event": "check", **check.as_dict()}, ensure_ascii=False))
            return
        fix = f"  → {check.fix}" if check.fix and check.status != "ok" else ""
        click.echo(f"{_MARK[check.status]}  {check.name:<13} {check.detail}{fix}")

    options = library.Options(spend=spend, num_iid=num_iid, notify_test=notify_test)
    checks = library.run(lambda: settings_of(ctx), options, on_check=show)
    code = library.exit_code(checks)
    counts = {status: sum(1 for check in checks if check.status == status) for status in _MARK}
    if as_json:
        click.echo(json.dumps({"event": "verdict", "exit_code": code, **counts}))
    else:
        click.echo(f"\n{counts['ok']} ok, {counts['warn']} warnings, {counts['fail']} failed: exit {code}")
    ctx.exit(code)
