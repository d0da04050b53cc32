"""Replaying the first answer to a request retried with the same ``Idempotency-Key``.

The claim row is inserted *before* the work, in the same transaction: a concurrent duplicate
blocks on the unique index until the first commits, then finds the stored answer. Same key with
a different request body is a 409 problem, never a silent second effect.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from tanhui.crypto import canonical_json, sha256_hex
from tanhui.errors import IdempotencyConflict, InvalidInput
from tanhui.i18n import N_
from tanhui.models import IdempotencyRecord

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: Any


def fingerprint(payload: Any) -> str:
    return sha256_hex(canonical_json(payload))


def claim(session: Session, *, scope: str, key: str, payload: Any) -> IdempotencyRecord | Replay:
    """Claim ``key`` for this request, or return the answer given the first time."""
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            N_("The Idempotency-Key header must have 1 to {maximum} characters."),
            maximum=MAX_KEY_LENGTH,
        )
    request_hash = fingerprint(payload)
    record = IdempotencyRecord(scope=scope, key=key, request_hash=request_hash)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # One statement: a concurrent duplicate waits on the unique index, then inserts nothing.
    claimed = session.execute(
        insert(IdempotencyRecord)
        .values(
            id=record.id,
            scope=scope,
            key=key,
            request_hash=request_hash,
            created_at=record.created_at,
        )
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(col(IdempotencyRecord.id))
    ).first()
    if claimed is not None:
        return record
    existing = session.exec(
        select(IdempotencyRecord)
        .where(col(IdempotencyRecord.scope) == scope)
        .where(col(IdempotencyRecord.key) == key)
    ).one()
    if existing.request_hash != request_hash:
        raise IdempotencyConflict(
            N_("The key {key} was already used for a different request."), key=key
        )
    if existing.status_code is None or existing.response_body is None:
        raise IdempotencyConflict(
            N_("A request with the key {key} is still being processed."), key=key
        )
    return Replay(existing.status_code, json.loads(existing.response_body))


def remember(session: Session, record: IdempotencyRecord, *, status_code: int, body: Any) -> None:
    """Store the answer on the claim made by :func:`claim` (same transaction)."""
    session.execute(
        update(IdempotencyRecord)
        .where(col(IdempotencyRecord.id) == record.id)
        .values(
            status_code=status_code,
            response_body=json.dumps(body, ensure_ascii=False, default=str),
        )
    )
