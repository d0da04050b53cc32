"""market: verified buyers (unified social credit code confirmed by platform staff)

Only a verified organisation may pay by bank transfer, whose order holds tonnes for days.

Revision ID: 0425
Revises: 0435
Create Date: 2026-12-07 23:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0425"
down_revision: str | Sequence[str] | None = "0435"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "market_verified_buyer",
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("verified_by", sa.String(length=100), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_market_verified_buyer_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("organisation_id", name=op.f("pk_market_verified_buyer")),
        sa.UniqueConstraint("uscc", name=op.f("uq_market_verified_buyer_uscc")),
    )


def downgrade() -> None:
    op.drop_table("market_verified_buyer")
