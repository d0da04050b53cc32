"""Distributions: credit many accounts from one source account in a single journal entry.

Why this exists (ADR 0073): some flows credit thousands of accounts at once from one system
account, e.g. carbon inclusion's accruals, where a batch of 1,000 partner events credits grams
and points to up to 1,000 residents. Expressed as transfers, that is one (debit, credit) pair
per resident and asset, 100 transfers per entry, so 20 entries, 4,000 postings and 20 chain
links per batch, each debit leg updating the same hot source row. A distribution is one entry
with **one debit leg per source** (the total) and one credit leg per credited account: half the
postings, one chain link, and a single statement that locks the credited balance rows in
sorted order and adds to them, without reading them back into Python.

Every ledger invariant holds as for any entry: the entry balances per asset (each source's
debit equals the sum of its credits, all in the source's asset), it is a link of a hash chain
covering all its postings (``tanhui wallet verify`` checks it like any other), balances change
in the same transaction as the postings, floors and frozen flags of the source are checked
against its locked rows, and an idempotency key is applied at most once. Crediting can neither
break a floor nor be refused by a frozen account (freezing stops debits), so the credited rows
need no check but the 64-bit limit, done in the locking statement. Lock order is the engine's
(ADR 0011): every balance row that must be locked exactly (the credited rows and sources that
need all their shards) in one sorted statement, then any free shard of a hot source.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, text, tuple_, update
from sqlalchemy import select as sa_select
from sqlmodel import Session

from tanhui.db import database_kind, new_id, utcnow
from tanhui.errors import IdempotencyConflict
from tanhui.i18n import N_
from wallet.errors import (
    AccountFrozen,
    AmountTooLarge,
    InsufficientFunds,
    InvalidEntry,
    MixedAssets,
    UnknownAccount,
)
from wallet.models import EntryKind, JournalEntry, Layer, Side
from wallet.service import chain, engine
from wallet.service.entries import (
    DEFAULT_SCOPE,
    MAX_AMOUNT,
    check_amount,
    check_code,
    check_scope_and_key,
    find_entry_by_key,
    metadata_json,
    request_fingerprint,
)

MAX_DISTRIBUTION_CREDITS = 10_000  # credit legs per entry (all distributions together)


@dataclass(frozen=True)
class Distribution:
    """Debit ``debit_account_id`` by the sum of ``credits`` and credit each (account, amount)."""

    debit_account_id: uuid.UUID
    credits: Sequence[tuple[uuid.UUID, int]]


def post_distribution(
    session: Session,
    *,
    code: str,
    distributions: Sequence[Distribution],
    idempotency_key: str | None = None,
    scope: str = DEFAULT_SCOPE,
    metadata: dict[str, Any] | None = None,
    entry_id: uuid.UUID | None = None,
) -> JournalEntry:
    """Post one entry crediting many accounts from one source account per distribution.

    ``entry_id`` is the new entry's id (default: a new one), for callers that store it
    elsewhere before posting (an earlier entry answered for an idempotency key keeps its own).

    The entry's postings are, for each distribution in order, the source's debit leg (the sum)
    followed by its credit legs in the order given. All or nothing: raises InvalidEntry (shape:
    no credits, an amount not in 1..10**15, an account credited twice in one distribution or
    debited and credited, more than ``MAX_DISTRIBUTION_CREDITS`` credits), UnknownAccount,
    MixedAssets (a credited account in another asset than its source), AccountFrozen and
    InsufficientFunds (the source), AmountTooLarge (a balance would pass 2**63 - 1), and
    IdempotencyConflict (the key was used for another request); nothing is written then. The same
    key and request again answers the original entry.
    """
    check_code(code)
    key = check_scope_and_key(scope, idempotency_key)
    meta = metadata_json(metadata)
    plan = _plan(distributions)
    request_hash = request_fingerprint(
        {
            "kind": "distribution",
            "code": code,
            "distributions": [
                [_hex(item.debit_account_id), [[_hex(a), amount] for a, amount in item.credits]]
                for item in distributions
            ],
            "metadata": meta,
        }
    )
    if key is not None:
        earlier = _earlier(session, scope, key, request_hash)
        if earlier is not None:
            return earlier
    accounts = engine.account_meta(session, plan.account_ids)
    _check_accounts(plan, accounts)

    postgresql = database_kind(session) == "postgresql"
    # Credited rows: one shard each (any shard of a hot account: a credit needs no total).
    credit_rows: dict[tuple[uuid.UUID, int], int] = {}
    for account_id, amount in plan.credit_totals.items():
        shards = accounts[account_id].shards
        shard = 0 if shards == 1 else secrets.randbelow(shards)
        credit_rows[(account_id, shard)] = amount
    sources = _lock(session, postgresql, accounts, plan, credit_rows)
    debit_rows = _check_sources(accounts, plan, sources)

    entry_id = entry_id or new_id()
    created_at = utcnow()
    postings = plan.postings(accounts)
    head = chain.lock_head(session)
    seq = head.seq + 1
    content = chain.entry_content(
        entry_id=entry_id,
        chain=head.chain,
        chain_seq=seq,
        scope=scope,
        idempotency_key=key,
        request_hash=request_hash,
        kind=EntryKind.transfer.value,
        code=code,
        metadata_json=meta,
        reverses_id=None,
        hold_id=None,
        created_at=created_at,
        postings=postings,
    )
    digest = chain.link_hash(head.hash, content)
    values = {
        "id": entry_id,
        "chain": head.chain,
        "chain_seq": seq,
        "prev_hash": head.hash,
        "hash": digest,
        "scope": scope,
        "idempotency_key": key,
        "request_hash": request_hash,
        "kind": EntryKind.transfer.value,
        "code": code,
        "metadata_json": meta,
        "reverses_id": None,
        "hold_id": None,
        "created_at": created_at,
    }
    # (account, shard) -> (debit, credit) to add; a source is never credited (see _plan).
    changes = [(row, 0, amount) for row, amount in credit_rows.items()]
    changes += [(row, amount, 0) for row, amount in debit_rows.items()]
    head.seq, head.hash = seq, digest
    if postgresql:
        written = _write_postgresql(session, values, postings, changes, head)
    else:
        written = _write_sqlite(session, values, postings, changes, head)
    if not written:  # the key was committed concurrently: nothing of this call was written
        assert key is not None
        earlier = _earlier(session, scope, key, request_hash)
        assert earlier is not None
        return earlier
    return engine.entry_object(values)


_DEBIT, _CREDIT, _POSTED = Side.debit.value, Side.credit.value, Layer.posted.value


@dataclass
class _Plan:
    distributions: list[tuple[uuid.UUID, Sequence[tuple[uuid.UUID, int]], int]]  # with totals
    debit_totals: dict[uuid.UUID, int]
    credit_totals: dict[uuid.UUID, int]

    @property
    def account_ids(self) -> set[uuid.UUID]:
        return set(self.debit_totals) | set(self.credit_totals)

    def postings(
        self, accounts: dict[uuid.UUID, engine.AccountMeta]
    ) -> list[tuple[uuid.UUID, str, str, str, int]]:
        """(account, asset, layer, side, amount) in order: each debit, then its credits."""
        postings = []
        for source, credits, total in self.distributions:
            asset = accounts[source].asset  # the credited accounts' too (_check_accounts)
            postings.append((source, asset, _POSTED, _DEBIT, total))
            postings += [(account_id, asset, _POSTED, _CREDIT, m) for account_id, m in credits]
        return postings


def _twice(position: int, account_id: uuid.UUID) -> InvalidEntry:
    return InvalidEntry(
        N_("Distribution {position} credits account {account_id} twice or debits and credits it."),
        position=position,
        account_id=str(account_id),
    )


def _plan(distributions: Sequence[Distribution]) -> _Plan:
    """Check the request's shape and sum it per account (raises InvalidEntry)."""
    if not distributions:
        raise InvalidEntry(N_("An entry needs at least one transfer."))
    count = sum(len(item.credits) for item in distributions)
    if count > MAX_DISTRIBUTION_CREDITS:
        raise InvalidEntry(
            N_("A distribution credits at most {maximum} accounts."),
            maximum=MAX_DISTRIBUTION_CREDITS,
        )
    plan = _Plan(distributions=[], debit_totals={}, credit_totals={})
    credited: set[uuid.UUID] = set()
    for position, item in enumerate(distributions):
        credits = list(item.credits)
        if not credits:
            raise InvalidEntry(N_("An entry needs at least one transfer."))
        source = item.debit_account_id
        total = 0
        for _account_id, amount in credits:
            if type(amount) is not int or not 0 < amount <= MAX_AMOUNT:
                check_amount(amount, f"distributions[{position}].credits.amount")
            total += amount
        check_amount(total, f"distributions[{position}].total")
        ids = {account_id for account_id, _amount in credits}
        if len(ids) != len(credits) or source in ids:
            seen: set[uuid.UUID] = {source}
            for account_id, _amount in credits:
                if account_id in seen:
                    raise _twice(position, account_id)
                seen.add(account_id)
        if credited.isdisjoint(ids):
            plan.credit_totals.update(credits)
        else:  # another distribution (of another source) credits some of them too
            for account_id, amount in credits:
                plan.credit_totals[account_id] = plan.credit_totals.get(account_id, 0) + amount
        credited |= ids
        plan.distributions.append((source, credits, total))
        plan.debit_totals[source] = plan.debit_totals.get(source, 0) + total
    for position, item in enumerate(distributions):
        if item.debit_account_id in credited:
            raise _twice(position, item.debit_account_id)
    return plan


def _check_accounts(plan: _Plan, accounts: dict[uuid.UUID, engine.AccountMeta]) -> None:
    if len(accounts) != len(plan.account_ids):
        for account_id in plan.account_ids:
            if account_id not in accounts:
                raise UnknownAccount(N_("No account {account_id}."), account_id=str(account_id))
    for source, credits, _total in plan.distributions:
        debit_asset = accounts[source].asset
        for account_id, _amount in credits:
            credit_asset = accounts[account_id].asset
            if credit_asset != debit_asset:
                raise MixedAssets(
                    N_(
                        "Account {debit_account_id} holds {debit_asset} but account "
                        "{credit_account_id} holds {credit_asset}."
                    ),
                    debit_account_id=str(source),
                    debit_asset=debit_asset,
                    credit_account_id=str(account_id),
                    credit_asset=credit_asset,
                )


def _earlier(session: Session, scope: str, key: str, request_hash: str) -> JournalEntry | None:
    entry = find_entry_by_key(session, scope=scope, idempotency_key=key)
    if entry is None:
        return None
    if entry.request_hash != request_hash:
        raise IdempotencyConflict(
            N_("The key {key} was already used for a different request."), key=key
        )
    return entry


def _needs_all(account: engine.AccountMeta) -> bool:
    """A debit must lock every shard of the source unless it is hot and has no floor."""
    return account.shards == 1 or account.floor is not None


# Lock the rows in (account_id, shard) order (the arrays are sorted, and each row is locked by
# its own primary-key probe as the arrays are read: a subquery with LIMIT is never flattened
# into a join, so no plan can scan the table) and answer the source rows in full and, for the
# credited rows (amount > 0), how many were locked and the first whose credits would overflow.
_PG_LOCK = text(
    "WITH l AS MATERIALIZED (SELECT b.*, v.m FROM unnest(CAST(:a AS uuid[]),"
    " CAST(:s AS smallint[]), CAST(:m AS bigint[])) AS v(a, s, m)"
    " CROSS JOIN LATERAL (SELECT account_id, shard, posted_debits, posted_credits,"
    " pending_debits, pending_credits, frozen FROM wallet_balance"
    " WHERE account_id = v.a AND shard = v.s LIMIT 1 FOR UPDATE) AS b)"
    " SELECT account_id, shard, posted_debits, posted_credits, pending_debits, pending_credits,"
    " frozen FROM l WHERE m = 0"
    " UNION ALL SELECT (array_agg(account_id ORDER BY account_id)"
    " FILTER (WHERE posted_credits > :max - m))[1], -1, count(*), 0, 0, 0, false FROM l WHERE m > 0"
)


def _lock(
    session: Session,
    postgresql: bool,
    accounts: dict[uuid.UUID, engine.AccountMeta],
    plan: _Plan,
    credit_rows: dict[tuple[uuid.UUID, int], int],
) -> dict[uuid.UUID, list[tuple[int, list[int], bool]]]:
    """Lock what the entry changes; the locked rows of each source: (shard, values, frozen)."""
    exact = dict(credit_rows)
    for source in plan.debit_totals:
        if _needs_all(accounts[source]):
            for shard in range(accounts[source].shards):
                exact[(source, shard)] = 0
    ordered = sorted(exact, key=_row_order)
    connection = session.connection()
    sources: dict[uuid.UUID, list[tuple[int, list[int], bool]]] = {}
    if postgresql:
        found = connection.execute(
            _PG_LOCK,
            {
                "a": _array([_hex(a) for a, _ in ordered]),
                "s": "{" + ",".join(str(s) for _, s in ordered) + "}",
                "m": "{" + ",".join(str(exact[row]) for row in ordered) + "}",
                "max": engine.MAX_BALANCE_VALUE,
            },
        ).all()
        overflow: uuid.UUID | None = None
        locked_credits = 0
        for account_id, shard, pd, pc, qd, qc, frozen in found:
            if shard == -1:
                overflow, locked_credits = account_id, int(pd)
                continue
            sources.setdefault(account_id, []).append(
                (int(shard), [int(pd), int(pc), int(qd), int(qc)], bool(frozen))
            )
    else:
        overflow, locked_credits = _read_sqlite(session, exact, sources)
    if locked_credits != len(credit_rows):  # pragma: no cover - accounts open with their rows
        raise UnknownAccount(N_("No account {account_id}."), account_id="?")
    if overflow is not None:
        raise AmountTooLarge(
            N_("The balance of account {account_id} would exceed the largest amount."),
            account_id=str(overflow),
        )
    for source in plan.debit_totals:
        if _needs_all(accounts[source]):
            continue
        found = connection.execute(engine.LOCK_ANY, {"account": source}).all()
        if not found:  # every shard is busy: queue on one of them
            shard = secrets.randbelow(accounts[source].shards)
            found = connection.execute(engine.LOCK_ONE, {"account": source, "shard": shard}).all()
        for account_id, shard, pd, pc, qd, qc, frozen in found:
            sources.setdefault(account_id, []).append(
                (int(shard), [int(pd), int(pc), int(qd), int(qc)], bool(frozen))
            )
    return sources


def _read_sqlite(
    session: Session,
    exact: dict[tuple[uuid.UUID, int], int],
    sources: dict[uuid.UUID, list[tuple[int, list[int], bool]]],
) -> tuple[uuid.UUID | None, int]:
    """SQLite (one writer at a time): read the rows the PostgreSQL statement locks."""
    balance = engine.BALANCE
    overflow: uuid.UUID | None = None
    credited = 0
    rows = sorted(exact)
    for start in range(0, len(rows), 400):
        chunk = rows[start : start + 400]
        for account_id, shard, pd, pc, qd, qc, frozen in session.connection().execute(
            sa_select(*engine.BALANCE_COLUMNS).where(
                tuple_(balance.c.account_id, balance.c.shard).in_(chunk)
            )
        ):
            amount = exact[(account_id, shard)]
            if amount == 0:
                sources.setdefault(account_id, []).append(
                    (int(shard), [int(pd), int(pc), int(qd), int(qc)], bool(frozen))
                )
                continue
            credited += 1
            if int(pc) > engine.MAX_BALANCE_VALUE - amount and (
                overflow is None or account_id < overflow
            ):
                overflow = account_id
    return overflow, credited


def _check_sources(
    accounts: dict[uuid.UUID, engine.AccountMeta],
    plan: _Plan,
    sources: dict[uuid.UUID, list[tuple[int, list[int], bool]]],
) -> dict[tuple[uuid.UUID, int], int]:
    """Frozen, floor and 64-bit checks of each source; the shard row each debit goes to."""
    debit_rows: dict[tuple[uuid.UUID, int], int] = {}
    for source, total in plan.debit_totals.items():
        locked = sorted(sources.get(source, []))
        if not locked:  # pragma: no cover - accounts open with their rows
            raise UnknownAccount(N_("No account {account_id}."), account_id=str(source))
        if any(frozen for _shard, _values, frozen in locked):
            raise AccountFrozen(N_("Account {account_id} is frozen."), account_id=str(source))
        floor = accounts[source].floor
        if floor is not None:
            available = sum(values[1] - values[0] - values[2] for _s, values, _f in locked)
            if available - total < floor:
                raise InsufficientFunds(
                    N_("Account {account_id} has {available} available; this needs {needed}."),
                    account_id=str(source),
                    available=available,
                    needed=total,
                    floor=floor,
                )
        shard, values, _frozen = locked[0]
        if values[0] + total > engine.MAX_BALANCE_VALUE:
            raise AmountTooLarge(
                N_("The balance of account {account_id} would exceed the largest amount."),
                account_id=str(source),
            )
        debit_rows[(source, shard)] = total
    return debit_rows


# One statement: the entry (nothing else happens if its key is taken), its postings, the
# balance rows (added to: they are locked) and the chain head.
_PG_WRITE = text(
    "WITH e AS (INSERT INTO wallet_entry (id, chain, chain_seq, prev_hash, hash, scope,"
    " idempotency_key, request_hash, kind, code, metadata_json, reverses_id, hold_id, created_at)"
    " VALUES (:id, :chain, :chain_seq, :prev_hash, :hash, :scope, :idempotency_key,"
    " :request_hash, :kind, :code, :metadata_json, NULL, NULL, :created_at)"
    " ON CONFLICT (scope, idempotency_key) DO NOTHING RETURNING id),"
    " p AS (INSERT INTO wallet_posting (entry_id, ordinal, account_id, asset, layer, side, amount)"
    " SELECT e.id, x.o - 1, x.a, x.asset, 'posted', x.side, x.amount FROM e,"
    " unnest(CAST(:p_a AS uuid[]), CAST(:p_asset AS text[]), CAST(:p_side AS text[]),"
    " CAST(:p_amount AS bigint[])) WITH ORDINALITY AS x(a, asset, side, amount, o)),"
    " b AS (UPDATE wallet_balance AS b SET posted_debits = b.posted_debits + v.d,"
    " posted_credits = b.posted_credits + v.c FROM e,"
    " unnest(CAST(:b_a AS uuid[]), CAST(:b_s AS smallint[]), CAST(:b_d AS bigint[]),"
    " CAST(:b_c AS bigint[])) AS v(a, s, d, c) WHERE b.account_id = v.a AND b.shard = v.s),"
    " h AS (UPDATE wallet_chain_head AS h SET seq = :h_seq, hash = :h_hash FROM e"
    " WHERE h.chain = :h_chain)"
    " SELECT count(*) FROM e"
)


def _array(values: Sequence[Any]) -> str:
    """An array literal of values that need no quoting (integers, plain words, hex)."""
    return "{" + ",".join(map(str, values)) + "}"


def _hex(value: uuid.UUID) -> str:
    """A UUID as 32 hex digits (PostgreSQL reads it; cheaper than ``str``)."""
    return "%032x" % value.int  # noqa: UP031 - the fastest form


def _row_order(row: tuple[uuid.UUID, int]) -> tuple[int, int]:
    """(account_id, shard) in PostgreSQL's order of uuids (their bytes, i.e. their integers)."""
    return (row[0].int, row[1])


def _write_postgresql(
    session: Session,
    values: dict[str, Any],
    postings: list[tuple[uuid.UUID, str, str, str, int]],
    changes: list[tuple[tuple[uuid.UUID, int], int, int]],
    head: chain.HeadState,
) -> bool:
    names = {  # asset codes are letters, digits and ``:._-``; quoted all the same
        asset: '"' + asset + '"' for asset in {posting[1] for posting in postings}
    }
    parameters = {
        **values,
        "p_a": _array([_hex(posting[0]) for posting in postings]),
        "p_asset": "{" + ",".join(names[posting[1]] for posting in postings) + "}",
        "p_side": _array([posting[3] for posting in postings]),
        "p_amount": _array([posting[4] for posting in postings]),
        "b_a": _array([_hex(row[0]) for row, _debit, _credit in changes]),
        "b_s": _array([row[1] for row, _debit, _credit in changes]),
        "b_d": _array([debit for _row, debit, _credit in changes]),
        "b_c": _array([credit for _row, _debit, credit in changes]),
        "h_chain": head.chain,
        "h_seq": head.seq,
        "h_hash": head.hash,
    }
    return bool(session.connection().execute(_PG_WRITE, parameters).scalar_one() == 1)


_ADD_TO_BALANCE = (
    update(engine.BALANCE)
    .where(
        engine.BALANCE.c.account_id == bindparam("b_account"),
        engine.BALANCE.c.shard == bindparam("b_shard"),
    )
    .values(
        posted_debits=engine.BALANCE.c.posted_debits + bindparam("b_d"),
        posted_credits=engine.BALANCE.c.posted_credits + bindparam("b_c"),
    )
)


def _write_sqlite(
    session: Session,
    values: dict[str, Any],
    postings: list[tuple[uuid.UUID, str, str, str, int]],
    changes: list[tuple[tuple[uuid.UUID, int], int, int]],
    head: chain.HeadState,
) -> bool:
    if not engine.insert_entries(session, [values]):
        return False
    connection = session.connection()
    connection.execute(engine.POSTING.insert(), engine.posting_rows(values["id"], postings))
    connection.execute(
        _ADD_TO_BALANCE,
        [
            {"b_account": account_id, "b_shard": shard, "b_d": debit, "b_c": credit}
            for (account_id, shard), debit, credit in changes
        ],
    )
    chain.store_head(session, head)
    return True
