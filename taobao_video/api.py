"""The public Python API: what ``import taobao_video as tv`` offers, and what the CLI itself calls.

    settings = tv.load_settings("settings.toml")
    report = tv.harvest([520813250866, "https://item.taobao.com/item.htm?id=601234567890"], settings=settings)
    print(report.downloaded, report.exit_code)
    with tv.open_catalog(settings) as catalog:
        print(catalog.video(520813250866))

Every function takes ``settings`` (default: ``load_settings()``, i.e. ``$TAOBAO_VIDEO_CONFIG`` or
``./settings.toml``). The runs call ``on_event`` with the same records ``--json`` prints, one dict per event
(``plan``, ``item``, ``warning``, ``stop``, ``notify`` when a message was sent, and last ``summary``), from several
threads: keep it quick and thread-safe. Errors are :class:`taobao_video.TaobaoVideoError` subclasses, each with
an ``exit_code``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from taobao_video.errors import UsageError
from taobao_video.ids import MAX_ID_DIGITS, parse_id

if TYPE_CHECKING:
    from taobao_video.config.models import Settings
    from taobao_video.jobs.refresh import RefreshReport
    from taobao_video.jobs.report import DailyReport, HarvestReport
    from taobao_video.store.catalog import Catalog
    from taobao_video.top.lookup import LookupResult

Event = dict[str, Any]
ID_LIMIT = 10**MAX_ID_DIGITS  # what parse_id accepts: positive, at most MAX_ID_DIGITS digits


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """The validated settings from ``path`` (default ``$TAOBAO_VIDEO_CONFIG``, else ``./settings.toml``) and the
    environment; ConfigError (exit 78) naming the file, key and problem."""
    from taobao_video.config.load import load_settings as load

    return load(path)


def harvest(
    ids: Iterable[int | str],
    *,
    settings: Settings | None = None,
    force: bool = False,
    workers: int | None = None,
    bad_lines: int = 0,
    on_event: Callable[[Event], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> HarvestReport:
    """Harvest the videos of ``ids`` (numbers, or item URLs as strings) into the catalog.

    Returns the run's report (``report.exit_code`` as the CLI would exit). An error that needs the user and
    ended the run early (authorisation, configuration) is ``report.error``; errors before any work (settings,
    token, another run holding the lock) are raised. Set ``stop`` to end the run gracefully from another thread.
    ``bad_lines``: input lines the caller could not read as ids (counted in the summary; exit code 2 when
    nothing worse happened).
    """
    from taobao_video.jobs import runner

    return runner.harvest(
        settings or load_settings(),
        _num_iids(ids),
        force=force,
        workers=workers,
        bad_lines=bad_lines,
        on_event=on_event or _ignore,
        on_bytes=on_bytes or _ignore,
        stop=stop,
    )


def daily(
    *,
    settings: Settings | None = None,
    max_calls: int | None = None,
    workers: int | None = None,
    on_event: Callable[[Event], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> DailyReport:
    """Work through the queue with what is left of today's quota (the scheduled run); the report says what is
    left and how many days that is. ``report.exit_code``: 0 drained, 75 more tomorrow, 1 items failed."""
    from taobao_video.jobs import runner

    return runner.daily(
        settings or load_settings(),
        max_calls=max_calls,
        workers=workers,
        on_event=on_event or _ignore,
        on_bytes=on_bytes or _ignore,
        stop=stop,
    )


def refresh(
    *,
    settings: Settings | None = None,
    older_than_days: float | None = None,
    max_calls: int | None = None,
    prune: bool = False,
    on_event: Callable[[Event], None] | None = None,
    stop: threading.Event | None = None,
) -> RefreshReport:
    """Re-check done and video-less items last looked up more than ``older_than_days`` ago (default
    ``harvest.refresh_after_days``), oldest first, within ``harvest.refresh_share`` of the calls the queue leaves
    (and ``max_calls``); download the videos that changed, keeping the old versions in ``video_history`` (their
    files deleted with ``prune``). ``report.exit_code``: 0 done, 1 items failed."""
    from taobao_video.jobs.refresh import refresh as run_refresh

    return run_refresh(
        settings or load_settings(),
        older_than_days=older_than_days,
        max_calls=max_calls,
        prune=prune,
        on_event=on_event or _ignore,
        stop=stop,
    )


def lookup(
    ids: Iterable[int | str],
    *,
    settings: Settings | None = None,
    on_event: Callable[[Event], None] | None = None,
) -> list[LookupResult]:
    """Ask the platform about ``ids`` without downloading (one call each, counted in the quota ledger); what it
    finds is kept in the catalog, so a later harvest downloads these videos without asking again."""
    from taobao_video.jobs import runner

    return runner.lookup(settings or load_settings(), _num_iids(ids), on_event=on_event or _ignore)


def open_catalog(settings: Settings | None = None) -> Catalog:
    """The catalog for reading (``with tv.open_catalog(s) as catalog: catalog.videos([...])``): never created,
    never migrated; ConfigError (exit 78) when there is none yet or it needs ``taobao-video db upgrade``."""
    from taobao_video.store.catalog import open_existing

    return open_existing((settings or load_settings()).database.url)


def _num_iids(ids: Iterable[int | str]) -> list[int]:
    """Ids as the catalog takes them; a string may be a number or an item URL. UsageError names a bad one."""
    parsed = []
    for raw in ids:
        if type(raw) is int and 0 < raw < ID_LIMIT:  # the CLI's ids, already parsed: no text round trip
            parsed.append(raw)
            continue
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            raise UsageError(f"{raw!r} is not a num_iid (give ints, or strings of digits or item URLs)")
        try:
            parsed.append(parse_id(str(raw)))
        except ValueError as exc:
            raise UsageError(f"{raw!r} is not a num_iid: {exc}") from None
    return parsed


def _ignore(*args: object) -> None:
    """The default listener: events and byte counts are optional."""
