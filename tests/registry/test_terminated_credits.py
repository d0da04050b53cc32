"""A terminated project's unsold credits are suspended until the authority decides (issue 15,
hole 2): before, they stayed sellable, retirable and pledgeable with nothing on their
certificates."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from registry.models import BlockState, ProjectStatus, RetirementPurpose, SerialBlock
from registry.service import issuance, retirements
from tanhui.models import AuditRecord
from tests.registry import helpers
from tests.registry.conftest import People

API = "/api/v1/registry"


def _problem(answer: Any, status: int, kind: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = answer.json()
    assert body["type"].endswith(kind), body
    return body


def _plain(row: Any) -> Any:
    """The row's values, readable after the test's session commits (SQLite: no reload)."""
    return SimpleNamespace(
        **{key: getattr(row, key) for key in ("id", "code", "serial_prefix") if hasattr(row, key)}
    )


def _blocks(session: Session, batch_id: Any) -> list[tuple[int, int, str, str]]:
    session.expire_all()
    rows = session.exec(
        select(SerialBlock)
        .where(col(SerialBlock.batch_id) == batch_id)
        .order_by(col(SerialBlock.first))
    ).all()
    found = [(b.first, b.last, b.holder, str(b.state)) for b in rows]
    session.commit()
    return found


def test_a_terminated_projects_unsold_credits_cannot_move_until_the_authority_decides(
    client: TestClient, session: Session, people: People
) -> None:
    project = helpers.project(session, people.roles, status=ProjectStatus.issued)
    batch = issuance.batches_of_project(session, project.id)[-1]
    sold = retirements.retire(
        session,
        actor=people.coop.actor,
        batch_id=batch.id,
        quantity_t=10,
        beneficiary="某企业",
        purpose=RetirementPurpose.product_footprint,
    )
    project, batch, certificate_id = _plain(project), _plain(batch), sold.certificate_id
    session.commit()
    coop, authority = people.coop.headers, people.authority.headers
    assert (
        client.post(
            f"{API}/projects/{project.id}/terminate", headers=authority, json={"reason": "造假"}
        ).status_code
        == 200
    )
    before = _blocks(session, batch.id)
    attempts = {
        "transfers": {
            "batch_id": str(batch.id),
            "to_organisation_id": str(people.enterprise.actor.organisation_id),
            "quantity_t": 5,
        },
        "retirements": {
            "batch_id": str(batch.id),
            "quantity_t": 5,
            "beneficiary": "某企业",
            "purpose": "product_footprint",
        },
        "pledges": {
            "batch_id": str(batch.id),
            "quantity_t": 5,
            "lender_id": str(people.enterprise.actor.organisation_id),
            "loan_amount_fen": 10_000_000,
            "interest_rate_bp": 385,
            "matures_on": "2030-12-31",
        },
    }
    for path, body in attempts.items():
        problem = _problem(
            client.post(f"{API}/{path}", headers=coop, json=body), 409, "credits-suspended"
        )
        assert project.code in problem["detail"] and batch.serial_prefix in problem["detail"]
    listed = client.post(
        "/api/v1/market/listings",
        headers=coop,
        json={"batch_id": str(batch.id), "quantity_t": 5, "price_fen_per_t": 5_000},
    )
    _problem(listed, 409, "credits-suspended")
    assert _blocks(session, batch.id) == before  # nothing written
    # lookups and certificates already issued show the termination
    lookup = client.get(f"{API}/serials/{batch.serial_prefix}").json()
    assert lookup["project_standing"]["status"] == "terminated"
    assert lookup["project_standing"]["credits"] == "suspended"
    certificate = client.get(f"{API}/certificates/{certificate_id}", headers=coop).json()
    assert certificate["project_standing"]["reason"] == "造假"
    # the authority decides once, with a reason: reinstate, and the credits move again
    url = f"{API}/projects/{project.id}/credits-decision"
    assert (
        client.post(url, headers=coop, json={"decision": "reinstated", "reason": "x"}).status_code
        == 403
    )
    empty = client.post(url, headers=authority, json={"decision": "reinstated", "reason": ""})
    assert empty.status_code == 422
    decided = client.post(
        url, headers=authority, json={"decision": "reinstated", "reason": "复核无误"}
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["credits_decision"] == "reinstated"
    _problem(
        client.post(url, headers=authority, json={"decision": "cancelled", "reason": "改判"}),
        409,
        "invalid-transition",
    )
    moved = client.post(f"{API}/transfers", headers=coop, json=attempts["transfers"])
    assert moved.status_code == 201, moved.text
    lookup = client.get(f"{API}/serials/{batch.serial_prefix}").json()
    assert lookup["project_standing"]["credits"] == "reinstated"
    session.expire_all()
    assert session.exec(
        select(AuditRecord).where(col(AuditRecord.action) == "project.credits_reinstated")
    ).first()


def test_cancelling_a_terminated_projects_credits_cancels_the_unsold_ones(
    client: TestClient, session: Session, people: People
) -> None:
    project = helpers.project(session, people.roles, status=ProjectStatus.issued)
    batch = _plain(issuance.batches_of_project(session, project.id)[-1])
    project = _plain(project)
    session.commit()
    authority = people.authority.headers
    client.post(
        f"{API}/projects/{project.id}/terminate", headers=authority, json={"reason": "撤销"}
    )
    decided = client.post(
        f"{API}/projects/{project.id}/credits-decision",
        headers=authority,
        json={"decision": "cancelled", "reason": "项目无效"},
    )
    assert decided.status_code == 200, decided.text
    blocks = _blocks(session, batch.id)
    coop_owner = f"org:{people.coop.actor.organisation_id}"
    assert [(h, s) for _, _, h, s in blocks if h == coop_owner] == [(coop_owner, "cancelled")]
    assert [s for _, _, h, s in blocks if h != coop_owner] == [str(BlockState.held)]  # buffer
    holdings = client.get(f"{API}/holdings", headers=people.coop.headers).json()
    held = [row for row in holdings if row["batch"] == batch.serial_prefix]
    assert all(row["state"] == "cancelled" for row in held)
