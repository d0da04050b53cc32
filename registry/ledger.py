"""The registry's postings to the wallet ledger, in one place.

Credits of a batch are the wallet asset ``CREDIT:<serial prefix>`` in whole tonnes; the serial
blocks (registry) and the balances (wallet) move together in the same transaction, so for every
batch and owner the tonnes in the owner's blocks that are not retired or cancelled equal the
owner's balance. Money is the ``CNY`` asset in fen.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from wallet import service as wallet

ISSUANCE = "issuance"
BUFFER_POOL = "buffer_pool"
RETIREMENT = "retirement"
CANCELLED = "cancelled_credits"  # buffer credits cancelled after reversals
MAX_TRANSFERS_PER_ENTRY = 100  # the wallet's limit per entry
MAX_METADATA_BLOCKS = 50


@dataclass(frozen=True)
class Move:
    """``amount`` of ``asset`` from ``debit`` owner to ``credit`` owner (wallet owner strings)."""

    debit: str
    credit: str
    amount: int


def ensure_credit_asset(session: Session, serial_prefix: str, description: str) -> str:
    code = wallet.credit_asset(serial_prefix)
    wallet.ensure_asset(session, code, scale=0, description=description[:200])
    return code


def _account(session: Session, asset: str, owner: str) -> uuid.UUID:
    kind, _, name = owner.partition(":")
    if kind == "system":
        return wallet.system_account(session, name, asset).id
    return wallet.account_for(session, asset=asset, owner=owner).id


def post(
    session: Session,
    *,
    code: str,
    asset: str,
    moves: Sequence[Move],
    metadata: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> uuid.UUID:
    """Post ``moves`` of one asset as one journal entry (or several, 100 transfers each, all in
    this transaction); returns the first entry's id."""
    if not moves:
        raise ValueError("nothing to post")
    transfers = [
        wallet.Transfer(
            _account(session, asset, m.debit), _account(session, asset, m.credit), m.amount
        )
        for m in moves
        if m.amount > 0
    ]
    first: uuid.UUID | None = None
    for index, start in enumerate(range(0, len(transfers), MAX_TRANSFERS_PER_ENTRY)):
        key = None
        if idempotency_key is not None:
            key = idempotency_key if index == 0 else f"{idempotency_key}#{index}"
        entry = wallet.post_entry(
            session,
            code=code,
            transfers=transfers[start : start + MAX_TRANSFERS_PER_ENTRY],
            idempotency_key=key,
            scope="registry",
            metadata={**(metadata or {}), "part": index + 1} if len(transfers) > 100 else metadata,
        )
        first = first or entry.id
    assert first is not None
    return first


def open_cny_account(session: Session, owner: str) -> uuid.UUID:
    """The owner's CNY account (fen), opened if missing: households receive payments there."""
    return wallet.account_for(session, asset=wallet.ASSET_CNY, owner=owner).id


def balance(session: Session, *, asset: str, owner: str) -> int:
    account = wallet.find_account(session, asset=asset, owner=owner)
    if account is None:
        return 0
    return wallet.get_balance(session, account.id).balance


def available(session: Session, *, asset: str, owner: str) -> int:
    account = wallet.find_account(session, asset=asset, owner=owner)
    if account is None:
        return 0
    return wallet.get_balance(session, account.id).available


def blocks_metadata(blocks: Sequence[tuple[str, str]]) -> list[list[str]]:
    """Serial blocks for entry metadata (bounded: the wallet caps metadata size)."""
    return [list(block) for block in blocks[:MAX_METADATA_BLOCKS]]


CNY = wallet.ASSET_CNY
