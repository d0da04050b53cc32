"""Property tests: random sequences of entries, batches, holds, captures, voids and expiries,
checked step by step against a plain-Python model of the ledger, then by ``verify_ledger``
(balances equal a recomputation from the journal, every entry balances, chains intact).

Each example runs in one transaction that is rolled back, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings
from sqlmodel import Session

from tanhui.db import utcnow
from tanhui.errors import DomainError
from wallet import service
from wallet.errors import HoldExpired, HoldNotPending, InsufficientFunds, InvalidEntry
from wallet.models import Hold
from wallet.service import Transfer

ACCOUNTS = 6  # 0: unbounded source, 1-4: users (floor 0), 5: the hot fee account (floor 0)
account_index = st.integers(min_value=0, max_value=ACCOUNTS - 1)
amount = st.integers(min_value=1, max_value=60)


@st.composite
def transfer(draw: st.DrawFn) -> tuple[int, int, int]:
    debit = draw(account_index)
    credit = draw(account_index.filter(lambda index: index != debit))
    return debit, credit, draw(amount)


transfers = st.lists(transfer(), min_size=1, max_size=3)
hold_index = st.integers(min_value=0, max_value=7)
operation = st.one_of(
    st.tuples(st.just("entry"), transfers, st.booleans()),
    st.tuples(st.just("retry")),
    st.tuples(st.just("batch"), st.lists(transfers, min_size=1, max_size=5)),
    st.tuples(st.just("hold"), transfer()),
    st.tuples(st.just("capture"), hold_index, st.one_of(st.none(), amount)),
    st.tuples(st.just("void"), hold_index),
    st.tuples(st.just("age"), hold_index),
    st.tuples(st.just("sweep")),
)


@dataclass
class ModelHold:
    id: uuid.UUID
    debit: int
    credit: int
    amount: int
    status: str = "pending"
    aged: bool = False
    captured: int | None = None


@dataclass
class Model:
    floors: list[int | None]
    posted: list[int] = field(default_factory=lambda: [0] * ACCOUNTS)
    pending_debits: list[int] = field(default_factory=lambda: [0] * ACCOUNTS)
    pending_credits: list[int] = field(default_factory=lambda: [0] * ACCOUNTS)
    holds: list[ModelHold] = field(default_factory=list)

    def first_short(self, legs: list[tuple[int, int, int]], pending: bool) -> int | None:
        """The first account (in leg order) that the entry would take below its floor."""
        vectors: dict[int, int] = {}
        for debit, credit, value in legs:
            vectors[debit] = vectors.get(debit, 0) - value
            vectors.setdefault(credit, 0)
            if not pending:
                vectors[credit] += value
        for index, change in vectors.items():
            floor = self.floors[index]
            if change < 0 and floor is not None:
                available = self.posted[index] - self.pending_debits[index]
                if available + change < floor:
                    return index
        return None

    def apply(self, legs: list[tuple[int, int, int]], pending: bool) -> None:
        for debit, credit, value in legs:
            if pending:
                self.pending_debits[debit] += value
                self.pending_credits[credit] += value
            else:
                self.posted[debit] -= value
                self.posted[credit] += value

    def release(self, record: ModelHold, status: str) -> None:
        self.pending_debits[record.debit] -= record.amount
        self.pending_credits[record.credit] -= record.amount
        record.status = status

    def release_aged(self, accounts: set[int]) -> int:
        count = 0
        for record in self.holds:
            if record.status == "pending" and record.aged and record.debit in accounts:
                self.release(record, "expired")
                count += 1
        return count

    def run(self, drafts: list[tuple[list[tuple[int, int, int]], bool]]) -> list[bool]:
        """Which drafts apply, with the engine's one lazy release of expired holds."""
        for attempt in range(2):
            snapshot = (list(self.posted), list(self.pending_debits), list(self.pending_credits))
            applied, starved = [], set()
            for legs, pending in drafts:
                short = self.first_short(legs, pending)
                if short is None:
                    self.apply(legs, pending)
                    applied.append(True)
                else:
                    starved.add(short)
                    applied.append(False)
            if attempt == 0 and starved:
                self.posted, self.pending_debits, self.pending_credits = (
                    list(part) for part in snapshot
                )
                if self.release_aged(starved):
                    continue
                for legs, pending in drafts:
                    if self.first_short(legs, pending) is None:
                        self.apply(legs, pending)
            return applied
        raise AssertionError("unreachable")


def _open(session: Session) -> tuple[list[uuid.UUID], Model]:
    tag = uuid.uuid4().hex[:10]
    source = service.open_account(session, asset="CNY", owner=f"system:src_{tag}", floor=None)
    users = [
        service.open_account(session, asset="CNY", owner=f"org:{uuid.uuid4()}") for _ in "1234"
    ]
    fees = service.open_account(
        session, asset="CNY", owner=f"system:fees_{tag}", floor=0, shards=service.HOT_SHARDS
    )
    accounts = [source, *users, fees]
    return [account.id for account in accounts], Model(floors=[a.floor for a in accounts])


def _attempt(action: Any) -> DomainError | None:
    try:
        action()
    except DomainError as error:
        return error
    return None


def _check(session: Session, ids: list[uuid.UUID], model: Model) -> None:
    for index, account_id in enumerate(ids):
        balance = service.get_balance(session, account_id)
        assert balance.balance == model.posted[index], index
        assert balance.pending_debits == model.pending_debits[index], index
        assert balance.pending_credits == model.pending_credits[index], index
        if model.floors[index] is not None:
            assert balance.available >= 0


def _step(
    session: Session, ids: list[uuid.UUID], model: Model, op: tuple[Any, ...], memo: dict[str, Any]
) -> None:
    kind = op[0]
    if kind == "entry":
        legs, keyed = op[1], op[2]
        key = uuid.uuid4().hex if keyed else None
        request = [Transfer(ids[d], ids[c], v) for d, c, v in legs]
        (ok,) = model.run([(legs, False)])
        try:
            entry = service.post_entry(
                session, code="transfer", transfers=request, idempotency_key=key
            )
        except InsufficientFunds:
            assert not ok
            return
        assert ok
        if key:
            memo["last"] = (key, request, entry.id)
    elif kind == "retry" and "last" in memo:
        key, request, entry_id = memo["last"]
        again = service.post_entry(session, code="transfer", transfers=request, idempotency_key=key)
        assert again.id == entry_id
    elif kind == "batch":
        drafts = [(legs, False) for legs in op[1]]
        expected = model.run(drafts)
        results = service.post_entries(
            session,
            [
                service.EntryRequest(
                    code="transfer", transfers=[Transfer(ids[d], ids[c], v) for d, c, v in legs]
                )
                for legs in op[1]
            ],
        )
        assert [r.status == "posted" for r in results] == expected
        assert all(isinstance(r.error, InsufficientFunds) for r in results if r.error)
    elif kind == "hold":
        debit, credit, value = op[1]
        (ok,) = model.run([([(debit, credit, value)], True)])
        try:
            record = service.hold(
                session,
                debit_account_id=ids[debit],
                credit_account_id=ids[credit],
                amount=value,
                expires_at=utcnow() + timedelta(hours=1),
                code="purchase",
            )
        except InsufficientFunds:
            assert not ok
            return
        assert ok
        model.holds.append(ModelHold(record.id, debit, credit, value))
    elif kind in ("capture", "void", "age") and model.holds:
        record = model.holds[op[1] % len(model.holds)]
        if kind == "age":
            row = session.get(Hold, record.id)
            assert row is not None
            row.expires_at = utcnow() - timedelta(seconds=1)
            session.add(row)
            session.flush()
            record.aged = True
            return
        expected: type[DomainError] | None = None
        if kind == "capture":
            capture = op[2]
            if record.status == "captured" and capture in (None, record.captured):
                expected = None
            elif record.status == "expired" or (record.status == "pending" and record.aged):
                expected = HoldExpired
            elif record.status != "pending":
                expected = HoldNotPending
            elif capture is not None and capture > record.amount:
                expected = InvalidEntry
            caught = _attempt(lambda: service.capture_hold(session, record.id, amount=capture))
            assert type(caught) is expected if expected else caught is None, caught
            if caught is not None:
                return
            if record.status == "pending":
                taken = record.amount if capture is None else capture
                model.release(record, "captured")
                model.apply([(record.debit, record.credit, taken)], pending=False)
                record.captured = taken
        else:
            if record.status == "voided":
                expected = None
            elif record.status == "expired" or (record.status == "pending" and record.aged):
                expected = HoldExpired
            elif record.status != "pending":
                expected = HoldNotPending
            caught = _attempt(lambda: service.void_hold(session, record.id))
            assert type(caught) is expected if expected else caught is None, caught
            if caught is not None:
                return
            if record.status == "pending":
                model.release(record, "voided")
    elif kind == "sweep":
        expected_count = model.release_aged(set(range(ACCOUNTS)))
        assert service.expire_holds(session) == expected_count


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=st.lists(operation, min_size=1, max_size=25))
def test_random_histories_keep_every_invariant(
    session: Session, operations: list[tuple[Any, ...]]
) -> None:
    try:
        ids, model = _open(session)
        memo: dict[str, Any] = {}
        for op in operations:
            _step(session, ids, model, op, memo)
            _check(session, ids, model)
        report = service.verify_ledger(session)
        assert report.ok, report.faults
        assert sum(model.posted) == 0
    finally:
        session.rollback()
