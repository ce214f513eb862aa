"""The catalog's tables as SQLAlchemy models, their indexes, and which columns fill each plain record.

Tables (the README documents them for users):

    videos        one row per downloaded, verified video (design.md contract: the column names are fixed)
    items         each id's lookup and download state: the queue and what has been learnt about it
    calls         the call log: one row per gateway attempt, failed ones included
    video_history the versions a refresh replaced (migration 0005)
    quota_days    the quota ledger: calls reserved per app key and quota day (see ``quota.py``)
    video_totals  running sums of ``videos`` per second of duration, kept by triggers (migration 0004)

The schema is owned by the Alembic migrations in ``taobao_video/store/migrations`` (``migrate.py`` applies them);
a test keeps them equal to the models below. To write a new migration::

    from alembic import command
    from taobao_video.store.migrate import alembic_config
    command.revision(alembic_config("sqlite:///scratch.sqlite3"), message="...", autogenerate=True, rev_id="0005")

Only the store's own modules import this one: everything outside ``store/`` gets plain records (``records.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Float, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from taobao_video.model import ItemState
from taobao_video.store.dialects import AUTOINCREMENT_ID, UtcDateTime
from taobao_video.store.records import ItemRow, VideoRow

# "state = 'pending' OR ...", not "state IN (...)": SQLite builds a temporary b-tree for an IN list of more than two
# values each time it checks a row, which made inserting a million items 3 s slower (migration 0002).
_STATE_CHECK = " OR ".join(f"state = '{state.value}'" for state in ItemState)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Video(Base):
    """One downloaded, verified video. The column names are a contract (design.md)."""

    __tablename__ = "videos"

    num_iid: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    video_path: Mapped[str] = mapped_column(Text)  # relative to the settings folder
    duration: Mapped[float | None] = mapped_column(Float)  # seconds, from the file
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    video_url: Mapped[str] = mapped_column(Text)
    cover_url: Mapped[str | None] = mapped_column(Text)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    api_method: Mapped[str] = mapped_column(String(64))
    downloaded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    title: Mapped[str | None] = mapped_column(Text)
    nick: Mapped[str | None] = mapped_column(Text)  # the seller's nick, or its shop id
    video_id: Mapped[str | None] = mapped_column(String(64))  # the platform's stored video: may back many items
    cover_path: Mapped[str | None] = mapped_column(Text)  # relative like video_path; null: no cover on disk
    cover_width: Mapped[int | None] = mapped_column(Integer)
    cover_height: Mapped[int | None] = mapped_column(Integer)
    cover_error: Mapped[str | None] = mapped_column(Text)  # the last cover failure (a cover never fails its video)
    codec: Mapped[str | None] = mapped_column(String(32))  # the media probe's reading of the file
    bitrate: Mapped[int | None] = mapped_column(BigInteger)  # bits per second
    fps: Mapped[float | None] = mapped_column(Float)
    has_audio: Mapped[bool | None] = mapped_column(Boolean)
    container: Mapped[str | None] = mapped_column(String(32))
    shares_file: Mapped[bool | None] = mapped_column(Boolean)  # the file is another row's (0008): counted once


# `catalog list` filters and sorts walk these in the listing's order, sort column then num_iid (migration 0004).
Index("ix_videos_duration", Video.duration, Video.num_iid)
Index("ix_videos_downloaded_at", Video.downloaded_at, Video.num_iid)
Index("ix_videos_size_bytes", Video.size_bytes, Video.num_iid)
Index("ix_videos_video_id", Video.video_id)  # which items use this video; a known video is not stored twice (0005)
Index("ix_videos_sha256", Video.sha256)  # a downloaded file the catalog already holds (0008)
Index("ix_videos_shares_file", Video.shares_file)  # the rows whose file is another's, for the disk figure (0008)


class Item(Base):
    """What is known about one id: its place in the queue and the outcome of lookups and downloads.

    ``state`` and the claim (``claimed_by``, ``lease_until``) change only in ``items.py`` and ``claims.py``.
    """

    __tablename__ = "items"
    __table_args__ = (
        CheckConstraint(_STATE_CHECK, name="state"),
        Index(None, "seq", unique=True),
    )

    num_iid: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    state: Mapped[str] = mapped_column(String(16), default=ItemState.PENDING.value, server_default="pending")
    video_url: Mapped[str | None] = mapped_column(Text)
    cover_url: Mapped[str | None] = mapped_column(Text)
    api_duration: Mapped[float | None] = mapped_column(Float)  # seconds, as the API stated it
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    api_method: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # download attempts
    lookups: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # API lookups spent on it
    last_error: Mapped[str | None] = mapped_column(Text)
    error_kind: Mapped[str | None] = mapped_column(String)  # url_expired, not_mp4, truncated, lookup, ...
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    added_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    checked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # last API lookup
    seq: Mapped[int] = mapped_column(BigInteger)  # insertion order: the queue's tie-break after priority
    deferred_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # a run had to leave it for later
    claimed_by: Mapped[str | None] = mapped_column(Text)  # the worker on it (claims.py), until lease_until
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    title: Mapped[str | None] = mapped_column(Text)  # as the lookup gave them (migration 0005)
    nick: Mapped[str | None] = mapped_column(Text)
    video_id: Mapped[str | None] = mapped_column(String(64))


# The daily selection walks this index in queue order and stops after a quota's worth (see migration 0002).
Index("ix_items_queue", Item.state, Item.priority.desc(), Item.seq)
# Only claimed rows, a few hundred at a time (migration 0003): a worker's renewals and releases find its own; a
# worker with nothing left to claim finds when the others' leases run out.
# Partial on PostgreSQL too (migration 0003 gives postgresql_where); the models leave that out because naming a
# postgresql_* option imports SQLAlchemy's PostgreSQL dialect on every start, 30-50 ms of a read command's budget.
_CLAIMED = Item.claimed_by.is_not(None)
Index("ix_items_claimed_by", Item.claimed_by, sqlite_where=_CLAIMED)
Index("ix_items_leases", Item.state, Item.lease_until, sqlite_where=_CLAIMED)
QUEUE_ORDER = (Item.priority.desc(), Item.seq)  # the queue's order, for every reader and claims.py


class Call(Base):
    """One gateway attempt (``client.CallRecord``): no secret, no signature, no token."""

    __tablename__ = "calls"
    __table_args__ = (Index(None, "app_key", "quota_day"),)

    id: Mapped[int] = mapped_column(AUTOINCREMENT_ID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    app_key: Mapped[str] = mapped_column(String(64))
    quota_day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD in the quota time zone
    method: Mapped[str] = mapped_column(String(64))
    num_iid: Mapped[int | None] = mapped_column(BigInteger)
    outcome: Mapped[str] = mapped_column(String)
    request_id: Mapped[str | None] = mapped_column(String)
    elapsed_ms: Mapped[int] = mapped_column(Integer)


Index("ix_calls_num_iid", Call.num_iid)  # `catalog show`: the calls spent on one id (migration 0004)


class QuotaDay(Base):
    """Calls reserved by one app key on one quota day; ``banned_until`` is set when the platform says 'spent'."""

    __tablename__ = "quota_days"

    app_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD in the quota time zone
    used: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    daily_limit: Mapped[int] = mapped_column(Integer)
    banned_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class VideoHistory(Base):
    """A version of an item's video that a refresh replaced (migration 0005); ``video_path`` is null once pruned."""

    __tablename__ = "video_history"

    id: Mapped[int] = mapped_column(AUTOINCREMENT_ID, primary_key=True, autoincrement=True)
    num_iid: Mapped[int] = mapped_column(BigInteger)
    video_id: Mapped[str | None] = mapped_column(String(64))
    video_path: Mapped[str | None] = mapped_column(Text)
    video_url: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    duration: Mapped[float | None] = mapped_column(Float)
    downloaded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    replaced_at: Mapped[datetime] = mapped_column(UtcDateTime)


Index("ix_video_history_num_iid", VideoHistory.num_iid)


class VideoTotal(Base):
    """Running totals of ``videos`` per whole second of duration, for ``catalog stats``: kept by database
    triggers (migration 0004), never written by this package. ``duration_s`` 3600 holds an hour or more, -1
    the videos of unknown duration."""

    __tablename__ = "video_totals"

    duration_s: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    videos: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    seconds: Mapped[float] = mapped_column(Float)


# ------------------------------------------------------------------------------------------------ rows to records

# The columns each plain record is read from, in the record's field order.
ITEM_ROW_COLUMNS = tuple(Item.__table__.c[f.name] for f in dataclasses.fields(ItemRow))
VIDEO_ROW_COLUMNS = tuple(Video.__table__.c[f.name] for f in dataclasses.fields(VideoRow))


def item_row(mapping: Mapping[Any, Any]) -> ItemRow:
    """An :class:`ItemRow` from a row of :data:`ITEM_ROW_COLUMNS`."""
    return ItemRow(**{**mapping, "state": ItemState(mapping["state"])})


def video_row(mapping: Mapping[Any, Any]) -> VideoRow:
    """A :class:`VideoRow` from a row of :data:`VIDEO_ROW_COLUMNS`."""
    return VideoRow(**mapping)
