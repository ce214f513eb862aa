"""``taobao-video doctor``: the whole setup checked in order, one line per check with ok/warn/fail and the fix.

The checks, in the order a run meets them: settings valid; app key and secret present (and accepted by the
gateway: one signed ``taobao.time.get``, which needs no session and no item); token present, not expired, and its
refresh window; clock skew against the gateway's HTTP ``Date`` header (the platform refuses timestamps more than
10 minutes off); gateway reachable; with ``spend`` > 0, one real lookup per configured API method (which ones
this app may call); the CDN host allowlist against the URL that lookup returned; ``download.dir`` writable with
free space; the catalog opens, its schema is current, integrity quick-check; the run lock is free; quota left
today; notify URLs (their hosts reachable; a test message only with ``notify_test``).

Exit code: 0 all ok, 1 warnings only, else the worst failure's kind: 78 (configuration) over 77 (authorisation)
over 75 (try later: unreachable, disk full). The checks themselves live in ``doctor_local`` (this machine) and
``doctor_remote`` (the gateway and the CDN); this module orders them and decides the exit code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from taobao_video.errors import EXIT_CONFIG, EXIT_FAILED, EXIT_NOPERM, EXIT_OK, EXIT_TEMPFAIL, TaobaoVideoError
from taobao_video.model import utc_now

if TYPE_CHECKING:
    from taobao_video.config.models import Settings

Status = Literal["ok", "warn", "fail", "skip"]
_SEVERITY = {EXIT_CONFIG: 3, EXIT_NOPERM: 2, EXIT_TEMPFAIL: 1}


@dataclass(frozen=True)
class Check:
    """One line of the report: which check, how it went, what was found and, unless ok, what to do."""

    name: str
    status: Status
    detail: str
    fix: str = ""
    exit_code: int = EXIT_OK  # for a failure: its kind (78, 77 or 75)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.status != "fail":
            del data["exit_code"]
        return data


def ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def warn(name: str, detail: str, fix: str = "") -> Check:
    return Check(name, "warn", detail, fix)


def fail(name: str, detail: str, fix: str, kind: int) -> Check:
    return Check(name, "fail", detail, fix, kind)


def failure(name: str, error: TaobaoVideoError, fix: str = "") -> Check:
    """A failed check from the error that says why (its exit code is the failure's kind)."""
    return fail(name, str(error), fix, error.exit_code if error.exit_code in _SEVERITY else EXIT_CONFIG)


def exit_code(checks: list[Check]) -> int:
    """0 all ok, 1 warnings only, else the worst failure's kind (78 over 77 over 75)."""
    failed = [check.exit_code for check in checks if check.status == "fail"]
    if failed:
        return max(failed, key=lambda code: _SEVERITY.get(code, 0))
    return EXIT_FAILED if any(check.status == "warn" for check in checks) else EXIT_OK


@dataclass(frozen=True)
class Options:
    """What the user asked of the doctor: calls it may spend on lookups, the id to look up, a test message."""

    spend: int = 0
    num_iid: int | None = None
    notify_test: bool = False


def run(
    load: Callable[[], Settings],
    options: Options = Options(),
    *,
    clock: Callable[[], datetime] = utc_now,
    on_check: Callable[[Check], None] = lambda check: None,
) -> list[Check]:
    """Every check in order, each told to ``on_check`` as it is done; ``load`` reads the settings (its
    ConfigError is the first check's failure, and the only line then)."""
    checks: list[Check] = []
    for check in _checks(load, options, clock):
        checks.append(check)
        on_check(check)
    return checks


def _checks(load: Callable[[], Settings], options: Options, clock: Callable[[], datetime]) -> Iterator[Check]:
    from taobao_video.ops import doctor_local as local
    from taobao_video.ops import doctor_remote as remote

    try:
        settings = load()
    except TaobaoVideoError as exc:
        yield failure("settings", exc, "correct the settings file (or the environment variable named)")
        return
    yield ok("settings", f"{settings.source} is valid")
    probe = remote.Probe(settings, clock)
    if settings.taobao.provider == "gateway":  # no app, no session, no signature: the vendor's key, its endpoint
        yield local.gateway_credentials(settings)
        yield Check("token", "skip", "taobao.provider = gateway: the item-data gateway needs no session")
        yield Check("clock", "skip", "taobao.provider = gateway: nothing is signed with this machine's time")
    else:
        yield from local.credentials(settings, probe)
        yield from local.tokens(settings, clock())
        yield remote.clock_skew(probe)
    yield remote.gateway(probe)
    url = None
    for check, found in remote.api_methods(settings, options, probe):
        yield check
        url = url or found
    yield remote.cdn_hosts(settings, url)
    yield local.download_dir(settings)
    yield local.catalog(settings)
    yield local.lock(settings)
    yield local.quota(settings)
    yield from local.notify(settings, test=options.notify_test)
