"""The embedded default: everything against the bundled sandbox, so a newcomer sees it work without Taobao."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from pathlib import Path

import requests

from taobao_video import wiring
from taobao_video.auth import new_state, wait_for_redirect
from taobao_video.sandbox import AppConfig, Sandbox, SandboxConfig
from taobao_video.settings import Settings, settings_from_mapping

DEMO_APP_KEY = "test"
DEMO_APP_SECRET = "test"  # the sandbox's public test secret, like Taobao's own sandbox app "test"/"test"


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def demo_settings(sandbox: Sandbox, folder: Path, *, redirect_port: int) -> Settings:
    """Settings that point every URL at the running sandbox and every file into ``folder``."""
    mapping = {
        "taobao": {
            "gateway_url": sandbox.gateway_url,
            "oauth_url": sandbox.oauth_url,
            "app_key": DEMO_APP_KEY,
            "redirect_uri": f"http://127.0.0.1:{redirect_port}/callback",
            "token_file": "token.json",
        },
        "download": {"dir": "videos", "allowed_hosts": ["127.0.0.1"]},
        "database": {"url": "sqlite:///catalog.sqlite3"},
    }
    env = {"TAOBAO_APP_KEY": DEMO_APP_KEY, "TAOBAO_APP_SECRET": DEMO_APP_SECRET}
    return settings_from_mapping(mapping, base_dir=folder, source="<demo>", env=env)


def authorise_like_a_browser(settings: Settings) -> None:
    """The real authorization-code flow: a loopback listener catches the redirect that a 'browser' follows."""
    manager = wiring.token_manager(settings)
    state = new_state()
    url = manager.oauth.authorize_url(state)
    browser_errors: list[BaseException] = []

    def browse() -> None:
        try:
            requests.get(url, timeout=10)
        except requests.RequestException as exc:  # the listener reports the missing redirect
            browser_errors.append(exc)

    code = wait_for_redirect(
        settings.taobao.redirect_uri,
        state,
        timeout_s=15,
        ready=lambda: threading.Thread(target=browse, daemon=True).start(),
    )
    manager.login_with_code(code)


def run_demo(*, count: int, seed: int, folder: str, echo: Callable[[str], None]) -> None:
    base = Path(folder).resolve()
    base.mkdir(parents=True, exist_ok=True)
    config = SandboxConfig(seed=seed, apps=(AppConfig(key=DEMO_APP_KEY, secret=DEMO_APP_SECRET),))
    with Sandbox(config) as sandbox:
        echo(f"Sandbox (a local Taobao emulator) listening on {sandbox.url}")
        settings = demo_settings(sandbox, base, redirect_port=free_loopback_port())
        authorise_like_a_browser(settings)
        token = wiring.token_manager(settings).current()
        assert token is not None
        echo(
            f"Authorised through the sandbox's OAuth pages as {token.user_nick} "
            f"(token in {settings.taobao.token_file}, mode 0600)"
        )
        finder = wiring.video_lookup(settings, wiring.top_client(settings))
        ids = sandbox.catalogue.sample_mixed(count)
        echo(f"Looking up {len(ids)} products with {finder.method} (auto falls back to taobao.item.get):")
        for num_iid in ids:
            result = finder.lookup(num_iid)
            if result.video is not None:
                duration = f"{result.video.duration:5.1f} s" if result.video.duration is not None else "    ? s"
                echo(f"  {num_iid}  video     {duration}  {result.video.url}")
            else:
                echo(f"  {num_iid}  {result.outcome:<9} {result.detail}")
        calls = sandbox.stats()["gateway"]["calls"]
        echo(f"{calls} gateway calls made; the platform counted each one against the daily quota.")
