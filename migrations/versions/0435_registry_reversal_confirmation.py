"""registry: reversals are proposed then confirmed by the authority; a project owes the losses
beyond its own buffer (reversal_debt_t), which block its issuance until made good

Reversals recorded before this revision were applied at once: they are ``confirmed``.

Revision ID: 0435
Revises: 0440
Create Date: 2026-12-08 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0435"
down_revision: str | Sequence[str] | None = "0440"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("registry_reversal", sa.Column("status", sa.String(16), nullable=True))
    op.add_column("registry_reversal", sa.Column("confirmed_by", sa.String(100), nullable=True))
    op.add_column(
        "registry_reversal",
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.execute("UPDATE registry_reversal SET status = 'confirmed'")
    with op.batch_alter_table("registry_reversal") as batch:
        batch.alter_column("status", existing_type=sa.String(16), nullable=False)
    op.add_column("registry_project", sa.Column("reversal_debt_t", sa.BigInteger(), nullable=True))
    op.execute("UPDATE registry_project SET reversal_debt_t = 0")
    with op.batch_alter_table("registry_project") as batch:
        batch.alter_column("reversal_debt_t", existing_type=sa.BigInteger(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("registry_project") as batch:
        batch.drop_column("reversal_debt_t")
    with op.batch_alter_table("registry_reversal") as batch:
        batch.drop_column("confirmed_at")
        batch.drop_column("confirmed_by")
        batch.drop_column("status")
