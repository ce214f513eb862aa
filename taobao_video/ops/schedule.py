"""Scheduler entries for the unattended daily run: a systemd user timer + service, or a crontab line.

``taobao-video daily`` spends at most today's API quota and exits 0 (queue drained), 75 (quota spent, work
left: not a failure) or 1 (items failed). The quota resets at 00:00 in the quota time zone (Asia/Shanghai, no
DST), so the run starts a few minutes after that.

Build a :class:`ScheduleSpec` (``ScheduleSpec.from_settings`` fills it from a :class:`Settings`), then
:func:`systemd_units` and :func:`cron_line` give the texts; :func:`install_user_units` writes the units to the
user's systemd folder and reloads the user manager when one answers. Nothing here enables a timer or edits a
crontab: that stays the user's decision.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from taobao_video.errors import UsageError
from taobao_video.fsutil import atomic_write_text
from taobao_video.store.dialects import one_run_at_a_time

if TYPE_CHECKING:
    from taobao_video.config.models import Settings

SCRIPT_NAME = "taobao-video"
DEFAULT_UNIT = "taobao-video-daily"
DEFAULT_AT = "00:10"
DEFAULT_DELAY_S = 300
DEFAULT_TIMEOUT_S = 6 * 3600
DOCUMENTATION = "man:systemd.timer(5) man:systemd.service(5)"
EXIT_TEMPFAIL = 75

_AT = re.compile(r"(\d{1,2}):(\d{2})")
_UNIT_NAME = re.compile(r"[A-Za-z0-9:_.\\-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def _config_home(env: Mapping[str, str]) -> Path:
    xdg = env.get("XDG_CONFIG_HOME", "")
    # The XDG spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
    return Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".config"


def default_env_file(env: Mapping[str, str] | None = None) -> Path:
    """``~/.config/taobao-video/env`` (honouring ``$XDG_CONFIG_HOME``): ``KEY=value`` lines with the secrets."""
    return _config_home(os.environ if env is None else env) / "taobao-video" / "env"


def default_unit_dir(env: Mapping[str, str] | None = None) -> Path:
    """``~/.config/systemd/user`` (honouring ``$XDG_CONFIG_HOME``), where the user manager looks for units."""
    return _config_home(os.environ if env is None else env) / "systemd" / "user"


def command_path(
    *, executable: str = sys.executable, which: Callable[[str], str | None] = shutil.which
) -> tuple[str, ...]:
    """The argv prefix that runs this installation of the tool, with absolute paths.

    The ``taobao-video`` script next to ``executable`` comes first (the venv's bin folder: the same install as
    the running interpreter, and not a pyenv/pipx shim that depends on the login environment), then one on
    ``PATH``, else ``(executable, "-m", "taobao_video")``.
    """
    python = os.path.abspath(executable)  # not resolved: a venv's python is a symlink out of the venv
    beside = os.path.join(os.path.dirname(python), SCRIPT_NAME)
    for candidate in (beside, which(SCRIPT_NAME)):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return (os.path.abspath(candidate),)
    return (python, "-m", "taobao_video")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UsageError(f"unknown time zone {name!r}: use an IANA name such as Asia/Shanghai") from None


def _parse_at(at: str) -> time:
    match = _AT.fullmatch(at.strip()) if isinstance(at, str) else None
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise UsageError(f"schedule time must be HH:MM between 00:00 and 23:59, got {at!r}")
    return time(int(match.group(1)), int(match.group(2)))


def _check_path(what: str, path: Path) -> None:
    if not path.is_absolute():
        raise UsageError(f"{what} must be an absolute path, got {str(path)!r}")
    _check_text(what, str(path))
    if str(path) != str(path).strip():
        # systemd strips the ends of a value, so such a path cannot be written into a unit.
        raise UsageError(f"{what} must not start or end with white space, got {str(path)!r}")


def _check_text(what: str, text: str) -> None:
    if _CONTROL.search(text):
        raise UsageError(f"{what} must not contain control characters (newline, tab...), got {text!r}")


@dataclass(frozen=True)
class ScheduleSpec:
    """What to run daily, when, and with which files. Validated on creation (UsageError, exit 2).

    ``command`` is the argv prefix (see :func:`command_path`), its first item an absolute path; ``at`` is HH:MM
    in ``timezone`` (the quota's zone). ``env_file`` holds ``TAOBAO_APP_KEY=…``/``TAOBAO_APP_SECRET=…`` lines
    (mode 0600). ``lock_file``, when given, is named in the cron comment (the tool's own lock keeps runs apart).
    """

    command: tuple[str, ...]
    settings_file: Path
    working_dir: Path
    env_file: Path
    log_file: Path
    at: str = DEFAULT_AT
    timezone: str = "Asia/Shanghai"
    randomized_delay_s: int = DEFAULT_DELAY_S
    start_timeout_s: int = DEFAULT_TIMEOUT_S
    unit_name: str = DEFAULT_UNIT
    lock_file: Path | None = None
    documentation: str = DOCUMENTATION

    def __post_init__(self) -> None:
        _parse_at(self.at)
        _zone(self.timezone)
        if not self.command or not os.path.isabs(self.command[0]):
            raise UsageError(f"the command must start with an absolute path, got {self.command!r}")
        for arg in self.command:
            _check_text("the command", arg)
        paths = [("the settings file", self.settings_file), ("the working directory", self.working_dir)]
        paths += [("the environment file", self.env_file), ("the log file", self.log_file)]
        for what, path in [*paths, *([("the lock file", self.lock_file)] if self.lock_file else [])]:
            _check_path(what, path)
        if not _UNIT_NAME.fullmatch(self.unit_name) or self.unit_name.endswith((".service", ".timer")):
            raise UsageError(f"unit name must be letters, digits, ':_.\\-' without a suffix, got {self.unit_name!r}")
        if self.randomized_delay_s < 0 or self.start_timeout_s <= 0:
            raise UsageError("the randomized delay must be >= 0 and the start timeout > 0 seconds")
        _check_text("documentation", self.documentation)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ScheduleSpec:
        """A spec for ``settings``: its file, folder, quota zone and lock; the log beside the lock file.

        ``overrides`` replace any field (``at``, ``command``, ``env_file``, ``log_file``…).
        """
        if not os.path.isabs(settings.source):
            raise UsageError(f"the daily run needs a settings file; these settings came from {settings.source}")
        fields: dict[str, Any] = {
            "command": overrides["command"] if "command" in overrides else command_path(),
            "settings_file": Path(settings.source),
            "working_dir": Path(settings.base_dir),
            "env_file": default_env_file(),
            "log_file": settings.harvest.lock_file.parent / "daily.log",
            "timezone": settings.quota.timezone,
            "lock_file": settings.harvest.lock_file if one_run_at_a_time(settings.database.url) else None,
        }
        fields.update(overrides)
        return cls(**fields)

    @property
    def argv(self) -> tuple[str, ...]:
        """The full command line of the daily run."""
        return (*self.command, "--config", str(self.settings_file), "daily")


# ------------------------------------------------------------------------------------------------- systemd


def _systemd_specifiers(text: str) -> str:
    # '%' starts a specifier (%h, %u…) in ExecStart=, WorkingDirectory= and EnvironmentFile= alike.
    return text.replace("%", "%%")


def _systemd_word(arg: str, *, program: bool = False) -> str:
    """One ExecStart= word: C escapes, '%%', '$$' against variable expansion, double quotes around spaces."""
    text = arg.replace("\\", "\\\\").replace('"', '\\"')
    if not program:
        # The program path is never variable-expanded, so a '$$' there would stay two dollars (seen on 252).
        text = text.replace("$", "$$")
    text = _systemd_specifiers(text)
    needs_quotes = not arg or any(c.isspace() or c in "'\";" for c in arg)
    return f'"{text}"' if needs_quotes else text


def _calendar(spec: ScheduleSpec) -> str:
    at = _parse_at(spec.at)
    return f"*-*-* {at:%H:%M}:00 {spec.timezone}"


def systemd_units(spec: ScheduleSpec) -> dict[str, str]:
    """``{"<unit>.service": text, "<unit>.timer": text}`` for a systemd user (or system) manager."""
    service, timer = f"{spec.unit_name}.service", f"{spec.unit_name}.timer"
    exec_start = " ".join(_systemd_word(arg, program=i == 0) for i, arg in enumerate(spec.argv))
    at = f"{_parse_at(spec.at):%H:%M}"
    service_text = f"""\
# Written by taobao-video for {spec.settings_file}; started by {timer}.
# What the run does and its exit codes: taobao-video daily --help
[Unit]
Description=taobao-video daily harvest (spends at most today's API quota)
Documentation={spec.documentation}
# A user manager cannot see the system's network-online.target, so under it these two lines do nothing and a
# run caught up right at boot relies on the tool's retries of failed connections.
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
WorkingDirectory={_systemd_specifiers(str(spec.working_dir))}
ExecStart={exec_start}
# 75: the quota stopped the run with work left (or another run holds the lock): done for today, not a failure.
SuccessExitStatus={EXIT_TEMPFAIL}
# On timeout systemd sends SIGTERM: the run stops taking work, parks what is in flight and writes its summary.
TimeoutStartSec={spec.start_timeout_s}
# TAOBAO_APP_KEY=... and TAOBAO_APP_SECRET=... lines, mode 0600. '-': a missing file is no error here; the run
# then says which variable is missing.
EnvironmentFile=-{_systemd_specifiers(str(spec.env_file))}
# A system unit can take the secret as a credential instead (the tool reads TAOBAO_APP_SECRET from the
# environment, so ExecStart must then export it from $CREDENTIALS_DIRECTORY/taobao_app_secret):
#LoadCredential=taobao_app_secret:/etc/credstore/taobao_app_secret
Nice=10
NoNewPrivileges=yes
# Output goes to the journal: journalctl --user -u {service}
"""
    timer_text = f"""\
# Written by taobao-video for {spec.settings_file}.
# Enable with: systemctl --user enable --now {timer}
# A user timer fires only while the user manager runs: 'loginctl enable-linger' keeps it running without a login.
[Unit]
Description=Daily taobao-video run at {at} {spec.timezone}, after the API quota resets at 00:00
Documentation={spec.documentation}

[Timer]
OnCalendar={_calendar(spec)}
# A run missed while the machine was off (or the user manager was not running) happens when it comes back.
Persistent=true
RandomizedDelaySec={spec.randomized_delay_s}
Unit={service}

[Install]
WantedBy=timers.target
"""
    return {service: service_text, timer: timer_text}


# ---------------------------------------------------------------------------------------------------- cron


def host_zone(localtime: Path = Path("/etc/localtime")) -> ZoneInfo:
    """The zone cron daemons run in: the system's ``/etc/localtime`` (not ``$TZ``), UTC when there is none."""
    try:
        target = os.path.realpath(localtime)
        marker = f"{os.sep}zoneinfo{os.sep}"
        if marker in target:
            return ZoneInfo(target.split(marker, 1)[1])
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass  # not a link into a zoneinfo tree: read the file itself below
    try:
        with open(localtime, "rb") as handle:
            return ZoneInfo.from_file(handle)
    except (OSError, ValueError):
        return ZoneInfo("UTC")  # glibc's behaviour when /etc/localtime is missing


def _host_times(spec: ScheduleSpec, host: ZoneInfo, start: date, days: int = 366) -> list[time]:
    """The host-zone wall time of the quota-zone ``at`` on each of ``days`` days from ``start``."""
    quota, at = _zone(spec.timezone), _parse_at(spec.at)
    days_ahead = (start + timedelta(days=offset) for offset in range(days))
    return [datetime.combine(day, at, tzinfo=quota).astimezone(host).time() for day in days_ahead]


def _cron_command(spec: ScheduleSpec) -> str:
    env = shlex.quote(str(spec.env_file))
    run = " ".join(shlex.quote(arg) for arg in spec.argv)
    line = f"cd {shlex.quote(str(spec.working_dir))} && set -a && . {env} && set +a && {run}"
    line += f" >> {shlex.quote(str(spec.log_file))} 2>&1"
    # cron turns an unescaped '%' in the command into a newline, quotes or not; '\%' passes a '%'.
    return line.replace("%", "\\%")


def cron_line(spec: ScheduleSpec, host_tz: ZoneInfo | None = None, now: datetime | None = None) -> str:
    """Comment lines and one crontab entry running the daily job at ``spec.at`` in the quota zone.

    cron reads times in the host's zone (``host_tz``, default :func:`host_zone`), so ``at`` is converted for
    today's date (``now``, aware, default the current time). When that conversion is not the same all year
    (the host zone has DST), a warning comment says so and suggests ``CRON_TZ``.
    """
    host = host_zone() if host_tz is None else host_tz
    host_name = host.key or "the host's zone"
    now = datetime.now(UTC) if now is None else now
    today = now.astimezone(_zone(spec.timezone)).date()
    times = _host_times(spec, host, today)
    when = times[0]
    at = f"{_parse_at(spec.at):%H:%M}"
    command = _cron_command(spec)
    lock = f" ({spec.lock_file})" if spec.lock_file else ""
    lines = [
        f"# taobao-video daily run at {at} {spec.timezone}, just after the API quota resets there at 00:00:",
        f"# {when:%H:%M} {host_name} in the host's time zone, which cron uses.",
        f"# Secrets: {spec.env_file} holds TAOBAO_APP_KEY=... and TAOBAO_APP_SECRET=... lines",
        "# (chmod 600); it must exist. Exit 75 (quota spent, work left) is normal: the next run carries on.",
        f"# No flock needed: the tool's own lock{lock} keeps overlapping runs apart."
        if spec.lock_file
        else "# No flock needed: overlapping runs share the queue, each claiming the ids it works on.",
    ]
    distinct = sorted(set(times))
    if len(distinct) > 1:
        shown = " or ".join(f"{t:%H:%M}" for t in distinct)
        lines += [
            f"# WARNING: {host_name} changes its clocks (daylight saving time), so {at} {spec.timezone} is",
            f"# {shown} there depending on the date: this entry, right for {today.isoformat()}, shifts by an hour",
            "# twice a year. Where the cron daemon supports CRON_TZ (cronie does; Debian's cron does not), use",
            "# these two lines instead (CRON_TZ then applies to every entry below it):",
            f"#   CRON_TZ={spec.timezone}",
            f"#   {_parse_at(spec.at).minute} {_parse_at(spec.at).hour} * * * {command}",
        ]
    lines.append(f"{when.minute} {when.hour} * * * {command}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------- install


class InstalledUnits(list[Path]):
    """The unit files written, plus whether the user manager was reloaded and what the user should do next."""

    def __init__(self, paths: Sequence[Path], *, reloaded: bool, notes: Sequence[str]) -> None:
        super().__init__(paths)
        self.reloaded = reloaded
        self.notes = tuple(notes)


def _user_manager_answers(systemctl: str, run: Runner) -> tuple[bool, str]:
    try:
        probe = run([systemctl, "--user", "is-system-running"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"could not ask the user manager ({exc})"
    state = (probe.stdout or "").strip()
    # 'degraded' and friends still mean a manager answered; 'offline'/nothing means no user bus.
    if state in ("", "offline", "unknown"):
        detail = (probe.stderr or "").strip().splitlines()
        return False, f"no systemd user manager answers ({detail[0] if detail else state or 'no answer'})"
    return True, state


def install_user_units(
    spec: ScheduleSpec,
    unit_dir: Path | None = None,
    *,
    run: Runner = subprocess.run,
    which: Callable[[str], str | None] = shutil.which,
) -> InstalledUnits:
    """Write the service and timer into ``unit_dir`` (default ``~/.config/systemd/user``), atomically.

    Runs ``systemctl --user daemon-reload`` only when systemctl exists and a user manager answers; never
    enables or starts anything. Returns the written paths (a list) with ``reloaded`` and ``notes`` saying what
    happened and what to run next.
    """
    directory = default_unit_dir() if unit_dir is None else unit_dir
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in systemd_units(spec).items():
        path = directory / name
        atomic_write_text(path, text, mode=0o644)
        written.append(path)
    timer = f"{spec.unit_name}.timer"
    notes, reloaded = [], False
    systemctl = which("systemctl")
    if systemctl is None:
        notes.append("systemctl not found: these units need a systemd host; use the cron entry instead")
    else:
        answers, detail = _user_manager_answers(systemctl, run)
        if not answers:
            notes.append(f"{detail}: run 'systemctl --user daemon-reload' in a login session")
        else:
            try:
                result = run([systemctl, "--user", "daemon-reload"], capture_output=True, text=True, timeout=60)
                reloaded = result.returncode == 0
                if not reloaded:
                    notes.append(f"systemctl --user daemon-reload failed: {(result.stderr or '').strip()}")
            except (OSError, subprocess.SubprocessError) as exc:
                notes.append(f"systemctl --user daemon-reload failed: {exc}")
    notes.append(f"to start the schedule: systemctl --user enable --now {timer}")
    notes.append("to keep it running while you are logged out: loginctl enable-linger")
    return InstalledUnits(written, reloaded=reloaded, notes=notes)
