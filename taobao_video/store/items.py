"""The item state machine: every write that changes an item's state, its counters or its claim's end.

What the catalog learns about an item moves it along one of these transitions (:data:`TRANSITIONS`); an id the
catalog has never seen is added in the state it is moved to, at the end of the queue::

    transition        method                         from           to         counts    claim   deferred_at
    resolved          mark_resolved                  any            resolved   lookups   kept    cleared
    no_video          mark_no_video                  any            no_video   lookups   ended   cleared
    not_found         mark_not_found                 any            not_found  lookups   ended   cleared
    not_visible       mark_not_visible               any            not_visible lookups  ended   cleared
    lookup_failed     mark_lookup_failed             any            failed     lookups   ended   cleared
    download_failed   mark_failed                    any            failed     attempts  ended   cleared
    downloaded        record_video(s)                any            done       -         ended   cleared
    requeued          requeue_download               has a video    resolved   -         kept    cleared
    retry_download    retry_failed (URL usable)      failed         resolved   -         kept    kept
    retry_lookup      retry_failed (the others)      failed         pending    -         kept    kept

The claim rule (:attr:`Transition.ends_claim`, the one place it is decided): an outcome a worker records ends its
claim on the item, because nobody is on it any more, except ``resolved``: the worker that looked an item up
downloads it next. The user's rewinds (``catalog verify --fix``, ``queue retry``) leave a claim alone: a worker may
be on that item right now. Workers take, renew and release claims in ``claims.py``, which ends them with the same
:data:`CLAIM_ENDED`.

``deferred_at`` is set by :meth:`ItemTransitions.mark_deferred` when a run has to leave an item for later; the
outcomes clear it, because the item has been worked on since, so it is set exactly on the items whose last word
was "later". :class:`~taobao_video.store.catalog.Catalog` inherits these methods; callers use them on it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, insert, or_, select, update

from taobao_video.model import FailureKind, ItemState
from taobao_video.store.common import READ_CHUNK, chunks, error_text, num_iid_arg, retry_on_race, slices
from taobao_video.store.dialects import lock_after_writing, require_aware
from taobao_video.store.queue import ADD_BATCH, QUEUE_LOCK, next_seq
from taobao_video.store.records import VideoRow
from taobao_video.store.schema import Item, Video

CLAIM_ENDED: dict[str, Any] = {"claimed_by": None, "lease_until": None}  # nobody is on the item any more
_ERRORS_CLEARED: dict[str, Any] = {"last_error": None, "error_kind": None}


@dataclasses.dataclass(frozen=True)
class Transition:
    """Where one event takes an item, and what else it changes on the way (see the module docstring's table)."""

    to: ItemState
    counts: str | None = None  # the counter it adds one to: "lookups" (a call spent) or "attempts" (a download)
    by_worker: bool = True  # an outcome a worker records; False: the user rewinding the queue
    clears_deferred: bool = True

    @property
    def ends_claim(self) -> bool:
        """The claim rule: a worker's outcome ends its claim, except ``resolved`` (that worker downloads the item
        next); the user's rewinds leave claims alone (a worker may be on the item)."""
        return self.by_worker and self.to is not ItemState.RESOLVED

    def changes(self, now: datetime) -> dict[str, Any]:
        """The columns this transition sets on an item, besides what the event learnt about it."""
        values: dict[str, Any] = {"state": self.to.value, "updated_at": now}
        if self.counts is not None:
            values[self.counts] = Item.__table__.c[self.counts] + 1
        if self.clears_deferred:
            values["deferred_at"] = None
        if self.ends_claim:
            values.update(CLAIM_ENDED)
        return values

    def first_counts(self) -> dict[str, Any]:
        """The counter of an id added by this transition: its first lookup or download attempt."""
        return {} if self.counts is None else {self.counts: 1}


TRANSITIONS: dict[str, Transition] = {
    "resolved": Transition(ItemState.RESOLVED, "lookups"),
    "no_video": Transition(ItemState.NO_VIDEO, "lookups"),
    "not_found": Transition(ItemState.NOT_FOUND, "lookups"),
    "not_visible": Transition(ItemState.NOT_VISIBLE, "lookups"),
    "lookup_failed": Transition(ItemState.FAILED, "lookups"),
    "download_failed": Transition(ItemState.FAILED, "attempts"),
    "downloaded": Transition(ItemState.DONE),
    "requeued": Transition(ItemState.RESOLVED, by_worker=False),
    "retry_download": Transition(ItemState.RESOLVED, by_worker=False, clears_deferred=False),
    "retry_lookup": Transition(ItemState.PENDING, by_worker=False, clears_deferred=False),
}


class ItemTransitions:
    """The catalog's writes of item state. Each is one short transaction; ``now`` must be timezone-aware."""

    _engine: Engine

    # ---- a lookup's outcome

    def mark_resolved(
        self,
        num_iid: int,
        *,
        video_url: str,
        cover_url: str | None,
        api_duration: float | None,
        width: int | None,
        height: int | None,
        api_method: str,
        now: datetime,
        title: str | None = None,
        nick: str | None = None,
        video_id: str | None = None,
    ) -> None:
        """The API gave a video URL: state ``resolved``, one more lookup, errors cleared. A work claim on the item
        stays: whoever looked it up downloads it next."""
        learnt = {"video_url": video_url, "cover_url": cover_url, "api_duration": api_duration}
        learnt |= {"width": width, "height": height, "api_method": api_method}
        learnt |= {"title": title, "nick": nick, "video_id": video_id}
        self._record(num_iid, "resolved", now, **learnt, checked_at=now, **_ERRORS_CLEARED)

    def mark_no_video(self, num_iid: int, *, api_method: str, now: datetime) -> None:
        """The item exists but has no main-image video."""
        gone = {"video_url": None, "api_duration": None, "width": None, "height": None}
        self._record(num_iid, "no_video", now, **gone, api_method=api_method, checked_at=now, **_ERRORS_CLEARED)

    def mark_not_visible(self, num_iid: int, *, api_method: str, now: datetime) -> None:
        """The seller channel left the id out of its answer: another shop's item, or an unknown one."""
        self._record(
            num_iid,
            "not_visible",
            now,
            video_url=None,
            api_method=api_method,
            checked_at=now,
            last_error=None,
            error_kind=None,
        )

    def mark_not_found(self, num_iid: int, *, detail: str, api_method: str, now: datetime) -> None:
        """The item is gone; ``detail`` (e.g. the sub_code) is kept in ``last_error``."""
        self._record(
            num_iid,
            "not_found",
            now,
            video_url=None,
            api_method=api_method,
            checked_at=now,
            last_error=error_text(detail),
            error_kind=None,
        )

    def mark_lookup_failed(self, num_iid: int, *, error: str, now: datetime) -> None:
        """A lookup ended in an error that says nothing about the item: one more lookup, ``error_kind`` lookup."""
        kind = FailureKind.LOOKUP.value
        self._record(num_iid, "lookup_failed", now, error_kind=kind, last_error=error_text(error), checked_at=now)

    # ---- a download's outcome

    def mark_failed(self, num_iid: int, *, error_kind: str, error: str, now: datetime) -> None:
        """A download failed: one more attempt. The URL is kept for a retry without a call, except when it
        expired (``error_kind == "url_expired"``): then it is cleared so the planner looks the item up again.
        """
        extra: dict[str, Any] = {"video_url": None} if error_kind == FailureKind.URL_EXPIRED else {}
        self._record(num_iid, "download_failed", now, error_kind=error_kind, last_error=error_text(error), **extra)

    def record_video(self, row: VideoRow, *, now: datetime) -> None:
        """Store (or replace) the video row and mark its item ``done``, in one transaction.

        Call it only once the file is complete, verified, renamed into place and durable.
        """
        self.record_videos([row], now=now)

    def record_videos(self, rows: Sequence[VideoRow], *, now: datetime) -> None:
        """Store (or replace) each video row and mark its item ``done``, all in ONE transaction (group commit).

        Call it only once every file is complete, verified, renamed into place and durable (file and folder
        synced): a row in ``videos`` promises its file. Rows must name distinct ids.
        """
        require_aware(now)
        for row in rows:
            num_iid_arg(row.num_iid)
            require_aware(row.downloaded_at)
        if len({row.num_iid for row in rows}) != len(rows):
            raise ValueError("record_videos: the rows must name distinct ids")
        if not rows:
            return
        done = {**TRANSITIONS["downloaded"].changes(now), **_ERRORS_CLEARED}
        # one order for every writer (the totals' rows by duration second, then the items'): fewer deadlocks
        rows = sorted(rows, key=lambda row: (int(row.duration) if row.duration is not None else -1, row.num_iid))

        ids = [row.num_iid for row in rows]
        values = [{name: getattr(row, name) for name in _VIDEO_COLUMNS} for row in rows]

        @retry_on_race
        def attempt() -> None:
            with self._engine.begin() as connection:
                # Delete then insert: a portable "insert or replace" (the DELETE also takes the write lock first).
                for chunk in slices(ids, READ_CHUNK):
                    connection.execute(delete(Video).where(Video.num_iid.in_(chunk)))
                connection.execute(insert(Video), values)
                # One statement per chunk for the items (the same change for each): a batch of 64 rows cost 64
                # statements built and compiled one by one, which held the GIL longer than the downloads did.
                updated = sum(
                    connection.execute(update(Item).where(Item.num_iid.in_(chunk)).values(done)).rowcount
                    for chunk in slices(ids, READ_CHUNK)
                )
                if updated < len(ids):  # some ids never added (a library caller's rows): each is added now, at the
                    # queue's end; an item another writer added meanwhile is updated, a clash retried (retry_on_race)
                    for row in rows:
                        first = {"video_url": row.video_url, "cover_url": row.cover_url, "api_method": row.api_method}
                        _upsert_item(connection, row.num_iid, now, done, first)

        attempt()

    # ---- the user's rewinds

    def requeue_download(self, num_iid: int, *, reason: str, now: datetime) -> bool:
        """The video's file is gone or damaged (``catalog verify --fix``): download it again, without a call.

        In one transaction the ``videos`` row is deleted (that table holds downloaded, verified videos only) and
        the item goes back to ``resolved`` with the row's URL, so the next run's plan downloads it from there;
        ``last_error`` keeps ``reason``. Returns False when the id has no video row (nothing to do).
        """
        num_iid_arg(num_iid)
        require_aware(now)
        columns = (Video.video_url, Video.cover_url, Video.duration, Video.width, Video.height, Video.api_method)

        @retry_on_race
        def attempt() -> bool:
            with self._engine.begin() as connection:
                video = connection.execute(select(*columns).where(Video.num_iid == num_iid)).first()
                if video is None or not connection.execute(delete(Video).where(Video.num_iid == num_iid)).rowcount:
                    return False
                changes = {
                    **TRANSITIONS["requeued"].changes(now),
                    "video_url": video.video_url,
                    "cover_url": video.cover_url,
                    "last_error": error_text(reason),
                    "error_kind": None,
                }
                # Only for an item row that was missing: what the API said is unknown, the video's values stand in.
                fresh = {"api_duration": video.duration, "width": video.width, "height": video.height}
                _upsert_item(connection, num_iid, now, changes, {**fresh, "api_method": video.api_method})
                return True

        return attempt()

    def retry_failed(self, *, now: datetime) -> int:
        """Put every ``failed`` item back in the queue; returns how many.

        One whose download failed but whose URL is still usable (kept, and the failure was not ``url_expired``)
        goes back to ``resolved``: downloaded again without a call. The others (expired URL, failed lookup) go
        back to ``pending``: one new lookup. ``last_error`` and ``error_kind`` are cleared.
        """
        require_aware(now)
        failed = Item.state == ItemState.FAILED.value
        expired = FailureKind.URL_EXPIRED.value
        usable = and_(Item.video_url.is_not(None), or_(Item.error_kind.is_(None), Item.error_kind != expired))
        download = {**TRANSITIONS["retry_download"].changes(now), **_ERRORS_CLEARED}
        lookup = {**TRANSITIONS["retry_lookup"].changes(now), **_ERRORS_CLEARED}
        with self._engine.begin() as connection:
            resolved = connection.execute(update(Item).where(failed, usable).values(download)).rowcount
            pending = connection.execute(update(Item).where(failed).values(lookup)).rowcount
        return int(resolved) + int(pending)

    # ---- a run's "later"

    def mark_deferred(self, ids: Iterable[int], *, now: datetime) -> None:
        """A run had to leave these items for later: ``deferred_at`` = ``now`` (done items are not touched).

        The next recorded outcome of the item (any ``mark_*`` or :meth:`record_video`) clears it again.
        """
        require_aware(now)
        for batch in chunks(ids, ADD_BATCH):
            with self._engine.begin() as connection:
                for chunk in slices(batch, READ_CHUNK):
                    query = update(Item).where(Item.num_iid.in_(chunk), Item.state != ItemState.DONE.value)
                    connection.execute(query.values(deferred_at=now))

    def _record(self, num_iid: int, transition: str, now: datetime, **learnt: Any) -> None:
        """Move one item along ``transition`` with what was ``learnt``; an id never added is added so."""
        num_iid_arg(num_iid)
        require_aware(now)
        move = TRANSITIONS[transition]
        changes = {**learnt, **move.changes(now)}

        @retry_on_race
        def attempt() -> None:
            with self._engine.begin() as connection:
                _upsert_item(connection, num_iid, now, changes, move.first_counts())

        attempt()


_VIDEO_COLUMNS = tuple(field.name for field in dataclasses.fields(VideoRow))


def _upsert_item(
    connection: Connection, num_iid: int, now: datetime, changes: dict[str, Any], fresh: dict[str, Any]
) -> None:
    """Apply ``changes`` to the item; if it is unknown, add it with them, ``fresh`` instead of theirs, at the end
    of the queue."""
    if connection.execute(update(Item).where(Item.num_iid == num_iid).values(changes)).rowcount:
        return
    lock_after_writing(connection, QUEUE_LOCK)  # a new seq: wait for the other inserts (see queue.next_seq)
    plain = {name: value for name, value in changes.items() if name not in fresh}
    connection.execute(insert(Item).values(num_iid=num_iid, added_at=now, seq=next_seq(), **plain, **fresh))
