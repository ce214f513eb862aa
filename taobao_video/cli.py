"""Command line: parse arguments, call the library, turn errors into messages and exit codes."""

from __future__ import annotations

import sys

import click

from taobao_video.errors import TaobaoVideoError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="taobao-video")
@click.option(
    "--config",
    "config_path",
    envvar="TAOBAO_VIDEO_CONFIG",
    type=click.Path(dir_okay=False),
    help="Settings file (default: ./settings.toml; env TAOBAO_VIDEO_CONFIG).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Harvest the main-image videos of Taobao products into a local catalog."""
    ctx.obj = {"config_path": config_path}


def _register_sandbox() -> None:
    from taobao_video.sandbox.cli import sandbox

    cli.add_command(sandbox)


_register_sandbox()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, print library errors as one line and exit with their code."""
    try:
        cli.main(args=argv, prog_name="taobao-video", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except TaobaoVideoError as exc:
        click.echo(f"taobao-video: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
