"""Holds: reserve funds (pending debits count against the floor), then capture, void or expire.

A hold is a ``hold`` journal entry of pending postings plus a ``wallet_hold`` row that tracks its
state. Capturing posts the captured amount and releases the whole reservation (a partial capture
releases the rest); voiding and expiring release it. Each of these is its own journal entry, so
pending balances are recomputable from the journal like posted ones. An expired hold can be
neither captured nor voided; its funds are released by ``tanhui wallet expire-holds`` and lazily
whenever a debit from the same account would otherwise fail for want of funds.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from tanhui.db import new_id, utcnow
from tanhui.i18n import N_
from wallet.errors import HoldExpired, HoldNotPending, InvalidEntry, UnknownHold
from wallet.models import EntryKind, Hold, HoldStatus, JournalEntry, Layer
from wallet.service import engine
from wallet.service.entries import (
    DEFAULT_SCOPE,
    check_amount,
    check_code,
    check_scope_and_key,
    metadata_json,
    request_fingerprint,
)

MAX_EXPIRIES_PER_CALL = 1_000


def hold(
    session: Session,
    *,
    debit_account_id: uuid.UUID,
    credit_account_id: uuid.UUID,
    amount: int,
    expires_at: datetime,
    code: str,
    idempotency_key: str | None = None,
    scope: str = DEFAULT_SCOPE,
    metadata: dict[str, Any] | None = None,
) -> Hold:
    """Reserve ``amount`` on the debit account for the credit account until ``expires_at``.

    Same key and request: the original hold. Raises InsufficientFunds, AccountFrozen,
    UnknownAccount, MixedAssets, InvalidEntry, IdempotencyConflict.
    """
    record, _duplicate = submit_hold(
        session,
        debit_account_id=debit_account_id,
        credit_account_id=credit_account_id,
        amount=amount,
        expires_at=expires_at,
        code=code,
        idempotency_key=idempotency_key,
        scope=scope,
        metadata=metadata,
    )
    return record


def submit_hold(
    session: Session,
    *,
    debit_account_id: uuid.UUID,
    credit_account_id: uuid.UUID,
    amount: int,
    expires_at: datetime,
    code: str,
    idempotency_key: str | None = None,
    scope: str = DEFAULT_SCOPE,
    metadata: dict[str, Any] | None = None,
) -> tuple[Hold, bool]:
    """:func:`hold`, also telling whether the hold is new or one made earlier with the same key
    and request (``True``); raises the same errors."""
    check_code(code)
    key = check_scope_and_key(scope, idempotency_key)
    check_amount(amount)
    if expires_at.tzinfo is None:
        raise InvalidEntry(N_("expires_at must carry a time zone."))
    if expires_at <= utcnow():
        raise InvalidEntry(N_("expires_at must be in the future."))
    if debit_account_id == credit_account_id:
        raise InvalidEntry(N_("A hold debits and credits two different accounts."))
    meta = metadata_json(metadata)
    hold_id = new_id()
    draft = engine.Draft(
        kind=EntryKind.hold,
        code=code,
        scope=scope,
        idempotency_key=key,
        request_hash=request_fingerprint(
            {
                "kind": "hold",
                "code": code,
                "debit": str(debit_account_id),
                "credit": str(credit_account_id),
                "amount": amount,
                "expires_at": expires_at.isoformat(),
                "metadata": meta,
            }
        ),
        metadata_json=meta,
        legs=engine.pair(debit_account_id, credit_account_id, amount, Layer.pending),
        hold_id=hold_id,
    )
    (outcome,) = engine.apply(session, [draft])
    if outcome.error is not None:
        raise outcome.error
    assert outcome.entry is not None
    if outcome.duplicate:
        return _hold_of_entry(session, outcome.entry), True
    record = Hold(
        id=hold_id,
        entry_id=outcome.entry.id,
        debit_account_id=debit_account_id,
        credit_account_id=credit_account_id,
        asset=_asset_of(session, debit_account_id),
        amount=amount,
        code=code,
        expires_at=expires_at,
        status=HoldStatus.pending,
        created_at=outcome.entry.created_at,
    )
    session.add(record)
    session.flush()
    return record, False


def _asset_of(session: Session, account_id: uuid.UUID) -> str:
    from wallet.models import Account

    account = session.get(Account, account_id)
    assert account is not None
    return account.asset


def _hold_of_entry(session: Session, entry: JournalEntry) -> Hold:
    found = session.exec(select(Hold).where(col(Hold.entry_id) == entry.id)).first()
    if found is None:  # pragma: no cover - a hold entry always has its hold row
        raise UnknownHold(N_("No hold for entry {entry_id}."), entry_id=str(entry.id))
    return found


def get_hold(session: Session, hold_id: uuid.UUID) -> Hold:
    found = session.get(Hold, hold_id)
    if found is None:
        raise UnknownHold(N_("No hold {hold_id}."), hold_id=str(hold_id))
    return found


def _locked_hold(session: Session, hold_id: uuid.UUID) -> Hold:
    found = session.exec(
        select(Hold)
        .where(col(Hold.id) == hold_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if found is None:
        raise UnknownHold(N_("No hold {hold_id}."), hold_id=str(hold_id))
    return found


def is_expired(record: Hold, now: datetime | None = None) -> bool:
    return record.status == HoldStatus.pending and record.expires_at <= (now or utcnow())


def lapsed_hold_debits(session: Session, account_id: uuid.UUID, now: datetime | None = None) -> int:
    """What the account's expired but not yet released holds still reserve (their pending
    debits). A debit releases them on demand, so it is in effect available; until a sweep or a
    debit touches them, the balance rows still count it as pending."""
    total = session.exec(
        select(func.coalesce(func.sum(Hold.amount), 0))
        .where(col(Hold.debit_account_id) == account_id)
        .where(col(Hold.status) == HoldStatus.pending)
        .where(col(Hold.expires_at) <= (now or utcnow()))
    ).one()
    return int(total)


def _release_legs(record: Hold) -> list[engine.Leg]:
    return engine.pair(
        record.debit_account_id, record.credit_account_id, -record.amount, Layer.pending
    )


def _resolution_draft(
    record: Hold, kind: EntryKind, legs: list[engine.Leg], fields: dict[str, Any]
) -> engine.Draft:
    return engine.Draft(
        kind=kind,
        code=record.code,
        scope=DEFAULT_SCOPE,
        idempotency_key=None,
        request_hash=request_fingerprint({"kind": kind.value, "hold": str(record.id), **fields}),
        metadata_json="{}",
        legs=legs,
        hold_id=record.id,
    )


def _apply_one(session: Session, draft: engine.Draft) -> JournalEntry:
    (outcome,) = engine.apply(session, [draft], release_expired=False)
    if outcome.error is not None:
        raise outcome.error
    assert outcome.entry is not None
    return outcome.entry


def _refuse_expired(record: Hold) -> None:
    raise HoldExpired(
        N_("Hold {hold_id} expired at {expires_at}."),
        hold_id=str(record.id),
        expires_at=record.expires_at.isoformat(),
    )


def capture_hold(
    session: Session, hold_id: uuid.UUID, *, amount: int | None = None
) -> JournalEntry:
    """Post ``amount`` (default: all) of a pending hold and release the rest.

    Capturing a captured hold again with the same amount returns the capture entry (safe
    retries). Raises UnknownHold, HoldExpired, HoldNotPending, InvalidEntry, AccountFrozen.
    """
    record = _locked_hold(session, hold_id)
    if amount is not None:
        check_amount(amount)
    if (
        record.status == HoldStatus.captured
        and record.resolved_entry_id is not None
        and (amount is None or amount == record.captured_amount)
    ):
        entry = session.get(JournalEntry, record.resolved_entry_id)
        assert entry is not None
        return entry
    if record.status == HoldStatus.expired or is_expired(record):
        _refuse_expired(record)
    if record.status != HoldStatus.pending:
        raise HoldNotPending(
            N_("Hold {hold_id} is {status}."), hold_id=str(record.id), status=str(record.status)
        )
    captured = record.amount if amount is None else amount
    if captured > record.amount:
        raise InvalidEntry(
            N_("Hold {hold_id} reserves only {reserved}."),
            hold_id=str(record.id),
            reserved=record.amount,
        )
    legs = _release_legs(record) + engine.pair(
        record.debit_account_id, record.credit_account_id, captured, Layer.posted
    )
    entry = _apply_one(
        session, _resolution_draft(record, EntryKind.capture, legs, {"amount": captured})
    )
    record.status = HoldStatus.captured
    record.captured_amount = captured
    record.resolved_entry_id = entry.id
    record.resolved_at = entry.created_at
    session.add(record)
    session.flush()
    return entry


def void_hold(session: Session, hold_id: uuid.UUID) -> Hold:
    """Release a pending hold. Voiding a voided hold again returns it (safe retries).

    Raises UnknownHold, HoldExpired, HoldNotPending.
    """
    record = _locked_hold(session, hold_id)
    if record.status == HoldStatus.voided:
        return record
    if record.status == HoldStatus.expired or is_expired(record):
        _refuse_expired(record)
    if record.status != HoldStatus.pending:
        raise HoldNotPending(
            N_("Hold {hold_id} is {status}."), hold_id=str(record.id), status=str(record.status)
        )
    entry = _apply_one(
        session, _resolution_draft(record, EntryKind.void, _release_legs(record), {})
    )
    record.status = HoldStatus.voided
    record.resolved_entry_id = entry.id
    record.resolved_at = entry.created_at
    session.add(record)
    session.flush()
    return record


def _expire(session: Session, records: Sequence[Hold]) -> int:
    if not records:
        return 0
    drafts = [_resolution_draft(r, EntryKind.expire, _release_legs(r), {}) for r in records]
    outcomes = engine.apply(session, drafts, release_expired=False)
    count = 0
    for record, outcome in zip(records, outcomes, strict=True):
        if outcome.entry is None:  # pragma: no cover - releases cannot fail a check
            continue
        record.status = HoldStatus.expired
        record.resolved_entry_id = outcome.entry.id
        record.resolved_at = outcome.entry.created_at
        session.add(record)
        count += 1
    session.flush()
    return count


def expire_holds(
    session: Session, *, now: datetime | None = None, limit: int = MAX_EXPIRIES_PER_CALL
) -> int:
    """Release up to ``limit`` holds that have expired; returns how many.

    Holds another transaction is working on are skipped (they are captured, voided or expired
    there); run it again to continue.
    """
    moment = now or utcnow()
    records = session.exec(
        select(Hold)
        .where(col(Hold.status) == HoldStatus.pending)
        .where(col(Hold.expires_at) <= moment)
        .order_by(col(Hold.expires_at), col(Hold.id))
        .limit(max(1, min(limit, MAX_EXPIRIES_PER_CALL)))
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).all()
    return _expire(session, records)


def expire_hold(session: Session, hold_id: uuid.UUID) -> Hold:
    """Release one hold whose expiry has passed, now (the lazy path for a caller that meets it,
    e.g. a pledge that outlived its hold); a hold already expired is returned as it is.

    Raises UnknownHold, HoldNotPending (captured or voided), InvalidEntry (not expired yet).
    """
    record = _locked_hold(session, hold_id)
    if record.status == HoldStatus.expired:
        return record
    if record.status != HoldStatus.pending:
        raise HoldNotPending(
            N_("Hold {hold_id} is {status}."), hold_id=str(record.id), status=str(record.status)
        )
    if not is_expired(record):
        raise InvalidEntry(
            N_("Hold {hold_id} expires at {expires_at}; it has not expired yet."),
            hold_id=str(record.id),
            expires_at=record.expires_at.isoformat(),
        )
    _expire(session, [record])
    return record


def release_expired_holds(session: Session, *, account_ids: Sequence[uuid.UUID]) -> int:
    """Expire the expired holds that reserve funds on ``account_ids`` (the lazy path, taken when
    a debit from one of them lacks funds). Holds busy in other transactions are skipped."""
    records = session.exec(
        select(Hold)
        .where(col(Hold.debit_account_id).in_(list(account_ids)))
        .where(col(Hold.status) == HoldStatus.pending)
        .where(col(Hold.expires_at) <= utcnow())
        .order_by(col(Hold.id))
        .limit(MAX_EXPIRIES_PER_CALL)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).all()
    return _expire(session, records)
