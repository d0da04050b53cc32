"""The ledger's use cases, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlmodel import Session, col, select

from tanhui.db import utcnow
from tanhui.errors import IdempotencyConflict, InvalidInput
from wallet import service
from wallet.errors import (
    AccountExists,
    AccountFrozen,
    AlreadyReversed,
    HoldExpired,
    HoldNotPending,
    InsufficientFunds,
    InvalidEntry,
    MixedAssets,
    UnknownAccount,
    UnknownAsset,
)
from wallet.models import Account, HoldStatus, JournalEntry, Posting
from wallet.service import Transfer


def org() -> str:
    return f"org:{uuid.uuid4()}"


def funded(session: Session, amount: int, asset: str = service.ASSET_CNY) -> Account:
    """A user account holding ``amount``, credited from the issuance account."""
    account = service.open_account(session, asset=asset, owner=org())
    if amount:
        source = service.system_account(session, "issuance", asset)
        service.post_entry(
            session, code="issuance", transfers=[Transfer(source.id, account.id, amount)]
        )
    return account


def test_open_account_starts_empty(session: Session) -> None:
    account = service.open_account(session, asset="CNY", owner=org())
    balance = service.get_balance(session, account.id)
    assert (balance.balance, balance.available, balance.floor) == (0, 0, 0)
    assert balance.asset == "CNY"


def test_account_for_gets_or_opens_once(session: Session) -> None:
    owner = org()
    first = service.account_for(session, asset="POINTS", owner=owner)
    again = service.account_for(session, asset="POINTS", owner=owner)
    assert first.id == again.id
    other = service.account_for(session, asset="POINTS", owner=owner, purpose="escrow")
    assert other.id != first.id
    with pytest.raises(AccountExists):
        service.open_account(session, asset="POINTS", owner=owner)


def test_user_accounts_cannot_be_unbounded(session: Session) -> None:
    with pytest.raises(InvalidInput):
        service.open_account(session, asset="CNY", owner=org(), floor=None)
    with pytest.raises(InvalidInput):
        service.open_account(session, asset="CNY", owner="nobody")
    with pytest.raises(UnknownAsset):
        service.open_account(session, asset="USD", owner=org())


def test_system_accounts_declare_floors_and_shards(session: Session) -> None:
    issuance = service.system_account(session, "issuance", "CNY")
    fees = service.system_account(session, "fees", "CNY")
    assert issuance.floor is None and issuance.shards == service.HOT_SHARDS
    assert fees.floor == 0 and fees.shards == service.HOT_SHARDS
    assert service.system_account(session, "fees", "CNY").id == fees.id


def test_credit_assets_are_created_on_first_use(session: Session) -> None:
    asset = service.credit_asset("CN-ZJ-HZ-2024-001")
    assert asset == "CREDIT:CN-ZJ-HZ-2024-001"
    holder = service.account_for(session, asset=asset, owner=org())
    assert holder.asset == asset
    assert service.ensure_asset(session, asset).scale == 0


def test_post_entry_moves_value_and_balances(session: Session) -> None:
    payer = funded(session, 1_000)
    payee = service.open_account(session, asset="CNY", owner=org())
    entry = service.post_entry(
        session,
        code="purchase",
        transfers=[Transfer(payer.id, payee.id, 300)],
        metadata={"order": "A-1"},
    )
    assert entry.code == "purchase"
    assert service.get_balance(session, payer.id).balance == 700
    assert service.get_balance(session, payee.id).balance == 300
    issuance = service.system_account(session, "issuance", "CNY")
    assert service.get_balance(session, issuance.id).balance == -1_000


def test_postings_of_one_code_newest_first(session: Session) -> None:
    payer = funded(session, 1_000)
    payee = service.open_account(session, asset="CNY", owner=org())
    for amount, code in [(10, "purchase"), (20, "refund"), (30, "purchase"), (40, "purchase")]:
        service.post_entry(
            session, code=code, transfers=[Transfer(payer.id, payee.id, amount)], metadata={}
        )
    lines = service.postings_of_code(session, payee.id, code="purchase")
    assert [(line.amount, line.code, line.side) for line in lines] == [
        (40, "purchase", "C"),
        (30, "purchase", "C"),
        (10, "purchase", "C"),
    ]
    assert [
        line.amount
        for line in service.postings_of_code(session, payee.id, code="purchase", limit=2)
    ] == [40, 30]
    assert service.postings_of_code(session, payee.id, code="settlement") == []
    with pytest.raises(InvalidInput):
        service.postings_of_code(session, payee.id, code="purchase", limit=0)


def test_all_transfers_of_an_entry_or_none(session: Session) -> None:
    payer = funded(session, 100)
    a = service.open_account(session, asset="CNY", owner=org())
    b = service.open_account(session, asset="CNY", owner=org())
    with pytest.raises(InsufficientFunds) as raised:
        service.post_entry(
            session,
            code="settlement",
            transfers=[Transfer(payer.id, a.id, 60), Transfer(payer.id, b.id, 60)],
        )
    assert raised.value.problem_type().endswith("insufficient-funds")
    assert raised.value.status == 409
    assert service.get_balance(session, payer.id).balance == 100
    assert service.get_balance(session, a.id).balance == 0


def test_unknown_account_and_mixed_assets(session: Session) -> None:
    payer = funded(session, 100)
    points = service.open_account(session, asset="POINTS", owner=org())
    with pytest.raises(UnknownAccount):
        service.post_entry(
            session, code="transfer", transfers=[Transfer(payer.id, uuid.uuid4(), 1)]
        )
    with pytest.raises(MixedAssets):
        service.post_entry(session, code="transfer", transfers=[Transfer(payer.id, points.id, 1)])


@pytest.mark.parametrize("amount", [0, -5, True, 10**16])
def test_amounts_must_be_positive_whole_numbers(session: Session, amount: int) -> None:
    payer = funded(session, 100)
    payee = service.open_account(session, asset="CNY", owner=org())
    with pytest.raises(InvalidEntry):
        service.post_entry(
            session, code="transfer", transfers=[Transfer(payer.id, payee.id, amount)]
        )


def test_float_amounts_are_refused(session: Session) -> None:
    payer = funded(session, 100)
    payee = service.open_account(session, asset="CNY", owner=org())
    with pytest.raises(InvalidEntry):
        service.post_entry(
            session,
            code="transfer",
            transfers=[Transfer(payer.id, payee.id, 1.5)],  # type: ignore[arg-type]
        )


def test_idempotency_key_returns_the_original(session: Session) -> None:
    payer = funded(session, 100)
    payee = service.open_account(session, asset="CNY", owner=org())
    transfers = [Transfer(payer.id, payee.id, 10)]
    first = service.post_entry(session, code="transfer", transfers=transfers, idempotency_key="k1")
    again = service.post_entry(session, code="transfer", transfers=transfers, idempotency_key="k1")
    assert again.id == first.id
    assert service.get_balance(session, payee.id).balance == 10
    with pytest.raises(IdempotencyConflict):
        service.post_entry(
            session,
            code="transfer",
            transfers=[Transfer(payer.id, payee.id, 11)],
            idempotency_key="k1",
        )
    other_scope = service.post_entry(
        session, code="transfer", transfers=transfers, idempotency_key="k1", scope="org:x"
    )
    assert other_scope.id != first.id
    assert service.get_balance(session, payee.id).balance == 20


def test_idempotency_survives_commit(session: Session) -> None:
    payer = funded(session, 100)
    payee = service.open_account(session, asset="CNY", owner=org())
    transfers = [Transfer(payer.id, payee.id, 10)]
    first = service.post_entry(session, code="transfer", transfers=transfers, idempotency_key="c")
    session.commit()
    again = service.post_entry(session, code="transfer", transfers=transfers, idempotency_key="c")
    session.commit()
    assert again.id == first.id
    assert service.get_balance(session, payee.id).balance == 10


def test_frozen_accounts_take_no_debits(session: Session) -> None:
    payer = funded(session, 100)
    payee = service.open_account(session, asset="CNY", owner=org())
    service.set_frozen(session, payer.id, frozen=True, actor="system:test")
    with pytest.raises(AccountFrozen):
        service.post_entry(session, code="transfer", transfers=[Transfer(payer.id, payee.id, 1)])
    issuance = service.system_account(session, "issuance", "CNY")
    service.post_entry(session, code="issuance", transfers=[Transfer(issuance.id, payer.id, 5)])
    assert service.get_balance(session, payer.id).balance == 105
    service.set_frozen(session, payer.id, frozen=False, actor="system:test")
    service.post_entry(session, code="transfer", transfers=[Transfer(payer.id, payee.id, 1)])
    assert service.verify_ledger(session).ok


def test_holds_reserve_then_capture_part(session: Session) -> None:
    payer = funded(session, 100)
    payee = service.open_account(session, asset="CNY", owner=org())
    held = service.hold(
        session,
        debit_account_id=payer.id,
        credit_account_id=payee.id,
        amount=80,
        expires_at=utcnow() + timedelta(minutes=5),
        code="purchase",
    )
    balance = service.get_balance(session, payer.id)
    assert (balance.balance, balance.available, balance.pending_debits) == (100, 20, 80)
    with pytest.raises(InsufficientFunds):
        service.post_entry(session, code="transfer", transfers=[Transfer(payer.id, payee.id, 21)])
    entry = service.capture_hold(session, held.id, amount=50)
    assert entry.kind == "capture"
    balance = service.get_balance(session, payer.id)
    assert (balance.balance, balance.available, balance.pending_debits) == (50, 50, 0)
    assert service.get_balance(session, payee.id).balance == 50
    assert service.get_balance(session, payee.id).pending_credits == 0
    again = service.capture_hold(session, held.id, amount=50)
    assert again.id == entry.id
    with pytest.raises(HoldNotPending):
        service.void_hold(session, held.id)
    assert service.verify_ledger(session).ok


def test_void_releases_and_is_repeatable(session: Session) -> None:
    payer = funded(session, 100)
    payee = service.open_account(session, asset="CNY", owner=org())
    held = service.hold(
        session,
        debit_account_id=payer.id,
        credit_account_id=payee.id,
        amount=100,
        expires_at=utcnow() + timedelta(minutes=5),
        code="purchase",
        idempotency_key="h1",
    )
    same = service.hold(
        session,
        debit_account_id=payer.id,
        credit_account_id=payee.id,
        amount=100,
        expires_at=held.expires_at,
        code="purchase",
        idempotency_key="h1",
    )
    assert same.id == held.id
    assert service.get_balance(session, payer.id).available == 0
    voided = service.void_hold(session, held.id)
    assert voided.status == HoldStatus.voided
    assert service.void_hold(session, held.id).status == HoldStatus.voided
    assert service.get_balance(session, payer.id).available == 100
    with pytest.raises(HoldNotPending):
        service.capture_hold(session, held.id)


def _expired_hold(session: Session, payer: Account, payee: Account, amount: int) -> uuid.UUID:
    held = service.hold(
        session,
        debit_account_id=payer.id,
        credit_account_id=payee.id,
        amount=amount,
        expires_at=utcnow() + timedelta(seconds=30),
        code="purchase",
    )
    return held.id


def test_expired_holds_neither_capture_nor_void_and_release(session: Session) -> None:
    payer = funded(session, 100)
    payee = service.open_account(session, asset="CNY", owner=org())
    hold_id = _expired_hold(session, payer, payee, 70)
    later = utcnow() + timedelta(minutes=1)
    assert service.expire_holds(session, now=utcnow()) == 0
    record = service.get_hold(session, hold_id)
    record.expires_at = utcnow() - timedelta(seconds=1)  # time passes
    session.add(record)
    session.flush()
    with pytest.raises(HoldExpired):
        service.capture_hold(session, hold_id)
    with pytest.raises(HoldExpired):
        service.void_hold(session, hold_id)
    assert service.expire_holds(session, now=later) == 1
    assert service.get_hold(session, hold_id).status == HoldStatus.expired
    assert service.get_balance(session, payer.id).available == 100
    with pytest.raises(HoldExpired):
        service.capture_hold(session, hold_id)
    assert service.verify_ledger(session).ok


def test_a_debit_releases_expired_holds_lazily(session: Session) -> None:
    payer = funded(session, 100)
    payee = service.open_account(session, asset="CNY", owner=org())
    hold_id = _expired_hold(session, payer, payee, 90)
    record = service.get_hold(session, hold_id)
    record.expires_at = utcnow() - timedelta(seconds=1)
    session.add(record)
    session.flush()
    service.post_entry(session, code="transfer", transfers=[Transfer(payer.id, payee.id, 60)])
    assert service.get_hold(session, hold_id).status == HoldStatus.expired
    assert service.get_balance(session, payer.id).available == 40
    assert service.verify_ledger(session).ok


def test_expire_hold_releases_one_lapsed_hold_on_demand(session: Session) -> None:
    payer = funded(session, 100)
    payee = service.open_account(session, asset="CNY", owner=org())
    hold_id = _expired_hold(session, payer, payee, 70)
    with pytest.raises(InvalidEntry):  # not expired yet
        service.expire_hold(session, hold_id)
    record = service.get_hold(session, hold_id)
    record.expires_at = utcnow() - timedelta(seconds=1)
    session.add(record)
    session.flush()
    assert service.get_balance(session, payer.id).available == 30
    assert service.expire_hold(session, hold_id).status == HoldStatus.expired
    assert service.get_balance(session, payer.id).available == 100
    assert service.expire_hold(session, hold_id).status == HoldStatus.expired  # again: as it is
    voided = service.hold(
        session,
        debit_account_id=payer.id,
        credit_account_id=payee.id,
        amount=10,
        expires_at=utcnow() + timedelta(minutes=5),
        code="purchase",
    )
    service.void_hold(session, voided.id)
    with pytest.raises(HoldNotPending):
        service.expire_hold(session, voided.id)
    assert service.verify_ledger(session).ok


def test_reversal_links_to_the_original(session: Session) -> None:
    payer = funded(session, 100)
    payee = service.open_account(session, asset="CNY", owner=org())
    entry = service.post_entry(
        session, code="purchase", transfers=[Transfer(payer.id, payee.id, 30)]
    )
    reversal = service.reverse_entry(session, entry.id)
    assert reversal.reverses_id == entry.id
    assert service.get_balance(session, payer.id).balance == 100
    with pytest.raises(AlreadyReversed):
        service.reverse_entry(session, entry.id)
    assert service.verify_ledger(session).ok


def test_batch_applies_each_entry_on_its_own(session: Session) -> None:
    payer = funded(session, 100)
    payee = service.open_account(session, asset="CNY", owner=org())
    points = service.open_account(session, asset="POINTS", owner=org())
    requests = [
        service.EntryRequest(
            code="transfer", transfers=[Transfer(payer.id, payee.id, 60)], idempotency_key="b1"
        ),
        service.EntryRequest(
            code="transfer", transfers=[Transfer(payer.id, payee.id, 60)], idempotency_key="b2"
        ),
        service.EntryRequest(code="transfer", transfers=[Transfer(payer.id, points.id, 1)]),
        service.EntryRequest(code="transfer", transfers=[Transfer(payee.id, payer.id, 10)]),
        service.EntryRequest(
            code="transfer", transfers=[Transfer(payer.id, payee.id, 50)], idempotency_key="b1"
        ),
        service.EntryRequest(
            code="transfer", transfers=[Transfer(payer.id, payee.id, 60)], idempotency_key="b1"
        ),
        service.EntryRequest(code="BAD CODE", transfers=[Transfer(payer.id, payee.id, 1)]),
        service.EntryRequest(code="transfer", transfers=[Transfer(payer.id, payee.id, 50)]),
    ]
    results = service.post_entries(session, requests)
    assert [r.status for r in results] == [
        "posted",
        "rejected",
        "rejected",
        "posted",
        "rejected",
        "duplicate",
        "rejected",
        "posted",
    ]
    assert isinstance(results[1].error, InsufficientFunds)
    assert isinstance(results[2].error, MixedAssets)
    assert isinstance(results[4].error, IdempotencyConflict)
    assert results[5].entry is not None and results[0].entry is not None
    assert results[5].entry.id == results[0].entry.id
    assert service.get_balance(session, payer.id).balance == 0
    assert service.get_balance(session, payee.id).balance == 100
    again = service.post_entries(session, requests[:2])
    assert [r.status for r in again] == ["duplicate", "rejected"]
    assert service.verify_ledger(session).ok


def test_hot_account_spreads_credits_and_sums_them(session: Session) -> None:
    fees = service.system_account(session, "fees", "CNY")
    payer = funded(session, 1_000)
    for _ in range(5):
        service.post_entry(session, code="purchase", transfers=[Transfer(payer.id, fees.id, 7)])
    assert service.get_balance(session, fees.id).balance == 35
    payee = service.open_account(session, asset="CNY", owner=org())
    service.post_entry(session, code="settlement", transfers=[Transfer(fees.id, payee.id, 35)])
    with pytest.raises(InsufficientFunds):
        service.post_entry(session, code="settlement", transfers=[Transfer(fees.id, payee.id, 1)])
    assert service.get_balance(session, fees.id).balance == 0
    assert service.verify_ledger(session).ok


def test_list_postings_pages_with_a_cursor(session: Session) -> None:
    payer = funded(session, 100)
    payee = service.open_account(session, asset="CNY", owner=org())
    for amount in range(1, 6):
        service.post_entry(
            session, code="transfer", transfers=[Transfer(payer.id, payee.id, amount)]
        )
    first = service.list_postings(session, payee.id, limit=2)
    assert [line.amount for line in first.items] == [1, 2]
    second = service.list_postings(session, payee.id, cursor=first.next_cursor, limit=2)
    third = service.list_postings(session, payee.id, cursor=second.next_cursor, limit=2)
    assert [line.amount for line in second.items + third.items] == [3, 4, 5]
    assert third.next_cursor is None


def test_journal_rows_are_recorded_once(session: Session) -> None:
    payer = funded(session, 100)
    payee = service.open_account(session, asset="CNY", owner=org())
    entry = service.post_entry(
        session, code="transfer", transfers=[Transfer(payer.id, payee.id, 5)]
    )
    postings = session.exec(select(Posting).where(col(Posting.entry_id) == entry.id)).all()
    assert sorted((p.side, p.amount) for p in postings) == [("C", 5), ("D", 5)]
    assert session.get(JournalEntry, entry.id) is not None
    report = service.verify_ledger(session)
    assert report.ok, report.faults
    assert report.entries == 2


def test_owner_totals_counts_credited_accounts_of_a_kind_of_owner(session: Session) -> None:
    source = service.system_account(session, "issuance", service.ASSET_CNY)
    paid = [
        service.open_account(session, asset=service.ASSET_CNY, owner=f"household:{uuid.uuid4()}")
        for _ in range(2)
    ]
    service.open_account(session, asset=service.ASSET_CNY, owner=f"household:{uuid.uuid4()}")
    other = service.open_account(session, asset=service.ASSET_CNY, owner=f"org:{uuid.uuid4()}")
    for account, amount in ((paid[0], 1_001), (paid[1], 299), (other, 5_000)):
        service.post_entry(
            session,
            code="revenue_share",
            transfers=[service.Transfer(source.id, account.id, amount)],
        )
    totals = service.owner_totals(session, owner_prefix="household:", asset=service.ASSET_CNY)
    assert totals == service.OwnerTotals(accounts_credited=2, posted_credits=1_300)
    empty = service.owner_totals(session, owner_prefix="household:", asset=service.ASSET_POINTS)
    assert empty == service.OwnerTotals(accounts_credited=0, posted_credits=0)
