"""`taobao-video demo`: the main job against the bundled sandbox, no Taobao account needed."""

from __future__ import annotations

import click

from taobao_video.config.names import PROVIDERS


@click.command("demo")
@click.option(
    "--ids",
    "count",
    type=click.IntRange(1, 1000),
    default=16,
    show_default=True,
    help="How many sample ids to harvest.",
)
@click.option("--seed", default=2026, show_default=True, help="Seed of the sandbox's item catalogue.")
@click.option(
    "--dir",
    "folder",
    default="data/demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the demo keeps its catalog, videos and token.",
)
@click.option("--json", "as_json", is_flag=True, help="Harvest events as JSON lines on stdout (prose on stderr).")
@click.option("--force", is_flag=True, help="Use --dir even if it holds files that are not an earlier demo's.")
@click.option(
    "--provider",
    type=click.Choice(PROVIDERS),
    default="item",
    show_default=True,
    help="The channel to resolve ids through; the demo prints its calls per id.",
)
@click.pass_context
def demo(ctx: click.Context, count: int, seed: int, folder: str, as_json: bool, force: bool, provider: str) -> None:
    """Run the main job against the bundled sandbox: no Taobao account needed.

    Starts the Taobao emulator on a free loopback port, authorises through its OAuth pages, harvests a
    mixed sample of product ids (with and without videos, missing, deleted) into the catalog and the
    videos folder, prints the catalog, and runs again to show that nothing is spent twice. With --provider
    seller the sandbox plays a shop that authorised the app (batches of 20 ids a call, one query per video);
    with --provider gateway, a third-party item-data gateway with its own key.
    """
    from taobao_video.cli.progress import RunOutput
    from taobao_video.jobs.demo import run_demo

    with RunOutput.choose(as_json) as output:
        code = run_demo(
            count=count,
            seed=seed,
            folder=folder,
            echo=output.say if as_json else click.echo,
            on_event=output.event,
            on_bytes=output.add_bytes,
            force=force,
            provider=provider,
        )
    ctx.exit(code)
