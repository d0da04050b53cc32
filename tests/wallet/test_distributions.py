"""Distributions: one entry crediting many accounts from one source (SQLite and PostgreSQL),
and on PostgreSQL concurrent distributions that share their sources and credited accounts."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from tanhui.db import retrying, unit_of_work
from tanhui.errors import IdempotencyConflict
from wallet import service
from wallet.errors import (
    AccountFrozen,
    AmountTooLarge,
    InsufficientFunds,
    InvalidEntry,
    MixedAssets,
    UnknownAccount,
)
from wallet.models import BalanceShard, Posting
from wallet.service import Distribution, Transfer


def _open(session: Session, count: int, asset: str = "POINTS") -> list[uuid.UUID]:
    return [
        service.open_account(session, asset=asset, owner=f"resident:{uuid.uuid4()}").id
        for _ in range(count)
    ]


def test_one_entry_one_debit_leg_per_source_balanced_and_verified(session: Session) -> None:
    points = service.system_account(session, "points_issuance", "POINTS").id
    grams = service.system_account(session, "issuance", "RED_G").id
    people = _open(session, 5)
    gram_accounts = _open(session, 3, "RED_G")
    entry = service.post_distribution(
        session,
        code="points_accrual",
        distributions=[
            Distribution(points, [(account, 10 * (n + 1)) for n, account in enumerate(people)]),
            Distribution(grams, [(account, 1000 + n) for n, account in enumerate(gram_accounts)]),
        ],
        metadata={"batch": "b1"},
    )
    postings = service.entry_postings(session, entry.id)
    assert [(p.account_id, p.side, p.amount) for p in postings] == [
        (points, "D", 150),
        *[(account, "C", 10 * (n + 1)) for n, account in enumerate(people)],
        (grams, "D", 3003),
        *[(account, "C", 1000 + n) for n, account in enumerate(gram_accounts)],
    ]
    assert [service.get_balance(session, a).balance for a in people] == [10, 20, 30, 40, 50]
    assert service.get_balance(session, points).balance == -150
    assert service.get_balance(session, grams).balance == -3003
    assert service.transfers_of(session, entry.id)[1] == Transfer(points, people[1], 20)
    # A distribution is an entry like any other: it can be reversed and the ledger verifies.
    reversal = service.reverse_entry(session, entry.id)
    assert len(service.entry_postings(session, reversal.id)) == 2 * 8
    assert service.get_balance(session, people[4]).balance == 0
    report = service.verify_ledger(session)
    assert report.ok, report.first_fault
    assert report.postings == 10 + 16


def test_sources_with_a_floor_frozen_or_hot(session: Session) -> None:
    fund = service.open_account(session, asset="POINTS", owner="system:fund", floor=0).id
    people = _open(session, 2)
    source = service.system_account(session, "points_issuance", "POINTS").id
    service.post_entry(session, code="issuance", transfers=[Transfer(source, fund, 25)])
    with pytest.raises(InsufficientFunds):
        service.post_distribution(
            session,
            code="reward",
            distributions=[Distribution(fund, [(people[0], 20), (people[1], 6)])],
        )
    service.post_distribution(
        session,
        code="reward",
        distributions=[Distribution(fund, [(people[0], 20), (people[1], 5)])],
    )
    assert service.get_balance(session, fund).balance == 0
    service.set_frozen(session, people[0], frozen=True, actor="test")
    service.post_distribution(  # a frozen account may still be credited
        session, code="reward", distributions=[Distribution(source, [(people[0], 1)])]
    )
    with pytest.raises(AccountFrozen):
        service.post_distribution(
            session, code="reward", distributions=[Distribution(people[0], [(people[1], 1)])]
        )
    hot = service.system_account(session, "clearing", "POINTS")  # 16 shards, no floor
    assert hot.shards > 1
    for _ in range(3):
        service.post_distribution(
            session, code="reward", distributions=[Distribution(hot.id, [(people[1], 2)])]
        )
    assert service.get_balance(session, hot.id).balance == -6
    assert service.get_balance(session, people[1]).balance == 11
    assert service.verify_ledger(session).ok


def test_refusals_write_nothing(session: Session) -> None:
    source = service.system_account(session, "points_issuance", "POINTS").id
    people = _open(session, 2)
    cny = _open(session, 1, "CNY")
    before = session.exec(select(Posting)).all()
    bad = [
        ([Distribution(source, [])], InvalidEntry),
        ([Distribution(source, [(people[0], 0)])], InvalidEntry),
        ([Distribution(source, [(people[0], 1), (people[0], 2)])], InvalidEntry),
        ([Distribution(source, [(source, 1)])], InvalidEntry),
        ([Distribution(source, [(people[0], True)])], InvalidEntry),  # type: ignore[list-item]
        ([Distribution(source, [(uuid.uuid4(), 1)])], UnknownAccount),
        ([Distribution(source, [(people[0], 1), (cny[0], 1)])], MixedAssets),
    ]
    for distributions, error in bad:
        with pytest.raises(error):
            service.post_distribution(session, code="reward", distributions=distributions)
    assert session.exec(select(Posting)).all() == before


def test_a_balance_past_64_bits_is_refused(session: Session) -> None:
    source = service.system_account(session, "points_issuance", "POINTS").id
    (person,) = _open(session, 1)
    session.execute(
        update(BalanceShard)
        .where(col(BalanceShard.account_id) == person)
        .values(posted_credits=2**63 - 10)
    )
    with pytest.raises(AmountTooLarge):
        service.post_distribution(
            session, code="reward", distributions=[Distribution(source, [(person, 10)])]
        )
    service.post_distribution(
        session, code="reward", distributions=[Distribution(source, [(person, 9)])]
    )


def test_an_idempotency_key_applies_once(session: Session) -> None:
    source = service.system_account(session, "points_issuance", "POINTS").id
    people = _open(session, 2)
    request = [Distribution(source, [(people[0], 3), (people[1], 4)])]
    first = service.post_distribution(
        session, code="reward", distributions=request, idempotency_key="d-1"
    )
    again = service.post_distribution(
        session, code="reward", distributions=request, idempotency_key="d-1"
    )
    assert again.id == first.id
    assert service.get_balance(session, people[1]).balance == 4
    chosen = uuid.uuid4()  # a caller that names the entry before posting it
    named = service.post_distribution(
        session, code="reward", distributions=request, entry_id=chosen
    )
    assert named.id == chosen == service.get_entry(session, chosen).id
    with pytest.raises(IdempotencyConflict):
        service.post_distribution(
            session,
            code="reward",
            distributions=[Distribution(source, [(people[0], 3)])],
            idempotency_key="d-1",
        )


@pytest.mark.postgres
def test_concurrent_distributions_sharing_accounts_keep_every_invariant(
    pg_engine: Engine,
) -> None:
    """Eight writers credit overlapping residents (in different orders) from the same two
    sources, mixed with ordinary transfers out of those residents: no deadlock survives the
    retries, no credit is lost, and the ledger verifies."""
    with unit_of_work(pg_engine) as session:
        points = service.system_account(session, "points_issuance", "POINTS").id
        grams = service.system_account(session, "issuance", "RED_G").id
        people = _open(session, 40)
        gram_accounts = _open(session, 40, "RED_G")
        sink = service.open_account(session, asset="POINTS", owner="system:sink", floor=0).id
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        order = list(range(40))
        if n % 2:
            order.reverse()
        try:
            for round_ in range(5):
                retrying(
                    pg_engine,
                    lambda session, r=round_: service.post_distribution(
                        session,
                        code="points_accrual",
                        distributions=[
                            Distribution(points, [(people[i], 1 + (i + r) % 3) for i in order]),
                            Distribution(grams, [(gram_accounts[i], 100) for i in order]),
                        ],
                        idempotency_key=f"w{n}-{r}",
                    ),
                )
                retrying(
                    pg_engine,
                    lambda session, r=round_: service.post_entry(
                        session,
                        code="transfer",
                        transfers=[Transfer(people[(n + r) % 40], sink, 1)],
                    ),
                )
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    with Session(pg_engine) as session:
        credited = sum(1 + (i + r) % 3 for i in range(40) for r in range(5)) * 8
        assert service.get_balance(session, points).balance == -credited
        total = sum(service.get_balance(session, a).balance for a in people)
        assert total + service.get_balance(session, sink).balance == credited
        assert service.get_balance(session, sink).balance == 40
        assert service.get_balance(session, grams).balance == -100 * 40 * 5 * 8
        entries = session.exec(
            select(col(Posting.entry_id)).where(col(Posting.account_id) == points)
        ).all()
        assert len(entries) == 40
        report = service.verify_ledger(session)
        assert report.ok, report.first_fault
