"""The journal's hash chains: canonical entry content, and locking a chain head to append.

Every entry is a link of one of ``CHAIN_STRIPES`` chains. Its hash is SHA-256 over the previous
link's hash and the entry's canonical content, postings included, so changing, inserting or
deleting any journal row breaks a link (or the head). Several chains instead of one let
concurrent transactions append without queueing on a single head row (ADR 0012): a writer
takes any head nobody else holds (``FOR UPDATE SKIP LOCKED``) and waits only if all are busy.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from tanhui.crypto import canonical_json
from tanhui.db import database_kind
from wallet.models import ChainHead

CHAIN_STRIPES = 16
GENESIS_HASH = "0" * 64

_HEAD = ChainHead.__table__  # type: ignore[attr-defined]


@dataclass
class HeadState:
    chain: int
    seq: int
    hash: str


def entry_content(
    *,
    entry_id: uuid.UUID,
    chain: int,
    chain_seq: int,
    scope: str,
    idempotency_key: str | None,
    request_hash: str,
    kind: str,
    code: str,
    metadata_json: str,
    reverses_id: uuid.UUID | None,
    hold_id: uuid.UUID | None,
    created_at: datetime,
    postings: list[tuple[uuid.UUID, str, str, str, int]],
) -> bytes:
    """The bytes an entry's hash covers; ``postings`` are (account, asset, layer, side, amount)."""
    document: dict[str, Any] = {
        "id": str(entry_id),
        "chain": chain,
        "seq": chain_seq,
        "scope": scope,
        "key": idempotency_key,
        "request": request_hash,
        "kind": kind,
        "code": code,
        "metadata": metadata_json,
        "reverses": str(reverses_id) if reverses_id else None,
        "hold": str(hold_id) if hold_id else None,
        "created_at": created_at.isoformat(timespec="microseconds"),
        "postings": [
            [str(account), asset, layer, side, amount]
            for account, asset, layer, side, amount in postings
        ],
    }
    return canonical_json(document)


def stored_entry_content(entry: Any, postings: list[Any]) -> bytes:
    """:func:`entry_content` of a journal row as stored (``entry`` and its ``postings`` in
    order, ORM objects or plain rows): what verification recomputes the hash from."""
    return entry_content(
        entry_id=entry.id,
        chain=entry.chain,
        chain_seq=entry.chain_seq,
        scope=entry.scope,
        idempotency_key=entry.idempotency_key,
        request_hash=entry.request_hash,
        kind=entry.kind,
        code=entry.code,
        metadata_json=entry.metadata_json,
        reverses_id=entry.reverses_id,
        hold_id=entry.hold_id,
        created_at=entry.created_at,
        postings=[(p.account_id, p.asset, p.layer, p.side, p.amount) for p in postings],
    )


def link_hash(prev_hash: str, content: bytes) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + content).hexdigest()


def ensure_heads(session: Session) -> None:
    """Create the chain heads that are missing (concurrent callers must not both insert)."""
    insert = pg_insert if database_kind(session) == "postgresql" else sqlite_insert
    rows = [{"chain": chain, "seq": 0, "hash": GENESIS_HASH} for chain in range(CHAIN_STRIPES)]
    session.execute(insert(_HEAD).values(rows).on_conflict_do_nothing())


_HEAD_COLUMNS = (_HEAD.c.chain, _HEAD.c.seq, _HEAD.c.hash)
_LOCK_IF_FREE = (
    select(*_HEAD_COLUMNS)
    .where(_HEAD.c.chain == bindparam("chain"))
    .with_for_update(skip_locked=True)
)
_LOCK_ANY_FREE = (
    select(*_HEAD_COLUMNS).order_by(func.random()).limit(1).with_for_update(skip_locked=True)
)
_LOCK_WAITING = select(*_HEAD_COLUMNS).where(_HEAD.c.chain == bindparam("chain")).with_for_update()
_STORE = (
    update(_HEAD)
    .where(_HEAD.c.chain == bindparam("h_chain"))
    .values(seq=bindparam("h_seq"), hash=bindparam("h_hash"))
)
RANDOM_TRIES = 2


def lock_head(session: Session) -> HeadState:
    """Lock a chain head for this transaction: a free one if any, else wait for a random one."""
    connection = session.connection()
    row = None
    for _ in range(RANDOM_TRIES):
        row = connection.execute(_LOCK_IF_FREE, {"chain": secrets.randbelow(CHAIN_STRIPES)}).first()
        if row is not None:
            break
    if row is None:
        row = connection.execute(_LOCK_ANY_FREE).first()
    if row is None:
        ensure_heads(session)
        row = connection.execute(_LOCK_WAITING, {"chain": secrets.randbelow(CHAIN_STRIPES)}).one()
    return HeadState(chain=int(row[0]), seq=int(row[1]), hash=str(row[2]))


def store_head(session: Session, head: HeadState) -> None:
    session.connection().execute(
        _STORE, {"h_chain": head.chain, "h_seq": head.seq, "h_hash": head.hash}
    )
