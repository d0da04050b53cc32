"""inclusion: partners that issue citizen cards (their attestations prove a card's holder)

A resident could link any citizen-card number and receive the points reported for it. A card is
now linked only with an attestation signed by a partner that issues citizen cards.

Revision ID: 0416
Revises: 0415
Create Date: 2026-12-08 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0416"
down_revision: str | Sequence[str] | None = "0415"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inclusion_partner") as batch_op:
        batch_op.add_column(
            sa.Column(
                "issues_citizen_cards", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    with op.batch_alter_table("inclusion_partner") as batch_op:
        batch_op.alter_column("issues_citizen_cards", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("inclusion_partner") as batch_op:
        batch_op.drop_column("issues_citizen_cards")
