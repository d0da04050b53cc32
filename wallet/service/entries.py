"""Journal entries: post one (all transfers or none), post a batch, reverse one."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from tanhui.crypto import canonical_json, sha256_hex
from tanhui.errors import DomainError
from tanhui.i18n import N_
from wallet.errors import AlreadyReversed, InvalidEntry, UnknownEntry
from wallet.models import EntryKind, JournalEntry, Layer, Posting, Side
from wallet.service import engine

MAX_TRANSFERS_PER_ENTRY = 100
MAX_BATCH_ENTRIES = 1_000
MAX_AMOUNT = 10**15  # per transfer: 10 trillion yuan in fen; keeps sums far from 2**63
MAX_METADATA_BYTES = 16_384
MAX_KEY_LENGTH = 200
DEFAULT_SCOPE = "platform"
_CODE = re.compile(r"^[a-z][a-z0-9_.-]{0,39}$")
_SCOPE = re.compile(r"^[A-Za-z0-9_.:-]{1,120}$")

# Business codes in use (others matching the pattern are accepted, for new flows).
ENTRY_CODES = (
    "issuance",
    "transfer",
    "purchase",
    "settlement",
    "revenue_share",
    "retirement",
    "compensation",
    "points_accrual",
    "points_redemption",
    "refund",
    "adjustment",
    "reversal",
    "collection_payment",
    "reward_reimbursement",
)


@dataclass(frozen=True)
class Transfer:
    """Move ``amount`` (smallest unit, > 0) from the debit account to the credit account."""

    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    amount: int


@dataclass(frozen=True)
class EntryRequest:
    """One entry of a batch (see :func:`post_entries`)."""

    code: str
    transfers: Sequence[Transfer]
    idempotency_key: str | None = None
    metadata: dict[str, Any] | None = None
    reverses: uuid.UUID | None = None


@dataclass(frozen=True)
class EntryResult:
    """What became of one entry of a batch: ``entry`` (new or, if ``duplicate``, the one made
    earlier with the same key) or ``error`` (why it was rejected)."""

    index: int
    entry: JournalEntry | None
    error: DomainError | None
    duplicate: bool = False

    @property
    def status(self) -> str:
        if self.error is not None:
            return "rejected"
        return "duplicate" if self.duplicate else "posted"


def check_amount(amount: object, field: str = "amount") -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidEntry(N_("{field} must be a whole number."), field=field)
    if amount <= 0:
        raise InvalidEntry(N_("{field} must be greater than zero."), field=field)
    if amount > MAX_AMOUNT:
        raise InvalidEntry(
            N_("{field} must not exceed {maximum}."), field=field, maximum=MAX_AMOUNT
        )
    return amount


def check_code(code: str) -> str:
    if not isinstance(code, str) or not _CODE.match(code):
        raise InvalidEntry(
            N_("The entry code must be 1 to 40 lowercase letters, digits or _ . -."), code=code
        )
    return code


def check_scope_and_key(scope: str, key: str | None) -> str | None:
    if not _SCOPE.match(scope):
        raise InvalidEntry(N_("{scope} is not a valid idempotency scope."), scope=scope)
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidEntry(
            N_("An idempotency key must have 1 to {maximum} characters."), maximum=MAX_KEY_LENGTH
        )
    return key


def metadata_json(metadata: dict[str, Any] | None) -> str:
    if metadata is None:
        return "{}"
    if not isinstance(metadata, dict):
        raise InvalidEntry(N_("Metadata must be a JSON object."))
    try:
        text = canonical_json(metadata).decode("utf-8")
    except (TypeError, ValueError):
        raise InvalidEntry(N_("Metadata must be plain JSON (finite numbers only).")) from None
    if len(text.encode("utf-8")) > MAX_METADATA_BYTES:
        raise InvalidEntry(
            N_("Metadata must not exceed {maximum} bytes."), maximum=MAX_METADATA_BYTES
        )
    return text


def request_fingerprint(document: dict[str, Any]) -> str:
    return sha256_hex(canonical_json(document))


def draft_transfer_entry(
    *,
    code: str,
    transfers: Sequence[Transfer],
    idempotency_key: str | None,
    scope: str,
    metadata: dict[str, Any] | None,
    reverses: uuid.UUID | None,
) -> engine.Draft:
    """Validate the request's shape and turn it into a draft (raises InvalidEntry)."""
    check_code(code)
    key = check_scope_and_key(scope, idempotency_key)
    if not transfers:
        raise InvalidEntry(N_("An entry needs at least one transfer."))
    if len(transfers) > MAX_TRANSFERS_PER_ENTRY:
        raise InvalidEntry(
            N_("An entry has at most {maximum} transfers."), maximum=MAX_TRANSFERS_PER_ENTRY
        )
    legs: list[engine.Leg] = []
    described = []
    for position, transfer in enumerate(transfers):
        amount = check_amount(transfer.amount, f"transfers[{position}].amount")
        if transfer.debit_account_id == transfer.credit_account_id:
            raise InvalidEntry(
                N_("Transfer {position} debits and credits the same account."), position=position
            )
        legs += engine.pair(
            transfer.debit_account_id, transfer.credit_account_id, amount, Layer.posted
        )
        described.append([str(transfer.debit_account_id), str(transfer.credit_account_id), amount])
    meta = metadata_json(metadata)
    fingerprint = request_fingerprint(
        {
            "kind": "transfer",
            "code": code,
            "transfers": described,
            "metadata": meta,
            "reverses": str(reverses) if reverses else None,
        }
    )
    return engine.Draft(
        kind=EntryKind.transfer,
        code=code,
        scope=scope,
        idempotency_key=key,
        request_hash=fingerprint,
        metadata_json=meta,
        legs=legs,
        reverses_id=reverses,
    )


def _check_reverses(session: Session, reverses: uuid.UUID | None) -> None:
    if reverses is not None and session.get(JournalEntry, reverses) is None:
        raise UnknownEntry(N_("No journal entry {entry_id}."), entry_id=str(reverses))


def post_entry(
    session: Session,
    *,
    code: str,
    transfers: Sequence[Transfer],
    idempotency_key: str | None = None,
    scope: str = DEFAULT_SCOPE,
    metadata: dict[str, Any] | None = None,
    reverses: uuid.UUID | None = None,
) -> JournalEntry:
    """Post one entry: every transfer applies, or none does.

    Same ``idempotency_key`` (in ``scope``) and same request: the original entry, nothing
    posted again. Raises IdempotencyConflict (key reused for another request),
    InsufficientFunds, AccountFrozen, UnknownAccount, MixedAssets, InvalidEntry.
    """
    result = submit_entry(
        session,
        code=code,
        transfers=transfers,
        idempotency_key=idempotency_key,
        scope=scope,
        metadata=metadata,
        reverses=reverses,
    )
    assert result.entry is not None
    return result.entry


def submit_entry(
    session: Session,
    *,
    code: str,
    transfers: Sequence[Transfer],
    idempotency_key: str | None = None,
    scope: str = DEFAULT_SCOPE,
    metadata: dict[str, Any] | None = None,
    reverses: uuid.UUID | None = None,
) -> EntryResult:
    """:func:`post_entry`, also telling whether the entry is new or an earlier one replayed
    (``duplicate``); raises the same errors."""
    draft = draft_transfer_entry(
        code=code,
        transfers=transfers,
        idempotency_key=idempotency_key,
        scope=scope,
        metadata=metadata,
        reverses=reverses,
    )
    _check_reverses(session, reverses)
    (outcome,) = engine.apply(session, [draft])
    if outcome.error is not None:
        raise outcome.error
    return EntryResult(index=0, entry=outcome.entry, error=None, duplicate=outcome.duplicate)


def post_entries(
    session: Session, entries: Sequence[EntryRequest], *, scope: str = DEFAULT_SCOPE
) -> list[EntryResult]:
    """Post up to 1,000 entries in this transaction, each applied or rejected on its own.

    Entries are checked in order against the balances left by the ones before them
    (TigerBeetle's batches); a rejected entry changes nothing and carries its reason.
    """
    if len(entries) > MAX_BATCH_ENTRIES:
        raise InvalidEntry(N_("A batch has at most {maximum} entries."), maximum=MAX_BATCH_ENTRIES)
    results: list[EntryResult | None] = [None] * len(entries)
    drafts: list[engine.Draft] = []
    positions: list[int] = []
    for index, request in enumerate(entries):
        try:
            draft = draft_transfer_entry(
                code=request.code,
                transfers=request.transfers,
                idempotency_key=request.idempotency_key,
                scope=scope,
                metadata=request.metadata,
                reverses=request.reverses,
            )
            _check_reverses(session, request.reverses)
        except DomainError as error:
            results[index] = EntryResult(index=index, entry=None, error=error)
            continue
        drafts.append(draft)
        positions.append(index)
    for index, outcome in zip(positions, engine.apply(session, drafts), strict=True):
        results[index] = EntryResult(
            index=index, entry=outcome.entry, error=outcome.error, duplicate=outcome.duplicate
        )
    return [result for result in results if result is not None]


def get_entry(session: Session, entry_id: uuid.UUID) -> JournalEntry:
    entry = session.get(JournalEntry, entry_id)
    if entry is None:
        raise UnknownEntry(N_("No journal entry {entry_id}."), entry_id=str(entry_id))
    return entry


def find_entry_by_key(session: Session, *, scope: str, idempotency_key: str) -> JournalEntry | None:
    """The entry posted with ``idempotency_key`` in ``scope``, if any (the unique index)."""
    return session.exec(
        select(JournalEntry)
        .where(col(JournalEntry.scope) == scope)
        .where(col(JournalEntry.idempotency_key) == idempotency_key)
    ).first()


def entry_postings(session: Session, entry_id: uuid.UUID) -> list[Posting]:
    return list(
        session.exec(
            select(Posting).where(col(Posting.entry_id) == entry_id).order_by(col(Posting.ordinal))
        ).all()
    )


def transfers_of(
    session: Session, entry_id: uuid.UUID, *, layer: Layer = Layer.posted
) -> list[Transfer]:
    """The transfers of an entry in ``layer``, as (debit, credit, amount) pairs (a pending
    release has a negative amount). Postings come as (debit, credit) pairs, or, in a
    distribution, as one debit followed by its credits: each credit is then a transfer from
    that debit's account."""
    transfers = []
    debit: Posting | None = None
    for posting in entry_postings(session, entry_id):
        if posting.layer != layer:
            continue
        if posting.side == Side.debit:
            debit = posting
        elif debit is not None:
            transfers.append(Transfer(debit.account_id, posting.account_id, posting.amount))
    return transfers


def reverse_entry(
    session: Session,
    entry_id: uuid.UUID,
    *,
    code: str = "reversal",
    idempotency_key: str | None = None,
    scope: str = DEFAULT_SCOPE,
    metadata: dict[str, Any] | None = None,
) -> JournalEntry:
    """Post the mirror image of a posted entry, linked to it (the original is never changed)."""
    original = get_entry(session, entry_id)
    transfers = transfers_of(session, entry_id)
    if not transfers:
        raise InvalidEntry(
            N_("Entry {entry_id} has no posted transfers to reverse."), entry_id=str(entry_id)
        )
    earlier = session.exec(
        select(JournalEntry).where(col(JournalEntry.reverses_id) == original.id)
    ).first()
    if earlier is not None and (
        idempotency_key is None or earlier.idempotency_key != idempotency_key
    ):
        raise AlreadyReversed(
            N_("Entry {entry_id} was already reversed by {reversal_id}."),
            entry_id=str(entry_id),
            reversal_id=str(earlier.id),
        )
    return post_entry(
        session,
        code=code,
        transfers=[Transfer(t.credit_account_id, t.debit_account_id, t.amount) for t in transfers],
        idempotency_key=idempotency_key,
        scope=scope,
        metadata=metadata,
        reverses=original.id,
    )
