"""The registry's demo seed: Anji's published figures (five village cooperatives, 21,392 mu),
parcels inside the real boundary, a certificate that verifies; fast and idempotent."""

from __future__ import annotations

import json
import time
from fractions import Fraction

import shapely
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from market.models import JudicialCase
from registry import certificates, demo, geo
from registry.models import ProjectStatus, Retirement
from registry.service import contracts, households, issuance, projects, public, retirements
from registry.service.actors import Actor
from tanhui import demo as tanhui_demo
from tanhui import identity
from tanhui.audit import platform_signing_key
from tanhui.models import Organisation, OrgKind

DEMO_SECONDS = 30  # six MRV runs over generated rasters (about a second each) included


def test_demo_seed_reproduces_anji(session: Session) -> None:
    for kind, name in (
        (OrgKind.cooperative, "德清县下渚湖湿地生态资源运营（演示）"),
        (OrgKind.verifier, "核证机构"),
        (OrgKind.authority, "主管部门"),
        (OrgKind.enterprise, "买方"),
        (OrgKind.court, "法院"),
    ):
        identity.create_organisation(session, name=name, kind=kind)
    lines: list[str] = []
    started = time.monotonic()
    demo.seed(session, lines.append)  # it makes the five village cooperatives itself
    assert time.monotonic() - started < DEMO_SECONDS
    villages = [projects.find_by_code(session, f"AJ000{n}") for n in range(1, 6)]
    wetland = projects.find_by_code(session, "DQ0001")
    assert wetland is not None and all(villages)
    anji = [project for project in villages if project is not None]
    assert {p.status for p in [*anji, wetland]} == {ProjectStatus.issued}
    assert {p.district_adcode for p in anji} == {"330523"} and wetland.district_adcode == "330521"
    assert len({p.cooperative_id for p in anji}) == 5  # one project per village cooperative
    boundary = geo.district_boundary_wgs84("330523")
    plots = [plot for project in anji for plot in projects.project_parcels(session, project.id)]
    assert len(plots) == 30 and {p.district_adcode for p in plots} == {"330523"}
    assert all(
        boundary.contains(shapely.geometry.shape(json.loads(p.geometry_geojson))) for p in plots
    )
    system = Actor.system("test")
    settlements = []
    for project in anji:
        (contract,) = contracts.list_contracts(
            session, actor=system, cooperative_id=project.cooperative_id
        )
        assert contract.term_years == 30
        settlements += contracts.settlements_of(session, contract.id)
    # The five first settlements, each rounded to the fen, add up to the published total.
    assert sum(s.amount_fen for s in settlements) == 108_624_298
    assert sum(int(s.area_mu) for s in settlements) == 21_392
    dali = next(s for s in settlements if s.area_mu == "5425")
    assert dali.amount_fen == 27_547_065  # ≈ the published 275,500 CNY
    assert any("1,086,242.98" in line and "21,392 mu" in line for line in lines)
    (batch,) = issuance.batches_of_project(session, anji[0].id)
    assert batch.serial_prefix == "THC-BAM-AJ0001-2024-001"
    items, _ = public.public_retirements(session, cursor=None, limit=10)
    # the court's judicial restoration is the market's (market.demo), through its case
    assert {item["purpose"] for item in items} == {"annual_neutrality"}
    platform = platform_signing_key()
    for item in items:
        found = retirements.get_certificate(session, item["certificate_id"])
        pinned = {platform.key_id: platform.public_raw}  # certificates verify on pinned keys
        assert certificates.verify_document(
            retirements.certificate_document(session, found), pinned
        ).ok
    demo.seed(session, lines.append)  # a second run changes nothing
    assert len(issuance.batches_of_project(session, anji[0].id)) == 1
    assert len(projects.project_parcels(session, anji[0].id)) == 6


def test_the_demo_anji_is_five_village_cooperatives_that_sign_in(
    session: Session, client: TestClient
) -> None:
    """Issue 8's demo: five village cooperatives of Anji's first batch, each with its login,
    households, parcels, contract and issued project, 21,392 mu in all (counted in the database
    and through each cooperative's own API view)."""
    tanhui_demo.seed(session, lambda _line: None)
    session.commit()
    anji = [
        (name, email)
        for kind, name, email, _label in tanhui_demo.DEMO_ORGANISATIONS
        if kind == OrgKind.cooperative and name.startswith("安吉县")
    ]
    assert len(anji) == 5 and tanhui_demo.DEMO_ORGANISATIONS[1][2] == "coop@demo.tanhui.cn"
    system = Actor.system("test")
    area = Fraction(0)
    villages = set()
    expected = []
    for name, email in anji:
        coop = session.exec(select(Organisation).where(col(Organisation.name) == name)).one()
        assert coop.kind == OrgKind.cooperative
        people = households.list_households(session, actor=system, cooperative_id=coop.id)
        assert len(people) == 12 and len({h.village for h in people}) == 1
        villages |= {h.village for h in people}
        (contract,) = contracts.list_contracts(session, actor=system, cooperative_id=coop.id)
        assert contract.term_years == 30
        area += contracts.contract_area_mu(session, contract.id)
        owned = [
            p for p in projects.list_projects(session, actor=system) if p.cooperative_id == coop.id
        ]
        assert [p.status for p in owned] == [ProjectStatus.issued]
        assert len(projects.project_parcels(session, owned[0].id)) == 6
        expected.append((email, str(coop.id), contract.code))
    assert area == 21_392
    assert len(villages) == 5 and "大里村" in villages
    # Every case-bound retirement of the whole demo answers a recorded case: its number, the
    # court that recorded it and the project its credits were earmarked to.
    cases = {case.case_number: case for case in session.exec(select(JudicialCase)).all()}
    bound = session.exec(
        select(Retirement).where(
            col(Retirement.purpose).in_(["judicial_restoration", "ecological_compensation"])
        )
    ).all()
    assert bound and all(r.case_number in cases for r in bound)
    for retirement in bound:
        batch = issuance.get_batch(session, retirement.batch_id)
        assert batch.project_id == cases[str(retirement.case_number)].project_id
    session.rollback()  # SQLite: free the write lock for the app's sign-ins

    api_area = Fraction(0)
    for email, coop_id, code in expected:
        client.cookies.clear()
        signed_in = client.post(
            "/api/v1/auth/session", json={"email": email, "password": tanhui_demo.DEMO_PASSWORD}
        )
        assert signed_in.status_code == 200, signed_in.text
        assert client.get("/api/v1/me").json()["organisation"]["id"] == coop_id
        seen = client.get("/api/v1/registry/contracts").json()
        assert [row["code"] for row in seen] == [code]
        assert seen[0]["household_count"] == 12
        api_area += Fraction(seen[0]["area_mu"])
        assert len(client.get("/api/v1/registry/households").json()) == 12
    assert api_area == 21_392
