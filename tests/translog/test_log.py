"""The log in the database: audited public steps become entries, the sequencer places them,
proofs and checkpoints verify against the independent implementation in test_merkle."""

from __future__ import annotations

import threading

from sqlalchemy import Engine, text
from sqlmodel import Session

from tanhui import audit
from tanhui.db import unit_of_work
from tanhui.translog import merkle, note
from tanhui.translog import service as log
from tests.translog.test_merkle import mth, root_by_path, roots_by_subproof


def _record(session: Session, action: str, index: int) -> None:
    audit.record(
        session,
        actor="user:test",
        action=action,
        subject_type="project",
        subject_id=f"p-{index}",
        payload={"index": index, "name": "竹林 村民 张三"},
    )


def _bodies(session: Session) -> list[bytes]:
    rows = session.execute(
        text("SELECT body FROM log_entry WHERE leaf_index IS NOT NULL ORDER BY leaf_index")
    ).all()
    return [row.body.encode("utf-8") for row in rows]


def test_public_steps_are_logged_and_prove_inclusion_and_consistency(session: Session) -> None:
    for index in range(13):
        _record(session, "project.certified", index)
        _record(session, "user.created", index)  # not a public fact: not logged
    session.commit()
    first = log.sequence(session)
    session.commit()
    assert first is not None
    for index in range(13, 30):
        _record(session, "credits.transferred", index)
    session.commit()
    second = log.sequence(session)
    session.commit()
    assert second is not None and second.size > first.size
    bodies = _bodies(session)
    # 30 public steps and one entry per sequencer step with the audit chain's head
    assert len(bodies) == second.size == 30 + 2
    assert not any("张三" in body.decode() for body in bodies)  # hashes, not payloads
    verifier = log.verifier()
    for signed in (first, second):
        checkpoint = note.open_checkpoint(signed.note, [verifier], origin=log.origin())
        assert checkpoint.size == signed.size
        assert checkpoint.root == mth(bodies[: signed.size])
    root = mth(bodies)
    for index in range(second.size):
        proof = log.inclusion_proof(session, index, second.size)
        leaf = merkle.leaf_hash(bodies[index])
        assert root_by_path(index, second.size, leaf, proof) == root
        merkle.verify_inclusion(index, second.size, leaf, proof, root)
    for size in range(1, second.size):
        proof = log.consistency_proof(session, size, second.size)
        old = mth(bodies[:size])
        assert roots_by_subproof(size, second.size, True, proof, old) == (old, root)
        assert log.root_at(session, size) == old


def test_entries_wait_for_the_sequencer_on_postgresql(pg_engine: Engine) -> None:
    with unit_of_work(pg_engine) as session:
        _record(session, "project.filed", 1)
    with unit_of_work(pg_engine) as session:
        pending = session.execute(
            text("SELECT count(*) FROM log_entry WHERE leaf_index IS NULL")
        ).scalar()
        assert pending == 1
        assert log.head(session)[0] == 0
    with unit_of_work(pg_engine) as session:
        signed = log.sequence(session)
    assert signed is not None and signed.size == 2


def test_two_racing_sequencers_build_one_tree(pg_engine: Engine) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []
    made: list[int] = []

    def write(worker: int) -> None:
        try:
            for index in range(40):
                with unit_of_work(pg_engine) as session:
                    _record(session, "credits.retired", worker * 1000 + index)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    def sequence() -> None:
        try:
            while not stop.is_set():
                with unit_of_work(pg_engine) as session:
                    signed = log.sequence(session, limit=7)
                    if signed is not None:
                        made.append(signed.size)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    writers = [threading.Thread(target=write, args=(w,)) for w in range(3)]
    sequencers = [threading.Thread(target=sequence) for _ in range(2)]
    for thread in writers + sequencers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in sequencers:
        thread.join()
    assert not errors
    with unit_of_work(pg_engine) as session:
        while True:  # drain
            signed = log.sequence(session)
            if (
                signed is None
                or not session.execute(
                    text("SELECT count(*) FROM log_entry WHERE leaf_index IS NULL")
                ).scalar()
            ):
                break
    with unit_of_work(pg_engine) as session:
        indices = [
            row[0]
            for row in session.execute(
                text("SELECT leaf_index FROM log_entry ORDER BY leaf_index")
            ).all()
        ]
        assert indices == list(range(len(indices)))
        bodies = _bodies(session)
        size, root = log.head(session)
        assert size == len(bodies) and root == mth(bodies)
        checkpoints = session.execute(text("SELECT size, root FROM log_checkpoint")).all()
        assert len({row.size for row in checkpoints}) == len(checkpoints)
        for row in checkpoints:  # every signed tree is a prefix of the one tree
            assert bytes.fromhex(row.root) == mth(bodies[: row.size])
    assert len(made) >= 2
