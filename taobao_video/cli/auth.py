"""`taobao-video auth`: authorise the app with Taobao (OAuth 2.0) and manage its token file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from taobao_video.cli.common import app_option, settings_of, when
from taobao_video.errors import EXIT_NOPERM, ConfigError


def _one_app_name(settings: Any, app_name: str | None) -> str:
    """The app a command is about: the one named, or the only one configured."""
    names = settings.app_names
    if app_name is None and len(names) > 1:
        raise ConfigError(f"several apps are configured ({', '.join(names)}): pick one with --app NAME")
    name = app_name or names[0]
    settings.token_file(name)  # an unknown name is a ConfigError naming the configured ones
    return str(name)


@click.group()
def auth() -> None:
    """Authorise the app with Taobao (OAuth 2.0) and manage the token file."""


@auth.command("url")
@click.option("--state", help="The state to put in the URL (default: a random one, printed to stderr).")
@app_option
@click.pass_context
def auth_url(ctx: click.Context, state: str | None, app_name: str | None) -> None:
    """Print the URL to open in a browser to authorise the app.

    After approving, the browser lands on the redirect URI with ?code=…; pass that code to
    `taobao-video auth login --code CODE`.
    """
    from taobao_video import wiring
    from taobao_video.top.oauth import new_state

    state = state or new_state()
    settings = settings_of(ctx)
    click.echo(wiring.oauth_client(settings, settings.app(app_name)).authorize_url(state))
    click.echo(f"state: {state}", err=True)


@auth.command("login")
@click.option("--code", help="An authorisation code you copied from the redirect (skips the browser).")
@click.option("--no-browser", is_flag=True, help="Print the URL instead of opening a browser.")
@click.option("--timeout", "timeout_s", default=300.0, show_default=True, help="Seconds to wait for the redirect.")
@app_option
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

    settings = settings_of(ctx)
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
        f"token valid until {when(token.expires_at)}; saved to {app.token_file}"
    )


@auth.command("refresh")
@app_option
@click.pass_context
def auth_refresh(ctx: click.Context, app_name: str | None) -> None:
    """Refresh the token now (only tokens with a refresh token can be refreshed)."""
    from taobao_video import wiring

    settings = settings_of(ctx)
    token = wiring.token_manager(settings, settings.app(app_name)).refresh_now()
    click.echo(f"Refreshed; token valid until {when(token.expires_at)}")


@auth.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object (one per app when several).")
@app_option
@click.pass_context
def auth_status(ctx: click.Context, as_json: bool, app_name: str | None) -> None:
    """Show who the token belongs to and when it expires (every app's, unless --app). Exit 77 when a token is
    missing or expired."""
    settings = settings_of(ctx)
    if settings.taobao.provider == "gateway":  # an item-data vendor: its key and secret, no Taobao session
        _gateway_status(ctx, settings, as_json=as_json)
        return
    names = [app_name] if app_name is not None else list(settings.app_names)
    usable = True
    for number, name in enumerate(names):
        if number and not as_json:
            click.echo("")
        usable &= _token_status(settings, name, as_json=as_json, labelled=len(settings.app_names) > 1)
    if not usable:
        ctx.exit(EXIT_NOPERM)


def _gateway_status(ctx: click.Context, settings: Any, *, as_json: bool) -> None:
    """With ``taobao.provider = "gateway"`` no Taobao token is used: say so, and whether the vendor's key and
    secret are set (exit 78 when not)."""
    from taobao_video.config.names import GATEWAY_KEY_ENV, GATEWAY_SECRET_ENV
    from taobao_video.errors import EXIT_CONFIG, ConfigError

    try:
        settings.gateway.credentials(settings.source)
        problem = None
    except ConfigError as exc:
        problem = exc.problem
    if as_json:
        click.echo(json.dumps({"provider": "gateway", "session_needed": False, "credentials": problem or "set"}))
    else:
        click.echo("taobao.provider = gateway: no Taobao session is needed (`auth login` is not used).")
        click.echo(problem or f"{GATEWAY_KEY_ENV} and {GATEWAY_SECRET_ENV} are set (`doctor --spend 1` tries them).")
    if problem is not None:
        ctx.exit(EXIT_CONFIG)


def _token_status(settings: Any, name: str, *, as_json: bool, labelled: bool) -> bool:
    """Print one app's token status; True when it is usable."""
    from taobao_video.errors import AuthError
    from taobao_video.top.tokens import TokenStore, expiry_warning

    path = settings.token_file(name)
    report: dict[str, Any] = {"app": name} if labelled else {}
    try:
        token = TokenStore(path).load()
    except AuthError as exc:  # a token file that cannot be used: said in one line, the other apps still shown
        report |= {"authorised": False, "token_file": str(path), "error": str(exc)}
        click.echo(
            json.dumps(report, ensure_ascii=False) if as_json else f"{'App ' + name + ': ' if labelled else ''}{exc}"
        )
        return False
    now = datetime.now(UTC)
    warning = None if token is None else expiry_warning(token, now=now, warn_days=settings.taobao.token_warn_days)
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
            "warning": warning,
        }
        if settings.taobao.provider == "seller":  # the seller channel reads this shop's items only
            report["shop_nick"] = token.user_nick
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
        if "shop_nick" in report:
            click.echo(f"Shop:          {token.user_nick or '-'} (provider seller: only this shop's items are visible)")
        click.echo(f"Token:         {state}, expires {when(token.expires_at)}")
        refresh = when(token.refresh_expires_at) if token.refresh_expires_at else "not refreshable"
        click.echo(f"Refresh until: {refresh}")
        click.echo(f"Token file:    {path}")
        if warning is not None:
            click.echo(f"Warning:       {warning}")
    return bool(report["authorised"])


@auth.command("logout")
@app_option
@click.pass_context
def auth_logout(ctx: click.Context, app_name: str | None) -> None:
    """Delete the token file."""
    from taobao_video.top.tokens import TokenStore

    settings = settings_of(ctx)
    path = settings.token_file(_one_app_name(settings, app_name))
    click.echo(f"Deleted {path}" if TokenStore(path).delete() else f"No token file at {path}")
