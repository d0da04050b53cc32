"""The log's public read API, as an outside verifier uses it."""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tanhui import audit
from tanhui.db import unit_of_work
from tanhui.translog import merkle, note
from tanhui.translog import service as log
from tests.translog.test_merkle import mth


def _fill(engine: Engine, count: int) -> None:
    with unit_of_work(engine) as session:
        for index in range(count):
            audit.record(
                session,
                actor="user:test",
                action="project.filed",
                subject_type="project",
                subject_id=index,
                payload={"index": index},
            )
        log.sequence(session)


def test_checkpoint_entries_and_proofs_verify_without_login(
    client: TestClient, engine: Engine
) -> None:
    assert client.get("/api/v1/public/log/checkpoint").status_code == 404
    _fill(engine, 9)
    answer = client.get("/api/v1/public/log/checkpoint")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert "max-age" in answer.headers["cache-control"]
    checkpoint = note.open_checkpoint(answer.text, [log.verifier()], origin=log.origin())
    page = client.get("/api/v1/public/log/entries", params={"start": 0, "end": 100})
    assert page.status_code == 200
    leaves = [item["entry"].encode() for item in page.json()["entries"]]
    assert len(leaves) == checkpoint.size == 10 and mth(leaves) == checkpoint.root
    for index, leaf in enumerate(leaves):
        proof = client.get(
            "/api/v1/public/log/proofs/inclusion",
            params={"index": index, "tree_size": checkpoint.size},
        ).json()["hashes"]
        merkle.verify_inclusion(
            index,
            checkpoint.size,
            merkle.leaf_hash(leaf),
            [base64.b64decode(h) for h in proof],
            checkpoint.root,
        )
    _fill(engine, 4)
    newer = note.open_checkpoint(client.get("/api/v1/public/log/checkpoint").text, [log.verifier()])
    proof = client.get(
        "/api/v1/public/log/proofs/consistency",
        params={"first": checkpoint.size, "second": newer.size},
    )
    assert proof.headers["cache-control"].endswith("immutable")
    merkle.verify_consistency(
        checkpoint.size,
        newer.size,
        checkpoint.root,
        newer.root,
        [base64.b64decode(h) for h in proof.json()["hashes"]],
    )


def test_out_of_range_is_a_problem_not_a_500(client: TestClient, engine: Engine) -> None:
    _fill(engine, 3)
    for path, params in [
        ("inclusion", {"index": 5, "tree_size": 4}),
        ("inclusion", {"index": 0, "tree_size": 99}),
        ("consistency", {"first": 5, "second": 2}),
    ]:
        answer = client.get(
            f"/api/v1/public/log/proofs/{path}",
            params=params,
            headers={"Accept-Language": "en"},
        )
        assert answer.status_code == 422
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["type"] == "/problems/log-range"
    beyond = client.get("/api/v1/public/log/entries", params={"start": 10**30, "end": 10**30 + 1})
    assert beyond.status_code == 200 and beyond.json()["entries"] == []
    answer = client.get("/api/v1/public/log/entries", params={"start": 0, "end": 5000})
    assert answer.status_code == 422 and answer.json()["type"] == "/problems/log-range"
    assert "/api/v1/public/log/checkpoint" in client.get("/api/openapi.json").json()["paths"]
