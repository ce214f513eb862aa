"""The embedded default: everything against the bundled sandbox, so a newcomer sees it work without Taobao."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from taobao_video import net, wiring
from taobao_video.config.load import settings_from_mapping
from taobao_video.config.models import Settings
from taobao_video.errors import TransportError, UsageError
from taobao_video.fsutil import atomic_write_text, file_in_the_way
from taobao_video.jobs import demo_providers, runner
from taobao_video.model import format_bytes
from taobao_video.sandbox import AppConfig, Sandbox, SandboxConfig
from taobao_video.sandbox.products import Catalogue
from taobao_video.top.oauth import RedirectError, new_state, wait_for_redirect

DEMO_MARK = "# Written by `taobao-video demo`"  # the first line of the settings file a demo leaves in its folder
DEMO_APP_KEY = "test"
DEMO_APP_SECRET = "test"  # the sandbox's public test secret, like Taobao's own sandbox app "test"/"test"


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def demo_settings(
    sandbox: Sandbox, folder: Path, *, redirect_port: int, setup: demo_providers.DemoSetup | None = None
) -> Settings:
    """Settings that point every URL at the running sandbox and every file into ``folder`` (and at the
    provider ``setup`` chose)."""
    mapping: dict[str, dict[str, Any]] = {
        "taobao": {
            "gateway_url": sandbox.gateway_url,
            "oauth_url": sandbox.oauth_url,
            "app_key": DEMO_APP_KEY,
            "redirect_uri": f"http://127.0.0.1:{redirect_port}/callback",
            "token_file": "token.json",
        },
        "download": {"dir": "videos", "allowed_hosts": ["127.0.0.1"]},
        "harvest": {"qps": 10, "lock_file": "harvest.lock"},  # the sandbox has no frequency limit
        "database": {"url": "sqlite:///catalog.sqlite3"},
        "gateway": {"url": sandbox.itemdata_url},
    }
    env = {"TAOBAO_APP_KEY": DEMO_APP_KEY, "TAOBAO_APP_SECRET": DEMO_APP_SECRET}
    if setup is not None:
        for section, values in setup.settings.items():
            mapping.setdefault(section, {}).update(values)
        env.update(setup.env)
    return settings_from_mapping(mapping, base_dir=folder, source="<demo>", env=env)


def authorise_like_a_browser(settings: Settings) -> None:
    """The real authorization-code flow: a loopback listener catches the redirect that a 'browser' follows."""
    manager = wiring.token_manager(settings, settings.app())
    state = new_state()
    url = manager.oauth.authorize_url(state)
    failures: list[TransportError] = []

    def browse() -> None:
        try:
            requests.get(url, timeout=10)
        except net.NETWORK_ERRORS as exc:
            failures.append(net.transport_error(exc, what="the authorize page"))

    try:
        code = wait_for_redirect(
            settings.taobao.redirect_uri,
            state,
            timeout_s=15,
            ready=lambda: threading.Thread(target=browse, daemon=True).start(),
        )
    except RedirectError:
        if failures:
            raise RedirectError(f"the sandbox's authorize page failed: {failures[0]}") from None
        raise
    manager.login_with_code(code)


def run_demo(
    *,
    count: int,
    seed: int,
    folder: str,
    echo: Callable[[str], None],
    on_event: runner.EventSink,
    on_bytes: Callable[[int], None] = lambda count: None,
    force: bool = False,
    provider: str = "item",
) -> int:
    """Harvest ``count`` sandbox ids into ``folder`` (its events to ``on_event``), print the catalog, then show
    that a rerun spends nothing. ``folder`` must be new, empty or an earlier demo's, unless ``force``."""
    base = Path(folder).resolve()
    blocker = file_in_the_way(base / "settings.toml")
    if blocker is not None:
        raise UsageError(f"--dir {folder}: {blocker} is a file, not a folder")
    if not force:
        refuse_foreign_folder(base)
    base.mkdir(parents=True, exist_ok=True)
    ids = Catalogue(seed, (1, 1)).sample_mixed(count)  # the catalogue is a function of the seed
    chosen = demo_providers.setup(provider, Catalogue(seed, (1, 1)), ids)
    app = AppConfig(key=DEMO_APP_KEY, secret=DEMO_APP_SECRET)
    with Sandbox(SandboxConfig(seed=seed, apps=(app,), **chosen.sandbox)) as sandbox:
        echo(f"Sandbox (a local Taobao emulator) listening on {sandbox.url}")
        settings = demo_settings(sandbox, base, redirect_port=free_loopback_port(), setup=chosen)
        if chosen.oauth:
            authorise_like_a_browser(settings)
            token = wiring.token_manager(settings, settings.app()).current()
            assert token is not None
            echo(
                f"Authorised through the sandbox's OAuth pages as {token.user_nick} "
                f"(token in {settings.taobao.token_file}, mode 0600)"
            )
        echo(f"Harvesting {len(ids)} products (with and without videos, missing, deleted) into {base}:")
        report = runner.harvest(settings, ids, on_event=on_event, on_bytes=on_bytes)
        echo(demo_providers.economy(provider, sandbox, len(ids)))
        echo("")
        echo(catalog_table(settings, ids))
        echo("")
        echo("Running the same harvest again: everything is in the catalog, so it spends nothing.")
        sandbox.reset_stats()
        again = runner.harvest(settings, ids)
        stats = sandbox.stats()
        calls = stats["gateway"]["calls"] + stats["itemdata"]["requests"]
        echo(f"Second run: {again.skipped} skipped, {calls} API calls, {stats['cdn']['bytes_sent']} bytes downloaded.")
        config_file = write_query_settings(base)
        echo("Query the catalog yourself:")
        echo(f"  taobao-video --config {config_file} catalog list --min-duration 10")
        echo(f"  taobao-video --config {config_file} catalog stats")
        echo(f"  taobao-video --config {config_file} serve      # browse and play them on http://127.0.0.1:8000/")
        echo(f"  sqlite3 {base / 'catalog.sqlite3'} 'SELECT num_iid, duration, video_path FROM videos'")
    return report.exit_code


def refuse_foreign_folder(base: Path) -> None:
    """UsageError unless ``base`` is missing, empty, or a folder an earlier demo made (its settings file says so):
    the demo writes a token, a settings file and a catalog there, and must not overwrite a user's own."""
    if not base.exists():
        return
    if not base.is_dir():
        raise UsageError(f"{base} is not a folder: pick another --dir")
    if not any(base.iterdir()):
        return
    try:
        ours = (base / "settings.toml").read_text(encoding="utf-8").startswith(DEMO_MARK)
    except (OSError, UnicodeDecodeError):
        ours = False
    if not ours:
        raise UsageError(
            f"{base} already holds files that are not an earlier demo's; the demo would write its token, settings "
            "and catalog there: pick an empty folder with --dir, or pass --force"
        )


def write_query_settings(base: Path) -> Path:
    """A settings file beside the demo's catalog, for the read commands (catalog, serve) to find it with."""
    path = base / "settings.toml"
    atomic_write_text(
        path,
        f"{DEMO_MARK} so that `catalog` and `serve` can read the demo's catalog.\n"
        "# The sandbox it was harvested from has stopped: harvest commands need real settings.\n"
        '[download]\ndir = "videos"\n\n[harvest]\nlock_file = "harvest.lock"\n\n[database]\nurl = "sqlite:///catalog.sqlite3"\n',
        mode=0o644,
    )
    return path


def catalog_table(settings: Settings, ids: list[int]) -> str:
    """The demo's videos as a small text table, straight from the catalog."""
    with wiring.catalog(settings) as catalog:
        videos = catalog.videos(ids)
        items = catalog.items(ids)
    lines = [f"{'num_iid':<14}{'state':<11}{'duration':>9}{'size':>11}  video_path"]
    for num_iid in ids:
        video, item = videos.get(num_iid), items.get(num_iid)
        if video is not None:
            duration = f"{video.duration:.1f} s" if video.duration is not None else "?"
            size = format_bytes(video.size_bytes)
            lines.append(f"{num_iid:<14}{'done':<11}{duration:>9}{size:>11}  {video.video_path}")
        else:
            state = item.state.value if item is not None else "?"
            lines.append(f"{num_iid:<14}{state:<11}")
    return "\n".join(lines)
