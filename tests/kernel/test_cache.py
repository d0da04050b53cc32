"""Versioned caches: a value is computed once per version of the data, the version is read once
per transaction, and a committed audited change makes the next transaction compute again."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from tanhui import audit
from tanhui.cache import VersionedCache, data_version


def _change(session: Session) -> None:
    audit.record(
        session,
        actor="system:test",
        action="test.changed",
        subject_type="test",
        subject_id=uuid.uuid4(),
        payload={},
    )


def test_values_follow_the_audit_head(engine: Engine) -> None:
    cache: VersionedCache[int] = VersionedCache()
    computed: list[int] = []

    def compute() -> int:
        computed.append(1)
        return len(computed)

    with Session(engine) as session:
        _change(session)  # the first audit record: before it there is no version to key on
        session.commit()
    with Session(engine) as session:
        first = data_version(session)
        assert first is not None
        assert cache.get(session, "projects", compute) == 1
        assert cache.get(session, "projects", compute) == 1
        assert cache.get(session, "map", compute) == 2  # another key, the same version
        session.commit()
        assert cache.get(session, "projects", compute) == 1  # a new transaction, no change
        _change(session)
        session.commit()
        assert data_version(session) != first
        assert cache.get(session, "projects", compute) == 3  # the head moved: computed again
        assert len(computed) == 3


@pytest.mark.postgres
def test_one_transaction_sees_one_version(pg_engine: Engine) -> None:
    """A page asking two caches shows one version even if a change commits in between
    (PostgreSQL: SQLite's writer would wait for the reader's transaction)."""
    engine = pg_engine
    with Session(engine) as session:
        _change(session)
        session.commit()
    with Session(engine) as reader:
        before = data_version(reader)
        with Session(engine) as writer:
            _change(writer)
            writer.commit()
        assert data_version(reader) == before
        reader.commit()
        assert data_version(reader) != before
