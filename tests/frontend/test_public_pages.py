"""Public pages: home totals, explorer and its map, project pages, verification, methodologies."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session, col, select

from registry.models import (
    ContractParcel,
    Project,
    ProjectParcel,
    ProjectStatus,
    ProjectType,
    RetirementPurpose,
)
from registry.service import contracts, issuance, public, retirements
from registry.service.households import household_owner
from tests.frontend.conftest import HTML, Faces
from tests.registry import helpers
from wallet import service as wallet


def _issued_and_retired(session: Session, faces: Faces) -> tuple[Project, str]:
    project = helpers.project(session, faces.roles, status=ProjectStatus.issued, issuable=900)
    batch = issuance.batches_of_project(session, project.id)[0]
    retirement = retirements.retire(
        session,
        actor=faces.coop.actor,
        batch_id=batch.id,
        quantity_t=120,
        beneficiary="湖州绿能制造有限公司",
        purpose=RetirementPurpose.annual_neutrality,
    )
    session.commit()
    return project, retirement.certificate_id


def test_home_shows_live_totals(client: TestClient, session: Session, faces: Faces) -> None:
    _issued_and_retired(session, faces)
    household = helpers.household(session, faces.coop.actor)
    clearing = wallet.system_account(session, "clearing", wallet.ASSET_CNY)
    paid = wallet.account_for(session, asset=wallet.ASSET_CNY, owner=household_owner(household.id))
    wallet.post_entry(
        session, code="adjustment", transfers=[wallet.Transfer(clearing.id, paid.id, 338_600)]
    )
    issued_g = wallet.system_account(session, "issuance", wallet.ASSET_REDUCTION_G)
    resident = wallet.account_for(
        session, asset=wallet.ASSET_REDUCTION_G, owner=f"resident:{uuid.uuid4()}"
    )
    wallet.post_entry(
        session,
        code="adjustment",
        transfers=[wallet.Transfer(issued_g.id, resident.id, 26_900)],
    )
    session.commit()
    page = client.get("/")
    assert page.status_code == 200
    totals = re.sub(r"\s+", " ", page.text.split('id="totals-heading"')[1].split("</dl>")[0])
    assert "900" in totals and "120" in totals  # tonnes issued, retired
    assert "¥3,386.00" in totals  # paid to households
    assert "26.9" in totals  # residents' reductions in kg
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="map"' in page.text
    assert "安吉县" in page.text or "安吉" in page.text  # the districts are labelled


def test_explorer_filters_and_links_each_project(
    client: TestClient, session: Session, faces: Faces
) -> None:
    bamboo = helpers.project(session, faces.roles, status=ProjectStatus.collected)
    wetland = helpers.project(
        session, faces.roles, status=ProjectStatus.issued, type=ProjectType.wetland
    )
    draft = helpers.project(session, faces.roles)
    session.commit()
    page = client.get("/explorer")
    assert page.status_code == 200
    for project in (bamboo, wetland):
        assert f'href="/projects/{project.code}"' in page.text
    assert draft.code not in page.text, "drafts are not public"
    only_wetland = client.get("/explorer", params={"type": "wetland"})
    assert wetland.code in only_wetland.text and bamboo.code not in only_wetland.text
    issued = client.get("/explorer", params={"status": "issued", "district": "330523"})
    assert wetland.code in issued.text and bamboo.code not in issued.text
    nowhere = client.get("/explorer", params={"district": "330502"})
    assert "没有符合筛选条件的项目" in nowhere.text
    assert client.get(f"/projects/{draft.code}", headers=HTML).status_code == 404


def test_project_page_shows_mrv_certification_serials_and_retirements(
    client: TestClient, session: Session, faces: Faces
) -> None:
    project, certificate_id = _issued_and_retired(session, faces)
    page = client.get(f"/projects/{project.code}", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    text_ = page.text
    assert "Monitoring period 1" in text_ and "signature verifies" in text_
    assert f"THC-BAM-{project.code}-2024-001-000001-000120" in text_  # the retired block
    assert "Retired" in text_ and "Held" in text_ and "Buffer pool" in text_
    assert f'href="/verify/{certificate_id}"' in text_
    assert "湖州绿能制造有限公司" in text_
    assert 'class="map"' in text_


def test_project_page_says_when_a_batch_has_more_blocks_than_it_shows(
    client: TestClient, session: Session, faces: Faces, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, _ = _issued_and_retired(session, faces)
    page = client.get(f"/projects/{project.code}", headers={"Accept-Language": "en"})
    assert "Only the first" not in page.text
    monkeypatch.setattr(public, "MAX_SERIAL_PARTS", 1)  # the batch has a retired and a held block
    page = client.get(f"/projects/{project.code}", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert "Only the first 1 serial blocks of this batch are shown" in page.text
    assert f"/api/v1/registry/serials/THC-BAM-{project.code}-2024-001-000001-001000" in page.text


def test_project_page_shows_the_households_share_of_proceeds(
    client: TestClient, session: Session, faces: Faces
) -> None:
    """Issue 6: the households' share of proceeds under the project's contracts, as the market
    listing shows it; a project whose contract ended shows none."""
    project, _ = _issued_and_retired(session, faces)  # its parcel's contract gives them 80 %
    uncontracted = helpers.project(session, faces.roles, status=ProjectStatus.collected)
    (ended,) = session.exec(
        select(ContractParcel.contract_id)
        .join(ProjectParcel, col(ProjectParcel.parcel_id) == col(ContractParcel.parcel_id))
        .where(col(ProjectParcel.project_id) == uncontracted.id)
    ).all()
    contracts.terminate_contract(
        session, actor=faces.coop.actor, contract_id=ended, reason="测试：合同终止"
    )
    session.commit()
    page = client.get(f"/projects/{project.code}", headers={"Accept-Language": "en"})
    facts = re.sub(r"\s+", " ", page.text.split('<dl class="facts">')[1].split("</dl>")[0])
    assert "<dt>Households&#39; share of net proceeds</dt><dd>80 %</dd>" in facts
    chinese = client.get(f"/projects/{project.code}")
    assert "农户" in chinese.text.split('<dl class="facts">')[1].split("</dl>")[0]
    other = client.get(f"/projects/{uncontracted.code}", headers={"Accept-Language": "en"})
    assert other.status_code == 200 and "share of net proceeds" not in other.text


def test_verify_page_checks_the_signature_server_side(
    client: TestClient, session: Session, faces: Faces
) -> None:
    _, certificate_id = _issued_and_retired(session, faces)
    page = client.get(f"/verify/{certificate_id}")
    assert page.status_code == 200
    assert "有效：签名验证通过" in page.text
    assert "由本证书注销" in page.text  # each serial block is still retired by it
    assert f"tanhui certificate verify {certificate_id}.pdf --keys keys.json" in page.text
    lower = client.get(f"/verify?certificate={certificate_id.lower()}", follow_redirects=False)
    assert lower.status_code == 303 and lower.headers["location"] == f"/verify/{certificate_id}"

    row = session.execute(
        text("SELECT payload_json FROM registry_certificate WHERE id = :id"),
        {"id": certificate_id},
    ).one()
    forged = json.loads(row[0])
    forged["quantity_t"] = 12_000
    session.execute(
        text("UPDATE registry_certificate SET payload_json = :p WHERE id = :id"),
        {"p": json.dumps(forged, ensure_ascii=False), "id": certificate_id},
    )
    session.commit()
    tampered = client.get(f"/verify/{certificate_id}", headers={"Accept-Language": "en"})
    assert "Not valid: the signature does not verify" in tampered.text

    unknown = client.get("/verify/THC-RC-2026-ZZZZZZZZZZ", headers={"Accept-Language": "en"})
    assert unknown.status_code == 404
    assert "No certificate with this number is registered here." in unknown.text
    assert 'aria-invalid="true"' in unknown.text


def test_methodology_tables_come_from_mrv(client: TestClient) -> None:
    page = client.get("/methodologies")
    assert page.status_code == 200
    for name in ("bamboo-rate", "bamboo-stock-change", "wetland"):
        assert f'id="{name}"' in page.text
    assert "rate_tco2e_per_ha_year" in page.text and "5.85" in page.text
    assert "Anji bamboo collection centre" in page.text  # the parameter's source
    assert "公交出行" in page.text or "公交" in page.text  # residents' behaviours, in Chinese
    assert "26.9" in page.text  # the Shenzhen electric-bus factor


def test_public_pages_answer_in_english_by_switch(client: TestClient) -> None:
    switched = client.get("/lang/en?next=/explorer", follow_redirects=True)
    assert switched.status_code == 200
    assert '<html lang="en">' in switched.text and "Project explorer" in switched.text
