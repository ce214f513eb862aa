"""The ``taobao-video`` command: the group, the entry point, and how library errors become exit codes.

Each command lives in the module of its group (``cli/run.py``: harvest, daily, lookup; ``cli/auth.py``; …) and
is imported only when it runs or ``--help`` lists it, so a ``catalog list`` pays for nothing else. A command
builds library objects, makes one call, renders the result; the exit code comes from the report or the error.
"""

from __future__ import annotations

import atexit
import importlib
import os
import sys

import click

from taobao_video import __version__
from taobao_video.config.names import CONFIG_ENV, DEFAULT_FILE
from taobao_video.errors import EXIT_USAGE, TaobaoVideoError

EXIT_INTERRUPTED = 130  # the shell's convention for a process ended by SIGINT

# command name -> "module:attribute", imported on demand
COMMANDS = {
    "auth": "taobao_video.cli.auth:auth",
    "catalog": "taobao_video.cli.catalog:catalog",
    "daily": "taobao_video.cli.run:daily",
    "db": "taobao_video.cli.db:db",
    "demo": "taobao_video.cli.demo:demo",
    "doctor": "taobao_video.cli.doctor:doctor",
    "harvest": "taobao_video.cli.run:harvest",
    "lookup": "taobao_video.cli.run:lookup",
    "queue": "taobao_video.cli.queue:queue",
    "quota": "taobao_video.cli.quota:quota",
    "refresh": "taobao_video.cli.refresh:refresh",
    "sandbox": "taobao_video.sandbox.cli:sandbox",
    "schedule": "taobao_video.cli.schedule:schedule",
    "serve": "taobao_video.cli.serve:serve",
}


class _LazyGroup(click.Group):
    """A group whose commands are imported only when one of them runs (or --help lists them)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, _, attribute = COMMANDS[cmd_name].partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(version=__version__, prog_name="taobao-video")
@click.option(
    "--config",
    "config_path",
    envvar=CONFIG_ENV,
    type=click.Path(),
    help=f"Settings file (default: ./{DEFAULT_FILE}; env {CONFIG_ENV}).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Harvest the main-image videos of Taobao products into a local catalog.

    \b
    Exit codes: 0 done, 1 some items failed, 2 bad usage or input, 75 stopped early (quota spent, gateway
    unreachable, or another run holds the lock or some of the ids; try later), 77 authorisation needed,
    78 configuration error.
    """
    ctx.obj = {"config_path": config_path}


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, print library errors as one line and exit with their code."""
    try:
        code = cli.main(args=argv, prog_name="taobao-video", standalone_mode=False)
    except click.exceptions.Abort as exc:  # click's word for a KeyboardInterrupt (a second Ctrl-C) or an EOF
        click.echo("Aborted.", err=True)
        if isinstance(exc.__cause__, KeyboardInterrupt):
            _exit_now(EXIT_INTERRUPTED)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except TaobaoVideoError as exc:
        click.echo(f"taobao-video: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        _exit_now(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)


def run() -> None:
    """The console script and ``python -m taobao_video``: :func:`main`, then an exit without the interpreter's
    teardown.

    Freeing the objects of SQLAlchemy, pydantic, PyAV and requests one by one took about 0.11 s after the work was
    done, on every command (issue 15: a tenth of what a 300-video harvest spends beside its downloads); the
    operating system frees the process at once. The atexit handlers (logging's flush among them) run and the
    streams are flushed first; every command has closed its catalog by then. A run stopped by an error may leave
    download threads still in a transfer, which the interpreter would have waited for: they are cut, as on a second
    Ctrl-C, and nothing is lost (a ``.part`` resumes, a row is written last). Tests call :func:`main`, which exits
    the usual way.
    """
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    atexit._run_exitfuncs()  # what the interpreter runs first at exit; os._exit below would skip it
    _exit_now(code)


def _exit_code(code: object) -> int:
    """The process exit code of ``sys.exit(code)``: a message is printed and means 1, as the interpreter does."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _exit_now(code: int) -> None:
    """Exit without waiting for threads still blocked on the network (the interpreter would join them): after a
    second Ctrl-C, nothing on disk needs them (``.part`` files resume, a row is written last)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # the reader has gone (`| head`) or the stream is closed: nobody to tell
            pass
    os._exit(code)
