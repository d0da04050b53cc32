"""The audit chain: appended in the caller's transaction, tamper-evident, signed."""

from __future__ import annotations

import itertools
import threading

from sqlalchemy import Engine, text
from sqlmodel import Session

from tanhui import audit
from tanhui.db import retrying, unit_of_work
from tanhui.settings import Settings
from tests.factories import run_cli


def _append(session: Session, count: int, actor: str = "user:test") -> None:
    for index in range(count):
        audit.record(
            session,
            actor=actor,
            action="thing.changed",
            subject_type="thing",
            subject_id=index,
            payload={"index": index, "名称": "竹林"},
        )


def test_chain_verifies_and_links(session: Session) -> None:
    _append(session, 5)
    session.commit()
    report = audit.verify_chain(session)
    assert report.ok and report.records == 5
    rows = session.execute(text("SELECT seq, prev_hash, hash FROM audit_record ORDER BY seq")).all()
    assert [row.seq for row in rows] == [1, 2, 3, 4, 5]
    for earlier, later in itertools.pairwise(rows):
        assert later.prev_hash == earlier.hash


def test_record_rolls_back_with_its_transaction(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        _append(session, 2)
    try:
        with unit_of_work(engine) as session:
            _append(session, 3)
            raise RuntimeError("the change fails")
    except RuntimeError:
        pass
    with unit_of_work(engine) as session:
        report = audit.verify_chain(session)
    assert report.ok and report.records == 2


def test_tampered_payload_is_named(session: Session) -> None:
    _append(session, 6)
    session.commit()
    session.execute(
        text("UPDATE audit_record SET payload = :p WHERE seq = 4"), {"p": '{"index":99}'}
    )
    session.commit()
    report = audit.verify_chain(session)
    assert not report.ok
    assert report.first_broken_seq == 4


def test_tampered_actor_is_named(session: Session) -> None:
    _append(session, 3)
    session.commit()
    session.execute(text("UPDATE audit_record SET actor = 'user:someone-else' WHERE seq = 2"))
    session.commit()
    assert audit.verify_chain(session).first_broken_seq == 2


def test_deleted_record_is_named(session: Session) -> None:
    _append(session, 4)
    session.commit()
    session.execute(text("DELETE FROM audit_record WHERE seq = 4"))
    session.commit()
    report = audit.verify_chain(session)
    assert report.first_broken_seq == 4


def test_rewritten_chain_fails_the_signed_checkpoint(session: Session) -> None:
    """An attacker who recomputes every hash still cannot forge the platform's signature."""
    _append(session, 3)
    audit.checkpoint(session)
    session.commit()
    rows = session.execute(text("SELECT * FROM audit_record ORDER BY seq")).mappings().all()
    prev = audit.GENESIS_HASH
    for row in rows:
        payload = '{"index":7}' if row["seq"] == 2 else row["payload"]
        occurred_at = session.get(audit.AuditRecord, row["seq"]).occurred_at  # type: ignore[union-attr]
        content = audit._content(
            row["seq"],
            occurred_at,
            row["actor"],
            row["action"],
            row["subject_type"],
            row["subject_id"],
            payload,
        )
        digest = audit.chain_hash(prev, content)
        session.execute(
            text("UPDATE audit_record SET payload=:p, prev_hash=:prev, hash=:h WHERE seq=:s"),
            {"p": payload, "prev": prev, "h": digest, "s": row["seq"]},
        )
        prev = digest
    session.execute(text("UPDATE audit_head SET hash=:h"), {"h": prev})
    session.commit()
    session.expire_all()
    report = audit.verify_chain(session)
    assert report.first_broken_seq == 3
    assert report.reason == "checkpoint signature fails"


def test_cli_names_the_first_broken_record(settings: Settings, engine: Engine) -> None:
    with unit_of_work(engine) as session:
        _append(session, 3)
    ok = run_cli(settings, "audit", "verify")
    assert ok.returncode == 0, ok.stderr
    assert "3 records" in ok.stdout
    with unit_of_work(engine) as session:
        session.execute(text("UPDATE audit_record SET action = 'x' WHERE seq = 2"))
    broken = run_cli(settings, "audit", "verify")
    assert broken.returncode == 1
    assert "record 2" in broken.stderr


def test_concurrent_appends_form_one_chain_on_postgresql(pg_engine: Engine) -> None:
    errors: list[BaseException] = []

    def worker(number: int) -> None:
        try:
            for _ in range(15):
                retrying(pg_engine, lambda s: _append(s, 1, actor=f"user:{number}"))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with unit_of_work(pg_engine) as session:
        report = audit.verify_chain(session)
    assert report.ok and report.records == 120
