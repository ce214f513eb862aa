"""Media records and providers: product facts, video identity, covers on disk, probe columns, replaced versions,
and the ``not_visible`` state.

* ``items`` and ``videos`` gain ``title``, ``nick`` (the seller's nick or shop id) and ``video_id`` (the platform's
  id of the stored video: one video may back many items). ``ix_videos_video_id`` finds the items that use a video
  and lets a second item with a known ``video_id`` share the stored file without a download.
* ``videos`` gains the cover on disk (``cover_path`` relative like ``video_path``, its pixel size, and the last
  cover failure in ``cover_error``: a cover never fails its video), and what the media probe read from the file
  (``codec``, ``bitrate`` in bits per second, ``fps``, ``has_audio``, ``container``).
* ``video_history``: the versions a refresh replaced, with ``replaced_at``; ``video_path`` is null once the file
  was pruned.
* ``items.state`` may be ``not_visible``: the seller channel's answer left the id out (another shop's item, or an
  unknown one: the platform does not say which).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATES_0002 = ("pending", "resolved", "no_video", "not_found", "done", "failed")
_STATES_0005 = (*_STATES_0002, "not_visible")


def _check(states: Sequence[str]) -> str:
    return " OR ".join(f"state = '{state}'" for state in states)


def _facts() -> list[sa.Column[Any]]:
    return [
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("nick", sa.Text(), nullable=True),
        sa.Column("video_id", sa.String(length=64), nullable=True),
    ]


_CLAIMED = sa.text("claimed_by IS NOT NULL")


def _state_check(states: Sequence[str]) -> None:
    """Rewrite the state CHECK. SQLite recreates the table for it, and its copy of an index loses what reflection
    cannot see (``priority DESC``, a partial index's WHERE), so the indexes are dropped first and made again after.
    ``videos`` is never recreated: its triggers (0004) stay."""
    op.drop_index("ix_items_leases", table_name="items")
    op.drop_index("ix_items_claimed_by", table_name="items")
    op.drop_index("ix_items_queue", table_name="items")
    with op.batch_alter_table("items") as batch:
        batch.drop_constraint(op.f("ck_items_state"), type_="check")
        batch.create_check_constraint(op.f("ck_items_state"), _check(states))
    op.create_index("ix_items_queue", "items", ["state", sa.text("priority DESC"), "seq"])
    op.create_index("ix_items_claimed_by", "items", ["claimed_by"], sqlite_where=_CLAIMED, postgresql_where=_CLAIMED)
    op.create_index(
        "ix_items_leases", "items", ["state", "lease_until"], sqlite_where=_CLAIMED, postgresql_where=_CLAIMED
    )


def upgrade() -> None:
    for column in _facts():
        op.add_column("items", column)
    _state_check(_STATES_0005)
    for column in [
        *_facts(),
        sa.Column("cover_path", sa.Text(), nullable=True),
        sa.Column("cover_width", sa.Integer(), nullable=True),
        sa.Column("cover_height", sa.Integer(), nullable=True),
        sa.Column("cover_error", sa.Text(), nullable=True),
        sa.Column("codec", sa.String(length=32), nullable=True),
        sa.Column("bitrate", sa.BigInteger(), nullable=True),
        sa.Column("fps", sa.Float(), nullable=True),
        sa.Column("has_audio", sa.Boolean(), nullable=True),
        sa.Column("container", sa.String(length=32), nullable=True),
    ]:
        op.add_column("videos", column)
    op.create_index("ix_videos_video_id", "videos", ["video_id"])
    op.create_table(
        "video_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("num_iid", sa.BigInteger(), nullable=False),
        sa.Column("video_id", sa.String(length=64), nullable=True),
        sa.Column("video_path", sa.Text(), nullable=True),
        sa.Column("video_url", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("downloaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_video_history")),
    )
    op.create_index("ix_video_history_num_iid", "video_history", ["num_iid"])


def downgrade() -> None:
    op.drop_index("ix_video_history_num_iid", table_name="video_history")
    op.drop_table("video_history")
    op.drop_index("ix_videos_video_id", table_name="videos")
    # SQLite (3.35+) and PostgreSQL both drop a plain column in place: no copy, the triggers stay.
    for name in ("container", "has_audio", "fps", "bitrate", "codec", "cover_error", "cover_height", "cover_width"):
        op.drop_column("videos", name)
    for name in ("cover_path", "video_id", "nick", "title"):
        op.drop_column("videos", name)
    op.execute(sa.text("UPDATE items SET state = 'not_found' WHERE state = 'not_visible'"))
    _state_check(_STATES_0002)
    for name in ("video_id", "nick", "title"):
        op.drop_column("items", name)
