"""Scheduler entries: systemd units (checked by systemd-analyze), cron lines per host zone, installation."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from taobao_video.config.load import settings_from_mapping
from taobao_video.errors import EXIT_USAGE, UsageError
from taobao_video.ops.schedule import (
    ScheduleSpec,
    command_path,
    cron_line,
    default_env_file,
    default_unit_dir,
    host_zone,
    install_user_units,
    systemd_units,
)

BEIJING = ZoneInfo("Asia/Shanghai")
WINTER = datetime(2026, 1, 15, 3, 0, tzinfo=UTC)
SUMMER = datetime(2026, 7, 15, 3, 0, tzinfo=UTC)
SERVICE, TIMER = "taobao-video-daily.service", "taobao-video-daily.timer"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (apt-get install systemd)"
)


def make_spec(root: Path = Path("/opt/tv"), **overrides: Any) -> ScheduleSpec:
    fields: dict[str, Any] = {
        "command": (str(root / ".venv/bin/taobao-video"),),
        "settings_file": root / "settings.toml",
        "working_dir": root,
        "env_file": root / "env",
        "log_file": root / "data/daily.log",
        "lock_file": root / "data/harvest.lock",
    }
    fields.update(overrides)
    return ScheduleSpec(**fields)


def sections(text: str) -> dict[str, list[tuple[str, str]]]:
    """A unit file as {section: [(key, value), ...]}, comments dropped, repeated keys kept."""
    result: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in text.splitlines():
        if not line.strip() or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            result[current] = []
            continue
        key, _, value = line.partition("=")
        assert current is not None, f"directive outside a section: {line!r}"
        result[current].append((key, value))
    return result


def directive(text: str, section: str, key: str) -> str:
    values = [value for name, value in sections(text)[section] if name == key]
    assert len(values) == 1, f"{key}= in [{section}]: {values}"
    return values[0]


@pytest.fixture
def fake_tool(tmp_path: Path) -> Iterator[Path]:
    """A runnable stand-in for the console script, in a folder whose name needs quoting everywhere."""
    folder = tmp_path / "my tools $HOME 50%"
    folder.mkdir()
    script = folder / "taobao-video"
    script.write_text('#!/bin/sh\nprintf "%s\\n" "cwd=$PWD" "$@" "key=$TAOBAO_APP_KEY" "secret=$TAOBAO_APP_SECRET"\n')
    script.chmod(0o755)
    yield script


# ------------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize("at", ["24:00", "00:60", "7", "7:5", "ab:cd", "", "00:10:00", "-1:10", " : "])
def test_bad_time_is_a_usage_error(at: str) -> None:
    with pytest.raises(UsageError, match="HH:MM") as caught:
        make_spec(at=at)
    assert caught.value.exit_code == EXIT_USAGE


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../etc/passwd", "", "/etc/localtime", "Asia"])
def test_bad_zone_is_a_usage_error(zone: str) -> None:
    with pytest.raises(UsageError, match="time zone"):
        make_spec(timezone=zone)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("command", ("taobao-video",), "absolute"),
        ("command", (), "absolute"),
        ("settings_file", Path("settings.toml"), "absolute"),
        ("log_file", Path("/opt/tv/data/daily\n.log"), "control"),
        ("env_file", Path("/opt/tv/env "), "white space"),
        ("unit_name", "daily.service", "unit name"),
        ("unit_name", "has space", "unit name"),
        ("randomized_delay_s", -1, "delay"),
        ("start_timeout_s", 0, "timeout"),
    ],
)
def test_bad_fields_are_usage_errors(field: str, value: Any, problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        make_spec(**{field: value})


def test_single_digit_hour_is_accepted() -> None:
    assert directive(systemd_units(make_spec(at="7:05"))[TIMER], "Timer", "OnCalendar").startswith("*-*-* 07:05:00")


# ---------------------------------------------------------------------------------------------------- systemd


def test_service_has_every_required_directive() -> None:
    text = systemd_units(make_spec())[SERVICE]
    unit = sections(text)
    assert set(unit) == {"Unit", "Service"}  # no [Install]: the timer starts it, enabling the service is wrong
    assert directive(text, "Unit", "Description")
    assert directive(text, "Unit", "Documentation").startswith("man:")
    assert directive(text, "Unit", "Wants") == "network-online.target"
    assert directive(text, "Unit", "After") == "network-online.target"
    expected = {
        "Type": "oneshot",
        "WorkingDirectory": "/opt/tv",
        "ExecStart": "/opt/tv/.venv/bin/taobao-video --config /opt/tv/settings.toml daily",
        "SuccessExitStatus": "75",
        "TimeoutStartSec": "21600",
        "EnvironmentFile": "-/opt/tv/env",
        "Nice": "10",
        "NoNewPrivileges": "yes",
    }
    assert {key: directive(text, "Service", key) for key in expected} == expected
    assert "#LoadCredential=" in text
    assert "StandardOutput" not in text  # the journal is systemd's default


def test_timer_has_every_required_directive() -> None:
    text = systemd_units(make_spec(at="00:10", randomized_delay_s=300))[TIMER]
    assert set(sections(text)) == {"Unit", "Timer", "Install"}
    expected = {
        "OnCalendar": "*-*-* 00:10:00 Asia/Shanghai",
        "Persistent": "true",
        "RandomizedDelaySec": "300",
        "Unit": SERVICE,
    }
    assert {key: directive(text, "Timer", key) for key in expected} == expected
    assert directive(text, "Install", "WantedBy") == "timers.target"


def test_units_are_ascii_deterministic_and_end_with_a_newline() -> None:
    first, second = systemd_units(make_spec()), systemd_units(make_spec())
    assert first == second
    assert list(first) == [SERVICE, TIMER]
    for text in first.values():
        assert text.isascii()
        assert text.endswith("\n") and not text.endswith("\n\n")


def test_unit_name_is_used_for_both_files() -> None:
    units = systemd_units(make_spec(unit_name="tv-shop2"))
    assert list(units) == ["tv-shop2.service", "tv-shop2.timer"]
    assert directive(units["tv-shop2.timer"], "Timer", "Unit") == "tv-shop2.service"


def test_exec_start_quotes_spaces_dollars_percents_and_quotes() -> None:
    root = Path('/srv/my shop/50% "$x"\\y')
    text = systemd_units(make_spec(root=root))[SERVICE]
    program = '"/srv/my shop/50%% \\"$x\\"\\\\y/.venv/bin/taobao-video"'  # a program path is never $-expanded
    settings = '"/srv/my shop/50%% \\"$$x\\"\\\\y/settings.toml"'
    assert directive(text, "Service", "ExecStart") == f"{program} --config {settings} daily"
    # WorkingDirectory= and EnvironmentFile= take the raw path, with only the '%' specifier escaped.
    assert directive(text, "Service", "WorkingDirectory") == '/srv/my shop/50%% "$x"\\y'
    assert directive(text, "Service", "EnvironmentFile") == '-/srv/my shop/50%% "$x"\\y/env'


def run_analyze(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run(
        [SYSTEMD_ANALYZE, *args], capture_output=True, text=True, timeout=60, env={**os.environ, **env}
    )


def write_units(spec: ScheduleSpec, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in systemd_units(spec).items():
        (folder / name).write_text(text, encoding="utf-8")
        paths.append(folder / name)
    return paths


def assert_verified(result: subprocess.CompletedProcess[str], paths: list[Path]) -> None:
    output = result.stdout + result.stderr
    # Problems (unknown keys, bad values, missing programs) are reported naming the unit or its file.
    complaints = [line for line in output.splitlines() if any(p.name in line or str(p) in line for p in paths)]
    assert result.returncode == 0, output
    assert not complaints, output


@needs_systemd_analyze
def test_systemd_analyze_verifies_the_units(tmp_path: Path, fake_tool: Path) -> None:
    spec = make_spec(root=tmp_path / "shop data", command=(str(fake_tool),))
    paths = write_units(spec, tmp_path / "units")
    result = run_analyze("verify", "--man=no", *map(str, paths))
    assert_verified(result, paths)
    # With systemd 252 in a container this prints nothing at all on success.
    assert result.stdout + result.stderr == ""


@needs_systemd_analyze
def test_systemd_analyze_verifies_the_units_for_a_user_manager(tmp_path: Path, fake_tool: Path) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    spec = make_spec(root=tmp_path / "shop data", command=(str(fake_tool),))
    paths = write_units(spec, tmp_path / "units")
    result = run_analyze("--user", "verify", "--man=no", *map(str, paths), XDG_RUNTIME_DIR=str(runtime))
    if "Failed to initialize manager" in result.stderr:
        pytest.skip(f"systemd-analyze --user cannot start a test manager here: {result.stderr.strip()}")
    assert_verified(result, paths)


@needs_systemd_analyze
def test_systemd_analyze_rejects_a_missing_program(tmp_path: Path) -> None:
    """The check above has teeth: verify fails on a unit whose program does not exist."""
    spec = make_spec(root=tmp_path / "shop data", command=(str(tmp_path / "no such" / "taobao-video"),))
    paths = write_units(spec, tmp_path / "units")
    result = run_analyze("verify", "--man=no", *map(str, paths))
    assert result.returncode != 0
    assert "is not executable" in result.stderr


def next_beijing(base: datetime, at: time) -> datetime:
    candidate = datetime.combine(base.astimezone(BEIJING).date(), at, tzinfo=BEIJING)
    return candidate if candidate > base else candidate + timedelta(days=1)


@needs_systemd_analyze
@pytest.mark.parametrize("at", ["00:10", "00:00", "07:05", "23:59"])
@pytest.mark.parametrize("base", [WINTER, SUMMER, datetime(2026, 11, 22, 16, 30, tzinfo=UTC)])
def test_systemd_calendar_fires_at_the_beijing_time(at: str, base: datetime) -> None:
    calendar = directive(systemd_units(make_spec(at=at))[TIMER], "Timer", "OnCalendar")
    result = run_analyze(
        "calendar", f"--base-time=@{int(base.timestamp())}", "--iterations=2", calendar, TZ="UTC", LC_ALL="C"
    )
    assert result.returncode == 0, result.stderr
    assert f"Normalized form: {calendar}\n" in result.stdout
    elapses = re.findall(r"(?:Next elapse|Iter\. #\d+): \w{3} (\S+ \S+) UTC", result.stdout)
    got = [datetime.fromisoformat(text).replace(tzinfo=UTC) for text in elapses]
    first = next_beijing(base, time.fromisoformat(at))
    assert got == [first, first + timedelta(days=1)]


# ------------------------------------------------------------------------------------------------------- cron


def entry(text: str) -> tuple[str, str, str]:
    """The last line of a cron text as (minute, hour, command), the fields after them checked."""
    minute, hour, dom, month, dow, command = text.splitlines()[-1].split(" ", 5)
    assert (dom, month, dow) == ("*", "*", "*")
    return minute, hour, command


@pytest.mark.parametrize(
    ("zone", "now", "expected"),
    [
        ("UTC", WINTER, ("10", "16")),
        ("UTC", SUMMER, ("10", "16")),
        ("Asia/Kolkata", WINTER, ("40", "21")),
        ("Asia/Shanghai", WINTER, ("10", "0")),
        ("Asia/Shanghai", SUMMER, ("10", "0")),
        ("America/New_York", WINTER, ("10", "11")),
        ("America/New_York", SUMMER, ("10", "12")),
        ("Europe/Berlin", SUMMER, ("10", "18")),
    ],
)
def test_cron_time_is_converted_to_the_host_zone(zone: str, now: datetime, expected: tuple[str, str]) -> None:
    text = cron_line(make_spec(), host_tz=ZoneInfo(zone), now=now)
    assert entry(text)[:2] == expected
    has_dst = zone in ("America/New_York", "Europe/Berlin")
    assert ("WARNING" in text) is has_dst
    assert ("#   CRON_TZ=Asia/Shanghai\n" in text) is has_dst


def test_cron_dst_warning_names_both_times_and_the_cron_tz_alternative() -> None:
    text = cron_line(make_spec(), host_tz=ZoneInfo("America/New_York"), now=SUMMER)
    assert "11:10 or 12:10" in text
    assert "shifts by an hour\n# twice a year" in text
    assert "cronie does; Debian's cron does not" in text
    lines = text.splitlines()
    alternative = lines[lines.index("#   CRON_TZ=Asia/Shanghai") + 1]
    assert alternative == "#   10 0 * * * " + entry(text)[2]


def test_cron_uses_the_date_in_the_quota_zone() -> None:
    # 17:00 UTC on 14 Jan is already 15 Jan in Beijing; a day boundary must not change a fixed-offset result.
    late = datetime(2026, 1, 14, 17, 0, tzinfo=UTC)
    assert entry(cron_line(make_spec(), host_tz=ZoneInfo("UTC"), now=late))[:2] == ("10", "16")
    assert "right for 2026-01-15" in cron_line(make_spec(), host_tz=ZoneInfo("America/New_York"), now=late)


def test_cron_comments_explain_secrets_lock_and_zone() -> None:
    text = cron_line(make_spec(), host_tz=ZoneInfo("UTC"), now=WINTER)
    comments = [line for line in text.splitlines() if line.startswith("#")]
    assert len(comments) == len(text.splitlines()) - 1
    joined = "\n".join(comments)
    assert "00:10 Asia/Shanghai" in joined and "16:10 UTC" in joined
    assert "No flock needed" in joined and "/opt/tv/data/harvest.lock" in joined
    assert "TAOBAO_APP_SECRET" in joined
    assert text.endswith("\n") and text == cron_line(make_spec(), host_tz=ZoneInfo("UTC"), now=WINTER)


def cron_to_shell(command: str) -> str:
    """What cron hands to /bin/sh: '\\%' becomes '%' (an unescaped '%' would end the command)."""
    assert re.search(r"(?<!\\)%", command) is None
    return command.replace("\\%", "%")


def test_cron_command_is_shell_safe_with_spaces() -> None:
    root = Path("/srv/my shop/it's 50%")
    spec = make_spec(root=root)
    words = shlex.split(cron_to_shell(entry(cron_line(spec, host_tz=ZoneInfo("UTC"), now=WINTER))[2]))
    assert words == [
        *("cd", str(root), "&&"),
        *("set", "-a", "&&", ".", str(root / "env"), "&&", "set", "+a", "&&"),
        *(str(root / ".venv/bin/taobao-video"), "--config", str(root / "settings.toml"), "daily"),
        *(">>", str(root / "data/daily.log"), "2>&1"),
    ]


def test_cron_command_really_runs_in_sh(tmp_path: Path, fake_tool: Path) -> None:
    """Run the entry's command the way cron would: cwd, secrets from the env file, output into the log."""
    root = tmp_path / "shop 'data' $x"
    root.mkdir()
    env_file = root / "env file"
    env_file.write_text("TAOBAO_APP_KEY=12345678\nTAOBAO_APP_SECRET='s3cr3t $not-expanded'\n")
    spec = make_spec(root=root, command=(str(fake_tool),), env_file=env_file, log_file=root / "daily.log")
    command = cron_to_shell(entry(cron_line(spec, host_tz=ZoneInfo("UTC"), now=WINTER))[2])
    for _ in range(2):  # >> appends
        subprocess.run(["/bin/sh", "-c", command], check=True, env={"PATH": "/usr/bin:/bin"}, cwd="/", timeout=30)
    expected = [f"cwd={root}", "--config", str(root / "settings.toml"), "daily", "key=12345678"]
    expected.append("secret=s3cr3t $not-expanded")
    assert (root / "daily.log").read_text().splitlines() == expected * 2


def test_host_zone_reads_the_system_link_and_file(tmp_path: Path) -> None:
    zoneinfo_dir = Path("/usr/share/zoneinfo")
    if not (zoneinfo_dir / "Asia/Kolkata").exists():
        pytest.skip("no system zoneinfo tree")
    link = tmp_path / "localtime"
    link.symlink_to(zoneinfo_dir / "Asia/Kolkata")
    assert host_zone(link).key == "Asia/Kolkata"
    copy = tmp_path / "copied"
    copy.write_bytes((zoneinfo_dir / "America/New_York").read_bytes())
    zone = host_zone(copy)  # no name, but the rules are there: DST is still detected
    assert entry(cron_line(make_spec(), host_tz=zone, now=SUMMER))[:2] == ("10", "12")
    assert host_zone(tmp_path / "missing").key == "UTC"


# ---------------------------------------------------------------------------------------------------- install


class FakeSystemctl:
    def __init__(self, state: str = "running", reload_rc: int = 0, error: Exception | None = None) -> None:
        self.state, self.reload_rc, self.error = state, reload_rc, error
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        if self.error is not None:
            raise self.error
        if argv[-1] == "is-system-running":
            stderr = "" if self.state != "offline" else "Failed to connect to bus: No such file or directory"
            return subprocess.CompletedProcess(argv, 0 if self.state == "running" else 1, self.state + "\n", stderr)
        return subprocess.CompletedProcess(argv, self.reload_rc, "", "" if self.reload_rc == 0 else "boom")


def test_install_writes_both_files_0644_and_reloads(tmp_path: Path) -> None:
    systemctl = FakeSystemctl("degraded")  # a manager that answers, though not everything runs
    old_umask = os.umask(0o077)
    try:
        installed = install_user_units(make_spec(), tmp_path / "user", run=systemctl, which=lambda _: "/bin/systemctl")
    finally:
        os.umask(old_umask)
    assert installed == [tmp_path / "user" / SERVICE, tmp_path / "user" / TIMER]
    units = systemd_units(make_spec())
    for path in installed:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        assert path.read_text() == units[path.name]
    assert systemctl.calls == [
        ["/bin/systemctl", "--user", "is-system-running"],
        ["/bin/systemctl", "--user", "daemon-reload"],
    ]
    assert installed.reloaded
    assert any("enable --now taobao-video-daily.timer" in note for note in installed.notes)
    assert not any("enable" in argv for argv in systemctl.calls)  # never enables anything itself


@pytest.mark.parametrize(
    ("systemctl", "which", "note"),
    [
        (FakeSystemctl(), None, "systemctl not found"),
        (FakeSystemctl("offline"), "/bin/systemctl", "no systemd user manager answers (Failed to connect to bus"),
        (FakeSystemctl(error=FileNotFoundError("gone")), "/bin/systemctl", "could not ask the user manager"),
        (FakeSystemctl(reload_rc=1), "/bin/systemctl", "daemon-reload failed: boom"),
    ],
)
def test_install_without_a_user_manager_still_writes(
    tmp_path: Path, systemctl: FakeSystemctl, which: str | None, note: str
) -> None:
    installed = install_user_units(make_spec(), tmp_path, run=systemctl, which=lambda _: which)
    assert [path.name for path in installed] == [SERVICE, TIMER]
    assert not installed.reloaded
    assert any(note in line for line in installed.notes), installed.notes
    if which is None:
        assert systemctl.calls == []
    elif systemctl.state == "offline":
        assert ["/bin/systemctl", "--user", "daemon-reload"] not in systemctl.calls


def test_install_on_this_machine_does_not_fail(tmp_path: Path) -> None:
    """The real systemctl and subprocess.run: whatever this host has, installing into a folder works."""
    installed = install_user_units(make_spec(), tmp_path / "units")
    assert [path.name for path in installed] == [SERVICE, TIMER]
    assert installed.notes


def test_reinstall_replaces_the_files_atomically(tmp_path: Path) -> None:
    fake = FakeSystemctl()
    first = install_user_units(make_spec(at="00:10"), tmp_path, run=fake, which=lambda _: None)
    inodes = [path.stat().st_ino for path in first]
    second = install_user_units(make_spec(at="01:30"), tmp_path, run=fake, which=lambda _: None)
    assert second == first
    assert "OnCalendar=*-*-* 01:30:00 Asia/Shanghai" in (tmp_path / TIMER).read_text()
    # A new inode per file: each was renamed into place, never rewritten where a reader could see half of it.
    assert all(path.stat().st_ino != inode for path, inode in zip(second, inodes, strict=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == [SERVICE, TIMER]  # no temporary files left


def test_default_folders_follow_xdg_config_home(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert default_unit_dir(env) == tmp_path / "systemd" / "user"
    assert default_env_file(env) == tmp_path / "taobao-video" / "env"
    assert default_unit_dir({"XDG_CONFIG_HOME": "relative"}) == Path.home() / ".config" / "systemd" / "user"


# ---------------------------------------------------------------------------------------------- command_path


def test_command_path_is_absolute_and_runnable() -> None:
    command = command_path()
    assert os.path.isabs(command[0]) and os.access(command[0], os.X_OK)
    assert command[1:] in ((), ("-m", "taobao_video"))


def test_command_path_prefers_the_script_beside_the_interpreter(tmp_path: Path) -> None:
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    script = python.parent / "taobao-video"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    assert command_path(executable=str(python), which=lambda _: "/elsewhere/taobao-video") == (str(script),)


def test_command_path_falls_back_to_path_then_to_module(tmp_path: Path, fake_tool: Path) -> None:
    python = str(tmp_path / "python")
    assert command_path(executable=python, which=lambda _: str(fake_tool)) == (str(fake_tool),)
    assert command_path(executable=python, which=lambda _: None) == (python, "-m", "taobao_video")


# ----------------------------------------------------------------------------------------------- from_settings


def test_spec_from_settings(tmp_path: Path) -> None:
    settings = settings_from_mapping({}, base_dir=tmp_path, source=str(tmp_path / "settings.toml"), env={})
    spec = ScheduleSpec.from_settings(settings, at="00:20", command=("/usr/bin/true",))
    assert spec.settings_file == tmp_path / "settings.toml"
    assert spec.working_dir == tmp_path
    assert spec.timezone == "Asia/Shanghai"
    assert spec.lock_file == tmp_path / "data" / "harvest.lock"
    assert spec.log_file == tmp_path / "data" / "daily.log"
    assert spec.argv == ("/usr/bin/true", "--config", str(tmp_path / "settings.toml"), "daily")
    assert spec.at == "00:20"


def test_on_postgresql_the_cron_comment_says_runs_share_the_queue(tmp_path: Path) -> None:
    url = "postgresql+psycopg://harvester@db.example.lan/taobao_video"
    settings = settings_from_mapping(
        {"database": {"url": url}}, base_dir=tmp_path, source=str(tmp_path / "settings.toml"), env={}
    )
    spec = ScheduleSpec.from_settings(settings, command=("/usr/bin/true",))
    assert spec.lock_file is None
    text = cron_line(spec, host_tz=ZoneInfo("UTC"), now=WINTER)
    assert "No flock needed: overlapping runs share the queue" in text and "harvest.lock" not in text


def test_spec_from_settings_needs_a_file(tmp_path: Path) -> None:
    settings = settings_from_mapping({}, base_dir=tmp_path, env={})
    with pytest.raises(UsageError, match="settings file"):
        ScheduleSpec.from_settings(settings)
