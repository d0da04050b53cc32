"""registry: a pledge's terms (interest), the lender's acceptance and the default's declaration
and confirmation

Pledges made before keep their status (``active``: their lender took them) and have no interest
rate; a new pledge starts ``proposed`` and states principal, interest and maturity.

Revision ID: 0426
Revises: 0425
Create Date: 2026-12-08 00:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0426"
down_revision: str | Sequence[str] | None = "0425"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("registry_pledge", schema=None) as batch_op:
        batch_op.add_column(sa.Column("interest_rate_bp", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("default_declared_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("default_reason", sa.String(length=500), nullable=True))
        batch_op.add_column(
            sa.Column("default_confirmed_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("default_confirmed_by", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("registry_pledge", schema=None) as batch_op:
        batch_op.drop_column("default_confirmed_by")
        batch_op.drop_column("default_confirmed_at")
        batch_op.drop_column("default_reason")
        batch_op.drop_column("default_declared_at")
        batch_op.drop_column("accepted_at")
        batch_op.drop_column("interest_rate_bp")
