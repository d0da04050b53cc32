"""kernel: rate-limit counters locked by the check that reads them (auth_throttle)

Sign-in failures, sign-in code sends and wrong codes were counted by reading past rows without a
lock, so parallel attempts all saw the same count. Each limit now has one counter row per
(scope, keyed hash of the identifier), upserted and locked by the check (tanhui.throttle).

Revision ID: 0415
Revises: 0445
Create Date: 2026-12-07 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0415"
down_revision: str | Sequence[str] | None = "0445"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_throttle",
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_auth_throttle")),
    )


def downgrade() -> None:
    op.drop_table("auth_throttle")
