"""One copy per video: ``videos.shares_file`` and the indexes that find a video already stored.

* ``shares_file``: true when the row's file is another row's (a hard link to it, or the same path where the file
  system has no hard links): the item uses a video the catalog already held, found by ``video_id`` before a
  download or by ``sha256`` after one. ``catalog stats`` counts such a file once.
* ``ix_videos_sha256``: a downloaded file whose bytes the catalog already holds is found at once.
* ``ix_videos_shares_file``: the few rows that share a file, for the disk figure.

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("videos", sa.Column("shares_file", sa.Boolean(), nullable=True))
    op.create_index("ix_videos_sha256", "videos", ["sha256"])
    op.create_index("ix_videos_shares_file", "videos", ["shares_file"])


def downgrade() -> None:
    op.drop_index("ix_videos_shares_file", table_name="videos")
    op.drop_index("ix_videos_sha256", table_name="videos")
    op.drop_column("videos", "shares_file")
