"""registry: measured issuance — what each monitoring period may be issued from

A period records its basis (``measured``: an MRV run the platform performed on the registered
parcels; ``pooled``: the pooling job's report of residents' receipts; ``uploaded``: a report
from outside, evidence only), the run it came from, the run's conservative estimate in whole
tonnes, the methodology's minimum buffer share and the parcels the run covered. A run records
the registered parcels (id, code, geometry SHA-256) it was started on. Periods stored before this
revision are ``uploaded``: issuing from them is refused like any other uploaded report.

Revision ID: 0440
Revises: 0416
Create Date: 2026-12-08 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0440"
down_revision: str | Sequence[str] | None = "0416"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("registry_monitoring_period") as batch:
        batch.add_column(
            sa.Column("basis", sa.String(length=16), nullable=False, server_default="uploaded")
        )
        batch.add_column(sa.Column("mrv_run_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("estimate_t", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("min_buffer_share_bp", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("coverage_json", sa.Text(), nullable=True))
    with op.batch_alter_table("registry_mrv_run") as batch:
        batch.add_column(sa.Column("parcels_json", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("registry_mrv_run") as batch:
        batch.drop_column("parcels_json")
    with op.batch_alter_table("registry_monitoring_period") as batch:
        batch.drop_column("coverage_json")
        batch.drop_column("min_buffer_share_bp")
        batch.drop_column("estimate_t")
        batch.drop_column("mrv_run_id")
        batch.drop_column("basis")
