"""The wallet's HTTP API: the shapes integrators script against, permissions, problems."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from tanhui.db import utcnow
from tanhui.models import OrgKind, Role
from tests import factories

API = "/api/v1/wallet"


def bearer(session: Session, **kwargs: object) -> dict[str, str]:
    account = factories.user(session, **kwargs)  # type: ignore[arg-type]
    token = factories.token_for(session, account)
    return {"Authorization": f"Bearer {token}"}


def admin(session: Session) -> dict[str, str]:
    return bearer(session, admin=True)


def open_account(client: TestClient, headers: dict[str, str], **body: object) -> dict[str, object]:
    body.setdefault("asset", "CNY")
    body.setdefault("owner", f"org:{uuid.uuid4()}")
    response = client.post(f"{API}/accounts", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def fund(client: TestClient, headers: dict[str, str], account_id: object, amount: int) -> None:
    source = open_account(client, headers, owner=f"system:src_{uuid.uuid4().hex[:8]}", floor=None)
    response = client.post(
        f"{API}/entries",
        json={
            "code": "issuance",
            "transfers": [
                {
                    "debit_account_id": source["id"],
                    "credit_account_id": account_id,
                    "amount": amount,
                }
            ],
        },
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 201, response.text


def test_open_and_read_an_account(client: TestClient, session: Session) -> None:
    headers = admin(session)
    organisation = factories.organisation(session)
    session.commit()
    created = open_account(client, headers, owner=str(organisation.id), floor=0)
    assert created["asset"] == "CNY"
    assert created["balance"] == 0 and created["available"] == 0
    assert created["owner"] == f"org:{organisation.id}"
    read = client.get(f"{API}/accounts/{created['id']}", headers=headers)
    assert read.status_code == 200
    assert {"id", "asset", "balance", "available"} <= set(read.json())


def test_unbounded_system_account_may_go_negative(client: TestClient, session: Session) -> None:
    headers = admin(session)
    session.commit()
    system = open_account(client, headers, owner="issuance_test", floor=None)
    assert system["floor"] is None and system["owner"] == "system:issuance_test"
    user = open_account(client, headers)
    fund(client, headers, user["id"], 10)
    fund(client, headers, user["id"], 5)
    assert client.get(f"{API}/accounts/{user['id']}", headers=headers).json()["balance"] == 15


def test_entry_idempotency_and_problems(client: TestClient, session: Session) -> None:
    headers = admin(session)
    session.commit()
    a = open_account(client, headers)
    b = open_account(client, headers)
    fund(client, headers, a["id"], 100)
    body = {
        "code": "transfer",
        "transfers": [{"debit_account_id": a["id"], "credit_account_id": b["id"], "amount": 5}],
        "metadata": {"order": "X1"},
    }
    keyed = {**headers, "Idempotency-Key": "order-X1"}
    first = client.post(f"{API}/entries", json=body, headers=keyed)
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "posted"
    again = client.post(f"{API}/entries", json=body, headers=keyed)
    assert again.status_code in (200, 201)
    assert again.json()["id"] == first.json()["id"]
    other = {**body, "metadata": {"order": "X2"}}
    conflict = client.post(f"{API}/entries", json=other, headers=keyed)
    assert conflict.status_code == 409
    assert conflict.headers["content-type"].startswith("application/problem+json")
    balance = client.get(f"{API}/accounts/{b['id']}", headers=headers).json()
    assert balance["balance"] == 5

    too_much = {
        "code": "transfer",
        "transfers": [{"debit_account_id": a["id"], "credit_account_id": b["id"], "amount": 96}],
    }
    refused = client.post(f"{API}/entries", json=too_much, headers=headers)
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("insufficient-funds")

    unknown = {
        "code": "transfer",
        "transfers": [
            {"debit_account_id": a["id"], "credit_account_id": str(uuid.uuid4()), "amount": 1}
        ],
    }
    assert client.post(f"{API}/entries", json=unknown, headers=headers).status_code == 404

    points = open_account(client, headers, asset="POINTS")
    mixed = {
        "code": "transfer",
        "transfers": [
            {"debit_account_id": a["id"], "credit_account_id": points["id"], "amount": 1}
        ],
    }
    assert client.post(f"{API}/entries", json=mixed, headers=headers).status_code == 422

    for amount in (1.5, "3", 0, -1):
        bad = {
            "code": "transfer",
            "transfers": [
                {"debit_account_id": a["id"], "credit_account_id": b["id"], "amount": amount}
            ],
        }
        assert client.post(f"{API}/entries", json=bad, headers=headers).status_code == 422


def test_entries_are_atomic_over_http(client: TestClient, session: Session) -> None:
    headers = admin(session)
    session.commit()
    a, b, c = (open_account(client, headers) for _ in range(3))
    fund(client, headers, a["id"], 10)
    body = {
        "code": "settlement",
        "transfers": [
            {"debit_account_id": a["id"], "credit_account_id": b["id"], "amount": 6},
            {"debit_account_id": a["id"], "credit_account_id": c["id"], "amount": 6},
        ],
    }
    assert client.post(f"{API}/entries", json=body, headers=headers).status_code == 409
    for account in (a, b, c):
        read = client.get(f"{API}/accounts/{account['id']}", headers=headers).json()
        assert read["balance"] == (10 if account is a else 0)


def test_batch_applies_each_entry_on_its_own(client: TestClient, session: Session) -> None:
    headers = admin(session)
    session.commit()
    a, b = open_account(client, headers), open_account(client, headers)
    fund(client, headers, a["id"], 10)

    def item(amount: int, key: str) -> dict[str, object]:
        return {
            "code": "transfer",
            "idempotency_key": key,
            "transfers": [
                {"debit_account_id": a["id"], "credit_account_id": b["id"], "amount": amount}
            ],
        }

    response = client.post(
        f"{API}/entries/batch",
        json={"entries": [item(6, "e1"), item(6, "e2"), item(4, "e3")]},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert [r["status"] for r in result["results"]] == ["posted", "rejected", "posted"]
    assert result["results"][1]["error"]["type"].endswith("insufficient-funds")
    assert (result["posted"], result["rejected"]) == (2, 1)
    replay = client.post(f"{API}/entries/batch", json={"entries": [item(6, "e1")]}, headers=headers)
    assert replay.json()["results"][0]["status"] == "duplicate"
    assert replay.json()["results"][0]["id"] == result["results"][0]["id"]
    over = {"entries": [item(1, f"k{i}") for i in range(1001)]}
    assert client.post(f"{API}/entries/batch", json=over, headers=headers).status_code == 422


def test_postings_by_cursor_and_csv(client: TestClient, session: Session) -> None:
    headers = admin(session)
    session.commit()
    a = open_account(client, headers)
    for amount in (1, 2, 3):
        fund(client, headers, a["id"], amount)
    first = client.get(f"{API}/accounts/{a['id']}/postings?limit=2", headers=headers).json()
    assert [p["amount"] for p in first["items"]] == [1, 2]
    rest = client.get(
        f"{API}/accounts/{a['id']}/postings",
        params={"cursor": first["next_cursor"]},
        headers=headers,
    ).json()
    assert [p["amount"] for p in rest["items"]] == [3] and rest["next_cursor"] is None
    exported = client.get(
        f"{API}/accounts/{a['id']}/postings", headers={**headers, "Accept": "text/csv"}
    )
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [int(row["amount"]) for row in rows] == [1, 2, 3]
    assert {row["side"] for row in rows} == {"C"}


def test_holds_over_http(client: TestClient, session: Session) -> None:
    headers = admin(session)
    session.commit()
    a, b = open_account(client, headers), open_account(client, headers)
    fund(client, headers, a["id"], 100)
    body = {
        "debit_account_id": a["id"],
        "credit_account_id": b["id"],
        "amount": 70,
        "expires_at": (utcnow() + timedelta(minutes=10)).isoformat(),
        "code": "purchase",
    }
    created = client.post(f"{API}/holds", json=body, headers={**headers, "Idempotency-Key": "h"})
    assert created.status_code == 201, created.text
    hold = created.json()
    assert hold["status"] == "pending"
    read = client.get(f"{API}/accounts/{a['id']}", headers=headers).json()
    assert (read["balance"], read["available"]) == (100, 30)
    captured = client.post(
        f"{API}/holds/{hold['id']}/capture", json={"amount": 50}, headers=headers
    )
    assert captured.status_code == 200, captured.text
    assert captured.json()["status"] == "captured"
    assert captured.json()["captured_amount"] == 50
    read = client.get(f"{API}/accounts/{a['id']}", headers=headers).json()
    assert (read["balance"], read["available"]) == (50, 50)
    refused = client.post(f"{API}/holds/{hold['id']}/void", headers=headers)
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("hold-not-pending")

    second = client.post(f"{API}/holds", json={**body, "amount": 20}, headers=headers).json()
    voided = client.post(f"{API}/holds/{second['id']}/void", headers=headers)
    assert voided.status_code == 200 and voided.json()["status"] == "voided"
    assert client.post(f"{API}/holds/{uuid.uuid4()}/void", headers=headers).status_code == 404
    past = {**body, "expires_at": (utcnow() - timedelta(minutes=1)).isoformat()}
    assert client.post(f"{API}/holds", json=past, headers=headers).status_code == 422


def test_hold_idempotency_over_http(client: TestClient, session: Session) -> None:
    headers = admin(session)
    session.commit()
    a, b = open_account(client, headers), open_account(client, headers)
    fund(client, headers, a["id"], 100)
    body = {
        "debit_account_id": a["id"],
        "credit_account_id": b["id"],
        "amount": 40,
        "expires_at": (utcnow() + timedelta(minutes=10)).isoformat(),
        "code": "purchase",
    }
    keyed = {**headers, "Idempotency-Key": "hold-1"}
    first = client.post(f"{API}/holds", json=body, headers=keyed)
    assert first.status_code == 201, first.text
    again = client.post(f"{API}/holds", json=body, headers=keyed)
    assert again.status_code == 200, again.text  # as documented: the hold made earlier
    assert again.json()["id"] == first.json()["id"]
    other = client.post(f"{API}/holds", json={**body, "amount": 41}, headers=keyed)
    assert other.status_code == 409
    assert other.headers["content-type"].startswith("application/problem+json")
    read = client.get(f"{API}/accounts/{a['id']}", headers=headers).json()
    assert (read["balance"], read["available"]) == (100, 60)  # reserved once


def _funded_pair(
    client: TestClient, session: Session, amount: int
) -> tuple[dict[str, str], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """An admin's headers, account ``a`` funded with ``amount``, account ``b``, and the body
    of a ten-minute hold from a to b (without its amount)."""
    headers = admin(session)
    session.commit()
    a, b = open_account(client, headers), open_account(client, headers)
    fund(client, headers, a["id"], amount)
    body = {
        "debit_account_id": a["id"],
        "credit_account_id": b["id"],
        "expires_at": (utcnow() + timedelta(minutes=10)).isoformat(),
        "code": "purchase",
    }
    return headers, a, b, body


def test_capturing_or_voiding_a_lapsed_hold_releases_its_funds(
    client: TestClient, session: Session
) -> None:
    """An expired hold can be neither captured nor voided (409), and meeting it releases the
    funds it still reserved, without waiting for ``tanhui wallet expire-holds``."""
    from wallet import service

    headers, a, _b, body = _funded_pair(client, session, 100)
    ids = [
        client.post(f"{API}/holds", json={**body, "amount": amount}, headers=headers).json()["id"]
        for amount in (30, 50)
    ]
    for hold_id in ids:
        record = service.get_hold(session, uuid.UUID(hold_id))
        record.expires_at = utcnow() - timedelta(seconds=1)  # time passes
        session.add(record)
    session.commit()

    def figures() -> tuple[int, int, int, int]:
        read = client.get(f"{API}/accounts/{a['id']}", headers=headers).json()
        return (
            read["balance"],
            read["available"],
            read["pending_debits"],
            read["lapsed_hold_debits"],
        )

    # lapsed, not yet released: the rows still hold them, but they are available
    assert figures() == (100, 100, 80, 80)
    captured = client.post(f"{API}/holds/{ids[0]}/capture", json={}, headers=headers)
    assert captured.status_code == 409 and captured.json()["type"].endswith("hold-expired")
    assert figures() == (100, 100, 50, 50)
    voided = client.post(f"{API}/holds/{ids[1]}/void", headers=headers)
    assert voided.status_code == 409 and voided.json()["type"].endswith("hold-expired")
    assert figures() == (100, 100, 0, 0)
    states = [client.get(f"{API}/holds/{i}", headers=headers).json()["status"] for i in ids]
    assert states == ["expired", "expired"]
    session.rollback()
    assert service.verify_ledger(session).ok


def test_permissions(client: TestClient, session: Session) -> None:
    headers = admin(session)
    own = factories.user(session, kind=OrgKind.enterprise)
    own_headers = {"Authorization": f"Bearer {factories.token_for(session, own)}"}
    stranger = bearer(session, kind=OrgKind.enterprise)
    service_user = factories.user(session, kind=OrgKind.platform, role=Role.member)
    service_headers = {"Authorization": f"Bearer {factories.token_for(session, service_user)}"}
    session.commit()
    mine = open_account(client, headers, owner=str(own.organisation_id))
    assert client.get(f"{API}/accounts/{mine['id']}", headers=own_headers).status_code == 200
    assert (
        client.get(f"{API}/accounts/{mine['id']}/postings", headers=own_headers).status_code == 200
    )
    hidden = client.get(f"{API}/accounts/{mine['id']}", headers=stranger)
    assert hidden.status_code == 404
    assert client.get(f"{API}/accounts/{mine['id']}/postings", headers=stranger).status_code == 404
    assert client.get(f"{API}/accounts/{mine['id']}").status_code == 401
    refused = client.post(
        f"{API}/accounts",
        json={"asset": "CNY", "owner": f"org:{uuid.uuid4()}"},
        headers=own_headers,
    )
    assert refused.status_code == 403
    body = {
        "code": "transfer",
        "transfers": [
            {"debit_account_id": mine["id"], "credit_account_id": mine["id"], "amount": 1}
        ],
    }
    assert client.post(f"{API}/entries", json=body, headers=own_headers).status_code == 403
    assert open_account(client, service_headers)["asset"] == "CNY"


def test_freeze_blocks_debits_over_http(client: TestClient, session: Session) -> None:
    headers = admin(session)
    session.commit()
    a, b = open_account(client, headers), open_account(client, headers)
    fund(client, headers, a["id"], 10)
    frozen = client.post(f"{API}/accounts/{a['id']}/freeze", json={"frozen": True}, headers=headers)
    assert frozen.status_code == 200 and frozen.json()["frozen"] is True
    body = {
        "code": "transfer",
        "transfers": [{"debit_account_id": a["id"], "credit_account_id": b["id"], "amount": 1}],
    }
    refused = client.post(f"{API}/entries", json=body, headers=headers)
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("account-frozen")
    client.post(f"{API}/accounts/{a['id']}/freeze", json={"frozen": False}, headers=headers)
    assert client.post(f"{API}/entries", json=body, headers=headers).status_code == 201


def test_platform_viewers_read_but_do_not_post(client: TestClient, session: Session) -> None:
    headers = admin(session)
    viewer = bearer(session, kind=OrgKind.platform, role=Role.viewer)
    session.commit()
    account = open_account(client, headers)
    assert client.get(f"{API}/accounts/{account['id']}", headers=viewer).status_code == 200
    refused = client.post(f"{API}/accounts", json={"asset": "CNY", "owner": "x"}, headers=viewer)
    assert refused.status_code == 403


def test_an_account_counts_lapsed_holds_as_available(client: TestClient, session: Session) -> None:
    """What the account page says is available is what a debit can take: a hold that expired
    unswept reserves nothing any more (the debit releases it on the way)."""
    from wallet import service

    headers, a, b, body = _funded_pair(client, session, 100)
    lapsing = client.post(f"{API}/holds", json={**body, "amount": 60}, headers=headers).json()
    client.post(f"{API}/holds", json={**body, "amount": 15}, headers=headers)  # still in force
    record = service.get_hold(session, uuid.UUID(lapsing["id"]))
    record.expires_at = utcnow() - timedelta(seconds=1)
    session.add(record)
    session.commit()
    read = client.get(f"{API}/accounts/{a['id']}", headers=headers).json()
    assert (read["available"], read["pending_debits"], read["lapsed_hold_debits"]) == (85, 75, 60)
    spent = client.post(
        f"{API}/entries",
        json={
            "code": "purchase",
            "transfers": [
                {
                    "debit_account_id": a["id"],
                    "credit_account_id": b["id"],
                    "amount": read["available"],
                }
            ],
        },
        headers=headers,
    )
    assert spent.status_code == 201, spent.text
    read = client.get(f"{API}/accounts/{a['id']}", headers=headers).json()
    assert (read["balance"], read["available"], read["lapsed_hold_debits"]) == (15, 0, 0)
    session.rollback()
    assert service.verify_ledger(session).ok
