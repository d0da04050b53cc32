"""What crosses the wire for carbon inclusion (partners integrate against these: the names and
shapes documented in issue 7 hold exactly; fields may be added, never renamed)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from tanhui import numbers

MAX_FACTOR = 10**9  # grams per unit and units a day, as stored (24 characters)

MAX_EVENTS_PER_BATCH = 1_000

Reason = Literal[
    "duplicate",
    "duplicate_activity",
    "too_old",
    "in_future",
    "cap_exceeded",
    "unknown_resident",
    "scenario_not_allowed",
    "implausible",
]


# --- events from partners ------------------------------------------------------------------


class ResidentRef(BaseModel):
    """Who did it: exactly one of the three (an event naming none or several is refused with
    ``unknown_resident``). Phone and card are never stored or logged in plain text."""

    model_config = ConfigDict(extra="forbid")

    phone: str | None = Field(default=None, max_length=32)
    citizen_card: str | None = Field(default=None, max_length=40)
    resident_id: str | None = Field(default=None, max_length=40)


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partner_event_id: str = Field(min_length=1, max_length=100)
    resident: ResidentRef
    scenario: str = Field(min_length=1, max_length=32)
    variant: str = Field(
        default="", max_length=32, description="material (recycling) or category (second_hand)"
    )
    quantity: Decimal = Field(max_digits=18, description="in the scenario's unit")
    occurred_at: AwareDatetime
    duration_s: int | None = Field(
        default=None, ge=0, le=7 * 86400, description="when known: checked against speed limits"
    )


class EventBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1)


class EventResult(BaseModel):
    partner_event_id: str
    status: Literal["accepted", "rejected"]
    reason: Reason | None
    grams: int
    points: int
    receipt_id: uuid.UUID | None = Field(
        description="the receipt made now, or for a duplicate the one made the first time"
    )


class BatchResult(BaseModel):
    batch_id: uuid.UUID
    accepted: int
    rejected: int
    results: list[EventResult]


# --- partners ------------------------------------------------------------------------------


class PartnerCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    scenarios: list[str] = Field(min_length=1, max_length=20)


class PartnerKeyPublic(BaseModel):
    id: uuid.UUID
    kind: str
    prefix: str
    public_key: str | None
    created_at: datetime
    revoked_at: datetime | None


class PartnerPublic(BaseModel):
    id: uuid.UUID
    organisation_id: uuid.UUID
    name: str
    scenarios: list[str]
    active: bool
    issues_citizen_cards: bool
    created_at: datetime
    keys: list[PartnerKeyPublic]


class PartnerCreated(BaseModel):
    partner: PartnerPublic
    secret: str = Field(description="the signing secret: shown only in this answer")


class PartnerKeyCreate(BaseModel):
    kind: Literal["hmac", "ed25519"] = "hmac"
    public_key: str | None = Field(
        default=None, max_length=64, description="base64 raw 32-byte Ed25519 public key"
    )


class PartnerKeyCreated(BaseModel):
    key: PartnerKeyPublic
    secret: str | None = Field(description="a new HMAC secret, shown only in this answer")


class PartnerUpdate(BaseModel):
    scenarios: list[str] | None = Field(default=None, min_length=1, max_length=20)
    active: bool | None = None
    issues_citizen_cards: bool | None = None


# --- residents -----------------------------------------------------------------------------


class PointsBalance(BaseModel):
    balance: int
    available: int = Field(description="balance minus points held by open vouchers")


class ResidentBalances(BaseModel):
    id: uuid.UUID
    points: PointsBalance
    reductions_g: int = Field(description="grams CO2e credited to the resident, ever")
    pooled_g: int = Field(description="of which pooled into the residents' project")
    receipts: int
    citizen_card_linked: bool


class ReceiptPublic(BaseModel):
    id: uuid.UUID
    partner: str
    partner_event_id: str
    scenario: str
    variant: str
    quantity: str = Field(description="decimal, in the unit")
    unit: str
    occurred_at: datetime
    received_at: datetime
    grams: int
    points: int
    methodology_version: str
    grams_per_unit: str
    baseline: str
    source: str
    data_source: str
    status: str
    points_rate_version: str
    points_per_kg: int
    bonus_points: int
    journal_entry_id: uuid.UUID | None


class ReceiptPage(BaseModel):
    items: list[ReceiptPublic]
    next_cursor: str | None


class CitizenCardLink(BaseModel):
    """A card and its issuer's proof that its holder is the signed-in resident's phone: the
    issuer's app hands these over (see ``card_statement`` for what it signs)."""

    number: str = Field(min_length=1, max_length=40)
    issuer: str = Field(min_length=1, max_length=40, description="the issuing partner's id")
    attestation: str = Field(
        min_length=1,
        max_length=2_000,
        description="t=<unix seconds>,v1=<hex HMAC-SHA256> (or ed25519=) of the card statement",
    )


# --- methodologies -------------------------------------------------------------------------


class MethodologyItem(BaseModel):
    scenario: str
    variant: str
    version: str
    unit: str
    grams_per_unit: float = Field(description="grams CO2e per unit, as published")
    valid_from: date
    valid_to: date | None = Field(description="the day before the next version, if any")
    source: str
    baseline: str
    data_source: str
    daily_cap: float
    status: str
    bonus_points_per_unit: int
    notes: str


class PointsRatePublic(BaseModel):
    version: str
    points_per_kg: int
    valid_from: date
    notes: str


class MethodologyTable(BaseModel):
    items: list[MethodologyItem]
    points_rates: list[PointsRatePublic]


class FactorVersionCreate(BaseModel):
    scenario: str = Field(max_length=32)
    variant: str = Field(default="", max_length=32)
    version: str = Field(min_length=1, max_length=16)
    grams_per_unit: Annotated[Decimal, numbers.Bounded(0, MAX_FACTOR, 6)]
    baseline: str = Field(min_length=1, max_length=500)
    source: str = Field(min_length=1, max_length=500)
    valid_from: date
    daily_cap: Annotated[Decimal, numbers.Bounded(0, MAX_FACTOR, 6)] = Field(gt=0)
    participation: bool = False
    bonus_points_per_unit: int = Field(default=0, ge=0, le=10_000)
    notes: str = Field(default="", max_length=500)


# --- pooling -------------------------------------------------------------------------------


class PoolPublic(BaseModel):
    id: uuid.UUID
    month: str
    residents: int
    pooled_g: int
    carried_in_g: int
    tonnes: int
    carried_out_g: int
    status: str
    serial_first: str | None
    serial_last: str | None


class PoolCreate(BaseModel):
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")
    project_code: str | None = Field(default=None, max_length=12)
