"""The doctor's real lookup through the seller or gateway provider (``taobao.provider``), with ``--spend``.

The item provider is tried one API method at a time (``doctor_remote.py``); the other two are tried as a harvest
would use them, on one id: the seller channel's list call (and the video query when the video is new, so
``--spend 2`` tries both), the item-data gateway's one request. The calls go through the catalog's quota ledger,
so a doctor run is counted like any other; without a catalog there is nothing to count them in, and no lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from taobao_video.errors import (
    EXIT_CONFIG,
    AuthError,
    CallCapReached,
    MethodUnavailable,
    TaobaoVideoError,
)
from taobao_video.model import LookupOutcome
from taobao_video.ops.doctor import Check, fail, failure, ok, warn

if TYPE_CHECKING:
    from taobao_video.config.models import Settings

LABEL = "api methods"
_CHANNEL = {"seller": "the seller channel", "gateway": "the item-data gateway"}


def provider_lookup(
    settings: Settings, num_iid: int, spend: int, clock: Callable[[], datetime]
) -> Iterator[tuple[Check, str | None]]:
    """One lookup of ``num_iid`` through the configured provider, at most ``spend`` calls; the video URL found
    goes to the CDN check."""
    from taobao_video import wiring
    from taobao_video.store.catalog import open_existing
    from taobao_video.top.providers.base import no_pace

    kind = settings.taobao.provider
    channel = _CHANNEL[kind]
    try:
        catalog = open_existing(settings.database.url)
    except TaobaoVideoError:
        fix = "run `taobao-video harvest` once first: the doctor's calls are counted in the catalog's quota ledger"
        yield Check(LABEL, "skip", f"{channel}: no lookup made (no catalog yet)", fix), None
        return
    with catalog:
        try:
            found, _, _ = wiring.provider(settings, catalog, clock=clock, max_calls=spend)
            result = next(iter(found.resolve([num_iid], pace=no_pace)), None)
        except CallCapReached:
            note = f"{channel}: the list call worked; the video query was not tried (--spend {spend} is used up)"
            yield warn(LABEL, note, "pass --spend 2 to try the video query too"), None
            return
        except MethodUnavailable as exc:
            yield fail(LABEL, f"{channel}: {exc}", _not_permitted_fix(kind), EXIT_CONFIG), None
            return
        except AuthError as exc:
            yield failure(LABEL, exc, "run `taobao-video auth login` with the seller's account"), None
            return
        except TaobaoVideoError as exc:
            yield failure(LABEL, exc), None
            return
    if result is None:
        yield warn(LABEL, f"{channel}: no answer for id {num_iid}"), None
        return
    if result.outcome is LookupOutcome.NOT_VISIBLE:
        detail = f"{channel}: id {num_iid} is not visible to the authorised shop (another shop's, or unknown)"
        yield warn(LABEL, detail, "pass --id with one of the shop's own items"), None
        return
    url = result.video.url if result.video is not None else None
    yield ok(LABEL, f"{channel} works (id {num_iid}: {result.outcome})"), url


def _not_permitted_fix(kind: str) -> str:
    if kind == "seller":
        return (
            "the app needs the seller APIs (taobao.items.seller.list.get, alibaba.video.query) on the open platform "
            'console, and the shop\'s authorisation; or set taobao.provider = "item"'
        )
    return "check the gateway's url and what your vendor key may call"
