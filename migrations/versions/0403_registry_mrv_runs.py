"""registry: MRV runs of the cooperative portal in the database (were files in the state folder)

Revision ID: 0403
Revises: 0302
Create Date: 2026-11-25 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0403"
down_revision: str | Sequence[str] | None = "0302"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "registry_mrv_run",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("methodology", sa.String(length=121), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("layers", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(length=100), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_params_json", sa.Text(), nullable=True),
        sa.Column("report_json", sa.Text(), nullable=True),
        sa.Column("report_sha256", sa.String(length=64), nullable=True),
        sa.Column("period_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_registry_mrv_run_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["period_id"],
            ["registry_monitoring_period.id"],
            name=op.f("fk_registry_mrv_run_period_id_registry_monitoring_period"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["registry_project.id"],
            name=op.f("fk_registry_mrv_run_project_id_registry_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_mrv_run")),
    )
    with op.batch_alter_table("registry_mrv_run", schema=None) as batch_op:
        batch_op.create_index(
            "ix_registry_mrv_run_project", ["project_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_registry_mrv_run_updated", ["updated_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("registry_mrv_run", schema=None) as batch_op:
        batch_op.drop_index("ix_registry_mrv_run_updated")
        batch_op.drop_index("ix_registry_mrv_run_project")
    op.drop_table("registry_mrv_run")
