"""What crosses the wire for the registry API (authenticated and public).

Output schemas have no defaults; amounts are integers in their unit (``_fen``, ``_t``, ``_g``),
exact areas and rates are decimal strings. Public shapes never carry personal data.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field

from registry.models import (
    BlockState,
    ContractStatus,
    LandType,
    LossCause,
    PeriodStatus,
    PledgeStatus,
    PriceRule,
    ProjectStatus,
    ProjectType,
    RetirementPurpose,
)
from tanhui import numbers

MAX_TONNES = numbers.MAX_TONNES
MAX_FEN = numbers.MAX_FEN

# --- households ----------------------------------------------------------------------------


class HouseholdCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    village: str = Field(min_length=1, max_length=100)
    national_id: str = Field(max_length=32, description="18-character resident id; sealed")
    phone: str | None = Field(default=None, max_length=32, description="sealed")
    bank_account: str | None = Field(default=None, max_length=40, description="sealed")


class HouseholdPublic(BaseModel):
    id: uuid.UUID
    cooperative_id: uuid.UUID
    name: str
    village: str
    has_phone: bool
    bank_account_last4: str | None
    created_at: datetime


class HouseholdContactPublic(BaseModel):
    national_id: str
    phone: str | None
    bank_account: str | None


# --- parcels -------------------------------------------------------------------------------


class HoldingIn(BaseModel):
    household_id: uuid.UUID
    share_bp: int = Field(gt=0, le=10_000, description="basis points; a parcel's sum to 10000")


class ParcelCreate(BaseModel):
    code: str = Field(min_length=1, max_length=64)
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon/MultiPolygon (or Feature), WGS84")
    land_type: LandType
    village: str = Field(default="", max_length=100)
    forest_right_cert: str | None = Field(default=None, max_length=64, description="林权证号")
    registered_area_mu: Decimal | None = Field(
        default=None,
        gt=0,
        lt=10**10,
        max_digits=12,
        decimal_places=2,
        description="area on the certificate",
    )
    holdings: list[HoldingIn] = Field(default_factory=list, max_length=100)


class AreaAcceptanceIn(BaseModel):
    """A verifier accepts a registered area off the measured polygon by more than the tolerance."""

    cooperative_id: uuid.UUID
    parcel_code: str = Field(min_length=1, max_length=64)
    registered_area_mu: Decimal = Field(gt=0, max_digits=12, decimal_places=2)
    area_m2: int = Field(gt=0, description="the polygon's measured area (EPSG:4549)")
    reason: str = Field(min_length=1, max_length=2000)


class AreaAcceptancePublic(BaseModel):
    id: uuid.UUID
    cooperative_id: uuid.UUID
    parcel_code: str
    registered_area_mu: str
    area_m2: int
    verifier_id: uuid.UUID
    reason: str
    created_at: datetime


class HoldingsIn(BaseModel):
    holdings: list[HoldingIn] = Field(min_length=1, max_length=100)


class ParcelPublic(BaseModel):
    id: uuid.UUID
    cooperative_id: uuid.UUID
    code: str
    land_type: LandType
    village: str
    forest_right_cert: str | None
    registered_area_mu: str | None
    area_m2: int
    area_mu: str = Field(description="the area contracts pay on, mu, 4 decimals")
    district_adcode: str | None
    geometry: dict[str, Any]
    holdings: list[HoldingIn]


class RowRejectionPublic(BaseModel):
    row: int
    code: str | None
    reason: str


class ImportReportPublic(BaseModel):
    rows: int
    imported: int
    rejected: list[RowRejectionPublic]
    parcel_ids: list[uuid.UUID]
    project_code: str | None


# --- contracts, prices, settlements --------------------------------------------------------


class ContractCreate(BaseModel):
    code: str = Field(min_length=1, max_length=40)
    counterparty: str = Field(min_length=1, max_length=200, description="the village collective")
    start_date: date
    term_years: int = Field(ge=1, le=70)
    rate_g_per_mu_year: int = Field(gt=0, le=100_000_000, description="390000 = 0.39 t/mu/yr")
    settlement_period_years: int = Field(ge=1, le=70)
    household_share_bp: int = Field(ge=0, le=10_000, description="8000 = 80 % of net proceeds")
    price_rule: PriceRule = PriceRule.ets_indexed
    fixed_price_fen_per_t: int | None = Field(default=None, gt=0, le=MAX_FEN)
    price_window_days: int = Field(default=30, ge=1, le=250)
    parcel_ids: list[uuid.UUID] = Field(min_length=1, max_length=20_000)


class ContractPublic(BaseModel):
    id: uuid.UUID
    cooperative_id: uuid.UUID
    code: str
    counterparty: str
    start_date: date
    end_date: date
    term_years: int
    rate_g_per_mu_year: int
    rate_t_per_mu_year: str
    price_rule: PriceRule
    fixed_price_fen_per_t: int | None
    price_window_days: int
    settlement_period_years: int
    household_share_bp: int
    status: ContractStatus
    area_mu: str
    parcel_count: int
    household_count: int
    terminated_at: datetime | None
    termination_reason: str | None


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class SettleIn(BaseModel):
    sequence: int | None = Field(
        default=None, ge=1, le=numbers.INT4_MAX, description="a period; else all due"
    )
    on: date | None = Field(default=None, description="settle every period begun by this day")


class SettlementLinePublic(BaseModel):
    household_id: uuid.UUID
    household_name: str
    village: str
    area_mu: str
    amount_fen: int


class SettlementPublic(BaseModel):
    id: uuid.UUID
    contract_id: uuid.UUID
    sequence: int
    period_start: date
    period_end: date
    settlement_date: date
    price_fen_per_t: int
    price_window_first: date | None
    price_window_last: date | None
    area_mu: str
    amount_fen: int
    amount_cny: str
    journal_entry_id: uuid.UUID | None
    lines: list[SettlementLinePublic]


class PricesImported(BaseModel):
    rows: int


class AveragePricePublic(BaseModel):
    price_fen_per_t: int
    first: date
    last: date
    days: int


# --- projects and the lifecycle ------------------------------------------------------------


class ProjectCreate(BaseModel):
    code: str = Field(min_length=2, max_length=12, description="e.g. AJ0001")
    name: str = Field(min_length=1, max_length=200)
    type: ProjectType
    methodology_name: str = Field(min_length=1, max_length=100)
    methodology_version: str = Field(min_length=1, max_length=20)
    crediting_start: date
    crediting_end: date
    description: str = Field(default="", max_length=10_000)


class ProjectPublic(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    type: ProjectType
    status: ProjectStatus
    status_reason: str | None
    methodology_name: str
    methodology_version: str
    cooperative_id: uuid.UUID
    crediting_start: date
    crediting_end: date
    district_adcode: str | None
    district: str | None
    description: str
    buffer_exceeded: bool
    reversal_debt_t: int = Field(description="losses owed beyond its buffer: issuance blocked")
    parcel_count: int
    credits_decision: str | None = Field(
        default=None, description="a terminated project's credits: cancelled or reinstated"
    )
    credits_decision_reason: str | None = None
    created_at: datetime
    updated_at: datetime


class ParcelIdsIn(BaseModel):
    parcel_ids: list[uuid.UUID] = Field(min_length=1, max_length=20_000)


class PeriodSubmit(BaseModel):
    start: date | None = None
    end: date | None = None
    report: dict[str, Any] | None = Field(
        default=None, description="the MRV report object (stored as canonical JSON)"
    )
    report_json: str | None = Field(
        default=None, description="or the report's JSON text, stored byte for byte"
    )


class PeriodPublic(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    project_code: str
    number: int
    start: date
    end: date
    status: PeriodStatus
    report_sha256: str
    methodology_name: str
    methodology_version: str
    issuable_t: int
    buffer_t: int
    basis: str = Field(description="measured, pooled or uploaded (evidence, never issued from)")
    estimate_t: int | None = Field(description="the platform run's conservative estimate, t")
    comments: str | None
    submitted_at: datetime
    certification_message: str = Field(description="what the verifier signs (canonical JSON)")
    verifier_id: uuid.UUID | None
    certified_at: datetime | None
    certification_key_id: str | None
    certification_signature: str | None
    signature_valid: bool
    filed_at: datetime | None
    issued_at: datetime | None


class CertifyIn(BaseModel):
    signature: str | None = Field(
        default=None,
        max_length=100,
        description="base64 Ed25519 signature of certification_message; required when the "
        "organisation registered its own key",
    )


class ReturnIn(BaseModel):
    comments: str = Field(min_length=1, max_length=10_000)
    to: Literal["collected", "draft"] = "collected"


class IssueIn(BaseModel):
    quantity_t: int | None = Field(
        default=None, gt=0, le=MAX_TONNES, description="default: all issuable"
    )


class PublicKeyIn(BaseModel):
    public_key: str = Field(max_length=64, description="base64 of the raw 32-byte Ed25519 key")


class OrganisationKeyPublic(BaseModel):
    key_id: str
    organisation_id: uuid.UUID
    public_key: str
    platform_held: bool
    created_at: datetime
    revoked_at: datetime | None


# --- credits -------------------------------------------------------------------------------


class BatchPublic(BaseModel):
    id: uuid.UUID
    project_code: str
    serial_prefix: str
    asset_code: str
    vintage: int
    batch_no: int
    quantity_t: int
    buffer_t: int
    serial_first: str
    serial_last: str
    issued_at: datetime


class HoldingPublic(BaseModel):
    batch_id: uuid.UUID
    batch: str
    asset_code: str
    project_code: str
    vintage: int
    state: BlockState
    quantity_t: int


class SerialPartPublic(BaseModel):
    serial: str
    quantity_t: int
    state: BlockState
    holder: str | None = Field(
        description="the holding organisation: on the caller's own blocks (and the buffer pool)"
    )
    pledged_to: str | None = Field(description="the lender: on the caller's own blocks only")
    listing: str | None
    certificate_id: str | None


class ProjectStandingPublic(BaseModel):
    status: str
    reason: str | None
    credits: str = Field(description="suspended, cancelled or reinstated")
    credits_reason: str | None
    decided_at: str | None


class CreditsDecisionIn(BaseModel):
    decision: str = Field(pattern="^(cancelled|reinstated)$")
    reason: str = Field(min_length=1, max_length=2000)


class SerialPublic(BaseModel):
    serial: str
    batch: str
    project_code: str
    vintage: int
    quantity_t: int
    parts: list[SerialPartPublic]
    truncated: bool = Field(
        default=False,
        description="the range holds more blocks than one answer lists: parts stop at the last "
        "one shown; ask again from the serial after it",
    )
    project_standing: ProjectStandingPublic | None = Field(
        default=None,
        description="set when the project was terminated: its unsold credits are suspended "
        "until the authority cancels or reinstates them",
    )


class TransferIn(BaseModel):
    batch_id: uuid.UUID
    to_organisation_id: uuid.UUID
    quantity_t: int = Field(gt=0, le=MAX_TONNES)
    reference: str | None = Field(default=None, max_length=100)


class TransferPublic(BaseModel):
    batch_id: uuid.UUID
    quantity_t: int
    serial_blocks: list[list[str]]


class RetireIn(BaseModel):
    batch_id: uuid.UUID
    quantity_t: int = Field(gt=0, le=MAX_TONNES)
    beneficiary: str = Field(min_length=1, max_length=200)
    purpose: RetirementPurpose = Field(
        description="judicial_restoration and ecological_compensation only through a case"
    )
    note: str = Field(default="", max_length=500)


class RetirementPublic(BaseModel):
    id: uuid.UUID
    certificate_id: str
    batch: str
    quantity_t: int
    beneficiary: str
    purpose: RetirementPurpose
    case_number: str | None
    retired_at: datetime
    serial_blocks: list[list[str]]


class PledgeIn(BaseModel):
    """An offer of collateral for a loan: the lender accepts the terms before the loan runs."""

    lender_id: uuid.UUID
    batch_id: uuid.UUID | None = None
    quantity_t: int | None = Field(default=None, gt=0, le=MAX_TONNES)
    contract_id: uuid.UUID | None = None
    loan_amount_fen: int = Field(gt=0, le=MAX_FEN, description="the principal, in fen")
    interest_rate_bp: int = Field(ge=0, le=10_000, description="a year, in basis points")
    matures_on: date = Field(description="the day the loan is due (Asia/Shanghai)")


class DefaultIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class PledgePublic(BaseModel):
    id: uuid.UUID
    holder: str
    lender_id: uuid.UUID
    batch_id: uuid.UUID | None
    quantity_t: int | None
    contract_id: uuid.UUID | None
    loan_amount_fen: int | None
    interest_rate_bp: int | None
    matures_on: date | None
    status: PledgeStatus
    created_at: datetime
    accepted_at: datetime | None
    default_declared_at: datetime | None
    default_reason: str | None
    default_confirmed_at: datetime | None
    default_confirmed_by: str | None
    closed_at: datetime | None


class ReversalIn(BaseModel):
    parcel_ids: list[uuid.UUID] = Field(min_length=1, max_length=10_000)
    cause: LossCause
    occurred_on: date
    estimated_loss_t: int = Field(gt=0, le=MAX_TONNES)
    description: str = Field(default="", max_length=10_000)


class ReversalPublic(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    cause: LossCause
    occurred_on: date
    estimated_loss_t: int
    cancelled_own_buffer_t: int
    cancelled_pool_t: int
    shortfall_t: int
    description: str
    status: str = Field(description="proposed, confirmed (by the authority) or rejected")
    confirmed_at: datetime | None
    project_buffer_exceeded: bool
    project_reversal_debt_t: int = Field(
        description="confirmed losses beyond the project's buffer not yet made good"
    )
    created_at: datetime


class ReversalDecisionIn(BaseModel):
    reason: str = Field(default="", max_length=2000)


class MakeGoodIn(BaseModel):
    batch_id: uuid.UUID
    quantity_t: int = Field(gt=0, le=MAX_TONNES)


# --- public explorer -----------------------------------------------------------------------


class PublicProjectProperties(BaseModel):
    code: str
    type: ProjectType
    status: ProjectStatus
    district: str | None
    issued_t: int
    retired_t: int
    name: str
    district_adcode: str | None
    district_en: str | None
    methodology: str
    cooperative: str | None
    buffer_exceeded: bool
    description: str


class PublicProjectFeature(BaseModel):
    type: Literal["Feature"]
    id: str
    geometry: dict[str, Any] | None
    properties: PublicProjectProperties


class PublicProjectCollection(BaseModel):
    type: Literal["FeatureCollection"]
    features: list[PublicProjectFeature]


class PublicBatch(BaseModel):
    project_code: str
    type: ProjectType
    vintage: int
    serial_first: str
    serial_last: str
    quantity_t: int
    issued_to_holder_t: int
    buffer_t: int
    batch: str
    issued_at: str
    basis: str = Field(description="measured, pooled or uploaded")
    estimate_t: int | None = Field(description="the MRV run's conservative estimate, t")
    report_sha256: str


class PublicInput(BaseModel):
    name: str
    sha256: str


class PublicCoveredParcel(BaseModel):
    code: str
    geometry_sha256: str = Field(description="SHA-256 of the registered EPSG:4549 WKB")
    area_ha: float
    outside_raster_ha: float
    conservative_tco2e: float


class PublicBatchProvenance(BaseModel):
    """What anyone needs to check ``issued + buffer <= estimate`` for one batch."""

    batch: str
    project_code: str
    issued_to_holder_t: int
    buffer_t: int
    basis: str
    estimate_t: int | None
    min_buffer_share: float
    within_estimate: bool = Field(description="issued + buffer <= the conservative estimate")
    report_sha256: str = Field(description="SHA-256 of the report (the verifier signed it)")
    report_url: str
    mrv_run_id: str | None
    methodology: str
    monitoring_period: list[str]
    inputs: list[PublicInput]
    parcels: list[PublicCoveredParcel]


class PublicBatchPage(BaseModel):
    items: list[PublicBatch]
    next_cursor: str | None


class PublicRetirement(BaseModel):
    certificate_id: str
    quantity_t: int
    beneficiary: str
    purpose: RetirementPurpose
    retired_at: str
    serial_blocks: list[list[str]]
    batch: str
    case_number: str | None


class PublicRetirementPage(BaseModel):
    items: list[PublicRetirement]
    next_cursor: str | None


class CertificateDocument(BaseModel):
    payload: dict[str, Any]
    signature: str = Field(description="base64 Ed25519 over the canonical JSON of payload")
    key_id: str
    public_key: str | None = Field(description="for convenience; pin keys from /public/keys")
    log: dict[str, Any] | None = Field(
        default=None,
        description="the certificate's place in the transparency log: index, and once a "
        "checkpoint covers it tree_size, base64 inclusion proof hashes and that checkpoint",
    )
    project_standing: ProjectStandingPublic | None = Field(
        default=None,
        description="not signed: set when the project was terminated after the retirement",
    )


class PublicKey(BaseModel):
    key_id: str
    algorithm: Literal["Ed25519"]
    public_key: str
    owner: str
    use: str = Field(
        description="what the key may sign: 'certificates and log checkpoints' (the platform's "
        "only), 'mrv reports' (a verifier's), 'none' (other organisations')"
    )


class PublicKeys(BaseModel):
    keys: list[PublicKey]
