"""The registry's demo seed: Anji's published figures, parcels inside the real boundary, a
certificate that verifies; fast and idempotent."""

from __future__ import annotations

import json
import time

import shapely
from sqlmodel import Session

from registry import certificates, demo, geo
from registry.models import ProjectStatus
from registry.service import contracts, issuance, projects, public, retirements
from registry.service.actors import Actor
from tanhui import identity
from tanhui.models import OrgKind

DEMO_SECONDS = 20


def test_demo_seed_reproduces_anji(session: Session) -> None:
    for kind, name in (
        (OrgKind.cooperative, "安吉县两山竹林碳汇收储交易中心（演示）"),
        (OrgKind.cooperative, "德清县下渚湖湿地生态资源运营（演示）"),
        (OrgKind.verifier, "核证机构"),
        (OrgKind.authority, "主管部门"),
        (OrgKind.enterprise, "买方"),
        (OrgKind.court, "法院"),
    ):
        identity.create_organisation(session, name=name, kind=kind)
    lines: list[str] = []
    started = time.monotonic()
    demo.seed(session, lines.append)
    assert time.monotonic() - started < DEMO_SECONDS
    anji = projects.find_by_code(session, "AJ0001")
    wetland = projects.find_by_code(session, "DQ0001")
    assert anji is not None and wetland is not None
    assert (anji.status, wetland.status) == (ProjectStatus.issued, ProjectStatus.issued)
    assert (anji.district_adcode, wetland.district_adcode) == ("330523", "330521")
    boundary = geo.district_boundary_wgs84("330523")
    plots = projects.project_parcels(session, anji.id)
    assert len(plots) == 30 and {p.district_adcode for p in plots} == {"330523"}
    assert all(
        boundary.contains(shapely.geometry.shape(json.loads(p.geometry_geojson))) for p in plots
    )
    system = Actor.system("test")
    (contract,) = contracts.list_contracts(
        session, actor=system, cooperative_id=anji.cooperative_id
    )
    assert contract.term_years == 30
    (settlement,) = contracts.settlements_of(session, contract.id)
    assert settlement.amount_fen == 108_624_298 and settlement.area_mu == "21392"
    assert any("1,086,242.98" in line for line in lines)
    (batch,) = issuance.batches_of_project(session, anji.id)
    assert batch.serial_prefix == "THC-BAM-AJ0001-2024-001"
    items, _ = public.public_retirements(session, cursor=None, limit=10)
    assert {item["purpose"] for item in items} == {"annual_neutrality", "judicial_restoration"}
    for item in items:
        found = retirements.get_certificate(session, item["certificate_id"])
        assert certificates.verify_document(retirements.certificate_document(session, found), {}).ok
    demo.seed(session, lines.append)  # a second run changes nothing
    assert len(issuance.batches_of_project(session, anji.id)) == 1
