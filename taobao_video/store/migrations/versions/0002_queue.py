"""The queue: items.seq (insertion order), items.deferred_at, an index in queue order, a cheaper state CHECK.

``seq`` orders the queue after ``priority``; existing rows get 1, 2, 3… in (added_at, num_iid) order. Online the
backfill reads the ids in that order once (8 bytes each) and updates them in batches, which is linear; offline
(``--sql``) it is a correlated count, which any database runs but which is quadratic on large tables.

The daily selection reads ``WHERE state = ? ORDER BY priority DESC, seq`` and stops after a quota's worth: with
``priority DESC`` in the index both SQLite and PostgreSQL walk it in that order (a plain ascending index makes
SQLite sort every row of the state first: 0.5 s instead of 1 ms on a million rows). The unique index on ``seq``
makes ``max(seq)``, taken once per enqueued batch, a single index probe, and keeps the order total.

The state CHECK keeps its rule but is written ``state = 'pending' OR …``: SQLite evaluates ``state IN (six
values)`` by building a temporary b-tree for every row it checks, 3 s per million inserted items.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 5000
# The same rule as 0001's "state IN (...)", in the form SQLite checks without building a temporary b-tree per row.
_STATE_CHECK = (
    "state = 'pending' OR state = 'resolved' OR state = 'no_video' OR state = 'not_found' OR state = 'done' "
    "OR state = 'failed'"
)
_STATES_0001 = "state IN ('pending', 'resolved', 'no_video', 'not_found', 'done', 'failed')"

_items = sa.table(
    "items",
    sa.column("num_iid", sa.BigInteger()),
    sa.column("added_at", sa.DateTime(timezone=True)),
    sa.column("seq", sa.BigInteger()),
)


def upgrade() -> None:
    op.drop_index("ix_items_state_priority_added_at", table_name="items")
    op.add_column("items", sa.Column("seq", sa.BigInteger(), nullable=True))
    op.add_column("items", sa.Column("deferred_at", sa.DateTime(timezone=True), nullable=True))
    if context.is_offline_mode():
        _backfill_seq_in_sql()
    else:
        _backfill_seq()
    # On SQLite this recreates the table (ALTER COLUMN does not exist there), so the CHECK is rewritten for free.
    with op.batch_alter_table("items") as batch:
        batch.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch.drop_constraint(op.f("ck_items_state"), type_="check")
        batch.create_check_constraint(op.f("ck_items_state"), _STATE_CHECK)
    op.create_index("ix_items_queue", "items", ["state", sa.text("priority DESC"), "seq"])
    op.create_index("ix_items_seq", "items", ["seq"], unique=True)


def _backfill_seq() -> None:
    """seq = 1, 2, 3… in (added_at, num_iid) order: one ordered read, then batched updates by primary key."""
    bind = op.get_bind()
    ordered = array("q", bind.scalars(sa.select(_items.c.num_iid).order_by(_items.c.added_at, _items.c.num_iid)))
    statement = sa.update(_items).where(_items.c.num_iid == sa.bindparam("b_num_iid")).values(seq=sa.bindparam("b_seq"))
    for start in range(0, len(ordered), _BATCH):
        rows = [
            {"b_num_iid": num_iid, "b_seq": start + offset}
            for offset, num_iid in enumerate(ordered[start : start + _BATCH], start=1)
        ]
        bind.execute(statement, rows)


def _backfill_seq_in_sql() -> None:
    """The same numbering as one portable statement, for ``alembic upgrade --sql``."""
    earlier = _items.alias("earlier")
    rank = (
        sa.select(sa.func.count())
        .select_from(earlier)
        .where(
            sa.or_(
                earlier.c.added_at < _items.c.added_at,
                sa.and_(earlier.c.added_at == _items.c.added_at, earlier.c.num_iid <= _items.c.num_iid),
            )
        )
        .scalar_subquery()
    )
    op.execute(sa.update(_items).values(seq=rank))


def downgrade() -> None:
    op.drop_index("ix_items_seq", table_name="items")
    op.drop_index("ix_items_queue", table_name="items")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("deferred_at")
        batch.drop_column("seq")
        batch.drop_constraint(op.f("ck_items_state"), type_="check")
        batch.create_check_constraint(op.f("ck_items_state"), _STATES_0001)
    op.create_index("ix_items_state_priority_added_at", "items", ["state", "priority", "added_at"])
