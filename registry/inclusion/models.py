"""Tables of carbon inclusion (碳普惠): data partners and their keys, signed event batches,
accepted events (each one a resident's carbon receipt), rejections, activity fingerprints for
city-wide deduplication, daily usage against caps, administrator-added factor versions, and the
monthly pools of residents' reductions.

Quantities are stored in thousandths of their unit (``quantity_milli``), reductions in grams and
points as integers; factors as decimal strings exactly as published.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from tanhui.db import BigIntPK, UTCDateTime, new_id, utcnow


class PartnerKeyKind(StrEnum):
    hmac = "hmac"  # a shared secret: X-Tanhui-Signature v1 = HMAC-SHA256
    ed25519 = "ed25519"  # the partner's public key: X-Tanhui-Signature ed25519 = signature


class InclusionPartner(SQLModel, table=True):
    """An organisation allowed to report residents' behaviours for some scenarios."""

    __tablename__ = "inclusion_partner"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id", unique=True)
    scenarios: str = Field(sa_type=String(400), description="comma-separated scenario names")
    active: bool = True
    # A citizen-card issuer (市民卡公司): its signed attestation proves who holds a card.
    issues_citizen_cards: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def scenario_list(self) -> list[str]:
        return [item for item in self.scenarios.split(",") if item]


class InclusionPartnerKey(SQLModel, table=True):
    """A key a partner signs batches with; several may be active while one is rotated out."""

    __tablename__ = "inclusion_partner_key"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    partner_id: uuid.UUID = Field(foreign_key="inclusion_partner.id", index=True)
    kind: PartnerKeyKind = Field(sa_type=String(16))
    secret_sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    public_key: str | None = Field(default=None, sa_type=String(64), description="base64 raw")
    prefix: str = Field(sa_type=String(16), description="recognisable start, safe to show")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class InclusionBatch(SQLModel, table=True):
    """One signed request to ``POST /points/events``; its signature may be used only once."""

    __tablename__ = "inclusion_batch"
    __table_args__ = (
        UniqueConstraint(
            "partner_id", "signature_hash", name="uq_inclusion_batch_partner_signature"
        ),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    partner_id: uuid.UUID = Field(foreign_key="inclusion_partner.id", index=True)
    key_id: uuid.UUID = Field(foreign_key="inclusion_partner_key.id")
    signature_hash: str = Field(sa_type=String(64))
    signed_at: datetime = Field(sa_type=UTCDateTime)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    body_sha256: str = Field(sa_type=String(64))
    events: int = 0
    accepted: int = 0
    rejected: int = 0


class InclusionEvent(SQLModel, table=True):
    """An accepted behaviour: the resident's carbon receipt.

    The figures are those of the factor version and points rate in force when it happened, kept
    here as they were applied (a later version never changes a receipt). Indexes are kept to
    what the hot path needs (ADR 0053): the monthly pooling and the admin's batch views scan.
    """

    __tablename__ = "inclusion_event"
    __table_args__ = (
        UniqueConstraint("partner_id", "partner_event_id", name="uq_inclusion_event_partner_event"),
        Index("ix_inclusion_event_resident_occurred", "resident_id", "occurred_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    batch_id: uuid.UUID = Field(foreign_key="inclusion_batch.id")
    partner_id: uuid.UUID = Field(foreign_key="inclusion_partner.id")
    partner_event_id: str = Field(sa_type=String(100))
    resident_id: uuid.UUID = Field(foreign_key="resident.id")
    scenario: str = Field(sa_type=String(32))
    variant: str = Field(default="", sa_type=String(32))
    quantity_milli: int = Field(sa_type=BigInteger)
    duration_s: int | None = None
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    local_day: date = Field(sa_type=Date)
    grams: int = Field(sa_type=BigInteger)
    points: int = Field(sa_type=BigInteger)
    factor_version: str = Field(sa_type=String(16))
    grams_per_unit: str = Field(sa_type=String(24))
    points_rate_version: str = Field(sa_type=String(16))
    points_per_kg: int
    journal_entry_id: uuid.UUID | None = Field(default=None, description="wallet_entry.id")
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class InclusionRejection(SQLModel, table=True):
    """A refused event and why (kept for the partner's statistics and fraud review)."""

    __tablename__ = "inclusion_rejection"

    id: int | None = Field(default=None, sa_type=BigIntPK, primary_key=True)
    batch_id: uuid.UUID = Field(foreign_key="inclusion_batch.id", index=True)
    partner_event_id: str = Field(sa_type=String(100))
    reason: str = Field(sa_type=String(32))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class InclusionActivityKey(SQLModel, table=True):
    """A canonical fingerprint of an act, owned by the partner that reported it first."""

    __tablename__ = "inclusion_activity_key"
    # Pruned by claim time (service.retention); a BRIN index on PostgreSQL costs next to
    # nothing per claim because rows arrive in claim order.
    __table_args__ = (
        Index("ix_inclusion_activity_key_created_at", "created_at", postgresql_using="brin"),
    )

    key: str = Field(sa_type=String(64), primary_key=True)
    partner_id: uuid.UUID = Field(foreign_key="inclusion_partner.id")
    event_id: uuid.UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class InclusionDailyUsage(SQLModel, table=True):
    """How much of a scenario a resident has been credited on a day (the daily cap's counter)."""

    __tablename__ = "inclusion_daily_usage"

    resident_id: uuid.UUID = Field(foreign_key="resident.id", primary_key=True)
    scenario: str = Field(sa_type=String(32), primary_key=True)
    variant: str = Field(sa_type=String(32), primary_key=True)
    day: date = Field(sa_type=Date, primary_key=True)
    quantity_milli: int = Field(default=0, sa_type=BigInteger)


class InclusionFactorVersion(SQLModel, table=True):
    """A factor version added by a platform administrator (the built-in ones live in code)."""

    __tablename__ = "inclusion_factor_version"
    __table_args__ = (
        UniqueConstraint("scenario", "variant", "version", name="uq_inclusion_factor_version_key"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    scenario: str = Field(sa_type=String(32))
    variant: str = Field(default="", sa_type=String(32))
    version: str = Field(sa_type=String(16))
    unit: str = Field(sa_type=String(16))
    grams_per_unit: str = Field(sa_type=String(24))
    baseline: str = Field(sa_type=String(500))
    source: str = Field(sa_type=String(500))
    valid_from: date = Field(sa_type=Date)
    daily_cap: str = Field(sa_type=String(24))
    status: str = Field(sa_type=String(16))
    bonus_points_per_unit: int = 0
    notes: str = Field(default="", sa_type=String(500))
    created_by: str = Field(sa_type=String(100))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PoolStatus(StrEnum):
    pooled = "pooled"  # grams moved into the pool, whole tonnes claimed
    submitted = "submitted"  # a monitoring period of the RES project awaits the authority
    issued = "issued"  # whole tonnes issued as a batch, the remainder carried over


class InclusionPool(SQLModel, table=True):
    """One month of residents' reductions pooled into the residents' (RES) project."""

    __tablename__ = "inclusion_pool"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    month: str = Field(sa_type=String(7), unique=True, description="YYYY-MM")
    residents: int = 0
    pooled_g: int = Field(default=0, sa_type=BigInteger, description="residents' grams")
    carried_in_g: int = Field(default=0, sa_type=BigInteger)
    tonnes: int = Field(default=0, sa_type=BigInteger, description="whole tonnes issued")
    carried_out_g: int = Field(default=0, sa_type=BigInteger)
    status: PoolStatus = Field(default=PoolStatus.pooled, sa_type=String(16))
    project_id: uuid.UUID | None = None
    monitoring_period_id: uuid.UUID | None = None
    batch_id: uuid.UUID | None = None
    serial_first: str | None = Field(default=None, sa_type=String(80))
    serial_last: str | None = Field(default=None, sa_type=String(80))
    journal_entry_id: uuid.UUID | None = Field(default=None, foreign_key="wallet_entry.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    issued_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class InclusionPoolShare(SQLModel, table=True):
    """How many grams of one resident went into a pool."""

    __tablename__ = "inclusion_pool_share"

    pool_id: uuid.UUID = Field(foreign_key="inclusion_pool.id", primary_key=True)
    resident_id: uuid.UUID = Field(foreign_key="resident.id", primary_key=True, index=True)
    grams: int = Field(sa_type=BigInteger)
