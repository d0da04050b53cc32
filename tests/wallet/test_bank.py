"""The bank test (after Jepsen's), on PostgreSQL: 16 workers move money at random among 20
floored accounts; retries reuse their idempotency keys; a killer terminates their connections
in the middle of transactions (``pg_terminate_backend``); a reader takes snapshot sums all along.

Every snapshot's total equals the initial total, no balance or available amount is ever
negative, each key is applied at most once, every success a client saw is durable, and the
ledger verifies at the end.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import pytest
from sqlalchemy import Engine, create_engine, func, text
from sqlalchemy import select as sa_select
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from tanhui.db import retrying, unit_of_work
from tanhui.settings import Settings
from wallet import service
from wallet.errors import InsufficientFunds
from wallet.models import BalanceShard, JournalEntry
from wallet.service import Transfer

WORKERS = 16
ACCOUNTS = 20
INITIAL = 1_000
RUN_SECONDS = 12.0
KILL_EVERY_S = 0.05
MAX_CLIENT_RETRIES = 50

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@dataclass
class Tally:
    sent: list[str] = field(default_factory=list)
    confirmed: dict[str, uuid.UUID] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)
    connection_errors: int = 0
    snapshots: list[tuple[int, int, int]] = field(default_factory=list)
    kills: int = 0
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _transfer(
    engine: Engine, key: str, debit: uuid.UUID, credit: uuid.UUID, amount: int
) -> uuid.UUID:
    def work(session: Session) -> uuid.UUID:
        entry = service.post_entry(
            session,
            code="transfer",
            transfers=[Transfer(debit, credit, amount)],
            idempotency_key=key,
            scope="bank",
        )
        time.sleep(random.random() * 0.004)  # work after the writes: room for a kill
        return entry.id

    return retrying(engine, work)


def _worker(engine: Engine, ids: list[uuid.UUID], number: int, stop: float, tally: Tally) -> None:
    rng = random.Random(number)
    sequence = 0
    while time.monotonic() < stop:
        sequence += 1
        key = f"w{number}-{sequence}"
        debit, credit = rng.sample(ids, 2)
        amount = rng.randint(1, 150)
        with tally.lock:
            tally.sent.append(key)
        for _attempt in range(MAX_CLIENT_RETRIES):
            try:
                entry_id = _transfer(engine, key, debit, credit, amount)
            except InsufficientFunds:
                with tally.lock:
                    tally.refused.add(key)
                break
            except DBAPIError:  # the connection was killed: retry with the same key
                with tally.lock:
                    tally.connection_errors += 1
                time.sleep(0.002)
                continue
            with tally.lock:
                tally.confirmed[key] = entry_id
            break


def _reader(engine: Engine, ids: list[uuid.UUID], stop: float, tally: Tally) -> None:
    table = BalanceShard.__table__  # type: ignore[attr-defined]
    while time.monotonic() < stop:
        try:
            with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
                rows = conn.execute(
                    sa_select(
                        table.c.account_id,
                        func.sum(table.c.posted_credits - table.c.posted_debits),
                        func.sum(table.c.pending_debits),
                    )
                    .where(table.c.account_id.in_(ids))
                    .group_by(table.c.account_id)
                ).all()
                conn.rollback()
        except DBAPIError:
            continue
        total = sum(int(row[1]) for row in rows)
        lowest = min(int(row[1]) for row in rows)
        lowest_available = min(int(row[1]) - int(row[2]) for row in rows)
        with tally.lock:
            tally.snapshots.append((total, lowest, lowest_available))
        time.sleep(0.01)


def _killer(url: str, database: str, stop: float, tally: Tally) -> None:
    killer = create_engine(url, connect_args={"application_name": "bank-killer"})
    rng = random.Random(7)
    with killer.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        while time.monotonic() < stop:
            time.sleep(KILL_EVERY_S)
            pids = (
                connection.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity WHERE datname = :db"
                        " AND application_name = 'tanhui' AND pid <> pg_backend_pid()"
                        " AND state IN ('active', 'idle in transaction')"
                    ),
                    {"db": database},
                )
                .scalars()
                .all()
            )
            if pids:
                connection.execute(
                    text("SELECT pg_terminate_backend(:pid)"), {"pid": rng.choice(pids)}
                )
                tally.kills += 1
    killer.dispose()


def test_bank(pg_settings: Settings, pg_engine: Engine) -> None:
    with unit_of_work(pg_engine) as session:
        source = service.system_account(session, "issuance", "CNY")
        accounts = [
            service.open_account(session, asset="CNY", owner=f"org:{uuid.uuid4()}")
            for _ in range(ACCOUNTS)
        ]
        ids = [account.id for account in accounts]
        service.post_entries(
            session,
            [
                service.EntryRequest(code="issuance", transfers=[Transfer(source.id, i, INITIAL)])
                for i in ids
            ],
        )
    engine = pg_engine
    stop = time.monotonic() + RUN_SECONDS
    tally = Tally()
    database = pg_engine.url.database or ""
    threads = [
        threading.Thread(target=_worker, args=(engine, ids, number, stop, tally))
        for number in range(WORKERS)
    ]
    threads.append(threading.Thread(target=_reader, args=(engine, ids, stop, tally)))
    threads.append(
        threading.Thread(
            target=_killer,
            args=(pg_settings.database_url, database, stop, tally),
        )
    )
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=RUN_SECONDS + 60)
    assert not any(thread.is_alive() for thread in threads)

    total = ACCOUNTS * INITIAL
    assert tally.snapshots, "the reader took no snapshot"
    assert all(snapshot[0] == total for snapshot in tally.snapshots), "money created or lost"
    assert all(snapshot[1] >= 0 and snapshot[2] >= 0 for snapshot in tally.snapshots)
    assert tally.kills > 10, "the killer hardly killed anything"
    assert tally.connection_errors > 0, "no client saw a killed connection"

    with Session(pg_engine) as session:
        entries = session.exec(
            select(JournalEntry.idempotency_key, JournalEntry.id).where(
                col(JournalEntry.scope) == "bank"
            )
        ).all()
        applied = Counter(key for key, _ in entries)
        assert max(applied.values()) == 1
        by_key = dict(entries)
        for key, entry_id in tally.confirmed.items():
            assert by_key.get(key) == entry_id, f"confirmed {key} is not durable"
        assert not set(by_key) - set(tally.sent)
        assert not tally.refused & set(by_key), "a refused transfer was applied"
        balances = [service.get_balance(session, i) for i in ids]
        assert sum(b.balance for b in balances) == total
        assert min(b.available for b in balances) >= 0
        report = service.verify_ledger(session)
        assert report.ok, report.faults
    assert len(tally.confirmed) > 100, f"only {len(tally.confirmed)} transfers went through"
    print(
        f"bank: {len(tally.confirmed)} transfers, {len(tally.refused)} refused, "
        f"{tally.kills} connections killed, {tally.connection_errors} client retries, "
        f"{len(tally.snapshots)} snapshots"
    )
