"""Check the whole ledger from its journal: chains, per-asset balance of each entry, balances.

``verify_ledger`` walks every chain link by link (consecutive sequence numbers, each
``prev_hash`` equal to the previous link's hash, each hash recomputed from the entry and its
postings, the last link equal to the chain head), checks that every entry balances per asset
and layer, and recomputes every account's posted and pending debits and credits from the
postings to compare them with the stored balance rows. The first fault is named.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from wallet.models import (
    Account,
    BalanceShard,
    ChainHead,
    EntryKind,
    Hold,
    HoldStatus,
    JournalEntry,
    Layer,
    Posting,
    Side,
)
from wallet.service import chain
from wallet.service.anchors import anchor_faults

PAGE_SIZE = 2_000
MAX_FAULTS = 100

_PENDING_KINDS = {EntryKind.hold, EntryKind.capture, EntryKind.void, EntryKind.expire}
_POSTED_KINDS = {EntryKind.transfer, EntryKind.capture}


@dataclass
class LedgerReport:
    entries: int = 0
    postings: int = 0
    chains: int = 0
    accounts: int = 0
    faults: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.faults

    @property
    def first_fault(self) -> str | None:
        return self.faults[0] if self.faults else None

    def fault(self, message: str) -> None:
        if len(self.faults) < MAX_FAULTS:
            self.faults.append(message)


_ENTRY = JournalEntry.__table__  # type: ignore[attr-defined]
_POSTING = Posting.__table__  # type: ignore[attr-defined]


def _pages(session: Session, chain_id: int) -> Iterator[list[Any]]:
    """The chain's entries in order, a page at a time (plain rows: no ORM objects to build)."""
    after = 0
    while True:
        page = list(
            session.execute(
                sa_select(_ENTRY)
                .where(_ENTRY.c.chain == chain_id, _ENTRY.c.chain_seq > after)
                .order_by(_ENTRY.c.chain_seq)
                .limit(PAGE_SIZE)
            ).all()
        )
        if not page:
            return
        yield page
        after = page[-1].chain_seq


def verify_ledger(session: Session) -> LedgerReport:
    """Recompute and compare everything; ``report.ok`` or ``report.first_fault``."""
    report = LedgerReport()
    accounts = {account.id: account for account in session.exec(select(Account)).all()}
    report.accounts = len(accounts)
    sums: dict[uuid.UUID, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    heads = {head.chain: head for head in session.exec(select(ChainHead)).all()}
    chains = sorted(set(heads) | set(session.exec(select(JournalEntry.chain).distinct()).all()))
    report.chains = len(chains)
    for chain_id in chains:
        expected_seq, previous = 1, chain.GENESIS_HASH
        for page in _pages(session, chain_id):
            postings_by_entry: dict[uuid.UUID, list[Any]] = defaultdict(list)
            for posting in session.execute(
                sa_select(_POSTING)
                .where(_POSTING.c.entry_id.in_([entry.id for entry in page]))
                .order_by(_POSTING.c.entry_id, _POSTING.c.ordinal)
            ).all():
                postings_by_entry[posting.entry_id].append(posting)
            for entry in page:
                postings = postings_by_entry.get(entry.id, [])
                _check_entry(report, entry, postings, expected_seq, previous, accounts, sums)
                expected_seq = entry.chain_seq + 1
                previous = entry.hash
                report.entries += 1
                report.postings += len(postings)
        head = heads.get(chain_id)
        if head is None:
            report.fault(f"chain {chain_id}: entries but no chain head")
        elif head.seq != expected_seq - 1 or head.hash != previous:
            report.fault(
                f"chain {chain_id}: head says seq {head.seq} hash {head.hash[:12]}, "
                f"the last link is seq {expected_seq - 1} hash {previous[:12]}"
            )
    total_postings = session.exec(select(func.count()).select_from(Posting)).one()
    if total_postings != report.postings:
        report.fault(f"{total_postings - report.postings} postings belong to no chained entry")
    _check_balances(session, report, accounts, sums)
    _check_holds(session, report)
    for fault in anchor_faults(session):
        report.fault(fault)
    return report


def _check_entry(
    report: LedgerReport,
    entry: Any,
    postings: list[Any],
    expected_seq: int,
    previous: str,
    accounts: dict[uuid.UUID, Account],
    sums: dict[uuid.UUID, list[int]],
) -> None:
    where = f"entry {entry.id} (chain {entry.chain} seq {entry.chain_seq})"
    if entry.chain_seq != expected_seq:
        report.fault(f"{where}: expected seq {expected_seq} (an entry is missing or inserted)")
    if entry.prev_hash != previous:
        report.fault(f"{where}: prev_hash does not match the previous link's hash")
    content = chain.stored_entry_content(entry, postings)
    if chain.link_hash(entry.prev_hash, content) != entry.hash:
        report.fault(f"{where}: hash mismatch (the entry or its postings were changed)")
    if not postings:
        report.fault(f"{where}: has no postings")
    per_asset: dict[tuple[str, str], int] = defaultdict(int)
    for posting in postings:
        account = accounts.get(posting.account_id)
        if account is None:
            report.fault(
                f"{where}: posting {posting.id} names unknown account {posting.account_id}"
            )
            continue
        if posting.asset != account.asset:
            report.fault(
                f"{where}: posting {posting.id} is in {posting.asset}, "
                f"its account in {account.asset}"
            )
        layer = Layer(posting.layer)
        if layer == Layer.pending and entry.kind not in _PENDING_KINDS:
            report.fault(f"{where}: a {entry.kind} entry has a pending posting")
        if layer == Layer.posted and entry.kind not in _POSTED_KINDS:
            report.fault(f"{where}: a {entry.kind} entry has a posted posting")
        if layer == Layer.posted and posting.amount <= 0:
            report.fault(f"{where}: posting {posting.id} has a non-positive posted amount")
        sign = 1 if posting.side == Side.debit else -1
        per_asset[(posting.asset, layer.value)] += sign * posting.amount
        slot = (0 if posting.side == Side.debit else 1) + (2 if layer == Layer.pending else 0)
        sums[posting.account_id][slot] += posting.amount
    for (asset, layer_name), difference in sorted(per_asset.items()):
        if difference != 0:
            report.fault(f"{where}: {layer_name} {asset} debits and credits differ by {difference}")


def _check_balances(
    session: Session,
    report: LedgerReport,
    accounts: dict[uuid.UUID, Account],
    sums: dict[uuid.UUID, list[int]],
) -> None:
    stored: dict[uuid.UUID, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    frozen_shards: dict[uuid.UUID, set[bool]] = defaultdict(set)
    shard_count: dict[uuid.UUID, int] = defaultdict(int)
    for row in session.exec(select(BalanceShard)).all():
        vector = stored[row.account_id]
        vector[0] += row.posted_debits
        vector[1] += row.posted_credits
        vector[2] += row.pending_debits
        vector[3] += row.pending_credits
        frozen_shards[row.account_id].add(row.frozen)
        shard_count[row.account_id] += 1
    names = ("posted debits", "posted credits", "pending debits", "pending credits")
    for account_id in sorted(set(accounts) | set(stored) | set(sums)):
        account = accounts.get(account_id)
        if account is None:
            report.fault(f"balance rows for unknown account {account_id}")
            continue
        if shard_count[account_id] != account.shards:
            report.fault(
                f"account {account_id}: {shard_count[account_id]} balance rows, "
                f"expected {account.shards}"
            )
        if frozen_shards[account_id] - {account.frozen}:
            report.fault(
                f"account {account_id}: frozen flag differs between account and balance rows"
            )
        journal = sums.get(account_id, [0, 0, 0, 0])
        kept = stored.get(account_id, [0, 0, 0, 0])
        for slot, name in enumerate(names):
            if journal[slot] != kept[slot]:
                report.fault(
                    f"account {account_id}: stored {name} {kept[slot]}, "
                    f"journal says {journal[slot]}"
                )
        if account.floor is not None:
            available = journal[1] - journal[0] - journal[2]
            if available < account.floor:
                report.fault(
                    f"account {account_id}: available {available} "
                    f"is below its floor {account.floor}"
                )


def _check_holds(session: Session, report: LedgerReport) -> None:
    for record in session.exec(select(Hold)).all():
        resolved = record.resolved_entry_id is not None
        if (record.status == HoldStatus.pending) == resolved:
            report.fault(
                f"hold {record.id}: status {record.status} "
                f"but resolution entry {record.resolved_entry_id}"
            )


def verify_ledger_snapshot(engine: Engine) -> LedgerReport:
    """:func:`verify_ledger` on one consistent snapshot while writers carry on (on PostgreSQL a
    read-only REPEATABLE READ transaction; on SQLite every transaction is one)."""
    if engine.dialect.name == "postgresql":
        with (
            engine.connect().execution_options(isolation_level="REPEATABLE READ") as connection,
            connection.begin(),
            Session(bind=connection) as session,
        ):
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            return verify_ledger(session)
    with Session(engine) as session:
        try:
            return verify_ledger(session)
        finally:
            session.rollback()
