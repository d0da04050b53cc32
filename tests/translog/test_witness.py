"""A witness over the public API: it cosigns consistent checkpoints and refuses a log that was
rewritten (even one the operator re-signs with the real key)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tanhui import audit
from tanhui.crypto import SigningKey
from tanhui.db import unit_of_work
from tanhui.translog import note
from tanhui.translog import service as log
from tanhui.translog.witness import WitnessError, extends, witness


def _grow(engine: Engine, count: int, start: int = 0) -> None:
    with unit_of_work(engine) as session:
        for index in range(start, start + count):
            audit.record(
                session,
                actor="user:test",
                action="credits.transferred",
                subject_type="transfer",
                subject_id=index,
                payload={"quantity_t": index},
            )
        log.sequence(session)


def test_witness_cosigns_growth_and_refuses_a_rewritten_log(
    client: TestClient, engine: Engine, tmp_path: Path
) -> None:
    def fetch(path: str) -> tuple[int, str]:
        answer = client.get(path)
        return answer.status_code, answer.text

    keys = [log.log_key().public_raw]
    state = tmp_path / "witness"
    _grow(engine, 5)
    first = witness(fetch, state, keys, "witness.example/w1")
    witness_key = SigningKey.from_pem((state / "witness_key.pem").read_bytes())
    cosigner = note.Verifier("witness.example/w1", witness_key.public_raw, note.COSIGNATURE_V1)
    _, verified = note.open_note(first, [log.verifier(), cosigner])
    assert cosigner in verified
    old = client.get("/api/v1/public/log/checkpoint").text

    _grow(engine, 7, start=5)
    second = witness(fetch, state, keys, "witness.example/w1")
    assert (
        note.Checkpoint.parse(note.split(second)[0]).size
        > note.Checkpoint.parse(note.split(first)[0]).size
    )
    assert extends(fetch, old, keys).size == 14

    # the operator rewrites an early entry, rebuilds the tree and signs it with the real key
    with unit_of_work(engine) as session:
        session.execute(text("UPDATE log_entry SET body = body || ' ' WHERE leaf_index = 1"))
        session.execute(text("UPDATE log_entry SET leaf_index = NULL"))
        session.execute(text("DELETE FROM log_node"))
        session.execute(text("DELETE FROM log_head"))
        session.execute(text("DELETE FROM log_checkpoint"))
        session.flush()
        log.integrate(session, limit=10_000)
    _grow(engine, 1, start=100)
    with pytest.raises(WitnessError, match="does not extend"):
        witness(fetch, state, keys, "witness.example/w1")
    with pytest.raises(WitnessError, match="does not extend"):
        extends(fetch, old, keys)
    with pytest.raises(WitnessError, match="pinned"):
        extends(fetch, old, [SigningKey.generate().public_raw])
