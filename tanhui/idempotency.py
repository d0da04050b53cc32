"""Replaying the first answer to a request retried with the same ``Idempotency-Key``.

The claim row is inserted *before* the work, in the same transaction: a concurrent duplicate
blocks on the unique index until the first commits, then finds the stored answer. Same key with
a different request body is a 409 problem, never a silent second effect.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
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
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
    except IntegrityError:
        existing = session.exec(
            select(IdempotencyRecord)
            .where(col(IdempotencyRecord.scope) == scope)
            .where(col(IdempotencyRecord.key) == key)
        ).one()
        if existing.request_hash != request_hash:
            raise IdempotencyConflict(
                N_("The key {key} was already used for a different request."), key=key
            ) from None
        if existing.status_code is None or existing.response_body is None:
            raise IdempotencyConflict(
                N_("A request with the key {key} is still being processed."), key=key
            ) from None
        return Replay(existing.status_code, json.loads(existing.response_body))
    return record


def remember(session: Session, record: IdempotencyRecord, *, status_code: int, body: Any) -> None:
    record.status_code = status_code
    record.response_body = json.dumps(body, ensure_ascii=False, default=str)
    session.add(record)
    session.flush()
