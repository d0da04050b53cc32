"""Tables of the registry package.

Amounts are integers in their smallest unit: money in fen, credits in whole tonnes, sequestration
rates in grams per mu per year, registered areas in hundredths of a mu, computed areas in m².
Parcel outlines are kept twice: GeoJSON in WGS84 (what came in, rounded to 1 cm) and WKB in
EPSG:4549 with its bounding box, which the overlap check reads.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

import tanhui.models  # noqa: F401 - defines the organisation table our foreign keys name
from registry.serials import ProjectType
from tanhui.db import BigIntPK, UTCDateTime, new_id, utcnow

__all__ = ["ProjectType"]


class LandType(StrEnum):
    bamboo = "bamboo"
    wetland = "wetland"
    other = "other"


class ContractStatus(StrEnum):
    active = "active"
    terminated = "terminated"


class PriceRule(StrEnum):
    ets_indexed = "ets_indexed"  # mean ETS close of the N trading days before settlement
    fixed = "fixed"


class ProjectStatus(StrEnum):
    draft = "draft"
    collected = "collected"  # every parcel under an active collection contract
    submitted = "submitted"  # a monitoring period with its MRV report awaits the verifier
    certified = "certified"  # the verifier signed the report hash
    filed = "filed"  # the authority registered the certified quantity
    issued = "issued"  # credits of the latest monitoring period are issued
    suspended = "suspended"
    terminated = "terminated"


class PeriodStatus(StrEnum):
    submitted = "submitted"
    returned = "returned"
    certified = "certified"
    filed = "filed"
    issued = "issued"
    withdrawn = "withdrawn"  # the project was terminated before issuance


class BlockState(StrEnum):
    held = "held"
    listed = "listed"  # offered for sale (market): cannot move except by the sale
    pledged = "pledged"
    retired = "retired"
    cancelled = "cancelled"  # buffer credits cancelled after a reversal


class RetirementPurpose(StrEnum):
    annual_neutrality = "annual_neutrality"
    event_neutrality = "event_neutrality"
    product_footprint = "product_footprint"
    ecological_compensation = "ecological_compensation"
    judicial_restoration = "judicial_restoration"


class PledgeStatus(StrEnum):
    proposed = "proposed"  # the pledgor offered it; the lender has not accepted the terms
    active = "active"  # the lender accepted: the loan runs
    default_declared = "default_declared"  # the lender says the borrower defaulted
    defaulted = "defaulted"  # the pledgor's cooperative or the platform confirmed it
    released = "released"
    enforced = "enforced"


OPEN_PLEDGE_STATUSES = (
    PledgeStatus.proposed,
    PledgeStatus.active,
    PledgeStatus.default_declared,
    PledgeStatus.defaulted,
)


class ReversalStatus(StrEnum):
    proposed = "proposed"  # by the cooperative or a verifier; nothing cancelled yet
    confirmed = "confirmed"  # by the authority: the buffer cancelled, any excess owed
    rejected = "rejected"


class LossCause(StrEnum):
    fire = "fire"
    pest = "pest"
    typhoon = "typhoon"
    illegal_harvest = "illegal_harvest"


# --- farmers, parcels, contracts ----------------------------------------------------------


class Household(SQLModel, table=True):
    """A farmer household; national id, phone and bank account are sealed (tanhui.pii)."""

    __tablename__ = "registry_household"
    __table_args__ = (
        UniqueConstraint(
            "cooperative_id", "national_id_index", name="uq_registry_household_coop_national_id"
        ),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    cooperative_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    name: str = Field(sa_type=String(100))
    village: str = Field(sa_type=String(100), index=True)
    national_id_sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    national_id_index: str = Field(sa_type=String(64), index=True)
    phone_sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    phone_index: str | None = Field(default=None, sa_type=String(64), index=True)
    bank_account_sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    bank_account_last4: str | None = Field(default=None, sa_type=String(4))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Parcel(SQLModel, table=True):
    __tablename__ = "registry_parcel"
    __table_args__ = (
        UniqueConstraint("cooperative_id", "code", name="uq_registry_parcel_coop_code"),
        Index("ix_registry_parcel_bbox", "min_x", "max_x", "min_y", "max_y"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    cooperative_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    code: str = Field(sa_type=String(64), description="the cooperative's own parcel number")
    land_type: LandType = Field(sa_type=String(16))
    village: str = Field(default="", sa_type=String(100))
    forest_right_cert: str | None = Field(
        default=None,
        sa_type=String(64),
        index=True,
        unique=True,
        description="林权证号, normalised (registry.forest_rights): one parcel ever",
    )
    registered_area_centimu: int | None = Field(
        default=None, sa_type=BigInteger, description="area on the certificate, 0.01 mu"
    )
    area_m2: int = Field(sa_type=BigInteger, description="computed in EPSG:4549")
    district_adcode: str | None = Field(default=None, sa_type=String(6), index=True)
    geometry_geojson: str = Field(sa_type=Text, description="WGS84")
    geometry_wkb: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    min_x: float = Field(sa_type=Float, description="EPSG:4549 bounding box")
    min_y: float = Field(sa_type=Float)
    max_x: float = Field(sa_type=Float)
    max_y: float = Field(sa_type=Float)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ParcelHolding(SQLModel, table=True):
    """A household's share of a parcel, in basis points (the shares of a parcel sum to 10,000)."""

    __tablename__ = "registry_parcel_holding"

    parcel_id: uuid.UUID = Field(foreign_key="registry_parcel.id", primary_key=True)
    household_id: uuid.UUID = Field(
        foreign_key="registry_household.id", primary_key=True, index=True
    )
    share_bp: int


class Contract(SQLModel, table=True):
    """A collection contract (收储合同) between a cooperative and a village's households."""

    __tablename__ = "registry_contract"
    __table_args__ = (UniqueConstraint("cooperative_id", "code", name="uq_registry_contract_code"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    cooperative_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    code: str = Field(sa_type=String(40))
    counterparty: str = Field(sa_type=String(200), description="e.g. the village collective")
    start_date: date
    term_years: int
    rate_g_per_mu_year: int = Field(sa_type=BigInteger, description="assumed sequestration")
    price_rule: PriceRule = Field(sa_type=String(16))
    fixed_price_fen_per_t: int | None = Field(default=None, sa_type=BigInteger)
    price_window_days: int = Field(default=30, description="trading days averaged")
    settlement_period_years: int
    household_share_bp: int = Field(description="households' share of net sale proceeds")
    status: ContractStatus = Field(default=ContractStatus.active, sa_type=String(16), index=True)
    terminated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    termination_reason: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ContractParcel(SQLModel, table=True):
    __tablename__ = "registry_contract_parcel"

    contract_id: uuid.UUID = Field(foreign_key="registry_contract.id", primary_key=True)
    parcel_id: uuid.UUID = Field(foreign_key="registry_parcel.id", primary_key=True, index=True)


class EtsPrice(SQLModel, table=True):
    """A national ETS (CEA) closing price, imported from CSV."""

    __tablename__ = "registry_ets_price"

    trade_date: date = Field(primary_key=True)
    close_fen_per_t: int = Field(sa_type=BigInteger)
    source: str = Field(default="", sa_type=String(200))
    imported_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Settlement(SQLModel, table=True):
    """One collection payment of a contract: period ``sequence`` (1-based), paid in advance."""

    __tablename__ = "registry_settlement"
    __table_args__ = (
        UniqueConstraint("contract_id", "sequence", name="uq_registry_settlement_contract_seq"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    contract_id: uuid.UUID = Field(foreign_key="registry_contract.id", index=True)
    sequence: int
    period_start: date
    period_end: date
    settlement_date: date
    price_fen_per_t: int = Field(sa_type=BigInteger)
    price_window_first: date | None = None
    price_window_last: date | None = None
    area_mu: str = Field(sa_type=String(40), description="exact, as a decimal or fraction")
    amount_fen: int = Field(sa_type=BigInteger)
    journal_entry_id: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SettlementLine(SQLModel, table=True):
    __tablename__ = "registry_settlement_line"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    settlement_id: uuid.UUID = Field(foreign_key="registry_settlement.id", index=True)
    household_id: uuid.UUID = Field(foreign_key="registry_household.id", index=True)
    area_mu: str = Field(sa_type=String(40))
    amount_fen: int = Field(sa_type=BigInteger)


# --- projects and their lifecycle ---------------------------------------------------------


class Project(SQLModel, table=True):
    __tablename__ = "registry_project"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    code: str = Field(sa_type=String(12), unique=True)
    name: str = Field(sa_type=String(200))
    type: ProjectType = Field(sa_type=String(16))
    methodology_name: str = Field(sa_type=String(100))
    methodology_version: str = Field(sa_type=String(20))
    cooperative_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    crediting_start: date
    crediting_end: date
    district_adcode: str | None = Field(default=None, sa_type=String(6))
    description: str = Field(default="", sa_type=Text)
    status: ProjectStatus = Field(default=ProjectStatus.draft, sa_type=String(16), index=True)
    status_before_suspension: ProjectStatus | None = Field(default=None, sa_type=String(16))
    status_reason: str | None = Field(default=None, sa_type=Text)
    buffer_exceeded: bool = False
    reversal_debt_t: int = Field(
        default=0,
        sa_type=BigInteger,
        description="confirmed losses beyond its own buffer not yet made good: blocks issuance",
    )
    # after termination the authority decides on the unsold credits (registry.service.suspension)
    credits_decision: str | None = Field(default=None, sa_type=String(16))
    credits_decision_reason: str | None = Field(default=None, sa_type=Text)
    credits_decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outline_geojson: str | None = Field(default=None, sa_type=Text, description="simplified")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ProjectParcel(SQLModel, table=True):
    __tablename__ = "registry_project_parcel"

    project_id: uuid.UUID = Field(foreign_key="registry_project.id", primary_key=True)
    parcel_id: uuid.UUID = Field(foreign_key="registry_parcel.id", primary_key=True, index=True)


class PeriodBasis(StrEnum):
    measured = "measured"  # an MRV run the platform performed on the registered parcels
    pooled = "pooled"  # the pooling job's own report of residents' accepted receipts (RES)
    uploaded = "uploaded"  # a report from outside: evidence, never the basis of issuance


class MonitoringPeriod(SQLModel, table=True):
    """A monitoring period with its MRV report, stored whole with its SHA-256."""

    __tablename__ = "registry_monitoring_period"
    __table_args__ = (
        UniqueConstraint("project_id", "number", name="uq_registry_monitoring_period_number"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    project_id: uuid.UUID = Field(foreign_key="registry_project.id", index=True)
    number: int
    start: date
    end: date
    status: PeriodStatus = Field(default=PeriodStatus.submitted, sa_type=String(16))
    report_json: str = Field(sa_type=Text)
    report_sha256: str = Field(sa_type=String(64))
    methodology_name: str = Field(sa_type=String(100))
    methodology_version: str = Field(sa_type=String(20))
    issuable_t: int = Field(sa_type=BigInteger)
    buffer_t: int = Field(sa_type=BigInteger)
    # What issuance may rest on (invariant 5): ``measured`` (an MRV run the platform performed on
    # the registered parcels), ``pooled`` (the pooling job's report of residents' receipts), or
    # ``uploaded`` (a report from outside: evidence attached to the period, never issued from).
    basis: PeriodBasis = Field(
        default=PeriodBasis.uploaded,
        sa_type=String(16),
        sa_column_kwargs={"server_default": "uploaded"},
    )
    mrv_run_id: uuid.UUID | None = Field(default=None, description="the run (kept after it goes)")
    estimate_t: int | None = Field(
        default=None, sa_type=BigInteger, description="conservative estimate, whole tonnes down"
    )
    min_buffer_share_bp: int = Field(
        default=0,
        sa_column_kwargs={"server_default": "0"},
        description="the methodology's minimum buffer share, basis points",
    )
    coverage_json: str | None = Field(
        default=None, sa_type=Text, description="parcels covered: id, code, geometry SHA-256, ha"
    )
    comments: str | None = Field(default=None, sa_type=Text)
    submitted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    verifier_id: uuid.UUID | None = Field(default=None, foreign_key="organisation.id")
    certified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    certification_signature: str | None = Field(default=None, sa_type=String(100))
    certification_key_id: str | None = Field(default=None, sa_type=String(40))
    authority_id: uuid.UUID | None = Field(default=None, foreign_key="organisation.id")
    filed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    issued_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class OrganisationKey(SQLModel, table=True):
    """An organisation's Ed25519 key: its own public key, or one the platform keeps for it.

    Platform-kept private keys are sealed with the data key (AES-GCM), never stored in clear.
    """

    __tablename__ = "registry_organisation_key"

    key_id: str = Field(sa_type=String(40), primary_key=True)
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    public_key: str = Field(sa_type=String(64), description="base64 raw 32 bytes")
    private_sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# --- credits ------------------------------------------------------------------------------


class Batch(SQLModel, table=True):
    """One issuance: serials 1..quantity_t go to the holder, the next buffer_t to the pool."""

    __tablename__ = "registry_batch"
    __table_args__ = (UniqueConstraint("project_id", "batch_no", name="uq_registry_batch_no"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    project_id: uuid.UUID = Field(foreign_key="registry_project.id", index=True)
    period_id: uuid.UUID = Field(foreign_key="registry_monitoring_period.id", unique=True)
    vintage: int
    batch_no: int
    serial_prefix: str = Field(sa_type=String(60), unique=True)
    asset_code: str = Field(sa_type=String(80))
    quantity_t: int = Field(sa_type=BigInteger, description="issued to the holder")
    buffer_t: int = Field(sa_type=BigInteger, description="withheld into the buffer pool")
    holder: str = Field(sa_type=String(80), description="wallet owner of the first holder")
    issued_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    journal_entry_id: uuid.UUID | None = None

    @property
    def total_t(self) -> int:
        return self.quantity_t + self.buffer_t


class SerialBlock(SQLModel, table=True):
    """Tonnes ``first..last`` of a batch, where they are. Blocks of a batch tile 1..total."""

    __tablename__ = "registry_serial_block"
    __table_args__ = (
        UniqueConstraint("batch_id", "first", name="uq_registry_serial_block_first"),
        Index("ix_registry_serial_block_holder", "holder", "batch_id", "state"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    batch_id: uuid.UUID = Field(foreign_key="registry_batch.id")
    first: int = Field(sa_type=BigInteger)
    last: int = Field(sa_type=BigInteger)
    holder: str = Field(sa_type=String(80), description="wallet owner, e.g. org:<uuid>")
    state: BlockState = Field(default=BlockState.held, sa_type=String(16))
    pledge_id: uuid.UUID | None = Field(default=None, index=True)
    retirement_id: uuid.UUID | None = Field(default=None, index=True)
    reversal_id: uuid.UUID | None = None
    listing_ref: str | None = Field(default=None, sa_type=String(100), index=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def quantity_t(self) -> int:
        return self.last - self.first + 1


class SerialMovement(SQLModel, table=True):
    """Append-only history of every block that changed hands or state."""

    __tablename__ = "registry_serial_movement"
    __table_args__ = (Index("ix_registry_serial_movement_batch", "batch_id", "first"),)

    id: int | None = Field(default=None, sa_type=BigIntPK, primary_key=True)
    batch_id: uuid.UUID = Field(foreign_key="registry_batch.id")
    first: int = Field(sa_type=BigInteger)
    last: int = Field(sa_type=BigInteger)
    from_holder: str | None = Field(default=None, sa_type=String(80))
    to_holder: str = Field(sa_type=String(80))
    kind: str = Field(sa_type=String(32))
    reference: str | None = Field(default=None, sa_type=String(100))
    occurred_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Retirement(SQLModel, table=True):
    __tablename__ = "registry_retirement"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    certificate_id: str = Field(sa_type=String(40), unique=True)
    holder: str = Field(sa_type=String(80), index=True)
    batch_id: uuid.UUID = Field(foreign_key="registry_batch.id", index=True)
    quantity_t: int = Field(sa_type=BigInteger)
    beneficiary: str = Field(sa_type=String(200))
    purpose: RetirementPurpose = Field(sa_type=String(32))
    case_number: str | None = Field(default=None, sa_type=String(100))
    note: str = Field(default="", sa_type=String(500))
    retired_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    journal_entry_id: uuid.UUID | None = None


class Certificate(SQLModel, table=True):
    """A retirement certificate: the canonical JSON payload and the platform's signature."""

    __tablename__ = "registry_certificate"

    id: str = Field(sa_type=String(40), primary_key=True)
    retirement_id: uuid.UUID = Field(foreign_key="registry_retirement.id", unique=True)
    payload_json: str = Field(sa_type=Text, description="canonical JSON, exactly as signed")
    signature: str = Field(sa_type=String(100))
    key_id: str = Field(sa_type=String(40))
    issued_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Pledge(SQLModel, table=True):
    """A lender's encumbrance on a holder's credits, or on a contract's future proceeds, for a
    loan of ``loan_amount_fen`` (the principal) at ``interest_rate_bp`` a year, due on
    ``matures_on``."""

    __tablename__ = "registry_pledge"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    holder: str = Field(sa_type=String(80), index=True)
    lender_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    batch_id: uuid.UUID | None = Field(default=None, foreign_key="registry_batch.id")
    quantity_t: int | None = Field(default=None, sa_type=BigInteger)
    contract_id: uuid.UUID | None = Field(default=None, foreign_key="registry_contract.id")
    loan_amount_fen: int | None = Field(default=None, sa_type=BigInteger)
    matures_on: date | None = None
    interest_rate_bp: int | None = Field(default=None, description="a year, basis points")
    status: PledgeStatus = Field(default=PledgeStatus.proposed, sa_type=String(16), index=True)
    wallet_hold_id: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    accepted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    default_declared_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    default_reason: str | None = Field(default=None, sa_type=String(500))
    default_confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    default_confirmed_by: str | None = Field(default=None, sa_type=String(100))
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Reversal(SQLModel, table=True):
    """A loss event on a project's parcels: proposed by the cooperative or a verifier, confirmed
    by the authority, which cancels the project's buffer credits to cover it (ADR 0092).
    ``shortfall_t`` is the part beyond the project's own buffer, which the project owes."""

    __tablename__ = "registry_reversal"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    project_id: uuid.UUID = Field(foreign_key="registry_project.id", index=True)
    cause: LossCause = Field(sa_type=String(32))
    occurred_on: date
    estimated_loss_t: int = Field(sa_type=BigInteger)
    cancelled_own_buffer_t: int = Field(sa_type=BigInteger)
    cancelled_pool_t: int = Field(sa_type=BigInteger)
    shortfall_t: int = Field(sa_type=BigInteger)
    description: str = Field(default="", sa_type=Text)
    reported_by: str = Field(sa_type=String(100))
    status: ReversalStatus = Field(default=ReversalStatus.proposed, sa_type=String(16))
    confirmed_by: str | None = Field(default=None, sa_type=String(100))
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    journal_entry_id: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ReversalParcel(SQLModel, table=True):
    __tablename__ = "registry_reversal_parcel"

    reversal_id: uuid.UUID = Field(foreign_key="registry_reversal.id", primary_key=True)
    parcel_id: uuid.UUID = Field(foreign_key="registry_parcel.id", primary_key=True)


class GroundClaim(SQLModel, table=True):
    """A project's claim on a parcel's ground for its crediting period (registry.service.ground).

    Written when the parcel joins the project, with the outline as it was then (EPSG:4549);
    no status change deletes it: a suspended or terminated project's years stay claimed. Only
    taking the parcel out of a draft, before anything was issued, gives the ground back.
    """

    __tablename__ = "registry_ground_claim"
    __table_args__ = (
        UniqueConstraint("project_id", "parcel_id", name="uq_registry_ground_claim"),
        Index("ix_registry_ground_claim_bbox", "min_x", "max_x", "min_y", "max_y"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    project_id: uuid.UUID = Field(foreign_key="registry_project.id", index=True)
    parcel_id: uuid.UUID = Field(foreign_key="registry_parcel.id", index=True)
    starts_on: date
    ends_on: date
    geometry_wkb: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    min_x: float = Field(sa_type=Float, description="EPSG:4549 bounding box")
    min_y: float = Field(sa_type=Float)
    max_x: float = Field(sa_type=Float)
    max_y: float = Field(sa_type=Float)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AreaAcceptance(SQLModel, table=True):
    """A verifier's acceptance of a registered area that differs from the measured polygon.

    Keyed by what was compared (the cooperative's parcel code, the registered and the measured
    area), so it holds for that parcel as measured, before or after its registration, and
    for nothing else. Payments still use the smaller of the two areas.
    """

    __tablename__ = "registry_area_acceptance"
    __table_args__ = (
        UniqueConstraint(
            "cooperative_id",
            "parcel_code",
            "registered_area_centimu",
            "area_m2",
            name="uq_registry_area_acceptance",
        ),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    cooperative_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    parcel_code: str = Field(sa_type=String(64))
    registered_area_centimu: int = Field(sa_type=BigInteger)
    area_m2: int = Field(sa_type=BigInteger)
    verifier_id: uuid.UUID = Field(foreign_key="organisation.id")
    accepted_by: str = Field(sa_type=String(100))
    reason: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MrvRunState(StrEnum):
    queued = "queued"  # waiting for the process's estimate slot
    running = "running"
    done = "done"  # the report is stored; it may be submitted
    failed = "failed"
    submitted = "submitted"  # its report became monitoring period ``period_id``


class MrvRun(SQLModel, table=True):
    """An MRV estimate started from the cooperative portal: its progress, then its report.

    A web process runs the estimate in the background and writes progress here in short
    transactions, so every web process on every machine sees the same runs. ``updated_at``
    is the heartbeat: a queued or running run silent for long died with its process. The report
    is MRV's canonical JSON text, the bytes the registry hashes when the run is submitted.
    """

    __tablename__ = "registry_mrv_run"
    __table_args__ = (
        Index("ix_registry_mrv_run_project", "project_id", "created_at"),
        Index("ix_registry_mrv_run_updated", "updated_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    organisation_id: uuid.UUID = Field(foreign_key="organisation.id")
    project_id: uuid.UUID = Field(foreign_key="registry_project.id")
    methodology: str = Field(sa_type=String(121), description="name@version")
    period_start: date
    period_end: date
    layers: str = Field(default="", sa_type=String(200), description="comma-separated names")
    state: MrvRunState = Field(default=MrvRunState.queued, sa_type=String(16))
    done: int = 0
    total: int = 0
    error_code: str | None = Field(default=None, sa_type=String(100))
    error_message: str | None = Field(default=None, sa_type=Text, description="English template")
    error_params_json: str | None = Field(default=None, sa_type=Text)
    report_json: str | None = Field(default=None, sa_type=Text)
    report_sha256: str | None = Field(default=None, sa_type=String(64))
    parcels_json: str | None = Field(
        default=None, sa_type=Text, description="the registered parcels run: id, code, SHA-256"
    )
    period_id: uuid.UUID | None = Field(default=None, foreign_key="registry_monitoring_period.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
