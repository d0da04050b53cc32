"""market: order lines carry their order's hold (reserved_until) for a one-range count

Revision ID: 0302
Revises: 0402
Create Date: 2026-11-25 15:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0302"
down_revision: str | Sequence[str] | None = "0402"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "market_order_line",
        sa.Column("reserved_until", sa.DateTime(timezone=True), nullable=True),
    )
    # Open orders (awaiting payment or processing) hold their tonnes until their hold expires.
    op.execute(
        "UPDATE market_order_line SET reserved_until = ("
        " SELECT o.hold_expires_at FROM market_order o"
        " WHERE o.id = market_order_line.order_id"
        " AND o.status IN ('awaiting_payment', 'processing'))"
    )
    op.create_index(
        "ix_market_order_line_reserved",
        "market_order_line",
        ["listing_id", "reserved_until"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_market_order_line_reserved", table_name="market_order_line")
    op.drop_column("market_order_line", "reserved_until")
