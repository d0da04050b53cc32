"""registry: durable ground claims, verifier area acceptances, one parcel per certificate number

- ``registry_ground_claim``: a project's claim on a parcel's ground for its crediting period,
  which no status change deletes; filled here from every parcel already in a project.
- ``registry_area_acceptance``: a verifier's acceptance of a registered area off the polygon.
- ``registry_parcel.forest_right_cert``: renormalised (NFKC, bracket and punctuation variants,
  spaces, case) and unique. Two parcels with one certificate number stop the upgrade with
  their codes: which one holds the certificate is for a person to decide.
- ``registry_project.credits_*``: the authority's decision on a terminated project's credits.

Revision ID: 0430
Revises: 0426
Create Date: 2026-12-07 23:30:00
"""

import re
import unicodedata
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0430"
down_revision: str | Sequence[str] | None = "0426"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# frozen copy of registry.service.parcels.normalise_cert as of this revision
_BRACKETS = str.maketrans(
    {
        **dict.fromkeys("[{〔【〖〘〚〈《「『⦅", "("),
        **dict.fromkeys("]}〕】〗〙〛〉》」』⦆", ")"),
        **dict.fromkeys("‐‑‒–—―−﹣~〜", "-"),
        **dict.fromkeys("·・･•。｡", "."),
        **dict.fromkeys("、，", ","),
        **dict.fromkeys("\"'‘’“”`´", ""),
    }
)


def _normalise(raw: str) -> str | None:
    value = unicodedata.normalize("NFKC", raw).translate(_BRACKETS)
    value = re.sub(r"\s+", "", value).upper()
    if not value or value in {"NONE", "NAN", "NULL"}:
        return None
    return value[:64]


def upgrade() -> None:
    op.create_table(
        "registry_ground_claim",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("parcel_id", sa.Uuid(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("geometry_wkb", sa.LargeBinary(), nullable=False),
        sa.Column("min_x", sa.Float(), nullable=False),
        sa.Column("min_y", sa.Float(), nullable=False),
        sa.Column("max_x", sa.Float(), nullable=False),
        sa.Column("max_y", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["parcel_id"],
            ["registry_parcel.id"],
            name=op.f("fk_registry_ground_claim_parcel_id_registry_parcel"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["registry_project.id"],
            name=op.f("fk_registry_ground_claim_project_id_registry_project"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_ground_claim")),
        sa.UniqueConstraint("project_id", "parcel_id", name="uq_registry_ground_claim"),
    )
    op.create_index(
        "ix_registry_ground_claim_bbox",
        "registry_ground_claim",
        ["min_x", "max_x", "min_y", "max_y"],
    )
    op.create_index(
        op.f("ix_registry_ground_claim_project_id"), "registry_ground_claim", ["project_id"]
    )
    op.create_index(
        op.f("ix_registry_ground_claim_parcel_id"), "registry_ground_claim", ["parcel_id"]
    )
    op.create_table(
        "registry_area_acceptance",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("cooperative_id", sa.Uuid(), nullable=False),
        sa.Column("parcel_code", sa.String(length=64), nullable=False),
        sa.Column("registered_area_centimu", sa.BigInteger(), nullable=False),
        sa.Column("area_m2", sa.BigInteger(), nullable=False),
        sa.Column("verifier_id", sa.Uuid(), nullable=False),
        sa.Column("accepted_by", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cooperative_id"],
            ["organisation.id"],
            name=op.f("fk_registry_area_acceptance_cooperative_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["verifier_id"],
            ["organisation.id"],
            name=op.f("fk_registry_area_acceptance_verifier_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_area_acceptance")),
        sa.UniqueConstraint(
            "cooperative_id",
            "parcel_code",
            "registered_area_centimu",
            "area_m2",
            name="uq_registry_area_acceptance",
        ),
    )
    op.create_index(
        op.f("ix_registry_area_acceptance_cooperative_id"),
        "registry_area_acceptance",
        ["cooperative_id"],
    )
    with op.batch_alter_table("registry_project", schema=None) as batch_op:
        batch_op.add_column(sa.Column("credits_decision", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("credits_decision_reason", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("credits_decided_at", sa.DateTime(timezone=True), nullable=True)
        )

    connection = op.get_bind()
    _renormalise_certificates(connection)
    with op.batch_alter_table("registry_parcel", schema=None) as batch_op:
        batch_op.drop_index("ix_registry_parcel_forest_right_cert")
        batch_op.create_index(
            "ix_registry_parcel_forest_right_cert", ["forest_right_cert"], unique=True
        )
    _claim_existing_ground(connection)


def _renormalise_certificates(connection: sa.Connection) -> None:
    parcel = sa.table(
        "registry_parcel",
        sa.column("id", sa.Uuid()),
        sa.column("code", sa.String()),
        sa.column("forest_right_cert", sa.String()),
    )
    rows = connection.execute(
        sa.select(parcel.c.id, parcel.c.code, parcel.c.forest_right_cert).where(
            parcel.c.forest_right_cert.is_not(None)
        )
    ).all()
    seen: dict[str, str] = {}
    clashes: list[str] = []
    for parcel_id, code, cert in rows:
        value = _normalise(cert)
        if value is not None and value in seen:
            clashes.append(f"{value}: parcels {seen[value]} and {code}")
        elif value is not None:
            seen[value] = code
        if value != cert:
            connection.execute(
                parcel.update().where(parcel.c.id == parcel_id).values(forest_right_cert=value)
            )
    if clashes:
        raise RuntimeError(
            "forest-right certificate numbers registered twice; settle which parcel holds each "
            "before upgrading: " + "; ".join(clashes[:50])
        )


def _claim_existing_ground(connection: sa.Connection) -> None:
    parcel = sa.table(
        "registry_parcel",
        sa.column("id", sa.Uuid()),
        sa.column("geometry_wkb", sa.LargeBinary()),
        sa.column("min_x", sa.Float()),
        sa.column("min_y", sa.Float()),
        sa.column("max_x", sa.Float()),
        sa.column("max_y", sa.Float()),
    )
    project = sa.table(
        "registry_project",
        sa.column("id", sa.Uuid()),
        sa.column("crediting_start", sa.Date()),
        sa.column("crediting_end", sa.Date()),
    )
    link = sa.table(
        "registry_project_parcel",
        sa.column("project_id", sa.Uuid()),
        sa.column("parcel_id", sa.Uuid()),
    )
    claim = sa.table(
        "registry_ground_claim",
        sa.column("id", sa.Uuid()),
        sa.column("project_id", sa.Uuid()),
        sa.column("parcel_id", sa.Uuid()),
        sa.column("starts_on", sa.Date()),
        sa.column("ends_on", sa.Date()),
        sa.column("geometry_wkb", sa.LargeBinary()),
        sa.column("min_x", sa.Float()),
        sa.column("min_y", sa.Float()),
        sa.column("max_x", sa.Float()),
        sa.column("max_y", sa.Float()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    rows = connection.execute(
        sa.select(
            link.c.project_id,
            link.c.parcel_id,
            project.c.crediting_start,
            project.c.crediting_end,
            parcel.c.geometry_wkb,
            parcel.c.min_x,
            parcel.c.min_y,
            parcel.c.max_x,
            parcel.c.max_y,
        )
        .join(project, project.c.id == link.c.project_id)
        .join(parcel, parcel.c.id == link.c.parcel_id)
    ).all()
    values = [
        {
            "id": uuid.uuid4(),
            "project_id": row[0],
            "parcel_id": row[1],
            "starts_on": row[2],
            "ends_on": row[3],
            "geometry_wkb": row[4],
            "min_x": row[5],
            "min_y": row[6],
            "max_x": row[7],
            "max_y": row[8],
            "created_at": now,
        }
        for row in rows
    ]
    for start in range(0, len(values), 1000):
        connection.execute(claim.insert(), values[start : start + 1000])


def downgrade() -> None:
    with op.batch_alter_table("registry_parcel", schema=None) as batch_op:
        batch_op.drop_index("ix_registry_parcel_forest_right_cert")
        batch_op.create_index(
            "ix_registry_parcel_forest_right_cert", ["forest_right_cert"], unique=False
        )
    with op.batch_alter_table("registry_project", schema=None) as batch_op:
        batch_op.drop_column("credits_decided_at")
        batch_op.drop_column("credits_decision_reason")
        batch_op.drop_column("credits_decision")
    op.drop_index(
        op.f("ix_registry_area_acceptance_cooperative_id"), table_name="registry_area_acceptance"
    )
    op.drop_table("registry_area_acceptance")
    op.drop_index(op.f("ix_registry_ground_claim_parcel_id"), table_name="registry_ground_claim")
    op.drop_index(op.f("ix_registry_ground_claim_project_id"), table_name="registry_ground_claim")
    op.drop_index("ix_registry_ground_claim_bbox", table_name="registry_ground_claim")
    op.drop_table("registry_ground_claim")
