"""Ingestion under concurrency on PostgreSQL: racing partners, racing caps, a retried request."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

import wallet.service as wallet
from registry.inclusion.service import ingest, residents
from registry.inclusion.service.signatures import sign
from tanhui.db import utcnow
from tanhui.models import Resident
from tests.inclusion import helpers

pytestmark = pytest.mark.postgres


def _race(calls: list[Callable[[], Any]]) -> list[Any]:
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _sender(
    engine: Engine,
    partner: tuple[uuid.UUID, str],
    events: list[dict[str, Any]],
    skew: int = 0,
) -> Callable[[], Any]:
    raw = helpers.body(events)
    signature = sign(partner[1], raw, timestamp=int(utcnow().timestamp()) + skew)

    def call() -> Any:
        return ingest.ingest_with_retries(
            engine, partner_ref=str(partner[0]), signature=signature, body=raw
        )

    return call


def test_two_partners_racing_the_same_acts_count_each_once(pg_engine: Engine) -> None:
    with Session(pg_engine, expire_on_commit=False) as session:
        operator = helpers.partner(session, ["bus"])
        app = helpers.partner(session, ["bus"])
        riders = [helpers.resident(session) for _ in range(10)]
        session.commit()
        ids = [rider.id for rider in riders]
    at = utcnow() - timedelta(hours=1)
    acts = [
        {"resident": {"resident_id": str(rider)}, "at": at + timedelta(minutes=index)}
        for index, rider in enumerate(ids)
    ]

    def events(prefix: str, shift: int) -> list[dict[str, Any]]:
        return [
            {
                "partner_event_id": f"{prefix}-{index}",
                "resident": act["resident"],
                "scenario": "bus",
                "quantity": 10,
                "occurred_at": (act["at"] + timedelta(seconds=shift)).isoformat(),
            }
            for index, act in enumerate(acts)
        ]

    first, second = _race(
        [_sender(pg_engine, operator, events("op", 0)), _sender(pg_engine, app, events("app", 40))]
    )
    for mine, theirs in zip(first.outcomes, second.outcomes, strict=True):
        assert {mine.reason, theirs.reason} == {None, "duplicate_activity"}
    with Session(pg_engine, expire_on_commit=False) as session:
        for rider in ids:
            view = residents.balances(session, session.get_one(Resident, rider))
            assert view.reductions_g == 269
        assert wallet.verify_ledger(session).ok


def test_racing_batches_never_pass_a_daily_cap(pg_engine: Engine) -> None:
    with Session(pg_engine, expire_on_commit=False) as session:
        operator = helpers.partner(session, ["bus"])
        app = helpers.partner(session, ["bus"])
        rider = helpers.resident(session)
        session.commit()
    day = utcnow().replace(hour=2, minute=0, second=0, microsecond=0) - timedelta(days=1)
    morning = helpers.event(rider, event_id="m", quantity=40, occurred_at=day)
    evening = helpers.event(rider, event_id="e", quantity=40, occurred_at=day + timedelta(hours=8))
    results = _race([_sender(pg_engine, operator, [morning]), _sender(pg_engine, app, [evening])])
    reasons = sorted(str(result.outcomes[0].reason) for result in results)
    assert reasons == ["None", "cap_exceeded"]  # 40 + 40 km > 60 km a day


def test_a_request_retried_concurrently_records_each_event_once(pg_engine: Engine) -> None:
    with Session(pg_engine, expire_on_commit=False) as session:
        operator = helpers.partner(session, ["bus"])
        rider = helpers.resident(session)
        session.commit()
        rider_id = rider.id
    events = [
        helpers.event(rider, event_id=f"r-{n}", occurred_at=utcnow() - timedelta(hours=n + 1))
        for n in range(5)
    ]
    # two signatures (a second later), the same events: a partner retrying after a timeout
    results = _race(
        [_sender(pg_engine, operator, events), _sender(pg_engine, operator, events, skew=1)]
    )
    accepted = sum(result.accepted for result in results)
    duplicates = sum(1 for result in results for o in result.outcomes if o.reason == "duplicate")
    assert (accepted, duplicates) == (5, 5)
    with Session(pg_engine, expire_on_commit=False) as session:
        view = residents.balances(session, session.get_one(Resident, rider_id))
        assert view.receipts == 5 and view.reductions_g == 5 * 269


def test_concurrent_batches_over_the_same_residents_keep_every_ledger_invariant(
    pg_engine: Engine,
) -> None:
    """Four batches from two partners, each crediting the same 30 residents (by phone, in
    different orders) at once: every event is accepted, each batch is one journal entry, each
    resident's balances equal their receipts, the counters their quantities, and the ledger
    verifies."""
    import random

    from sqlalchemy import func, select

    from registry.inclusion.models import InclusionDailyUsage, InclusionEvent

    with Session(pg_engine, expire_on_commit=False) as session:
        partners = [helpers.partner(session, ["bus"]), helpers.partner(session, ["bus"])]
        riders = [helpers.resident(session) for _ in range(30)]
        phones = [helpers.phone_of(rider) for rider in riders]
        session.commit()
        ids = [rider.id for rider in riders]
    day = utcnow().replace(hour=1, minute=0, second=0, microsecond=0) - timedelta(days=1)
    senders = []
    for n in range(4):
        order = list(range(30))
        random.Random(n).shuffle(order)
        events = [
            helpers.event(
                phones[i], quantity=10, occurred_at=day + timedelta(hours=3 * n, minutes=i)
            )
            for i in order
        ]
        senders.append(_sender(pg_engine, partners[n % 2], events))
    results = _race(senders)
    assert [result.accepted for result in results] == [30, 30, 30, 30]
    with Session(pg_engine, expire_on_commit=False) as session:
        entries = session.exec(
            select(
                InclusionEvent.batch_id, func.count(func.distinct(InclusionEvent.journal_entry_id))
            ).group_by(InclusionEvent.batch_id)
        ).all()
        assert sorted(count for _batch, count in entries) == [1, 1, 1, 1]
        for rider in ids:
            view = residents.balances(session, session.get_one(Resident, rider))
            receipts = session.exec(
                select(func.sum(InclusionEvent.grams), func.sum(InclusionEvent.points)).where(
                    InclusionEvent.resident_id == rider
                )
            ).one()
            assert (view.reductions_g, view.points_balance) == tuple(receipts)
            assert view.receipts == 4
        used = session.exec(select(InclusionDailyUsage.quantity_milli)).all()
        assert sorted(value for (value,) in used) == [40_000] * 30
        report = wallet.verify_ledger(session)
        assert report.ok, report.first_fault
