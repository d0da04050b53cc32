"""wallet: the issuance accounts (system:issuance, system:points_issuance) become hot accounts

Both are only debited, have no floor and are debited by every carbon-inclusion batch (and every
issuance), so a single balance row made concurrent batches queue on it until commit. They get
``HOT_SHARDS`` (16) balance rows like the fee and clearing accounts (ADR 0011, ADR 0073): the new
rows start at zero, so every balance (the sum of the rows) is unchanged.

Revision ID: 0404
Revises: 0403
Create Date: 2026-11-25 18:30:00
"""

# ruff: noqa: S608 - every statement is built from this file's constants

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0404"
down_revision: str | Sequence[str] | None = "0403"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HOT_SHARDS = 16
OWNERS = "('system:issuance', 'system:points_issuance')"


def upgrade() -> None:
    for shard in range(1, HOT_SHARDS):
        op.execute(
            sa.text(
                "INSERT INTO wallet_balance (account_id, shard, posted_debits, posted_credits,"
                " pending_debits, pending_credits, frozen)"
                f" SELECT id, {shard}, 0, 0, 0, 0, frozen FROM wallet_account"
                f" WHERE owner IN {OWNERS} AND shards = 1"
            )
        )
    op.execute(
        sa.text(
            f"UPDATE wallet_account SET shards = {HOT_SHARDS}"
            f" WHERE owner IN {OWNERS} AND shards = 1"
        )
    )


def downgrade() -> None:
    accounts = f"SELECT id FROM wallet_account WHERE owner IN {OWNERS} AND shards > 1"
    columns = ("posted_debits", "posted_credits", "pending_debits", "pending_credits")
    sums = ", ".join(
        f"{column} = (SELECT sum(s.{column}) FROM wallet_balance AS s"
        f" WHERE s.account_id = wallet_balance.account_id)"
        for column in columns
    )
    op.execute(
        sa.text(f"UPDATE wallet_balance SET {sums} WHERE shard = 0 AND account_id IN ({accounts})")
    )
    op.execute(
        sa.text(f"DELETE FROM wallet_balance WHERE shard > 0 AND account_id IN ({accounts})")
    )
    op.execute(
        sa.text(f"UPDATE wallet_account SET shards = 1 WHERE owner IN {OWNERS} AND shards > 1")
    )
