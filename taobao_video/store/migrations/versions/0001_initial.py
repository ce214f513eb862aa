"""Initial schema: videos, items, calls, quota_days.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATES = "'pending', 'resolved', 'no_video', 'not_found', 'done', 'failed'"


def upgrade() -> None:
    op.create_table(
        "videos",
        sa.Column("num_iid", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("video_path", sa.Text(), nullable=False),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("video_url", sa.Text(), nullable=False),
        sa.Column("cover_url", sa.Text(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("api_method", sa.String(length=64), nullable=False),
        sa.Column("downloaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("num_iid", name=op.f("pk_videos")),
    )
    op.create_table(
        "items",
        sa.Column("num_iid", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("state", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("video_url", sa.Text(), nullable=True),
        sa.Column("cover_url", sa.Text(), nullable=True),
        sa.Column("api_duration", sa.Float(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("api_method", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lookups", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("error_kind", sa.String(), nullable=True),
        sa.Column("priority", sa.Integer(), server_default="0", nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"state IN ({_STATES})", name=op.f("ck_items_state")),
        sa.PrimaryKeyConstraint("num_iid", name=op.f("pk_items")),
    )
    op.create_index(op.f("ix_items_state_priority_added_at"), "items", ["state", "priority", "added_at"])
    op.create_table(
        "calls",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("app_key", sa.String(length=64), nullable=False),
        sa.Column("quota_day", sa.String(length=10), nullable=False),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("num_iid", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("request_id", sa.String(), nullable=True),
        sa.Column("elapsed_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
    )
    op.create_index(op.f("ix_calls_app_key_quota_day"), "calls", ["app_key", "quota_day"])
    op.create_table(
        "quota_days",
        sa.Column("app_key", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("used", sa.Integer(), server_default="0", nullable=False),
        sa.Column("daily_limit", sa.Integer(), nullable=False),
        sa.Column("banned_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("app_key", "day", name=op.f("pk_quota_days")),
    )


def downgrade() -> None:
    op.drop_table("quota_days")
    op.drop_index(op.f("ix_calls_app_key_quota_day"), table_name="calls")
    op.drop_table("calls")
    op.drop_index(op.f("ix_items_state_priority_added_at"), table_name="items")
    op.drop_table("items")
    op.drop_table("videos")
