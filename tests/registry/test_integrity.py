"""Integrity of the tonne (issue 15, holes 5, 6 and 7), through the HTTP API: each hole the issue
reproduced is refused with a problem+json naming the rule, and nothing is written."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session

from tests.registry.conftest import People

API = "/api/v1/registry"
WATCHED = (
    "audit_record",
    "registry_project",
    "registry_retirement",
    "registry_certificate",
    "registry_reversal",
    "registry_serial_block",
    "registry_batch",
)


def counts(session: Session) -> dict[str, int]:
    """Rows of the tables a refused request must not touch."""
    session.commit()
    found = {
        table: int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
        for table in WATCHED
    }
    session.commit()  # end the read: SQLite would keep the app's writers waiting
    return found


def refused(answer: Any, status: int, rule: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = answer.json()
    assert problem["type"] == f"/problems/{rule}", problem
    assert problem["detail"] and problem["messages"]["zh-CN"] != problem["messages"]["en"]
    return problem


def project_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "code": "RG0001",
        "name": "注册检查",
        "type": "bamboo",
        "methodology_name": "bamboo-rate",
        "methodology_version": "1.0",
        "crediting_start": "2022-01-01",
        "crediting_end": "2051-12-31",
    }
    body.update(overrides)
    return body


# --- hole 7: registration checks the methodology ---------------------------------------------


def test_registration_refuses_what_the_methodology_does_not_allow(
    client: TestClient, session: Session, people: People
) -> None:
    coop = people.coop.headers
    before = counts(session)
    cases = [
        (project_body(methodology_name="magic-sink", methodology_version="9.9"), "unknown"),
        (project_body(methodology_version="9.9"), "unknown"),
        (
            project_body(
                methodology_name="wetland",
                crediting_start="2000-01-01",
                crediting_end="2099-12-31",
            ),
            "land",
        ),
        (project_body(type="residents"), "land"),
        (project_body(crediting_start="2000-01-01", crediting_end="2099-12-31"), "period"),
        (project_body(crediting_end="2031-12-31"), "period"),  # 10 years: below 20
        (project_body(crediting_start="2001-01-01", crediting_end="2030-12-31"), "period"),
    ]
    rules = {
        "unknown": "registry/unknown-methodology",
        "land": "registry/methodology-land-type",
        "period": "registry/crediting-period-limits",
    }
    for body, rule in cases:
        refused(client.post(f"{API}/projects", headers=coop, json=body), 422, rules[rule])
    assert counts(session) == before
    made = client.post(f"{API}/projects", headers=coop, json=project_body())
    assert made.status_code == 201, made.text
    wetland = client.post(
        f"{API}/projects",
        headers=coop,
        json=project_body(
            code="RG0002",
            type="wetland",
            methodology_name="wetland",
            crediting_start="2021-01-01",
            crediting_end="2040-12-31",
        ),
    )
    assert wetland.status_code == 201, wetland.text


def test_a_parcel_of_a_land_type_the_methodology_does_not_cover_cannot_join(
    client: TestClient, session: Session, people: People
) -> None:
    from tests.registry import helpers

    coop = people.coop.headers
    project = client.post(f"{API}/projects", headers=coop, json=project_body()).json()
    marsh = helpers.parcel(
        session, people.coop.actor, x=-31_000, y=-12_000, land_type=helpers.LandType.wetland
    )
    session.commit()
    before = counts(session)
    refused(
        client.post(
            f"{API}/projects/{project['id']}/parcels",
            headers=coop,
            json={"parcel_ids": [str(marsh.id)]},
        ),
        422,
        "registry/methodology-land-type",
    )
    assert counts(session) == before


# --- hole 5: judicial restoration and ecological compensation only through a case ---------------


def test_no_one_declares_a_judicial_restoration_or_compensation_retirement(
    client: TestClient, session: Session, people: People
) -> None:
    from registry.service import transfers
    from tests.registry import helpers

    batch = helpers.issued_batch(session, people.roles)
    assert people.enterprise.actor.organisation_id is not None
    transfers.transfer(
        session,
        actor=people.roles.coop,
        batch_id=batch.id,
        to_organisation_id=people.enterprise.actor.organisation_id,
        quantity_t=30,
    )
    before = counts(session)
    for purpose in ("judicial_restoration", "ecological_compensation"):
        problem = refused(
            client.post(
                f"{API}/retirements",
                headers=people.enterprise.headers,
                json={
                    "batch_id": str(batch.id),
                    "quantity_t": 10,
                    "beneficiary": "南太湖新区",
                    "purpose": purpose,
                    "case_number": "(2099)浙0000民初9999号",
                },
            ),
            422,
            "registry/purpose-requires-case",
        )
        assert problem["errors"] == [
            {"field": "purpose", "message": "only through a court's or fund's case"}
        ]
    assert counts(session) == before
    ordinary = client.post(
        f"{API}/retirements",
        headers=people.enterprise.headers,
        json={
            "batch_id": str(batch.id),
            "quantity_t": 10,
            "beneficiary": "某企业",
            "purpose": "annual_neutrality",
        },
    )
    assert ordinary.status_code == 201, ordinary.text


# --- hole 6: a reversal is proposed, confirmed by the authority, capped, and blocks issuance ----


def _buffer(session: Session, batch_id: object) -> int:
    from registry.models import Batch
    from wallet import service as wallet

    batch = session.get(Batch, batch_id)
    assert batch is not None
    account = wallet.find_account(session, asset=batch.asset_code, owner="system:buffer_pool")
    found = wallet.get_balance(session, account.id).balance if account else 0
    session.commit()  # end the read: SQLite would keep the app's writers waiting
    return found


def test_a_reversal_is_capped_confirmed_by_the_authority_and_blocks_issuance(
    client: TestClient, session: Session, people: People
) -> None:
    from registry.service import issuance, projects
    from tests.registry import helpers

    roles = people.roles
    other = helpers.issued_batch(session, roles, issuable=1_000, buffer=300)
    batch = helpers.issued_batch(session, roles, issuable=375, buffer=75)
    project_id = batch.project_id
    parcel_id = projects.project_parcels(session, project_id)[0].id
    period = helpers.measured_period(
        session,
        roles.coop,
        project_id,
        helpers.report(100, 20, start="2025-01-01", end="2025-12-31"),
    )
    projects.certify(session, actor=roles.verifier, period_id=period.id)
    projects.file_period(session, actor=roles.authority, period_id=period.id)
    session.commit()
    url = f"{API}/projects/{project_id}/reversals"

    def loss(tonnes: int) -> dict[str, Any]:
        return {
            "parcel_ids": [str(parcel_id)],
            "cause": "fire",
            "occurred_on": "2025-03-01",
            "estimated_loss_t": tonnes,
        }

    before = counts(session)
    # the issue's 5,000 t on a project credited 450 t (375 issued, 75 withheld)
    problem = refused(
        client.post(url, headers=people.coop.headers, json=loss(5_000)),
        422,
        "registry/loss-exceeds-credited-stock",
    )
    assert problem["cap"] == 450
    # the authority decides; it does not propose
    refused(
        client.post(url, headers=people.authority.headers, json=loss(100)),
        403,
        "registry/role-refused",
    )
    assert counts(session) == before
    assert _buffer(session, other.id) == 300 and _buffer(session, batch.id) == 75

    proposed = client.post(url, headers=people.coop.headers, json=loss(200))
    assert proposed.status_code == 201, proposed.text
    reversal = proposed.json()
    assert reversal["status"] == "proposed" and _buffer(session, batch.id) == 75
    confirm = f"{API}/reversals/{reversal['id']}/confirm"
    before = counts(session)
    refused(client.post(confirm, headers=people.coop.headers), 403, "registry/role-refused")
    refused(client.post(confirm, headers=people.verifier.headers), 403, "registry/role-refused")
    assert counts(session) == before
    confirmed = client.post(confirm, headers=people.authority.headers)
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert (body["cancelled_own_buffer_t"], body["cancelled_pool_t"], body["shortfall_t"]) == (
        75,
        0,
        125,
    )
    assert body["project_reversal_debt_t"] == 125
    # the other project's buffer is untouched
    assert _buffer(session, other.id) == 300 and _buffer(session, batch.id) == 0
    refused(
        client.post(confirm, headers=people.authority.headers), 409, "registry/reversal-conflict"
    )

    # the project owes 125 t: issuance is refused until it makes them good
    issue = f"{API}/periods/{period.id}/issue"
    before = counts(session)
    refused(
        client.post(issue, headers=people.authority.headers, json={}),
        409,
        "registry/issuance-blocked-by-reversal",
    )
    assert counts(session) == before
    made_good = client.post(
        f"{url}/make-good",
        headers=people.coop.headers,
        json={"batch_id": str(batch.id), "quantity_t": 125},
    )
    assert made_good.status_code == 200, made_good.text
    assert made_good.json()["reversal_debt_t"] == 0
    issued = client.post(issue, headers=people.authority.headers, json={})
    assert issued.status_code in (200, 201), issued.text
    session.commit()
    assert len(issuance.batches_of_project(session, project_id)) == 2
