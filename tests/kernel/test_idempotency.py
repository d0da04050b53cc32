"""Idempotency keys: one claim per key, the first answer replayed, concurrent duplicates wait."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from tanhui import idempotency
from tanhui.errors import IdempotencyConflict
from tanhui.models import IdempotencyRecord


def test_a_claim_is_answered_once_and_replayed(session: Session) -> None:
    claimed = idempotency.claim(session, scope="test", key="k1", payload={"a": 1})
    assert isinstance(claimed, IdempotencyRecord)
    idempotency.remember(session, claimed, status_code=201, body={"id": "first"})
    session.commit()
    again = idempotency.claim(session, scope="test", key="k1", payload={"a": 1})
    assert again == idempotency.Replay(201, {"id": "first"})
    with pytest.raises(IdempotencyConflict):
        idempotency.claim(session, scope="test", key="k1", payload={"a": 2})
    other_scope = idempotency.claim(session, scope="other", key="k1", payload={"a": 2})
    assert isinstance(other_scope, IdempotencyRecord)


def test_a_concurrent_duplicate_waits_for_the_first_answer(pg_engine: Engine) -> None:
    """The second request with the key blocks on the unique index while the first is open,
    then replays its answer: never a second effect, never an error."""
    first = Session(pg_engine)
    claimed = idempotency.claim(first, scope="test", key="k2", payload={"a": 1})
    assert isinstance(claimed, IdempotencyRecord)
    outcome: list[object] = []

    def duplicate() -> None:
        with Session(pg_engine) as second:
            outcome.append(idempotency.claim(second, scope="test", key="k2", payload={"a": 1}))
            second.commit()

    thread = threading.Thread(target=duplicate)
    thread.start()
    thread.join(timeout=1.0)
    assert thread.is_alive(), "the duplicate waits while the first claim is uncommitted"
    idempotency.remember(first, claimed, status_code=201, body={"id": "first"})
    first.commit()
    first.close()
    thread.join(timeout=10)
    assert outcome == [idempotency.Replay(201, {"id": "first"})]


def test_a_rolled_back_claim_frees_the_key(pg_engine: Engine) -> None:
    with Session(pg_engine) as first:
        idempotency.claim(first, scope="test", key="k3", payload={"a": 1})
        first.rollback()
    with Session(pg_engine) as second:
        claimed = idempotency.claim(second, scope="test", key="k3", payload={"a": 1})
        assert isinstance(claimed, IdempotencyRecord)
