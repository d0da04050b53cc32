"""What crosses the wire for the rewards catalogue and vouchers (under ``/api/v1/points``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from tanhui import numbers

MAX_STOCK = 10**9

RewardKindName = Literal["bus_coupon", "voucher", "tree", "offset"]


class RewardCreate(BaseModel):
    kind: RewardKindName
    title: str = Field(min_length=1, max_length=120, description="Chinese title")
    title_en: str = Field(default="", max_length=120)
    description: str = Field(default="", max_length=500)
    points_price: int = Field(ge=1, le=10_000_000)
    value_fen: int | None = Field(
        default=None,
        ge=0,
        le=10_000_000,
        description="face value in fen; a platform voucher with one is honoured by any merchant, "
        "reimbursed from the residents' rewards fund",
    )
    stock: Annotated[int, numbers.Bounded(0, MAX_STOCK)] | None = Field(
        default=None, description="null: unlimited"
    )
    valid_days: int = Field(default=30, ge=1, le=366)
    offset_grams: int | None = Field(default=None, gt=0, le=1_000_000)
    offset_batch_id: uuid.UUID | None = None
    sponsor_id: uuid.UUID | None = Field(
        default=None, description="platform admins only: the sponsoring organisation"
    )


class RewardUpdate(BaseModel):
    active: bool | None = None
    stock: Annotated[int, numbers.Bounded(0, MAX_STOCK)] | None = None


class RewardPublic(BaseModel):
    id: uuid.UUID
    kind: str
    title: str
    title_en: str
    description: str
    sponsor: str
    sponsor_id: uuid.UUID
    points_price: int
    value_fen: int | None
    stock: int | None
    remaining: int | None
    valid_days: int
    offset_grams: int | None
    active: bool


class RewardList(BaseModel):
    items: list[RewardPublic]


class RedemptionCreate(BaseModel):
    reward_id: uuid.UUID


class OffsetSharePublic(BaseModel):
    grams: int
    certificate_id: str | None = Field(description="null until the shares fill a whole tonne")


class ReimbursementPublic(BaseModel):
    """What the merchant that honoured a platform voucher was paid (ADR 0059)."""

    amount_fen: int
    from_fund_fen: int = Field(description="from the residents' rewards fund")
    from_platform_fen: int = Field(description="from the platform's own account")
    journal_entry_id: uuid.UUID


class HonouredVoucherPublic(BaseModel):
    """A platform voucher the caller's organisation honoured, and what it was reimbursed."""

    redemption_id: uuid.UUID
    reward_id: uuid.UUID
    reward_title: str
    honoured_at: datetime
    reimbursement: ReimbursementPublic


class HonouredVoucherPage(BaseModel):
    items: list[HonouredVoucherPublic]
    next_cursor: str | None = Field(
        description="pass as ?cursor= for the older ones; null on the last page"
    )


class VoucherPublic(BaseModel):
    id: uuid.UUID
    reward_id: uuid.UUID
    reward: str
    kind: str
    sponsor: str
    points: int
    status: Literal["issued", "confirmed", "expired", "cancelled"]
    code: str | None = Field(description="the single-use code (for its resident only)")
    code_hint: str
    expires_at: datetime
    created_at: datetime
    resolved_at: datetime | None
    qr_svg: str | None = Field(description="URL of the QR code image (SVG)")
    offset: OffsetSharePublic | None
    reimbursement: ReimbursementPublic | None = Field(
        default=None,
        description="a platform voucher honoured by a merchant: the face value paid to it "
        "(in the merchant's confirmation answer only)",
    )


class VoucherList(BaseModel):
    items: list[VoucherPublic]


class VoucherConfirm(BaseModel):
    code: str = Field(min_length=4, max_length=40)


class RewardsFundPublic(BaseModel):
    """The residents' rewards fund's figures, from the ledger (ADR 0059). Public: aggregates
    only, no personal data."""

    currency: Literal["CNY"] = "CNY"
    month: str | None = Field(
        default=None, description="YYYY-MM when the figures are one month's; null: all time"
    )
    from_sales_fen: int = Field(
        description="received from sales of the residents' pool batches (settlement credits)"
    )
    paid_for_rewards_fen: int = Field(
        description="paid by the fund to merchants for honoured platform vouchers"
    )
    balance_fen: int = Field(
        description="the fund's posted balance (at the end of the month when one is asked)"
    )
    platform_topped_up_fen: int = Field(
        description="what the platform's own account paid when the fund could not"
    )
    rewards_total_fen: int = Field(
        description="all reimbursements: paid_for_rewards_fen + platform_topped_up_fen"
    )
    rewards_reimbursed: int = Field(description="how many vouchers were reimbursed")
