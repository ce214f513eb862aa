"""The doctor's checks on this machine: credentials present, the token files, the videos folder, the catalog, the
run lock, today's quota and the notify URLs. Each returns :class:`~taobao_video.ops.doctor.Check` lines."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from taobao_video.config.names import GATEWAY_KEY_ENV, GATEWAY_SECRET_ENV
from taobao_video.errors import EXIT_CONFIG, EXIT_NOPERM, AuthError, ConfigError, DiskFull, TaobaoVideoError
from taobao_video.model import format_bytes
from taobao_video.ops.doctor import Check, fail, failure, ok, warn

if TYPE_CHECKING:
    from taobao_video.config.models import Settings
    from taobao_video.ops.doctor_remote import Probe

_LOGIN = "run `taobao-video auth login`"
_WEBHOOKS = frozenset("json jsons xml xmls form forms".split())  # Apprise schemes whose host is the one posted to


def credentials(settings: Settings, probe: Probe) -> Iterator[Check]:
    """The app key and secret of every app: present in the environment, then accepted by the gateway."""
    from taobao_video.ops.doctor_remote import credentials_accepted

    try:
        apps = settings.apps()
    except ConfigError as exc:
        yield fail("credentials", exc.problem, "export the variables named (secrets live only in the environment)", 78)
        return
    for app in apps:
        label = "credentials" if len(apps) == 1 else f"credentials ({app.name})"
        yield credentials_accepted(probe, app, label)


def gateway_credentials(settings: Settings) -> Check:
    """The item-data gateway's key and secret, present in the environment (the lookup, with --spend, tries them)."""
    try:
        settings.gateway.credentials(settings.source)
    except ConfigError as exc:
        return fail("credentials", exc.problem, f"export {GATEWAY_KEY_ENV} and {GATEWAY_SECRET_ENV}", EXIT_CONFIG)
    return ok("credentials", f"{GATEWAY_KEY_ENV} and {GATEWAY_SECRET_ENV} are set (--spend 1 tries them)")


def tokens(settings: Settings, now: datetime) -> Iterator[Check]:
    """Each app's token: present, not expired (or refreshable), and not about to run out for good."""
    from taobao_video.top.tokens import TokenStore, authorisation_ends, expiry_warning

    grant = settings.taobao.oauth_grant
    if grant == "none":
        yield Check("token", "skip", "taobao.oauth_grant = none: calls carry no session")
        return
    names = settings.app_names
    for name in names:
        label = "token" if len(names) == 1 else f"token ({name})"
        path = settings.token_file(name)
        try:
            token = TokenStore(path).load()
        except AuthError as exc:
            yield failure(label, exc)
            continue
        if token is None:
            if grant == "client_credentials":
                yield ok(label, "none yet: the first call obtains one (client_credentials)")
            else:
                yield fail(label, f"no token file at {path}", _LOGIN, EXIT_NOPERM)
            continue
        ends, what = authorisation_ends(token, now=now)
        if ends <= now:
            if grant == "client_credentials":
                yield ok(label, "expired: the next call obtains a new one (client_credentials)")
            else:
                yield fail(label, f"the {what} expired at {ends:%Y-%m-%d %H:%M} UTC", _LOGIN, EXIT_NOPERM)
            continue
        warning = expiry_warning(token, now=now, warn_days=settings.taobao.token_warn_days)
        if warning is not None:
            yield warn(label, warning, _LOGIN + " before then")
            continue
        refresh = " (the session is renewed with the refresh token)" if what == "refresh token" else ""
        yield ok(label, f"valid until {ends:%Y-%m-%d %H:%M} UTC{refresh}")


def download_dir(settings: Settings) -> Check:
    from taobao_video import wiring
    from taobao_video.fetch.space import preflight
    from taobao_video.fsutil import free_bytes

    folder = settings.download.dir
    try:
        preflight(folder, wiring.min_free_bytes(settings))
    except DiskFull as exc:
        return failure("download dir", exc, "free space there, or lower download.min_free_mb")
    except TaobaoVideoError as exc:
        return failure("download dir", exc, f"make {folder} writable by this user, or set download.dir")
    room = f"{folder} takes files; {format_bytes(free_bytes(folder))} free"
    bucket = settings.download.object_url
    if bucket is None:
        return ok("download dir", room)
    try:  # one listing call: the bucket exists and these credentials may read it
        storage = wiring.object_storage(settings)
        assert storage is not None
        next(storage.iter_objects(), None)
    except TaobaoVideoError as exc:
        fix = "check the bucket's name, [s3] endpoint_url and region, and the AWS_* credentials"
        return failure("download dir", exc, fix)
    return ok("download dir", f"{bucket} answers a listing; the spool {room}")


def catalog(settings: Settings) -> Check:
    from taobao_video.fsutil import file_in_the_way
    from taobao_video.store.dialects import sqlite_file
    from taobao_video.store.health import check_catalog

    try:
        report = check_catalog(settings.database.url)
    except ConfigError as exc:
        if "no catalog at" in str(exc):
            file = sqlite_file(settings.database.url)
            blocker = file_in_the_way(file) if file is not None else None
            if blocker is not None:  # the first run could not create it
                fix = "set database.url to a path in a folder"
                return fail("catalog", f"{file} cannot be made: {blocker} is a file, not a folder", fix, EXIT_CONFIG)
            return ok("catalog", f"{exc.problem.split(':')[0]}: the first run creates it")
        return failure("catalog", exc)
    except TaobaoVideoError as exc:
        return failure("catalog", exc)
    if report.ok:
        return ok("catalog", f"{report.where}: opens, schema current, integrity ok")
    fix = report.advice if report.damaged else "; ".join(report.problems)
    if any("db upgrade" in problem for problem in report.problems):
        fix = "run `taobao-video db upgrade`"
    return fail("catalog", "; ".join(report.problems), fix, EXIT_CONFIG)


def lock(settings: Settings) -> Check:
    from taobao_video.errors import LockHeldError
    from taobao_video.jobs.lock import RunLock
    from taobao_video.store.dialects import one_run_at_a_time

    if not one_run_at_a_time(settings.database.url):
        return Check("lock", "skip", "a PostgreSQL catalog takes no run lock (workers claim ids)")
    path = settings.harvest.lock_file
    try:
        with RunLock(path, purpose="doctor"):
            pass
    except LockHeldError as exc:
        return warn("lock", str(exc), "wait for that run to end (it exits 75 when it meets the quota)")
    except ConfigError as exc:  # a file where its folder must be
        return fail("lock", exc.problem, "set harvest.lock_file to a path in a folder", EXIT_CONFIG)
    except OSError as exc:
        return fail("lock", f"cannot take {path}: {exc.strerror or exc}", "make its folder writable", EXIT_CONFIG)
    return ok("lock", f"{path} is free")


def quota(settings: Settings) -> Check:
    from taobao_video import wiring
    from taobao_video.store.catalog import open_existing

    try:
        opened = open_existing(settings.database.url)
    except TaobaoVideoError:
        return ok("quota", "no calls counted yet (no catalog)")
    try:
        with opened:
            statuses = wiring.quota_pool(settings, opened).statuses()
    except TaobaoVideoError as exc:  # no app key (or gateway key) to count for: the credentials line says which
        return Check("quota", "skip", f"not read: {exc.problem if isinstance(exc, ConfigError) else exc}")
    parts, spent = [], []
    for name, status in statuses.items():
        parts.append(f"{name} {status.remaining} of {status.daily_limit - status.reserve} left")
        if status.remaining == 0:
            spent.append(f"{name} (resets {status.resets_at:%Y-%m-%d %H:%M} {settings.quota.tz.key})")
    if spent:
        return warn("quota", f"spent today: {', '.join(spent)}", "the next run after the reset goes on")
    return ok("quota", "today: " + ", ".join(parts))


def notify(settings: Settings, *, test: bool) -> Iterator[Check]:
    """Each notify URL: known to Apprise, its host reachable; with ``test``, a test message."""
    from taobao_video.ops.sender import send, url_label

    urls = [url.get_secret_value() for url in settings.notify.urls]
    if not urls:
        yield Check("notify", "skip", "no [notify] urls (nor TAOBAO_VIDEO_NOTIFY_URLS): runs send no message")
        return
    timeout = settings.notify.timeout_s
    for index, url in enumerate(urls):
        label = url_label(index, url)
        problem = _unreachable(url, timeout)
        if problem is not None:
            yield warn("notify", f"{label}: {problem}", "check the URL (TAOBAO_VIDEO_NOTIFY_URLS or [notify] urls)")
            continue
        if test:
            result = send(
                [url],
                "taobao-video doctor: test message",
                "The notifications of taobao-video reach you.",
                kind="info",
                timeout_s=timeout,
            )
            if result.problems:
                yield warn("notify", result.problems[0].removeprefix("notify "), "check the URL and the service")
                continue
            yield ok("notify", f"{label}: the test message was accepted")
        else:
            reached = "its host accepts connections" if urlsplit(url).scheme.lower() in _WEBHOOKS else "a valid URL"
            yield ok("notify", f"{label}: {reached} (send a test message with --notify-test)")


def _unreachable(url: str, timeout_s: float) -> str | None:
    """Why ``url`` cannot be used (not an Apprise URL, its host does not accept a connection), or None."""
    import apprise

    sender = apprise.Apprise()
    if not sender.add(url):
        return "not a URL Apprise knows (check its scheme and form)"
    if urlsplit(url).scheme.lower() not in _WEBHOOKS:
        return None  # the host part of a service URL (slack://, tgram://…) is a token, not a host to connect to
    service = sender[0]
    host = getattr(service, "host", None)
    if not host:
        return None
    port = getattr(service, "port", None) or (443 if getattr(service, "secure", False) else 80)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return None
    except OSError as exc:
        return (
            f"{urlsplit(url).scheme}://…: its host does not accept connections ({exc.strerror or type(exc).__name__})"
        )
