"""Concurrency on PostgreSQL: duplicate keys in flight, hot accounts that do not queue, and
floors that hold when debits race."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from tanhui.db import retrying, unit_of_work
from wallet import service
from wallet.errors import InsufficientFunds
from wallet.service import Transfer

pytestmark = pytest.mark.postgres


def _accounts(engine: Engine, count: int, funds: int) -> list[uuid.UUID]:
    with unit_of_work(engine) as session:
        source = service.system_account(session, "issuance", "CNY")
        ids = [
            service.open_account(session, asset="CNY", owner=f"org:{uuid.uuid4()}").id
            for _ in range(count)
        ]
        for account_id in ids if funds else []:
            service.post_entry(
                session, code="issuance", transfers=[Transfer(source.id, account_id, funds)]
            )
    return ids


@pytest.mark.parametrize("batch", [False, True])
def test_a_key_committed_concurrently_is_answered_not_applied_twice(
    pg_engine: Engine, batch: bool
) -> None:
    a, b = _accounts(pg_engine, 2, 100)
    transfers = [Transfer(a, b, 10)]
    first = Session(pg_engine)
    entry = service.post_entry(
        session=first, code="transfer", transfers=transfers, idempotency_key="K"
    )
    outcome: dict[str, object] = {}

    def second() -> None:
        with unit_of_work(pg_engine) as session:
            session.execute(text("SET LOCAL lock_timeout = '20s'"))
            if batch:
                outcome["results"] = service.post_entries(
                    session,
                    [
                        service.EntryRequest("transfer", transfers, idempotency_key="K"),
                        service.EntryRequest("transfer", [Transfer(a, b, 1)], idempotency_key="L"),
                    ],
                )
            else:
                outcome["entry"] = service.post_entry(
                    session, code="transfer", transfers=transfers, idempotency_key="K"
                )

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(timeout=1.0)
    assert thread.is_alive(), "the second transaction should wait for the first"
    first.commit()
    first.close()
    thread.join(timeout=30)
    with Session(pg_engine) as session:
        if batch:
            results = outcome["results"]
            assert isinstance(results, list)
            assert [r.status for r in results] == ["duplicate", "posted"]
            assert results[0].entry.id == entry.id
            assert service.get_balance(session, b).balance == 111
        else:
            again = outcome["entry"]
            assert getattr(again, "id", None) == entry.id
            assert service.get_balance(session, b).balance == 110
        assert service.verify_ledger(session).ok


def test_hot_account_credits_do_not_wait_for_each_other(pg_engine: Engine) -> None:
    payers = _accounts(pg_engine, 3, 100)
    with unit_of_work(pg_engine) as session:
        fees = service.system_account(session, "fees", "CNY").id
        one_row = service.open_account(session, asset="CNY", owner="system:fees_one", floor=0).id
    holders = []
    for payer in payers[:2]:
        holder = Session(pg_engine)
        service.post_entry(holder, code="purchase", transfers=[Transfer(payer, fees, 5)])
        holders.append(holder)  # both keep their transaction (and their shard) open
    with Session(pg_engine) as third:
        third.execute(text("SET LOCAL lock_timeout = '200ms'"))
        service.post_entry(third, code="purchase", transfers=[Transfer(payers[2], fees, 5)])
        third.commit()
    for holder in holders:
        holder.commit()
        holder.close()
    with Session(pg_engine) as session:
        assert service.get_balance(session, fees).balance == 15

    # The same with a single balance row queues (and times out here).
    blocker = Session(pg_engine)
    service.post_entry(blocker, code="purchase", transfers=[Transfer(payers[0], one_row, 5)])
    with Session(pg_engine) as waiting:
        waiting.execute(text("SET LOCAL lock_timeout = '200ms'"))
        with pytest.raises(Exception, match="lock timeout"):
            service.post_entry(
                waiting, code="purchase", transfers=[Transfer(payers[1], one_row, 5)]
            )
        waiting.rollback()
    blocker.rollback()
    blocker.close()


def test_racing_debits_never_overdraw(pg_engine: Engine) -> None:
    (payer,) = _accounts(pg_engine, 1, 100)
    (payee,) = _accounts(pg_engine, 1, 0)
    refused: list[int] = []
    done: list[int] = []

    def spend(n: int) -> None:
        try:
            retrying(
                pg_engine,
                lambda session: service.post_entry(
                    session,
                    code="transfer",
                    transfers=[Transfer(payer, payee, 30)],
                    idempotency_key=f"race-{n}",
                ),
            )
            done.append(n)
        except InsufficientFunds:
            refused.append(n)

    threads = [threading.Thread(target=spend, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(done) == 3 and len(refused) == 5
    with Session(pg_engine) as session:
        assert service.get_balance(session, payer).balance == 10
        assert service.verify_ledger(session).ok
