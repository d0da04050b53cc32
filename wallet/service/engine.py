"""The posting engine: apply a list of drafted entries in the caller's transaction.

Every use case that moves value (transfers, holds, captures, voids, expiries, batches) builds
:class:`Draft` entries and hands them to :func:`apply`, which

1. resolves idempotency keys already used (same request: the original entry; other request: 409),
2. loads the accounts and refuses unknown accounts and transfers that mix assets,
3. locks the balance rows it will change, in one sorted order (``account_id, shard``), so that
   concurrent transactions cannot deadlock on them; a hot account that is only credited locks
   any one of its shards that nobody else holds (``SKIP LOCKED``) instead of queueing,
4. checks each entry against the locked balances in memory (frozen accounts, floors counting
   pending debits, 64-bit limits) and keeps or rejects it whole,
5. appends the kept entries to a journal chain, inserts their postings and writes the new
   balances: a few statements for any number of entries.

An entry whose idempotency key is inserted concurrently by another transaction is found by the
unique index (``ON CONFLICT DO NOTHING``), nothing of this call having been written yet; it is
then answered like any earlier use of the key. On SQLite every transaction already holds the
single write lock (``BEGIN IMMEDIATE``); the same code runs there, the row locks being no-ops.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, func, text, tuple_, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import attributes, class_mapper, make_transient_to_detached
from sqlmodel import Session, col, select

from tanhui.db import database_kind, new_id, utcnow
from tanhui.errors import DomainError, IdempotencyConflict
from tanhui.i18n import N_
from wallet.errors import (
    AccountFrozen,
    AmountTooLarge,
    InsufficientFunds,
    MixedAssets,
    UnknownAccount,
)
from wallet.models import (
    Account,
    BalanceShard,
    EntryKind,
    JournalEntry,
    Layer,
    Posting,
    Side,
)
from wallet.service import chain

MAX_BALANCE_VALUE = 2**63 - 1  # a BIGINT column
MAX_RETRIES_IN_CALL = 4  # re-evaluations after concurrent duplicates or released holds

_BALANCE = BalanceShard.__table__  # type: ignore[attr-defined]
_ENTRY = JournalEntry.__table__  # type: ignore[attr-defined]
_POSTING = Posting.__table__  # type: ignore[attr-defined]
_ACCOUNT = Account.__table__  # type: ignore[attr-defined]
ACCOUNT_CACHE_SIZE = 200_000

# Statements built once (compiling is cached by SQLAlchemy, building them is not free).
_BALANCE_COLUMNS = (
    _BALANCE.c.account_id,
    _BALANCE.c.shard,
    _BALANCE.c.posted_debits,
    _BALANCE.c.posted_credits,
    _BALANCE.c.pending_debits,
    _BALANCE.c.pending_credits,
    _BALANCE.c.frozen,
)
_LOCK_ALL = (
    sa_select(*_BALANCE_COLUMNS)
    .where(_BALANCE.c.account_id.in_(bindparam("accounts", expanding=True)))
    .order_by(_BALANCE.c.account_id, _BALANCE.c.shard)
    .with_for_update()
)
_LOCK_ANY = (
    sa_select(*_BALANCE_COLUMNS)
    .where(_BALANCE.c.account_id == bindparam("account"))
    .order_by(func.random())
    .limit(1)
    .with_for_update(skip_locked=True)
)
_LOCK_ONE = (
    sa_select(*_BALANCE_COLUMNS)
    .where(_BALANCE.c.account_id == bindparam("account"), _BALANCE.c.shard == bindparam("shard"))
    .with_for_update()
)
_UPDATE_BALANCE = (
    update(_BALANCE)
    .where(
        _BALANCE.c.account_id == bindparam("b_account"),
        _BALANCE.c.shard == bindparam("b_shard"),
    )
    .values(
        posted_debits=bindparam("b_pd"),
        posted_credits=bindparam("b_pc"),
        pending_debits=bindparam("b_qd"),
        pending_credits=bindparam("b_qc"),
    )
)
_LOAD_ACCOUNTS = sa_select(
    _ACCOUNT.c.id, _ACCOUNT.c.asset, _ACCOUNT.c.floor, _ACCOUNT.c.shards
).where(_ACCOUNT.c.id.in_(bindparam("ids", expanding=True)))
# Many ids as one array parameter, each probed through the primary key whatever the plan (a
# subquery with LIMIT is not flattened into a join); an expanding IN list of a thousand
# parameters costs more to bind than to run.
_PG_LOAD_ACCOUNTS = text(
    "SELECT a.id, a.asset, a.floor, a.shards FROM unnest(CAST(:ids AS uuid[])) AS v(id)"
    " CROSS JOIN LATERAL (SELECT id, asset, floor, shards FROM wallet_account"
    " WHERE id = v.id LIMIT 1) AS a"
)
_INSERT_KEYED = {
    "sqlite": sqlite_insert(_ENTRY)
    .on_conflict_do_nothing(index_elements=["scope", "idempotency_key"])
    .returning(_ENTRY.c.id),
}


@dataclass(frozen=True)
class AccountMeta:
    """What the engine needs of an account; none of it ever changes, so it is cached."""

    id: uuid.UUID
    asset: str
    floor: int | None
    shards: int


_account_cache: dict[uuid.UUID, AccountMeta] = {}

# Index of each (layer, side) in a balance vector [posted D, posted C, pending D, pending C].
_SLOT = {
    (Layer.posted, Side.debit): 0,
    (Layer.posted, Side.credit): 1,
    (Layer.pending, Side.debit): 2,
    (Layer.pending, Side.credit): 3,
}


@dataclass(frozen=True)
class Leg:
    """One posting to make. Legs come in (debit, credit) pairs of the same amount and layer."""

    account_id: uuid.UUID
    layer: Layer
    side: Side
    amount: int


def pair(debit: uuid.UUID, credit: uuid.UUID, amount: int, layer: Layer) -> list[Leg]:
    return [Leg(debit, layer, Side.debit, amount), Leg(credit, layer, Side.credit, amount)]


@dataclass
class Draft:
    """An entry to apply; ``request_hash`` identifies the request behind an idempotency key."""

    kind: EntryKind
    code: str
    scope: str
    idempotency_key: str | None
    request_hash: str
    metadata_json: str
    legs: list[Leg]
    reverses_id: uuid.UUID | None = None
    hold_id: uuid.UUID | None = None
    id: uuid.UUID = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utcnow)


@dataclass
class Outcome:
    """What became of one draft: a new entry, an earlier one (``duplicate``), or an error."""

    entry: JournalEntry | None = None
    error: DomainError | None = None
    duplicate: bool = False


@dataclass
class _AccountState:
    account: AccountMeta
    shards: list[int]  # the locked shard rows of this account
    all_locked: bool  # every shard is locked: sums are exact, floors can be checked
    totals: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    frozen: bool = False


def apply(
    session: Session, drafts: Sequence[Draft], *, release_expired: bool = True
) -> list[Outcome]:
    """Apply ``drafts`` in order, each whole or not at all; one :class:`Outcome` per draft."""
    outcomes: list[Outcome | None] = [None] * len(drafts)
    first_of_key: dict[tuple[str, str], int] = {}
    repeats: dict[int, int] = {}
    for index, draft in enumerate(drafts):
        if draft.idempotency_key is None:
            continue
        key = (draft.scope, draft.idempotency_key)
        if key in first_of_key:
            repeats[index] = first_of_key[key]
        else:
            first_of_key[key] = index
    if len(drafts) > 1 and first_of_key:
        _resolve_existing(session, drafts, outcomes, first_of_key)

    live = [i for i in range(len(drafts)) if outcomes[i] is None and i not in repeats]
    accounts = _load_accounts(session, [drafts[i] for i in live])
    for index in list(live):
        error = _shape_error(drafts[index], accounts)
        if error is not None:
            outcomes[index] = Outcome(error=error)
            live.remove(index)

    released_once = False
    for _attempt in range(MAX_RETRIES_IN_CALL):
        if not live:
            break
        states, rows = _lock(session, accounts, [drafts[i] for i in live])
        kept: list[int] = []
        starved: set[uuid.UUID] = set()
        errors: dict[int, DomainError] = {}
        for index in live:
            error = _try_apply(drafts[index], states, rows)
            if error is None:
                kept.append(index)
            else:
                errors[index] = error
                if isinstance(error, InsufficientFunds):
                    starved.add(uuid.UUID(str(error.params["account_id"])))
        if starved and release_expired and not released_once:
            released_once = True
            from wallet.service.holds import release_expired_holds

            if release_expired_holds(session, account_ids=sorted(starved)):
                continue  # balances changed: evaluate again from freshly locked rows
        if kept:
            written = _write(session, [drafts[i] for i in kept], accounts, states, rows)
            if written is None:  # some keys were taken concurrently: answer those, retry rest
                taken = {
                    (drafts[i].scope, drafts[i].idempotency_key or ""): i
                    for i in kept
                    if drafts[i].idempotency_key is not None
                }
                _resolve_existing(session, drafts, outcomes, taken)
                live = [i for i in live if outcomes[i] is None]
                continue
            for index, entry in zip(kept, written, strict=True):
                outcomes[index] = Outcome(entry=entry)
        # A rejected draft may be the retry of an entry already made (that used the funds it
        # now lacks): answer it like the original.
        _resolve_existing(
            session,
            drafts,
            outcomes,
            {
                (drafts[i].scope, drafts[i].idempotency_key or ""): i
                for i in errors
                if drafts[i].idempotency_key is not None
            },
        )
        for index, error in errors.items():
            if outcomes[index] is None:
                outcomes[index] = Outcome(error=error)
        live = []
    for index in live:  # pragma: no cover - bounded retries exhausted under extreme contention
        outcomes[index] = Outcome(
            error=IdempotencyConflict(
                N_("A request with the key {key} is still being processed."),
                key=drafts[index].idempotency_key,
            )
        )

    for index, first in repeats.items():
        outcomes[index] = _repeat_outcome(drafts[index], drafts[first], outcomes[first])
    return [outcome if outcome is not None else Outcome() for outcome in outcomes]


def _repeat_outcome(draft: Draft, first: Draft, outcome: Outcome | None) -> Outcome:
    if draft.request_hash != first.request_hash:
        return Outcome(error=_key_reused(draft.idempotency_key))
    if outcome is None:  # pragma: no cover - every first draft has an outcome
        return Outcome()
    return Outcome(entry=outcome.entry, error=outcome.error, duplicate=outcome.entry is not None)


def _key_reused(key: str | None) -> IdempotencyConflict:
    return IdempotencyConflict(
        N_("The key {key} was already used for a different request."), key=key
    )


def _resolve_existing(
    session: Session,
    drafts: Sequence[Draft],
    outcomes: list[Outcome | None],
    wanted: dict[tuple[str, str], int],
) -> None:
    """Answer drafts whose (scope, key) is already in the journal."""
    if not wanted:
        return
    found = session.exec(
        select(JournalEntry).where(
            tuple_(col(JournalEntry.scope), col(JournalEntry.idempotency_key)).in_(list(wanted))
        )
    ).all()
    for entry in found:
        index = wanted.get((entry.scope, entry.idempotency_key or ""))
        if index is None:
            continue
        if entry.request_hash != drafts[index].request_hash:
            outcomes[index] = Outcome(error=_key_reused(entry.idempotency_key))
        else:
            outcomes[index] = Outcome(entry=entry, duplicate=True)


def _load_accounts(session: Session, drafts: Sequence[Draft]) -> dict[uuid.UUID, AccountMeta]:
    return account_meta(session, {leg.account_id for draft in drafts for leg in draft.legs})


def account_meta(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, AccountMeta]:
    """The metadata of the accounts among ``ids`` that exist (cached: it never changes)."""
    wanted = set(ids)
    found = {i: _account_cache[i] for i in wanted if i in _account_cache}
    missing = sorted(wanted - set(found))
    if missing:
        if len(_account_cache) > ACCOUNT_CACHE_SIZE:
            _account_cache.clear()
        if len(missing) > 20 and database_kind(session) == "postgresql":
            found_rows = session.connection().execute(
                _PG_LOAD_ACCOUNTS, {"ids": "{" + ",".join(map(str, missing)) + "}"}
            )
        else:
            found_rows = session.connection().execute(_LOAD_ACCOUNTS, {"ids": missing})
        for account_id, asset, floor, shards in found_rows:
            meta = AccountMeta(account_id, asset, floor, int(shards))
            found[account_id] = _account_cache[account_id] = meta
    return found


def _shape_error(draft: Draft, accounts: dict[uuid.UUID, AccountMeta]) -> DomainError | None:
    for leg in draft.legs:
        if leg.account_id not in accounts:
            return UnknownAccount(N_("No account {account_id}."), account_id=str(leg.account_id))
    for debit, credit in zip(draft.legs[::2], draft.legs[1::2], strict=True):
        debit_asset = accounts[debit.account_id].asset
        credit_asset = accounts[credit.account_id].asset
        if debit_asset != credit_asset:
            return MixedAssets(
                N_(
                    "Account {debit_account_id} holds {debit_asset} but account "
                    "{credit_account_id} holds {credit_asset}."
                ),
                debit_account_id=str(debit.account_id),
                debit_asset=debit_asset,
                credit_account_id=str(credit.account_id),
                credit_asset=credit_asset,
            )
    return None


def _available_delta(vector: list[int]) -> int:
    """How an entry changes ``available`` (= posted C - posted D - pending D)."""
    return vector[1] - vector[0] - vector[2]


def _account_vectors(draft: Draft) -> dict[uuid.UUID, list[int]]:
    vectors: dict[uuid.UUID, list[int]] = {}
    for leg in draft.legs:
        vector = vectors.setdefault(leg.account_id, [0, 0, 0, 0])
        vector[_SLOT[(leg.layer, leg.side)]] += leg.amount
    return vectors


_Rows = dict[tuple[uuid.UUID, int], list[int]]


def _lock(
    session: Session, accounts: dict[uuid.UUID, AccountMeta], drafts: Sequence[Draft]
) -> tuple[dict[uuid.UUID, _AccountState], _Rows]:
    """Lock the balance rows the drafts need and read them (see the module docstring)."""
    needs_all: set[uuid.UUID] = set()
    touched: set[uuid.UUID] = set()
    for draft in drafts:
        for account_id, vector in _account_vectors(draft).items():
            touched.add(account_id)
            account = accounts[account_id]
            if account.shards == 1 or (account.floor is not None and _available_delta(vector) < 0):
                needs_all.add(account_id)
    states: dict[uuid.UUID, _AccountState] = {}
    rows: _Rows = {}
    connection = session.connection()

    def take(found: Sequence[Any], all_locked: bool) -> None:
        for account_id, shard, *values, frozen in found:
            state = states.get(account_id)
            if state is None:
                state = states[account_id] = _AccountState(
                    account=accounts[account_id], shards=[], all_locked=all_locked
                )
            state.shards.append(shard)
            state.frozen = state.frozen or bool(frozen)
            rows[(account_id, shard)] = [int(value) for value in values]
            for slot in range(4):
                state.totals[slot] += int(values[slot])

    if needs_all:
        take(connection.execute(_LOCK_ALL, {"accounts": sorted(needs_all)}).all(), True)
    for account_id in sorted(touched - needs_all):
        found = connection.execute(_LOCK_ANY, {"account": account_id}).all()
        if not found:  # every shard is busy: queue on one of them
            shard = secrets.randbelow(accounts[account_id].shards)
            found = connection.execute(_LOCK_ONE, {"account": account_id, "shard": shard}).all()
        take(found, all_locked=False)
    for account_id in touched:
        if account_id not in states:  # pragma: no cover - accounts are opened with their rows
            raise UnknownAccount(N_("No account {account_id}."), account_id=str(account_id))
    return states, rows


def _try_apply(
    draft: Draft, states: dict[uuid.UUID, _AccountState], rows: _Rows
) -> DomainError | None:
    """Check ``draft`` against the locked balances; apply it in memory if it passes."""
    vectors = _account_vectors(draft)
    for account_id, vector in vectors.items():
        state = states[account_id]
        account = state.account
        if state.frozen and (vector[0] > 0 or vector[2] > 0):
            return AccountFrozen(N_("Account {account_id} is frozen."), account_id=str(account_id))
        change = _available_delta(vector)
        if change < 0 and account.floor is not None:
            assert state.all_locked
            available = state.totals[1] - state.totals[0] - state.totals[2]
            if available + change < account.floor:
                return InsufficientFunds(
                    N_("Account {account_id} has {available} available; this needs {needed}."),
                    account_id=str(account_id),
                    available=available,
                    needed=-change,
                    floor=account.floor,
                )
        target = rows[(account_id, state.shards[0])]
        for slot in range(4):
            if not -MAX_BALANCE_VALUE <= target[slot] + vector[slot] <= MAX_BALANCE_VALUE:
                return AmountTooLarge(
                    N_("The balance of account {account_id} would exceed the largest amount."),
                    account_id=str(account_id),
                )
    for account_id, vector in vectors.items():
        state = states[account_id]
        target = rows[(account_id, state.shards[0])]
        for slot in range(4):
            target[slot] += vector[slot]
            state.totals[slot] += vector[slot]
    return None


def _write(
    session: Session,
    drafts: Sequence[Draft],
    accounts: dict[uuid.UUID, AccountMeta],
    states: dict[uuid.UUID, _AccountState],
    rows: _Rows,
) -> list[JournalEntry] | None:
    """Append ``drafts`` to a chain and write postings and balances; None if a key was taken."""
    head = chain.lock_head(session)
    entry_rows: list[dict[str, Any]] = []
    posting_rows: list[dict[str, Any]] = []
    seq, previous = head.seq, head.hash
    for draft in drafts:
        seq += 1
        postings = [
            (
                leg.account_id,
                accounts[leg.account_id].asset,
                leg.layer.value,
                leg.side.value,
                leg.amount,
            )
            for leg in draft.legs
        ]
        content = chain.entry_content(
            entry_id=draft.id,
            chain=head.chain,
            chain_seq=seq,
            scope=draft.scope,
            idempotency_key=draft.idempotency_key,
            request_hash=draft.request_hash,
            kind=draft.kind.value,
            code=draft.code,
            metadata_json=draft.metadata_json,
            reverses_id=draft.reverses_id,
            hold_id=draft.hold_id,
            created_at=draft.created_at,
            postings=postings,
        )
        digest = chain.link_hash(previous, content)
        entry_rows.append(
            {
                "id": draft.id,
                "chain": head.chain,
                "chain_seq": seq,
                "prev_hash": previous,
                "hash": digest,
                "scope": draft.scope,
                "idempotency_key": draft.idempotency_key,
                "request_hash": draft.request_hash,
                "kind": draft.kind.value,
                "code": draft.code,
                "metadata_json": draft.metadata_json,
                "reverses_id": draft.reverses_id,
                "hold_id": draft.hold_id,
                "created_at": draft.created_at,
            }
        )
        posting_rows.extend(_posting_rows(draft.id, postings))
        previous = digest
    touched = {leg.account_id for draft in drafts for leg in draft.legs}
    changed = sorted({(account_id, states[account_id].shards[0]) for account_id in touched})
    balance_rows = [
        {
            "b_account": account_id,
            "b_shard": shard,
            "b_pd": rows[(account_id, shard)][0],
            "b_pc": rows[(account_id, shard)][1],
            "b_qd": rows[(account_id, shard)][2],
            "b_qc": rows[(account_id, shard)][3],
        }
        for account_id, shard in changed
    ]
    head.seq, head.hash = seq, previous
    if database_kind(session) == "postgresql":
        if not _write_postgresql(session, entry_rows, posting_rows, balance_rows, head):
            return None
    else:
        if not _insert_entries(session, entry_rows):
            return None
        connection = session.connection()
        connection.execute(_POSTING.insert(), posting_rows)
        connection.execute(_UPDATE_BALANCE, balance_rows)
        chain.store_head(session, head)
    return [_entry_object(values) for values in entry_rows]


def _write_postgresql(
    session: Session,
    entry_rows: list[dict[str, Any]],
    posting_rows: list[dict[str, Any]],
    balance_rows: list[dict[str, Any]],
    head: chain.HeadState,
) -> bool:
    """Entries, postings, balances and the chain head in one statement (one round trip); if any
    entry's idempotency key is taken, nothing is written and False is returned."""
    parameters = {
        "entries": _json_rows(entry_rows),
        "postings": _json_rows(posting_rows),
        "balances": _json_rows(balance_rows),
        "n_entries": len(entry_rows),
        "h_chain": head.chain,
        "h_seq": head.seq,
        "h_hash": head.hash,
    }
    if len(entry_rows) == 1:
        return bool(session.connection().execute(_PG_WRITE, parameters).scalar_one() == 1)
    savepoint = session.begin_nested()
    if session.connection().execute(_PG_WRITE, parameters).scalar_one() != len(entry_rows):
        savepoint.rollback()
        return False
    savepoint.commit()
    return True


@cache
def _entry_manager() -> Any:
    class_mapper(JournalEntry)  # configures the mappers if nothing has yet
    return attributes.manager_of_class(JournalEntry)


def _entry_object(values: dict[str, Any]) -> JournalEntry:
    """A detached JournalEntry holding ``values`` (the row just inserted), made without the
    per-attribute events of the constructor: batches return a thousand of them."""
    entry: JournalEntry = _entry_manager().new_instance()
    entry.__dict__.update(values)
    object.__setattr__(entry, "__pydantic_fields_set__", set(values))
    object.__setattr__(entry, "__pydantic_extra__", None)
    object.__setattr__(entry, "__pydantic_private__", None)
    make_transient_to_detached(entry)
    return entry


def _json_rows(rows: list[dict[str, Any]]) -> str:
    """Rows as one JSON array for PostgreSQL's ``jsonb_to_recordset`` (much cheaper to encode
    and send than one bound parameter per value or per column)."""
    return json.dumps(rows, default=_json_value, separators=(",", ":"))


def _json_value(value: object) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)  # pragma: no cover - only the types above occur


# PostgreSQL: all rows of a call in one statement. Every data-modifying part sees the same
# snapshot, and the guard ``ok`` makes the postings, balances and head wait for all entries to
# be inserted (no key taken); SQLite gets the same rows through executemany statements.
_ENTRY_RECORD = (
    "id uuid, chain smallint, chain_seq bigint, prev_hash text, hash text, scope text,"
    " idempotency_key text, request_hash text, kind text, code text, metadata_json text,"
    " reverses_id uuid, hold_id uuid, created_at timestamptz"
)
_ENTRY_COLUMNS = (
    "id, chain, chain_seq, prev_hash, hash, scope, idempotency_key, request_hash, kind, code,"
    " metadata_json, reverses_id, hold_id, created_at"
)
_POSTING_COLUMNS = "entry_id, ordinal, account_id, asset, layer, side, amount"
_POSTING_RECORD = (
    "entry_id uuid, ordinal smallint, account_id uuid, asset text, layer text, side text,"
    " amount bigint"
)
_PG_WRITE = text(
    f"WITH e AS (INSERT INTO wallet_entry ({_ENTRY_COLUMNS})"  # noqa: S608 - constants only
    f" SELECT {_ENTRY_COLUMNS} FROM jsonb_to_recordset(CAST(:entries AS jsonb))"
    f" AS x({_ENTRY_RECORD})"
    " ON CONFLICT (scope, idempotency_key) DO NOTHING RETURNING id),"
    " ok AS (SELECT count(*) = :n_entries AS all_in FROM e),"
    f" p AS (INSERT INTO wallet_posting ({_POSTING_COLUMNS})"
    f" SELECT {_POSTING_COLUMNS} FROM jsonb_to_recordset(CAST(:postings AS jsonb))"
    f" AS x({_POSTING_RECORD}), ok WHERE ok.all_in),"
    " b AS (UPDATE wallet_balance AS b SET posted_debits = v.b_pd, posted_credits = v.b_pc,"
    " pending_debits = v.b_qd, pending_credits = v.b_qc"
    " FROM jsonb_to_recordset(CAST(:balances AS jsonb)) AS v(b_account uuid, b_shard smallint,"
    " b_pd bigint, b_pc bigint, b_qd bigint, b_qc bigint), ok"
    " WHERE ok.all_in AND b.account_id = v.b_account AND b.shard = v.b_shard),"
    " h AS (UPDATE wallet_chain_head AS h SET seq = :h_seq, hash = :h_hash FROM ok"
    " WHERE ok.all_in AND h.chain = :h_chain)"
    " SELECT count(*) FROM e"
)


def _posting_rows(
    entry_id: uuid.UUID, postings: list[tuple[uuid.UUID, str, str, str, int]]
) -> list[dict[str, Any]]:
    """``wallet_posting`` rows of one entry from its (account, asset, layer, side, amount)."""
    return [
        {
            "entry_id": entry_id,
            "ordinal": ordinal,
            "account_id": account_id,
            "asset": asset,
            "layer": layer,
            "side": side,
            "amount": amount,
        }
        for ordinal, (account_id, asset, layer, side, amount) in enumerate(postings)
    ]


def _insert_entries(session: Session, entry_rows: list[dict[str, Any]]) -> bool:
    """SQLite: insert the entry rows; False (nothing inserted) if an idempotency key is taken."""
    connection = session.connection()
    if all(row["idempotency_key"] is None for row in entry_rows):
        connection.execute(_ENTRY.insert(), entry_rows)
        return True
    statement = _INSERT_KEYED["sqlite"]
    if len(entry_rows) == 1:
        return len(connection.execute(statement, entry_rows).all()) == 1
    savepoint = session.begin_nested()
    inserted = session.connection().execute(statement, entry_rows).all()
    if len(inserted) != len(entry_rows):
        savepoint.rollback()
        return False
    savepoint.commit()
    return True


# Names the distributions module (wallet.service.distributions) shares with the engine.
BALANCE = _BALANCE
POSTING = _POSTING
BALANCE_COLUMNS = _BALANCE_COLUMNS
LOCK_ANY = _LOCK_ANY
LOCK_ONE = _LOCK_ONE
entry_object = _entry_object
insert_entries = _insert_entries
posting_rows = _posting_rows
