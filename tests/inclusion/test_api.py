"""The partner-facing HTTP contract of ``/api/v1/points``: signatures, replay, shapes, access."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, select

from mrv.inclusive import local_date
from registry.inclusion.models import InclusionBatch, InclusionEvent, InclusionRejection
from registry.inclusion.service.signatures import signed_payload
from tanhui.db import utcnow
from tests import factories
from tests.inclusion import helpers


def _counts(session: Session) -> tuple[int, ...]:
    """Rows written so far (the session's transaction ends, so the app may write next)."""
    session.rollback()
    counts = tuple(
        session.exec(select(func.count()).select_from(table)).one()
        for table in (InclusionBatch, InclusionEvent, InclusionRejection)
    )
    session.rollback()
    return counts


@pytest.fixture
def setup(session: Session) -> dict[str, Any]:
    partner_id, secret = helpers.partner(session, ["bus", "walk"])
    rider = helpers.resident(session, "13957300001")
    other = helpers.resident(session, "13957300002")
    admin = factories.user(session, admin=True)
    session.commit()
    return {"partner": partner_id, "secret": secret, "rider": rider, "other": other, "admin": admin}


def test_accepted_batch_matches_the_documented_shape(
    client: TestClient, setup: dict[str, Any]
) -> None:
    events = [
        helpers.event("13957300001", event_id="a", quantity=12.5),
        helpers.event("13957300001", event_id="b", scenario="metro"),
    ]
    response = helpers.post(client, setup["partner"], setup["secret"], events)
    assert response.status_code == 200, response.text
    data = response.json()
    assert [
        {key: item[key] for key in ("partner_event_id", "status", "reason", "grams", "points")}
        for item in data["results"]
    ] == [
        {"partner_event_id": "a", "status": "accepted", "reason": None, "grams": 336, "points": 33},
        {
            "partner_event_id": "b",
            "status": "rejected",
            "reason": "scenario_not_allowed",
            "grams": 0,
            "points": 0,
        },
    ]
    assert data["accepted"] == 1 and data["rejected"] == 1


@pytest.mark.parametrize(
    "fault", ["missing", "wrong", "stale", "future", "other-partner", "tampered"]
)
def test_bad_signatures_are_401_and_record_nothing(
    client: TestClient, session: Session, setup: dict[str, Any], fault: str
) -> None:
    raw = helpers.body([helpers.event("13957300001")])
    headers = helpers.headers(setup["partner"], setup["secret"], raw)
    if fault == "missing":
        del headers["X-Tanhui-Signature"]
    elif fault == "wrong":
        headers = helpers.headers(setup["partner"], "thsk_not-the-secret", raw)
    elif fault == "stale":
        headers = helpers.headers(
            setup["partner"], setup["secret"], raw, at=utcnow() - timedelta(seconds=301)
        )
    elif fault == "future":
        headers = helpers.headers(
            setup["partner"], setup["secret"], raw, at=utcnow() + timedelta(seconds=305)
        )
    elif fault == "other-partner":
        headers["X-Tanhui-Partner"] = "0190b6a2-0000-7000-8000-000000000000"
    elif fault == "tampered":
        raw = raw.replace(b'"quantity":10', b'"quantity":99')
    response = client.post("/api/v1/points/events", content=raw, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].startswith("/problems/points/")
    assert _counts(session) == (0, 0, 0)


def test_a_replayed_request_is_refused_whole(
    client: TestClient, session: Session, setup: dict[str, Any]
) -> None:
    raw = helpers.body([helpers.event("13957300001", event_id="once")])
    headers = helpers.headers(setup["partner"], setup["secret"], raw)
    assert client.post("/api/v1/points/events", content=raw, headers=headers).status_code == 200
    before = _counts(session)
    replay = client.post("/api/v1/points/events", content=raw, headers=headers)
    assert replay.status_code == 401
    assert replay.json()["type"] == "/problems/points/replayed-request"
    assert _counts(session) == before
    # Signed again, the same events come back as duplicates of their first receipt.
    again = helpers.post(
        client,
        setup["partner"],
        setup["secret"],
        [json.loads(raw)["events"][0]],
        at=utcnow() + timedelta(seconds=2),
    )
    assert again.json()["results"][0]["reason"] == "duplicate"


def test_an_ed25519_partner_signs_with_its_key(
    client: TestClient, session: Session, setup: dict[str, Any]
) -> None:
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    factories.login(client, setup["admin"].email)
    csrf = client.get("/api/v1/me").json()["csrf_token"]
    added = client.post(
        f"/api/v1/points/partners/{setup['partner']}/keys",
        json={"kind": "ed25519", "public_key": base64.b64encode(public).decode()},
        headers={"X-CSRF-Token": csrf},
    )
    assert added.status_code == 201, added.text
    client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    raw = helpers.body([helpers.event("13957300001", event_id="ed")])
    stamp = int(utcnow().timestamp())
    signature = base64.b64encode(private.sign(signed_payload(stamp, raw))).decode()
    response = client.post(
        "/api/v1/points/events",
        content=raw,
        headers={
            "X-Tanhui-Partner": str(setup["partner"]),
            "X-Tanhui-Signature": f"t={stamp},ed25519={signature}",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["status"] == "accepted"


def test_malformed_and_oversized_batches_are_422_and_record_nothing(
    client: TestClient, session: Session, setup: dict[str, Any]
) -> None:
    bad = helpers.post(client, setup["partner"], setup["secret"], [{"partner_event_id": "x"}])
    assert bad.status_code == 422 and bad.json()["type"] == "/problems/points/invalid-batch"
    many = [helpers.event("13957300001", event_id=f"n{i}") for i in range(1001)]
    large = helpers.post(client, setup["partner"], setup["secret"], many)
    assert large.status_code == 422 and large.json()["type"] == "/problems/points/batch-too-large"
    naive = helpers.event("13957300001")
    naive["occurred_at"] = "2026-11-20T10:00:00"
    assert helpers.post(client, setup["partner"], setup["secret"], [naive]).status_code == 422
    assert _counts(session) == (0, 0, 0)


def test_balances_and_receipts_are_for_the_resident_or_an_admin(
    client: TestClient, session: Session, setup: dict[str, Any]
) -> None:
    helpers.post(
        client, setup["partner"], setup["secret"], [helpers.event("13957300001", event_id="r1")]
    )
    rider = setup["rider"]
    assert client.get(f"/api/v1/points/residents/{rider.id}").status_code == 401
    factories.login(client, setup["admin"].email)
    view = client.get(f"/api/v1/points/residents/{rider.id}")
    assert view.status_code == 200
    body = view.json()
    assert body["id"] == str(rider.id)
    assert body["points"] == {"balance": 26, "available": 26}
    assert body["reductions_g"] == 269
    receipts = client.get(f"/api/v1/points/residents/{rider.id}/receipts").json()
    receipt = receipts["items"][0]
    assert receipt["grams"] == 269 and receipt["methodology_version"] == "1.0"
    assert receipt["grams_per_unit"] == "26.9" and "Shenzhen" in receipt["source"]
    assert receipt["points_per_kg"] == 100 and receipt["baseline"]
    assert client.get(f"/api/v1/points/receipts/{receipt['id']}").status_code == 200


def test_residents_see_only_their_own(
    client: TestClient, session: Session, setup: dict[str, Any]
) -> None:
    from tanhui import identity

    started = identity.start_web_session(session, resident=setup["other"])
    session.commit()
    from fastapi import Response

    from tanhui.auth import set_session_cookie

    response = Response()
    set_session_cookie(response, started.key)
    cookie = response.headers["set-cookie"].split(";")[0].split("=", 1)
    client.cookies.set(cookie[0], cookie[1])
    assert client.get(f"/api/v1/points/residents/{setup['other'].id}").status_code == 200
    assert client.get(f"/api/v1/points/residents/{setup['rider'].id}").status_code == 404


def test_methodologies_are_public_with_their_history(client: TestClient) -> None:
    data = client.get("/api/v1/points/methodologies").json()
    metro = [item for item in data["items"] if item["scenario"] == "metro"]
    assert [(m["version"], m["grams_per_unit"], m["valid_from"], m["valid_to"]) for m in metro] == [
        ("1.0", 46.7, "2026-01-01", "2026-06-30"),
        ("2.0", 78.4, "2026-07-01", None),
    ]
    for item in data["items"]:
        assert set(item) >= {
            "scenario",
            "version",
            "unit",
            "grams_per_unit",
            "valid_from",
            "source",
        }
    assert data["points_rates"][0]["points_per_kg"] == 100


def test_an_admin_adds_a_version_for_a_future_day_only(
    client: TestClient, setup: dict[str, Any]
) -> None:
    factories.login(client, setup["admin"].email)
    csrf = client.get("/api/v1/me").json()["csrf_token"]
    payload = {
        "scenario": "recycling",
        "variant": "paper",
        "version": "1.0",
        "grams_per_unit": "850",
        "baseline": "Paper from virgin pulp",
        "source": "A published methodology",
        "valid_from": local_date(utcnow()).isoformat(),
        "daily_cap": "20",
    }
    retro = client.post(
        "/api/v1/points/methodologies", json=payload, headers={"X-CSRF-Token": csrf}
    )
    assert retro.status_code == 422
    payload["valid_from"] = (local_date(utcnow()) + timedelta(days=3)).isoformat()
    added = client.post(
        "/api/v1/points/methodologies", json=payload, headers={"X-CSRF-Token": csrf}
    )
    assert added.status_code == 201, added.text
    assert any(item["variant"] == "paper" for item in added.json()["items"])
    again = client.post(
        "/api/v1/points/methodologies", json=payload, headers={"X-CSRF-Token": csrf}
    )
    assert again.status_code == 409
