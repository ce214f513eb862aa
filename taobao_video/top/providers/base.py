"""The provider interface: how a job resolves a batch of ids, what each provider spends, and the memory of videos
already known.

A provider turns a batch of num_iids into one :class:`~taobao_video.top.lookup.LookupResult` per id, yielded as soon
as each is known (video, no video, not found, not visible). It declares how many ids one call resolves at most
(``batch_size``) and which API methods it spends (``calls``), so the job plans calls, not ids: a day with N calls
left can take :meth:`Provider.ids_for` ``(N)`` ids. Every call goes through a client whose ``before_call`` hook
reserves it in the quota ledger first, so a spent quota raises out of :meth:`Provider.resolve` mid-batch; the
ids not yet yielded are the caller's to defer.

Providers never touch the catalog: what they must remember between runs (a seller listing's ``video_id`` whose
query the quota cut off; a video already downloaded for another item) goes through :class:`VideoMemory`, which
the jobs implement on the catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from taobao_video.top.lookup import LookupResult

Pace = Callable[[], None]  # called before every call a provider makes: the run's qps


@dataclass(frozen=True)
class Listed:
    """What a listing said about an item with a video, before its playable URL is known."""

    video_id: str
    title: str | None = None
    nick: str | None = None


@dataclass(frozen=True)
class KnownVideo:
    """A video the catalog already has a URL for (downloaded for, or resolved on, another item)."""

    url: str
    cover_url: str | None
    duration: float | None
    width: int | None
    height: int | None


class VideoMemory(Protocol):
    """What a provider may read and leave in the catalog, without importing it."""

    def listed(self, ids: Sequence[int]) -> dict[int, Listed]:
        """Ids listed by an earlier run whose video query has not been made yet."""
        ...

    def remember(self, listing: Mapping[int, Listed]) -> None:
        """Keep a listing's video ids and facts on the items (their state is left as it is)."""
        ...

    def known(self, video_ids: Collection[str]) -> dict[str, KnownVideo]:
        """The videos among ``video_ids`` whose URL the catalog already has."""
        ...


class NoMemory:
    """A :class:`VideoMemory` that remembers nothing (a provider used without a catalog)."""

    def listed(self, ids: Sequence[int]) -> dict[int, Listed]:
        return {}

    def remember(self, listing: Mapping[int, Listed]) -> None:
        return None

    def known(self, video_ids: Collection[str]) -> dict[str, KnownVideo]:
        return {}


class Provider(Protocol):
    """Resolves batches of ids through one channel."""

    name: str
    batch_size: int  # ids one call resolves at most
    calls: tuple[str, ...]  # the API methods this provider spends calls on

    def ids_for(self, calls: int) -> int:
        """How many ids ``calls`` calls can resolve at most (the daily planner's figure)."""
        ...

    def resolve(self, ids: Sequence[int], *, pace: Pace) -> Iterator[LookupResult]:
        """One result per id, each as soon as it is known; errors (a spent quota, an error that needs the user)
        raise out mid-batch, leaving the ids not yet yielded to the caller."""
        ...

    def forget(self, video_id: str) -> None:
        """A URL this provider gave for ``video_id`` proved dead (the CDN said it expired): the next lookup must
        ask for a fresh one rather than hand the same URL out again."""
        ...


class OneIdPerCall:
    """What a provider spending one call per id shares: batches of one, no memory of URLs to forget; a subclass
    says how one id is looked up (:meth:`lookup`)."""

    batch_size: int = 1

    def ids_for(self, calls: int) -> int:
        return max(0, calls)

    def forget(self, video_id: str) -> None:
        """Nothing to forget: every lookup asks afresh."""

    def resolve(self, ids: Sequence[int], *, pace: Pace) -> Iterator[LookupResult]:
        for num_iid in ids:
            pace()
            yield self.lookup(num_iid)

    def lookup(self, num_iid: int) -> LookupResult:
        raise NotImplementedError


def no_pace() -> None:
    """The pace of a caller that does not pace (tests, one-off lookups)."""
