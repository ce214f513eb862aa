"""``taobao-video sandbox serve``: run the emulator in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import re
import signal
import threading
from typing import Any

import click

from taobao_video.sandbox.config import ITEM_VIDEO, KNOWN_METHODS, AppConfig, SandboxConfig
from taobao_video.sandbox.faults import GATEWAY_KINDS, Fault
from taobao_video.sandbox.server import HOST, Sandbox

SANDBOX_SECRET = "test"
_SIZE = re.compile(r"(\d+)([KMG]?)(?:I?B)?", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


@click.group(name="sandbox")
def sandbox() -> None:
    """Run the local Taobao emulator."""


@sandbox.command()
@click.option("--host", default=HOST, show_default=True, help="Only 127.0.0.1 (or localhost) is allowed.")
@click.option("--port", default=8899, show_default=True, type=click.IntRange(0, 65535), help="0: any free port.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the catalogue and the faults.")
@click.option("--app-key", default="test", show_default=True)
@click.option("--app-secret", default=SANDBOX_SECRET, show_default=True, envvar="TAOBAO_SANDBOX_APP_SECRET")
@click.option("--daily-limit", default=1000, show_default=True, type=click.IntRange(min=0), help="0: no limit.")
@click.option("--qps", default=None, type=click.IntRange(min=1), help="Per-app calls per second.")
@click.option("--no-session", is_flag=True, help="Do not require a session token.")
@click.option("--no-item-video", is_flag=True, help="The app lacks taobao.item_video (code 11).")
@click.option("--without-item-video-api", is_flag=True, help="The platform lacks taobao.item_video (code 22).")
@click.option("--client-credentials/--no-client-credentials", default=True, show_default=True, help="Allow that grant.")
@click.option("--deny-authorize", is_flag=True, help="/authorize answers error=access_denied.")
@click.option("--fault", "faults", multiple=True, metavar="KIND[:target][:rate][:times][:seconds]")
@click.option("--signed-url-ttl", default=3600, show_default=True, type=click.IntRange(min=1), help="Seconds.")
@click.option("--token-ttl", default=86400, show_default=True, type=click.IntRange(min=1), help="Seconds.")
@click.option(
    "--refresh-ttl",
    default=30 * 86400,
    show_default=True,
    type=click.IntRange(min=0),
    help="Seconds a refresh token lives (e.g. 172800: inside the 3-day token_expiring window).",
)
@click.option("--video-bytes", default="64K-512K", show_default=True, metavar="MIN-MAX", help="e.g. 1M-8M.")
def serve(**options: Any) -> None:
    """Serve the gateway, OAuth and CDN on 127.0.0.1 until Ctrl-C or SIGTERM."""
    if options["host"] not in (HOST, "localhost"):
        raise click.BadParameter("the sandbox only listens on 127.0.0.1", param_hint="--host")
    emulator = Sandbox(build_config(options), port=options["port"])
    try:
        emulator.start()
    except OSError as error:
        raise click.ClickException(f"cannot listen on {HOST}:{options['port']}: {error}") from error
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        click.echo(banner(emulator, options["app_key"], options["app_secret"]))
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("sandbox stopped", err=True)


def build_config(options: dict[str, Any]) -> SandboxConfig:
    """The SandboxConfig the ``serve`` options describe."""
    methods = KNOWN_METHODS - {ITEM_VIDEO} if options["no_item_video"] else KNOWN_METHODS
    app = AppConfig(
        key=options["app_key"],
        secret=options["app_secret"],
        daily_limit=options["daily_limit"] or None,
        qps=options["qps"],
        methods=methods,
        client_credentials=options["client_credentials"],
    )
    try:
        faults = tuple(parse_fault(spec) for spec in options["faults"])
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--fault") from error
    return SandboxConfig(
        seed=options["seed"],
        apps=(app,),
        require_session=not options["no_session"],
        token_ttl_s=options["token_ttl"],
        refresh_ttl_s=options["refresh_ttl"],
        signed_url_ttl_s=options["signed_url_ttl"],
        video_bytes=parse_byte_range(options["video_bytes"]),
        faults=faults,
        item_video_api=not options["without_item_video_api"],
        deny_authorize=options["deny_authorize"],
    )


def parse_fault(spec: str) -> Fault:
    """``KIND[:target][:rate][:times][:seconds]``; empty parts keep their default (``stall:cdn::1:3``)."""
    parts = spec.split(":")
    if len(parts) > 5 or not parts[0]:
        raise ValueError(f"bad fault {spec!r}: expected KIND[:target][:rate][:times][:seconds]")
    parts += [""] * (5 - len(parts))
    kind, target, rate, times, seconds = parts
    return Fault(
        kind=kind,
        target=target or ("gateway" if kind in GATEWAY_KINDS else "cdn"),
        rate=float(rate) if rate else 1.0,
        times=int(times) if times else None,
        seconds=float(seconds) if seconds else 5.0,
    )


def parse_byte_range(text: str) -> tuple[int, int]:
    """``MIN-MAX`` with optional K/M/G suffixes (binary): ``64K-512K`` → (65536, 524288)."""
    low, _, high = text.partition("-")
    try:
        value = (_bytes(low), _bytes(high or low))
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--video-bytes") from error
    if not 0 < value[0] <= value[1]:
        raise click.BadParameter(f"{text!r}: need 0 < MIN <= MAX", param_hint="--video-bytes")
    return value


def _bytes(text: str) -> int:
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a size: {text!r} (e.g. 512K, 8M)")
    return int(match[1]) * _UNITS[match[2].upper()]


def banner(emulator: Sandbox, app_key: str, app_secret: str) -> str:
    """What ``serve`` prints: the URL, then settings.toml and environment lines that work as they are.

    The CDN is this loopback address, so ``allowed_hosts`` must name it (else the first harvest spends its calls
    and then refuses every download as ``host_not_allowed``); the grant is one the sandbox accepts without a
    browser when it can.
    """
    secret = app_secret if app_secret == SANDBOX_SECRET else "<the value you passed with --app-secret>"
    config = emulator.config
    app = config.apps[0]
    then: tuple[str, ...] = ()
    if not config.require_session:
        grant = "none"
    elif app.client_credentials:
        grant = "client_credentials"
    else:
        grant, then = "authorization_code", ("# then: taobao-video auth login",)
    return "\n".join(
        (
            f"sandbox: {emulator.url}  (seed {config.seed}; Ctrl-C or SIGTERM stops it)",
            "# settings.toml",
            "[taobao]",
            f'gateway_url = "{emulator.gateway_url}"',
            f'oauth_url = "{emulator.oauth_url}"',
            f'app_key = "{app_key}"',
            f'oauth_grant = "{grant}"',
            "[download]",
            f'allowed_hosts = ["{HOST}"]  # the sandbox CDN',
            "# environment",
            f"export TAOBAO_APP_KEY={app_key}",
            f"export TAOBAO_APP_SECRET={secret}",
            *then,
        )
    )
