"""What crosses the wire for the market API (output schemas have no defaults)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, Field

from market.models import Provider
from registry.models import RetirementPurpose
from tanhui import numbers

MAX_LISTING_T = 10**9
MAX_PRICE_FEN_PER_T = 10_000_000  # 100,000 yuan a tonne: prices times quantities fit BIGINT
MAX_RATE_FEN_PER_MU_YEAR = 10**9  # rates times areas times years fit BIGINT

# --- listings ------------------------------------------------------------------------------


class ListingCreate(BaseModel):
    batch_id: uuid.UUID
    quantity_t: int = Field(gt=0, le=MAX_LISTING_T)
    price_fen_per_t: int = Field(gt=0, le=MAX_PRICE_FEN_PER_T, description="CNY per tonne, in fen")
    min_order_t: Annotated[int, numbers.Bounded(1, MAX_LISTING_T)] = 1
    ends_at: datetime | None = None
    seller_id: uuid.UUID | None = Field(
        default=None, description="platform administrators list for an organisation"
    )


class ListingPublic(BaseModel):
    id: uuid.UUID
    seller_id: uuid.UUID
    seller: str
    batch_id: uuid.UUID
    batch: str
    project_id: uuid.UUID
    project_code: str
    project_name: str
    credit_type: str
    district_adcode: str | None
    district: str | None
    vintage: int
    price_fen_per_t: int
    min_order_t: int
    quantity_t: int
    listed_t: int
    sold_t: int
    open_t: int
    status: str
    ends_at: datetime | None
    created_at: datetime


# --- orders --------------------------------------------------------------------------------


class OrderLineIn(BaseModel):
    listing_id: uuid.UUID
    quantity_t: int = Field(gt=0, le=10**9)


class OrderCreate(BaseModel):
    lines: list[OrderLineIn] = Field(min_length=1, max_length=20)
    provider: Provider | None = Field(
        default=None, description="stripe, bank_transfer or sandbox (default: the configured one)"
    )
    retire_on_purchase: bool = False
    beneficiary: str | None = Field(default=None, max_length=200)
    purpose: RetirementPurpose | None = None


class OrderLinePublic(BaseModel):
    id: uuid.UUID
    listing_id: uuid.UUID
    batch_id: uuid.UUID
    batch: str
    project_code: str
    credit_type: str
    quantity_t: int
    price_fen_per_t: int
    amount_fen: int
    certificate_id: str | None


class PaymentPublic(BaseModel):
    id: uuid.UUID
    provider: str
    status: str
    amount_fen: int
    external_id: str | None
    checkout_url: str | None
    expires_at: datetime


class BankInstructions(BaseModel):
    bank: str
    account_holder: str
    account_number: str
    reference: str
    amount_fen: int
    outstanding_fen: int


class OrderPublic(BaseModel):
    id: uuid.UUID
    number: str
    buyer_id: uuid.UUID
    status: str
    provider: str
    total_fen: int
    received_fen: int
    refunded_fen: int
    outstanding_fen: int
    retire_on_purchase: bool
    beneficiary: str | None
    purpose: str | None
    case_id: uuid.UUID | None
    hold_expires_at: datetime
    settled_at: datetime | None
    settlement_entry_id: uuid.UUID | None
    created_at: datetime
    lines: list[OrderLinePublic]
    payments: list[PaymentPublic]
    bank_transfer: BankInstructions | None


class CheckoutPublic(BaseModel):
    order_id: uuid.UUID
    provider: str
    payment: PaymentPublic
    checkout_url: str | None
    bank_transfer: BankInstructions | None


class PaymentOutcomePublic(BaseModel):
    outcome: str = Field(description="settled, partial, refunded, already_settled or duplicate")
    order: OrderPublic
    refunded_fen: int
    outstanding_fen: int


class WebhookAnswer(BaseModel):
    received: bool
    outcome: str


# --- bank transfers ------------------------------------------------------------------------


class BankTransferConfirm(BaseModel):
    reference: str = Field(min_length=1, max_length=40, description="the order number")
    amount_fen: int = Field(gt=0, le=10**13)
    bank_reference: str = Field(min_length=1, max_length=100, description="the bank's 流水号")
    note: str = Field(default="", max_length=500)


class BuyerVerificationIn(BaseModel):
    uscc: str = Field(
        min_length=1, max_length=40, description="统一社会信用代码, 18 characters (GB 32100-2015)"
    )


class BuyerVerificationPublic(BaseModel):
    organisation_id: uuid.UUID
    organisation_name: str
    uscc: str
    verified_by: str
    verified_at: datetime


class HoldRoomPublic(BaseModel):
    """What the caller's organisation may still hold unpaid."""

    verified: bool
    cap_t: int
    held_t: int
    free_t: int


class RefundPublic(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    provider: str
    amount_fen: int
    reason: str
    external_id: str | None
    created_at: datetime


# --- judicial cases ------------------------------------------------------------------------


class CaseCreate(BaseModel):
    case_number: str = Field(min_length=1, max_length=100)
    judgment_sha256: str = Field(min_length=64, max_length=64)
    defendant_id: uuid.UUID
    defendant_name: str | None = Field(default=None, max_length=200)
    project_id: uuid.UUID
    required_t: numbers.Tonnes | None = None
    required_amount_fen: numbers.Fen | None = None
    note: str = Field(default="", max_length=500)


class CaseOrderCreate(BaseModel):
    provider: Provider | None = None


class CertificateCheckPublic(BaseModel):
    certificate_id: str
    ok: bool
    reason: str
    quantity_t: int
    case_number: str | None
    verify_url: str


class CasePublic(BaseModel):
    id: uuid.UUID
    court_id: uuid.UUID = Field(description="the court or compensation fund that recorded it")
    court: str
    purpose: str = Field(description="judicial_restoration (a court's) or ecological_compensation")
    case_number: str
    judgment_sha256: str
    defendant_id: uuid.UUID | None
    defendant_name: str
    project_id: uuid.UUID
    project_code: str
    required_t: int | None
    required_amount_fen: int | None
    status: str
    fulfilled_at: datetime | None
    created_at: datetime
    orders: list[uuid.UUID]
    certificates: list[str]


# --- compensation funds --------------------------------------------------------------------


class StandardIn(BaseModel):
    year: int = Field(ge=2000, le=2100)
    land_type: str = Field(max_length=16)
    district_adcode: str = Field(max_length=6)
    rate_fen_per_mu_year: Annotated[int, numbers.Bounded(1, MAX_RATE_FEN_PER_MU_YEAR)]


class StandardPublic(BaseModel):
    id: uuid.UUID
    fund_id: uuid.UUID
    year: int
    land_type: str
    district_adcode: str
    district: str | None
    rate_fen_per_mu_year: int


class DepositIn(BaseModel):
    fund_id: uuid.UUID
    amount_fen: numbers.Fen
    bank_reference: str = Field(min_length=1, max_length=100)


class DepositPublic(BaseModel):
    id: uuid.UUID
    fund_id: uuid.UUID
    amount_fen: int
    bank_reference: str
    balance_fen: int
    created_at: datetime


class RoundIn(BaseModel):
    year: int = Field(ge=2000, le=2100)


class RoundLinePublic(BaseModel):
    parcel_id: uuid.UUID
    kind: str
    cooperative_id: uuid.UUID
    household_id: uuid.UUID | None
    area_mu: str
    amount_fen: int


class RoundPublic(BaseModel):
    id: uuid.UUID
    fund_id: uuid.UUID
    year: int
    status: str
    parcels: int
    total_fen: int
    paid_at: datetime | None
    journal_entry_id: uuid.UUID | None
    lines: list[RoundLinePublic]


# --- price index and statements ------------------------------------------------------------


class PricePointPublic(BaseModel):
    day: date
    credit_type: str
    vwap_fen_per_t: int
    volume_t: int
    amount_fen: int
    orders: int


class PriceIndexPublic(BaseModel):
    credit_type: str | None
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    points: list[PricePointPublic]

    model_config = {"populate_by_name": True}


class CertificateRow(BaseModel):
    certificate_id: str
    order_number: str
    quantity_t: int
    beneficiary: str | None
    purpose: str | None
    verify_url: str


class EnterpriseStatementPublic(BaseModel):
    organisation_id: uuid.UUID
    orders: list[OrderPublic]
    certificates: list[CertificateRow]
    spent_fen: int
    bought_t: int


class SaleRowPublic(BaseModel):
    settled_at: datetime
    order_number: str
    buyer: str
    batch: str
    quantity_t: int
    price_fen_per_t: int
    amount_fen: int
    fee_fen: int
    cooperative_fen: int
    households_fen: int
    rewards_fund_fen: int = Field(
        default=0, description="a residents' pool line: the seller's share, to the rewards fund"
    )


class HouseholdTotalPublic(BaseModel):
    household_id: uuid.UUID
    name: str
    village: str
    sales_fen: int
    compensation_fen: int
    total_fen: int


class CompensationRowPublic(BaseModel):
    round_id: uuid.UUID
    paid_at: datetime
    fund: str
    year: int
    parcels: int
    cooperative_fen: int
    households_fen: int


class CooperativeStatementPublic(BaseModel):
    cooperative_id: uuid.UUID
    sold_t: int
    revenue_fen: int
    households_fen: int
    rewards_fund_fen: int = Field(
        default=0, description="sales of residents' pool batches paid into the rewards fund"
    )
    compensation_fen: int
    sales: list[SaleRowPublic]
    households: list[HouseholdTotalPublic]
    compensation: list[CompensationRowPublic] = Field(
        description="each paid compensation round: the cooperative's and its households' parts"
    )


class HouseholdEntryPublic(BaseModel):
    day: date
    kind: str
    reference: str
    amount_fen: int


class HouseholdStatementPublic(BaseModel):
    household_id: uuid.UUID
    name: str
    village: str
    cooperative: str
    total_fen: int
    balance_fen: int
    entries: list[HouseholdEntryPublic]


class StatementLink(BaseModel):
    household_id: uuid.UUID
    url: str
    expires_at: datetime  # after this the link answers 410 and the cooperative sends a new one
