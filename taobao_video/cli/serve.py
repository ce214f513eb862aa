"""``taobao-video serve``: browse and watch the catalog in a web page (the library is ``web/server.py``).

Only click is imported here, so registering the command costs the CLI's start-up nothing.
"""

from __future__ import annotations

import click


@click.command("serve")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one).")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but loopback lets other machines browse and download the videos.",
)
@click.option("--access-log", is_flag=True, help="Print one line per request on stderr.")
@click.pass_context
def serve(ctx: click.Context, port: int, host: str, access_log: bool) -> None:
    """Browse the catalog in a web page: covers, durations, sizes, filters, and a player that can seek.

    Read-only: the catalog is opened without migrating and only files inside the videos folder
    (download.dir) and the covers folder beside it are served; with download.dir = "s3://…" the
    objects are streamed from the bucket (with Range). Stop with Ctrl-C.

    \b
    Examples:
      taobao-video serve                  # then open http://127.0.0.1:8000/
      taobao-video serve --port 8080
      curl 'http://127.0.0.1:8000/api/videos?min_duration=10&sort=duration&desc=1&limit=5'
      curl http://127.0.0.1:8000/metrics   # Prometheus metrics, as [metrics] textfile writes them
    """
    from taobao_video.cli.common import settings_of
    from taobao_video.ops import metrics
    from taobao_video.storage import open_storage
    from taobao_video.store.catalog import open_existing
    from taobao_video.web import server as web

    settings = settings_of(ctx)
    loopback = web.is_loopback(host)
    if not loopback:
        click.echo(
            f"taobao-video: warning: listening on {host}, not loopback: anyone who can reach this machine can "
            "browse the catalog and download its videos (there is no login)",
            err=True,
        )

    def log(line: str) -> None:
        click.echo(f"taobao-video serve: {line}", err=True)

    object_url = settings.download.object_url  # videos in a bucket: streamed from it, with Range
    catalog = open_existing(settings.database.url)
    try:
        site = web.CatalogSite(
            catalog,
            base_dir=settings.base_dir,
            videos_dir=settings.download.dir,
            allowed_hosts=web.loopback_hosts(host) if loopback else None,
            log=log,
            quota_zone=settings.quota.tz,
            metrics=lambda: metrics.current(settings, catalog),
            public_url_prefix=settings.download.public_url_prefix,
            storage=None if object_url is None else open_storage(object_url, settings.s3.options()),
        )
        server = web.bind(site, host, port, access_log=log if access_log else None)
        click.echo(f"Serving the catalog at {server.url} (Ctrl-C to stop)")
        web.serve_until_stopped(server)
        click.echo("Stopped.", err=True)
    finally:
        catalog.close()
