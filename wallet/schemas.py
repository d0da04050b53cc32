"""What crosses the wire for the wallet API.

Amounts are JSON integers in the asset's smallest unit (fen, points, grams, tonnes); a float or
a string where an amount belongs is refused with 422, never rounded.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt

from tanhui import numbers
from wallet.service.entries import MAX_BATCH_ENTRIES, MAX_TRANSFERS_PER_ENTRY


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    asset: str = Field(max_length=64, examples=["CNY"])
    owner: str = Field(
        max_length=100,
        description="organisation id, resident id, system account name, or org:/resident:/"
        "household:/system: prefixed owner",
    )
    floor: StrictInt | None = Field(
        default=0,
        ge=-numbers.MAX_AMOUNT,
        le=numbers.MAX_AMOUNT,
        description="lowest available balance; null: unbounded (system accounts)",
    )
    purpose: str = Field(default="main", max_length=50)
    shards: StrictInt = Field(
        default=1, ge=1, le=64, description="balance rows; >1 for hot system accounts"
    )


class AccountPublic(BaseModel):
    id: uuid.UUID
    asset: str
    owner: str
    purpose: str
    floor: int | None
    balance: int = Field(description="posted credits - posted debits")
    available: int = Field(
        description="balance - pending debits of holds still in force (what a debit may take)"
    )
    lapsed_hold_debits: int = Field(
        description="pending debits of holds that expired and are not yet released (a debit "
        "or `tanhui wallet expire-holds` releases them; counted as available)"
    )
    posted_debits: int
    posted_credits: int
    pending_debits: int = Field(description="as the balance rows hold them, lapsed holds included")
    pending_credits: int
    frozen: bool
    shards: int
    created_at: datetime


class AccountFreeze(BaseModel):
    model_config = ConfigDict(extra="forbid")

    frozen: bool


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    amount: StrictInt = Field(gt=0, le=numbers.MAX_AMOUNT)


class EntryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(max_length=40, examples=["transfer"])
    transfers: list[TransferIn] = Field(min_length=1, max_length=MAX_TRANSFERS_PER_ENTRY)
    metadata: dict[str, Any] = Field(default_factory=dict)
    reverses: uuid.UUID | None = Field(default=None, description="the entry this one corrects")


class TransferPublic(BaseModel):
    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    amount: int


class EntryPublic(BaseModel):
    id: uuid.UUID
    status: str = Field(description="posted, pending (a hold), or the hold resolution kind")
    kind: str
    code: str
    transfers: list[TransferPublic]
    metadata: dict[str, Any]
    idempotency_key: str | None
    reverses: uuid.UUID | None
    hold_id: uuid.UUID | None
    created_at: datetime
    hash: str


class BatchEntryCreate(EntryCreate):
    idempotency_key: str | None = Field(default=None, max_length=200)


class BatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: list[BatchEntryCreate] = Field(min_length=1, max_length=MAX_BATCH_ENTRIES)


class BatchResultPublic(BaseModel):
    index: int
    status: str = Field(description="posted, duplicate (the key's earlier entry) or rejected")
    id: uuid.UUID | None
    error: dict[str, Any] | None = Field(description="problem document of a rejected entry")


class BatchPublic(BaseModel):
    posted: int
    duplicates: int
    rejected: int
    results: list[BatchResultPublic]


class PostingPublic(BaseModel):
    id: int
    entry_id: uuid.UUID
    created_at: datetime
    kind: str
    code: str
    layer: str
    side: str
    amount: int
    asset: str
    hold_id: uuid.UUID | None
    reverses_id: uuid.UUID | None
    metadata: dict[str, Any]


class PostingPagePublic(BaseModel):
    items: list[PostingPublic]
    next_cursor: str | None


class HoldCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    amount: StrictInt = Field(gt=0, le=numbers.MAX_AMOUNT)
    expires_at: AwareDatetime
    code: str = Field(max_length=40, examples=["purchase"])
    metadata: dict[str, Any] = Field(default_factory=dict)


class HoldCapture(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: StrictInt | None = Field(
        default=None, gt=0, le=numbers.MAX_AMOUNT, description="default: all of it"
    )


class HoldPublic(BaseModel):
    id: uuid.UUID
    status: str = Field(description="pending, captured, voided or expired")
    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    asset: str
    amount: int
    captured_amount: int | None
    code: str
    expires_at: datetime
    entry_id: uuid.UUID
    resolved_entry_id: uuid.UUID | None
    resolved_at: datetime | None
    created_at: datetime
