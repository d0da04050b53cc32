"""Tables of the wallet package: assets, accounts, balances, the journal, holds.

The journal (``wallet_entry`` + ``wallet_posting``) is append-only: rows are inserted and never
updated or deleted; a correction is a new entry whose ``reverses_id`` names the original.
Balances (``wallet_balance``) are a cache of the journal kept in the same transaction as the
postings; ``tanhui wallet verify`` recomputes them from the journal. Every amount is an integer in
the asset's smallest unit (fen, points, grams, tonnes): no floats anywhere.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Index, SmallInteger, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from tanhui.db import BigIntPK, UTCDateTime, new_id, utcnow


class EntryKind(StrEnum):
    """What an entry does to balances (``code`` says why, in business terms)."""

    transfer = "transfer"  # posted debits and credits
    hold = "hold"  # reserves funds: pending debits and credits
    capture = "capture"  # releases a hold's pending amounts and posts (part of) it
    void = "void"  # releases a hold's pending amounts
    expire = "expire"  # releases an expired hold's pending amounts


class Layer(StrEnum):
    posted = "posted"
    pending = "pending"


class Side(StrEnum):
    debit = "D"
    credit = "C"


class HoldStatus(StrEnum):
    pending = "pending"
    captured = "captured"
    voided = "voided"
    expired = "expired"


class Asset(SQLModel, table=True):
    """A unit of value: ``CNY`` (fen), ``POINTS``, ``RED_G`` (grams), ``CREDIT:<prefix>`` (t)."""

    __tablename__ = "wallet_asset"

    code: str = Field(sa_type=String(64), primary_key=True)
    scale: int = Field(default=0, description="decimal places of the display unit (CNY: 2)")
    description: str = Field(default="", sa_type=String(200))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Account(SQLModel, table=True):
    """An owner's account in one asset.

    ``floor`` is the lowest ``available`` balance a debit may leave (0 for every user account);
    ``None`` means unbounded (system accounts such as issuance that may go negative). ``shards``
    > 1 spreads the balance over several rows so that concurrent credits do not queue on one row
    (hot accounts: fees, clearing, see ADR 0011). ``asset``, ``floor`` and ``shards`` never change.
    """

    __tablename__ = "wallet_account"
    __table_args__ = (
        UniqueConstraint("owner", "asset", "purpose", name="uq_wallet_account_owner_asset_purpose"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    asset: str = Field(sa_type=String(64), foreign_key="wallet_asset.code", index=True)
    owner: str = Field(sa_type=String(100), description="org:<id>, resident:<id>, system:<name>")
    purpose: str = Field(default="main", sa_type=String(50))
    floor: int | None = Field(default=0, sa_type=BigInteger)
    shards: int = Field(default=1, sa_type=SmallInteger)
    frozen: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class BalanceShard(SQLModel, table=True):
    """One balance row (shard) of an account; an account's balance is the sum of its shards.

    ``frozen`` repeats the account's flag on every shard: a posting reads it from the rows it
    has locked, so a freeze that committed while it waited is always seen.
    """

    __tablename__ = "wallet_balance"

    account_id: uuid.UUID = Field(foreign_key="wallet_account.id", primary_key=True)
    shard: int = Field(default=0, sa_type=SmallInteger, primary_key=True)
    posted_debits: int = Field(default=0, sa_type=BigInteger)
    posted_credits: int = Field(default=0, sa_type=BigInteger)
    pending_debits: int = Field(default=0, sa_type=BigInteger)
    pending_credits: int = Field(default=0, sa_type=BigInteger)
    frozen: bool = False


class JournalEntry(SQLModel, table=True):
    """One atomic, balanced set of postings; a link of one of the journal's hash chains.

    ``hash`` = SHA-256(``prev_hash`` + canonical content incl. the postings). Entries are spread
    over a few chains (``chain``) so that concurrent writers do not queue on one chain head
    (ADR 0012); within a chain ``chain_seq`` counts 1, 2, 3 ...
    """

    __tablename__ = "wallet_entry"
    __table_args__ = (
        UniqueConstraint("scope", "idempotency_key", name="uq_wallet_entry_scope_key"),
        UniqueConstraint("chain", "chain_seq", name="uq_wallet_entry_chain_seq"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    chain: int = Field(sa_type=SmallInteger)
    chain_seq: int = Field(sa_type=BigInteger)
    prev_hash: str = Field(sa_type=String(64))
    hash: str = Field(sa_type=String(64))
    scope: str = Field(sa_type=String(120))
    idempotency_key: str | None = Field(default=None, sa_type=String(200))
    request_hash: str = Field(sa_type=String(64))
    kind: EntryKind = Field(sa_type=String(16))
    code: str = Field(sa_type=String(40))
    metadata_json: str = Field(default="{}", sa_type=Text, description="canonical JSON")
    reverses_id: uuid.UUID | None = Field(default=None, foreign_key="wallet_entry.id", index=True)
    hold_id: uuid.UUID | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Posting(SQLModel, table=True):
    """One leg of an entry on one account. ``amount`` is negative only for pending releases."""

    __tablename__ = "wallet_posting"
    __table_args__ = (Index("ix_wallet_posting_account_id_id", "account_id", "id"),)

    id: int | None = Field(default=None, sa_type=BigIntPK, primary_key=True)
    entry_id: uuid.UUID = Field(foreign_key="wallet_entry.id", index=True)
    ordinal: int = Field(sa_type=SmallInteger)
    account_id: uuid.UUID = Field(foreign_key="wallet_account.id")
    asset: str = Field(sa_type=String(64))
    layer: Layer = Field(sa_type=String(8))
    side: Side = Field(sa_type=String(1))
    amount: int = Field(sa_type=BigInteger)


class Hold(SQLModel, table=True):
    """Funds reserved by a ``hold`` entry until captured, voided or expired (state changes here;
    the journal records each change as its own entry)."""

    __tablename__ = "wallet_hold"
    __table_args__ = (
        Index("ix_wallet_hold_status_expires_at", "status", "expires_at"),
        Index("ix_wallet_hold_debit_account_id_status", "debit_account_id", "status"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    entry_id: uuid.UUID = Field(foreign_key="wallet_entry.id", unique=True)
    debit_account_id: uuid.UUID = Field(foreign_key="wallet_account.id")
    credit_account_id: uuid.UUID = Field(foreign_key="wallet_account.id")
    asset: str = Field(sa_type=String(64))
    amount: int = Field(sa_type=BigInteger)
    code: str = Field(sa_type=String(40))
    expires_at: datetime = Field(sa_type=UTCDateTime)
    status: HoldStatus = Field(default=HoldStatus.pending, sa_type=String(16))
    captured_amount: int | None = Field(default=None, sa_type=BigInteger)
    resolved_entry_id: uuid.UUID | None = Field(default=None, foreign_key="wallet_entry.id")
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ChainHead(SQLModel, table=True):
    """The tip of one journal chain. Locking it orders that chain's appends."""

    __tablename__ = "wallet_chain_head"

    chain: int = Field(
        sa_type=SmallInteger, primary_key=True, sa_column_kwargs={"autoincrement": False}
    )
    seq: int = Field(default=0, sa_type=BigInteger)
    hash: str = Field(default="0" * 64, sa_type=String(64))
