"""Tables of the rewards catalogue: rewards, redemptions (vouchers) and "offset me" shares.

Points are integers; a redemption's points are held in the ledger (a wallet hold on the
resident's POINTS account) from the moment the voucher is issued until the merchant confirms it
(captured) or it expires or is cancelled (released). Voucher codes are bearer secrets: stored
sealed with a blind index for the merchant's lookup, never in plain text.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, Index, LargeBinary, String
from sqlmodel import Field, SQLModel

import tanhui.models  # noqa: F401 - defines the tables our foreign keys name
from tanhui.db import UTCDateTime, new_id, utcnow


class RewardKind(StrEnum):
    bus_coupon = "bus_coupon"  # a bus-fare coupon, honoured by the bus operator
    voucher = "voucher"  # a shop or B&B voucher, honoured by the merchant
    tree = "tree"  # a tree planted by the platform in the resident's name
    offset = "offset"  # "offset me": a share of a tonne retired in the resident's name


# Kinds the platform fulfils at once (no merchant confirms them).
FULFILLED_AT_ONCE = frozenset({RewardKind.tree, RewardKind.offset})


class RedemptionStatus(StrEnum):
    issued = "issued"  # points held, voucher valid until expires_at
    confirmed = "confirmed"  # honoured: points captured
    expired = "expired"  # not used in time: points returned
    cancelled = "cancelled"  # cancelled by the resident: points returned


class Reward(SQLModel, table=True):
    __tablename__ = "rewards_reward"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    sponsor_id: uuid.UUID = Field(
        foreign_key="organisation.id", index=True, description="the merchant or the platform"
    )
    kind: RewardKind = Field(sa_type=String(16))
    title: str = Field(sa_type=String(120), description="Chinese title")
    title_en: str = Field(default="", sa_type=String(120))
    description: str = Field(default="", sa_type=String(500))
    points_price: int = Field(sa_type=BigInteger)
    value_fen: int | None = Field(default=None, sa_type=BigInteger, description="face value")
    stock: int | None = Field(default=None, sa_type=BigInteger, description="None: unlimited")
    issued: int = Field(default=0, sa_type=BigInteger, description="redemptions counted on stock")
    valid_days: int = 30
    offset_grams: int | None = Field(default=None, sa_type=BigInteger)
    offset_batch_id: uuid.UUID | None = Field(default=None, description="registry batch retired")
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Redemption(SQLModel, table=True):
    """A voucher: a reward redeemed by a resident with a single-use code."""

    __tablename__ = "rewards_redemption"
    __table_args__ = (
        Index("ix_rewards_redemption_resident_created", "resident_id", "created_at"),
        Index("ix_rewards_redemption_status_expires", "status", "expires_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    reward_id: uuid.UUID = Field(foreign_key="rewards_reward.id", index=True)
    resident_id: uuid.UUID = Field(foreign_key="resident.id")
    points: int = Field(sa_type=BigInteger)
    hold_id: uuid.UUID = Field(unique=True, description="wallet_hold.id")
    code_sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    code_index: str = Field(sa_type=String(64), unique=True)
    code_hint: str = Field(sa_type=String(8), description="last characters, safe to show")
    status: RedemptionStatus = Field(default=RedemptionStatus.issued, sa_type=String(16))
    expires_at: datetime = Field(sa_type=UTCDateTime)
    confirmed_by: str | None = Field(default=None, sa_type=String(100))
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OffsetShare(SQLModel, table=True):
    """The grams of a tonne an "offset me" redemption retires in the resident's name; the tonne
    is retired once its shares add up to a whole tonne."""

    __tablename__ = "rewards_offset_share"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    redemption_id: uuid.UUID = Field(foreign_key="rewards_redemption.id", unique=True)
    reward_id: uuid.UUID = Field(foreign_key="rewards_reward.id", index=True)
    resident_id: uuid.UUID = Field(foreign_key="resident.id", index=True)
    grams: int = Field(sa_type=BigInteger)
    retirement_id: uuid.UUID | None = Field(default=None, description="registry_retirement.id")
    certificate_id: str | None = Field(default=None, sa_type=String(40))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
