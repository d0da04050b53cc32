"""Tables of the market package: listings, orders and their payments, settlement shares,
judicial cases, compensation standards and payout rounds.

Money is integer fen, credits whole tonnes. The ledger (wallet) is the book of record for value;
these tables say why value moved (which order, which line, which household) and where a sale
stands. Listings hold their tonnes in the wallet (a hold on the seller's credit account) and in
the registry (serial blocks in state ``listed``); orders reserve tonnes of a listing for a limited
time (see ADR 0040).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

import registry.models  # noqa: F401 - defines the tables our foreign keys name
import tanhui.models  # noqa: F401
from tanhui.db import UTCDateTime, new_id, utcnow


class ListingStatus(StrEnum):
    active = "active"  # open for orders
    closed = "closed"  # delisted by the seller; reserved tonnes may still be bought
    sold_out = "sold_out"
    ended = "ended"  # past its end date


class OrderStatus(StrEnum):
    awaiting_payment = "awaiting_payment"  # its tonnes are held until hold_expires_at
    processing = "processing"  # the buyer paid with a method that confirms later
    settled = "settled"
    expired = "expired"  # the hold lapsed before payment
    cancelled = "cancelled"
    failed = "failed"  # the payment failed
    refunded = "refunded"  # paid after its tonnes were gone: the money went back


OPEN_ORDER_STATUSES = (OrderStatus.awaiting_payment, OrderStatus.processing)


class Provider(StrEnum):
    stripe = "stripe"
    bank_transfer = "bank_transfer"
    sandbox = "sandbox"


class PaymentStatus(StrEnum):
    open = "open"
    processing = "processing"
    paid = "paid"
    failed = "failed"
    expired = "expired"
    cancelled = "cancelled"


class PayoutKind(StrEnum):
    fee = "fee"
    cooperative = "cooperative"
    household = "household"
    rewards_fund = "rewards_fund"  # a residents' (RES) line: the seller's share funds rewards


class CaseStatus(StrEnum):
    open = "open"
    fulfilled = "fulfilled"


class RoundStatus(StrEnum):
    draft = "draft"
    paid = "paid"


class Listing(SQLModel, table=True):
    """Tonnes of one batch offered at a price. ``listed_t`` tonnes are held (wallet hold and
    serial blocks in state ``listed``); of those, tonnes reserved by open orders are not open."""

    __tablename__ = "market_listing"
    __table_args__ = (
        Index("ix_market_listing_search", "status", "credit_type", "price_fen_per_t"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    seller_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    batch_id: uuid.UUID = Field(foreign_key="registry_batch.id", index=True)
    project_id: uuid.UUID = Field(foreign_key="registry_project.id", index=True)
    credit_type: str = Field(sa_type=String(16), description="bamboo, wetland or residents")
    district_adcode: str | None = Field(default=None, sa_type=String(6), index=True)
    vintage: int = Field(index=True)
    price_fen_per_t: int = Field(sa_type=BigInteger)
    min_order_t: int = Field(default=1, sa_type=BigInteger)
    quantity_t: int = Field(sa_type=BigInteger, description="listed at the start")
    listed_t: int = Field(sa_type=BigInteger, description="still held for this listing")
    sold_t: int = Field(default=0, sa_type=BigInteger)
    status: ListingStatus = Field(default=ListingStatus.active, sa_type=String(16))
    ends_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    wallet_hold_id: uuid.UUID | None = None
    created_by: str = Field(sa_type=String(100))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def ref(self) -> str:
        """What the listed serial blocks carry as ``listing_ref``."""
        return f"listing:{self.id}"


class JudicialCase(SQLModel, table=True):
    """A court's judgment that accepts sink credits as substitute restoration (司法修复)."""

    __tablename__ = "market_judicial_case"
    __table_args__ = (
        UniqueConstraint("court_id", "case_number", name="uq_market_judicial_case_number"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    court_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    case_number: str = Field(sa_type=String(100))
    judgment_sha256: str = Field(sa_type=String(64))
    defendant_name: str = Field(sa_type=String(200))
    defendant_id: uuid.UUID | None = Field(default=None, foreign_key="organisation.id", index=True)
    required_t: int | None = Field(default=None, sa_type=BigInteger)
    required_amount_fen: int | None = Field(default=None, sa_type=BigInteger)
    project_id: uuid.UUID = Field(foreign_key="registry_project.id", index=True)
    status: CaseStatus = Field(default=CaseStatus.open, sa_type=String(16))
    note: str = Field(default="", sa_type=String(500))
    fulfilled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_by: str = Field(sa_type=String(100))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Order(SQLModel, table=True):
    """An enterprise's purchase: one or more lines, paid through one provider, settled once."""

    __tablename__ = "market_order"
    __table_args__ = (Index("ix_market_order_status_hold", "status", "hold_expires_at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    number: str = Field(sa_type=String(32), unique=True, description="also the payment reference")
    buyer_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    created_by: str = Field(sa_type=String(100))
    status: OrderStatus = Field(default=OrderStatus.awaiting_payment, sa_type=String(20))
    provider: Provider = Field(sa_type=String(16))
    total_fen: int = Field(sa_type=BigInteger)
    received_fen: int = Field(default=0, sa_type=BigInteger, description="money received")
    refunded_fen: int = Field(default=0, sa_type=BigInteger)
    fee_fen: int = Field(default=0, sa_type=BigInteger, description="platform fee, at settlement")
    retire_on_purchase: bool = False
    beneficiary: str | None = Field(default=None, sa_type=String(200))
    purpose: str | None = Field(default=None, sa_type=String(32))
    case_id: uuid.UUID | None = Field(
        default=None, foreign_key="market_judicial_case.id", index=True
    )
    hold_expires_at: datetime = Field(sa_type=UTCDateTime)
    settled_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    settlement_entry_id: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OrderLine(SQLModel, table=True):
    """One listing's tonnes in an order. ``reserved_until`` repeats the order's hold expiry
    while the order is open (NULL once it is settled or closed), so that counting a listing's
    reserved tonnes reads one index range instead of joining every order it ever had."""

    __tablename__ = "market_order_line"
    __table_args__ = (Index("ix_market_order_line_reserved", "listing_id", "reserved_until"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    order_id: uuid.UUID = Field(foreign_key="market_order.id", index=True)
    listing_id: uuid.UUID = Field(foreign_key="market_listing.id", index=True)
    batch_id: uuid.UUID = Field(foreign_key="registry_batch.id")
    project_id: uuid.UUID = Field(foreign_key="registry_project.id", index=True)
    seller_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    credit_type: str = Field(sa_type=String(16))
    quantity_t: int = Field(sa_type=BigInteger)
    price_fen_per_t: int = Field(sa_type=BigInteger)
    amount_fen: int = Field(sa_type=BigInteger)
    retirement_id: uuid.UUID | None = None
    certificate_id: str | None = Field(default=None, sa_type=String(40))
    reserved_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Payment(SQLModel, table=True):
    """One checkout attempt of an order with its provider (a Stripe Checkout Session, a bank
    transfer awaiting confirmation, a sandbox page)."""

    __tablename__ = "market_payment"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    order_id: uuid.UUID = Field(foreign_key="market_order.id", index=True)
    provider: Provider = Field(sa_type=String(16))
    status: PaymentStatus = Field(default=PaymentStatus.open, sa_type=String(16))
    amount_fen: int = Field(sa_type=BigInteger)
    external_id: str | None = Field(default=None, sa_type=String(255), unique=True)
    payment_intent: str | None = Field(default=None, sa_type=String(255))
    checkout_url: str | None = Field(default=None, sa_type=Text)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Receipt(SQLModel, table=True):
    """Money received for an order (posted from the provider's gateway account to clearing)."""

    __tablename__ = "market_receipt"
    __table_args__ = (
        UniqueConstraint("provider", "external_ref", name="uq_market_receipt_provider_ref"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    order_id: uuid.UUID = Field(foreign_key="market_order.id", index=True)
    provider: Provider = Field(sa_type=String(16))
    amount_fen: int = Field(sa_type=BigInteger)
    external_ref: str | None = Field(default=None, sa_type=String(255))
    note: str = Field(default="", sa_type=String(500))
    recorded_by: str = Field(sa_type=String(100))
    journal_entry_id: uuid.UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Refund(SQLModel, table=True):
    """Money returned to a buyer (posted from clearing back to the gateway account)."""

    __tablename__ = "market_refund"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    order_id: uuid.UUID = Field(foreign_key="market_order.id", index=True)
    provider: Provider = Field(sa_type=String(16))
    amount_fen: int = Field(sa_type=BigInteger)
    reason: str = Field(sa_type=String(32), description="late_payment, excess, cancelled ...")
    external_id: str | None = Field(default=None, sa_type=String(255))
    recorded_by: str = Field(sa_type=String(100))
    journal_entry_id: uuid.UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WebhookEvent(SQLModel, table=True):
    """A provider event handled once: inserted in the transaction of its effect."""

    __tablename__ = "market_webhook_event"

    id: str = Field(sa_type=String(255), primary_key=True)
    provider: Provider = Field(sa_type=String(16))
    type: str = Field(sa_type=String(100))
    order_id: uuid.UUID | None = Field(default=None, index=True)
    outcome: str = Field(sa_type=String(40))
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Payout(SQLModel, table=True):
    """Who received what from a settled order line (the settlement entry's CNY legs)."""

    __tablename__ = "market_payout"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    order_id: uuid.UUID = Field(foreign_key="market_order.id", index=True)
    line_id: uuid.UUID = Field(foreign_key="market_order_line.id", index=True)
    kind: PayoutKind = Field(sa_type=String(16))
    cooperative_id: uuid.UUID | None = Field(
        default=None, foreign_key="organisation.id", index=True
    )
    household_id: uuid.UUID | None = Field(
        default=None, foreign_key="registry_household.id", index=True
    )
    amount_fen: int = Field(sa_type=BigInteger)
    journal_entry_id: uuid.UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CompensationStandard(SQLModel, table=True):
    """A fund's ecological-compensation rate: CNY (fen) per mu per year by land type, district."""

    __tablename__ = "market_compensation_standard"
    __table_args__ = (
        UniqueConstraint(
            "fund_id", "year", "land_type", "district_adcode", name="uq_market_standard_key"
        ),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    fund_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    year: int
    land_type: str = Field(sa_type=String(16))
    district_adcode: str = Field(sa_type=String(6))
    rate_fen_per_mu_year: int = Field(sa_type=BigInteger)
    created_by: str = Field(sa_type=String(100))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class FundDeposit(SQLModel, table=True):
    """Money a compensation fund paid in (confirmed by platform finance)."""

    __tablename__ = "market_fund_deposit"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    fund_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    amount_fen: int = Field(sa_type=BigInteger)
    bank_reference: str = Field(default="", sa_type=String(100))
    recorded_by: str = Field(sa_type=String(100))
    journal_entry_id: uuid.UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PayoutRound(SQLModel, table=True):
    """One year's compensation payout of a fund over the eligible parcels."""

    __tablename__ = "market_payout_round"
    __table_args__ = (UniqueConstraint("fund_id", "year", name="uq_market_payout_round_year"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    fund_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    year: int
    status: RoundStatus = Field(default=RoundStatus.draft, sa_type=String(16))
    parcels: int = 0
    total_fen: int = Field(default=0, sa_type=BigInteger)
    created_by: str = Field(sa_type=String(100))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    paid_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    journal_entry_id: uuid.UUID | None = None


class PayoutRoundLine(SQLModel, table=True):
    """One recipient's part of one parcel's compensation in a round."""

    __tablename__ = "market_payout_round_line"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    round_id: uuid.UUID = Field(foreign_key="market_payout_round.id", index=True)
    parcel_id: uuid.UUID = Field(foreign_key="registry_parcel.id")
    standard_id: uuid.UUID = Field(foreign_key="market_compensation_standard.id")
    kind: PayoutKind = Field(sa_type=String(16))
    cooperative_id: uuid.UUID = Field(foreign_key="organisation.id", index=True)
    household_id: uuid.UUID | None = Field(
        default=None, foreign_key="registry_household.id", index=True
    )
    area_mu: str = Field(sa_type=String(40), description="exact, as a decimal or fraction")
    amount_fen: int = Field(sa_type=BigInteger)


class VerifiedBuyer(SQLModel, table=True):
    """An organisation whose unified social credit code platform staff checked against its
    business licence: it may pay by bank transfer (and so hold tonnes for days)."""

    __tablename__ = "market_verified_buyer"

    organisation_id: uuid.UUID = Field(foreign_key="organisation.id", primary_key=True)
    uscc: str = Field(sa_type=String(18), unique=True)
    verified_by: str = Field(sa_type=String(100))
    verified_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
