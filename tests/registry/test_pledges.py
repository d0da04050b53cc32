"""Pledges have terms, are accepted by the lender and are enforced only after maturity or a
confirmed default (issue 16); every step audited; through HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col, select

from registry.models import Batch, Pledge
from registry.service import blocks, contracts
from tanhui.models import AuditRecord, OrgKind, Role
from tests.registry import helpers
from tests.registry.conftest import People, Person, person

API = "/api/v1/registry"


def _json(answer: Any, status: int = 200) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    return answer.json()  # type: ignore[no-any-return]


def terms(**changes: Any) -> dict[str, Any]:
    return {
        "loan_amount_fen": 37_190_000,
        "interest_rate_bp": 385,
        "matures_on": (contracts.today() + timedelta(days=365)).isoformat(),
        **changes,
    }


def audit_actions(session: Session, pledge_id: str) -> list[str]:
    session.expire_all()
    actions = list(
        session.exec(
            select(AuditRecord.action)
            .where(col(AuditRecord.subject_type) == "pledge")
            .where(col(AuditRecord.subject_id) == pledge_id)
            .order_by(col(AuditRecord.seq))
        ).all()
    )
    session.rollback()  # SQLite: free the write lock for the app
    return actions


def holdings(session: Session, batch_id: uuid.UUID) -> dict[tuple[str, str], int]:
    """Tonnes of the batch by holder and state, from its serial blocks."""
    session.expire_all()
    found: dict[tuple[str, str], int] = {}
    for block in blocks.batch_blocks(session, batch_id):
        key = (block.holder, str(block.state))
        found[key] = found.get(key, 0) + block.quantity_t
    session.rollback()
    return found


def pledge_credits(
    client: TestClient, pledgor: Person, lender: Person, batch_id: uuid.UUID, **changes: Any
) -> Any:
    return client.post(
        f"{API}/pledges",
        headers=pledgor.headers,
        json={
            "lender_id": str(lender.actor.organisation_id),
            "batch_id": str(batch_id),
            "quantity_t": 100,
            **terms(**changes),
        },
    )


def setup(session: Session, people: People) -> tuple[Batch, Person, Person]:
    batch = helpers.issued_batch(session, people.roles)
    bank = person(session, OrgKind.enterprise)
    platform = person(session, OrgKind.platform)
    session.commit()
    return batch, bank, platform


def test_a_pledge_states_its_terms(client: TestClient, session: Session, people: People) -> None:
    batch, bank, _platform = setup(session, people)
    batch_id = batch.id
    missing = client.post(
        f"{API}/pledges",
        headers=people.coop.headers,
        json={
            "lender_id": str(bank.actor.organisation_id),
            "batch_id": str(batch_id),
            "quantity_t": 1,
        },
    )
    assert missing.status_code == 422
    fields = {error["field"] for error in missing.json()["errors"]}
    assert {"loan_amount_fen", "interest_rate_bp", "matures_on"} <= fields
    for changes in (
        {"matures_on": contracts.today().isoformat()},  # already due
        {"matures_on": (contracts.today() - timedelta(days=1)).isoformat()},
        {"interest_rate_bp": 10_001},
        {"loan_amount_fen": 0},
    ):
        refused = pledge_credits(client, people.coop, bank, batch_id, **changes)
        assert refused.status_code == 422, changes
        assert refused.headers["content-type"].startswith("application/problem+json")
    assert holdings(session, batch_id).get((people.coop.actor.owner, "pledged")) is None


def test_enforcing_is_refused_before_maturity_or_a_confirmed_default(
    client: TestClient, session: Session, people: People
) -> None:
    batch, bank, platform = setup(session, people)
    batch_id = batch.id
    coop_owner, bank_owner = people.coop.actor.owner, bank.actor.owner
    pledge = _json(pledge_credits(client, people.coop, bank, batch_id), 201)
    assert (pledge["status"], pledge["interest_rate_bp"]) == ("proposed", 385)
    url = f"{API}/pledges/{pledge['id']}"
    before = holdings(session, batch_id)
    assert before[(coop_owner, "pledged")] == 100

    # the finding: the lender enforces the moment the pledge exists
    at_once = client.post(f"{url}/enforce", headers=bank.headers)
    assert at_once.status_code == 409
    assert client.post(f"{url}/accept", headers=people.coop.headers).status_code == 409
    assert _json(client.post(f"{url}/accept", headers=bank.headers))["status"] == "active"

    early = client.post(f"{url}/enforce", headers={**bank.headers, "Accept-Language": "zh-CN"})
    assert early.status_code == 409
    assert early.headers["content-type"].startswith("application/problem+json")
    assert early.json()["type"].endswith("registry/pledge-not-enforceable")
    assert "到期" in early.json()["detail"]
    assert holdings(session, batch_id) == before  # nothing written
    assert audit_actions(session, pledge["id"]) == ["pledge.created", "pledge.accepted"]

    # a declared default alone enforces nothing
    assert (
        client.post(f"{url}/default", headers=bank.headers, json={"reason": ""}).status_code == 422
    )
    assert (
        client.post(
            f"{url}/default", headers=people.coop.headers, json={"reason": "missed"}
        ).status_code
        == 409
    )
    declared = _json(
        client.post(f"{url}/default", headers=bank.headers, json={"reason": "第二期利息逾期 90 天"})
    )
    assert declared["status"] == "default_declared"
    assert client.post(f"{url}/enforce", headers=bank.headers).status_code == 409
    assert holdings(session, batch_id) == before

    # the lender cannot confirm its own claim; another cooperative does not see the pledge;
    # a viewer of the pledgor may not confirm
    assert client.post(f"{url}/default/confirm", headers=bank.headers).status_code == 409
    assert (
        client.post(f"{url}/default/confirm", headers=people.other_coop.headers).status_code == 404
    )
    assert (
        client.post(f"{url}/default/confirm", headers=people.coop_viewer.headers).status_code == 403
    )
    confirmed = _json(client.post(f"{url}/default/confirm", headers=people.coop.headers))
    assert confirmed["status"] == "defaulted"
    assert confirmed["default_confirmed_by"] == people.coop.actor.ref

    enforced = _json(client.post(f"{url}/enforce", headers=bank.headers))
    assert enforced["status"] == "enforced"
    after = holdings(session, batch_id)
    assert after[(bank_owner, "held")] == 100
    assert (coop_owner, "pledged") not in after
    assert audit_actions(session, pledge["id"]) == [
        "pledge.created",
        "pledge.accepted",
        "pledge.default_declared",
        "pledge.default_confirmed",
        "pledge.enforced",
    ]
    assert platform.actor.org_kind == OrgKind.platform


def test_after_maturity_the_lender_may_enforce(
    client: TestClient, session: Session, people: People
) -> None:
    batch, bank, _platform = setup(session, people)
    batch_id = batch.id
    pledge = _json(pledge_credits(client, people.coop, bank, batch_id), 201)
    url = f"{API}/pledges/{pledge['id']}"
    _json(client.post(f"{url}/accept", headers=bank.headers))
    assert client.post(f"{url}/enforce", headers=bank.headers).status_code == 409
    # time passes: the loan fell due yesterday and was not repaid
    session.exec(
        update(Pledge)
        .where(col(Pledge.id) == uuid.UUID(pledge["id"]))
        .values(matures_on=contracts.today() - timedelta(days=1))
    )
    session.commit()
    assert _json(client.post(f"{url}/enforce", headers=bank.headers))["status"] == "enforced"
    assert holdings(session, batch_id)[(bank.actor.owner, "held")] == 100


def test_the_platform_confirms_and_the_pledgor_withdraws_an_offer(
    client: TestClient, session: Session, people: People
) -> None:
    batch, bank, platform = setup(session, people)
    batch_id = batch.id
    viewer = person(session, OrgKind.platform, Role.viewer)
    session.commit()
    offered = _json(pledge_credits(client, people.coop, bank, batch_id), 201)
    # not yet accepted: the pledgor takes its offer back
    withdrawn = _json(
        client.post(f"{API}/pledges/{offered['id']}/release", headers=people.coop.headers)
    )
    assert withdrawn["status"] == "released"
    assert (people.coop.actor.owner, "pledged") not in holdings(session, batch_id)

    pledge = _json(pledge_credits(client, people.coop, bank, batch_id), 201)
    url = f"{API}/pledges/{pledge['id']}"
    _json(client.post(f"{url}/accept", headers=bank.headers))
    # accepted: only the lender releases it
    assert client.post(f"{url}/release", headers=people.coop.headers).status_code == 409
    _json(client.post(f"{url}/default", headers=bank.headers, json={"reason": "逾期"}))
    assert client.post(f"{url}/default/confirm", headers=viewer.headers).status_code == 403
    assert _json(client.post(f"{url}/default/confirm", headers=platform.headers))["status"] == (
        "defaulted"
    )
    # the parties settle: the lender releases instead of enforcing
    assert _json(client.post(f"{url}/release", headers=bank.headers))["status"] == "released"
    assert audit_actions(session, pledge["id"]) == [
        "pledge.created",
        "pledge.accepted",
        "pledge.default_declared",
        "pledge.default_confirmed",
        "pledge.released",
    ]
    assert audit_actions(session, offered["id"]) == ["pledge.created", "pledge.released"]
