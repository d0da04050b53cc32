"""inclusion: an index on the claim time of activity fingerprints, for pruning them

Fingerprints claimed more than the 7-day window (plus a margin) ago can match no acceptable
event, and ``tanhui points prune`` deletes them by claim time (registry.inclusion.service
.retention). On PostgreSQL the index is BRIN: rows arrive in claim order, and a BRIN index costs
next to nothing per claim, where a B-tree would add an index entry to every one.

Revision ID: 0405
Revises: 0404
Create Date: 2026-12-07 11:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0405"
down_revision: str | Sequence[str] | None = "0404"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_inclusion_activity_key_created_at",
        "inclusion_activity_key",
        ["created_at"],
        postgresql_using="brin",
    )


def downgrade() -> None:
    op.drop_index("ix_inclusion_activity_key_created_at", table_name="inclusion_activity_key")
