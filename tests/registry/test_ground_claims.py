"""Ground, area and certificates claimed once (issue 15, holes 2-4), through the HTTP API.

Hole 2: a parcel refused while its project was active was accepted into another project as soon
as the first was terminated, and the same years were issued again. Hole 3: a 10,627 m² parcel
was accepted with ``registered_area_mu: 50000`` and paid on it. Hole 4: a forest-right
certificate with full- and half-width brackets swapped was a new certificate.
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from datetime import date
from typing import Any

import shapely
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from registry import geo
from registry.errors import (
    ForestRightInUse,
    GroundAlreadyClaimed,
    InvalidReport,
    InvalidTransition,
    ParcelOverlap,
)
from registry.models import (
    Batch,
    Contract,
    GroundClaim,
    MonitoringPeriod,
    Parcel,
    Project,
    ProjectParcel,
    ProjectStatus,
    ProjectType,
)
from registry.service import contracts, issuance, parcels, projects
from tanhui.db import unit_of_work
from tanhui.models import OrgKind, Role
from tests.registry import helpers
from tests.registry.conftest import People

API = "/api/v1/registry"
CERT_FULL_WIDTH = "浙（2019）安吉林证第012001号"
CERT_HALF_WIDTH = "浙(2019)安吉林证第012001号"
_places = itertools.count(1)


def _problem(answer: Any, status: int, kind: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = answer.json()
    assert body["type"].endswith(kind), body
    return body


def _count(session: Session, model: Any) -> int:
    session.expire_all()
    count = int(session.exec(select(func.count()).select_from(model)).one())
    session.commit()  # SQLite: let the API's own transactions in
    return count


def _household(client: TestClient, person: Any, serial: int) -> str:
    answer = client.post(
        f"{API}/households",
        headers=person.headers,
        json={
            "name": f"农户{serial}",
            "village": "大里村",
            "national_id": helpers.national_id(70_000 + serial),
        },
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _parcel_body(code: str, geometry: dict[str, Any], household: str, **extra: Any) -> Any:
    return {
        "code": code,
        "geometry": geometry,
        "land_type": "bamboo",
        "village": "大里村",
        "holdings": [{"household_id": household, "share_bp": 10_000}],
        **extra,
    }


# --- hole 2: the ground of a terminated project ----------------------------------------------


def test_a_terminated_projects_ground_stays_claimed_for_its_years(
    client: TestClient, session: Session, people: People
) -> None:
    first = helpers.project(session, people.roles, status=ProjectStatus.issued)
    batch = issuance.batches_of_project(session, first.id)[-1]
    ground = projects.project_parcels(session, first.id)[0]
    second = projects.create_project(
        session,
        actor=people.coop.actor,
        cooperative_id=people.coop.actor.organisation_id,  # type: ignore[arg-type]
        code=f"GC{next(_places):04d}",
        name="同一块山",
        type=ProjectType.bamboo,
        methodology_name="bamboo-rate",
        methodology_version="1.0",
        crediting_start=date(2024, 1, 1),
        crediting_end=date(2053, 12, 31),
    )
    session.commit()
    household = _household(client, people.coop, 1)
    again = client.post(
        f"{API}/parcels",
        headers=people.coop.headers,
        json=_parcel_body("SAME-GROUND", json.loads(ground.geometry_geojson), household),
    )
    assert again.status_code == 201, again.text
    add = {"parcel_ids": [again.json()["id"]]}
    url = f"{API}/projects/{second.id}/parcels"
    _problem(client.post(url, headers=people.coop.headers, json=add), 409, "parcel-overlap")
    terminated = client.post(
        f"{API}/projects/{first.id}/terminate",
        headers=people.authority.headers,
        json={"reason": "撤销备案"},
    )
    assert terminated.status_code == 200, terminated.text
    claims = _count(session, GroundClaim)
    body = _problem(
        client.post(url, headers=people.coop.headers, json=add), 409, "ground-already-claimed"
    )
    assert body["other_project"] == first.code and body["other_batch"] == batch.serial_prefix
    assert abs(body["overlap_m2"] - ground.area_m2) < 2
    assert (body["first_year"], body["last_year"]) == (2024, 2051)
    assert first.code in body["detail"] and batch.serial_prefix in body["detail"]
    # nothing written: no link, no claim
    assert _count(session, GroundClaim) == claims
    assert (
        session.exec(
            select(ProjectParcel).where(col(ProjectParcel.project_id) == second.id)
        ).first()
        is None
    )
    # years the first project never claimed are free
    later = projects.create_project(
        session,
        actor=people.coop.actor,
        cooperative_id=people.coop.actor.organisation_id,  # type: ignore[arg-type]
        code=f"GC{next(_places):04d}",
        name="以后的年份",
        type=ProjectType.bamboo,
        methodology_name="bamboo-rate",
        methodology_version="1.0",
        crediting_start=date(2054, 1, 1),
        crediting_end=date(2073, 12, 31),
    )
    session.commit()
    answer = client.post(
        f"{API}/projects/{later.id}/parcels", headers=people.coop.headers, json=add
    )
    assert answer.status_code == 200, answer.text


def test_a_draft_gives_its_claim_back_when_the_parcel_leaves_it(session: Session) -> None:
    roles = helpers.Roles.make(session)
    draft = helpers.project(session, roles, contracted=False)
    plot = projects.project_parcels(session, draft.id)[0]
    projects.remove_parcels(session, actor=roles.coop, project_id=draft.id, parcel_ids=[plot.id])
    other = helpers.project(session, roles, contracted=False)
    projects.add_parcels(session, actor=roles.coop, project_id=other.id, parcel_ids=[plot.id])
    claimed = session.exec(select(GroundClaim).where(col(GroundClaim.parcel_id) == plot.id)).all()
    assert [claim.project_id for claim in claimed] == [other.id]


# --- no ground credited twice, by property --------------------------------------------------

CELLS = (0.0, 60.0, 250.0)  # 100 m squares: cells 0 and 1 overlap by 4,000 m², 2 is apart
operation = st.one_of(
    st.tuples(st.just("register"), st.integers(2022, 2030), st.integers(19, 25), st.integers(0, 2)),
    st.tuples(st.just("issue"), st.integers(0, 5), st.integers(0, 6)),
    st.tuples(st.just("terminate"), st.integers(0, 5)),
    st.tuples(st.just("suspend"), st.integers(0, 5)),
    st.tuples(st.just("resume"), st.integers(0, 5)),
)


def _advance(session: Session, roles: helpers.Roles, project: Project, year: int) -> None:
    """Submit, certify, file and issue a one-year period of ``project``."""
    if project.status == ProjectStatus.draft:
        projects.collect(session, actor=roles.coop, project_id=project.id)
    period = helpers.measured_period(
        session,
        roles.coop,
        project.id,
        helpers.report(100, 20, start=f"{year}-01-01", end=f"{year}-12-31"),
    )
    projects.certify(session, actor=roles.verifier, period_id=period.id)
    projects.file_period(session, actor=roles.authority, period_id=period.id)
    issuance.issue(session, actor=roles.authority, period_id=period.id)


def _credited_twice(session: Session, project_ids: list[Any]) -> list[str]:
    """Pairs of batches of different projects crediting overlapping ground in the same days."""
    rows = session.exec(
        select(Batch, MonitoringPeriod)
        .join(MonitoringPeriod, col(MonitoringPeriod.id) == col(Batch.period_id))
        .where(col(Batch.project_id).in_(project_ids))
    ).all()
    shapes = {
        pid: [shapely.from_wkb(p.geometry_wkb) for p in projects.project_parcels(session, pid)]
        for pid in project_ids
    }
    found = []
    for (a, pa), (b, pb) in itertools.combinations(rows, 2):
        if a.project_id == b.project_id or pa.end < pb.start or pb.end < pa.start:
            continue
        for one in shapes[a.project_id]:
            for two in shapes[b.project_id]:
                shared = one.intersection(two).area
                if shared > min(geo.overlap_limit_m2(one.area), geo.overlap_limit_m2(two.area)):
                    found.append(f"{a.serial_prefix} and {b.serial_prefix}: {shared:.0f} m²")
    return found


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=st.lists(operation, min_size=2, max_size=9))
def test_no_ground_is_credited_twice_for_the_same_years_whatever_the_status(
    session: Session, operations: list[tuple[Any, ...]]
) -> None:
    roles = helpers.Roles.make(session)
    assert roles.coop.organisation_id is not None
    place = next(_places)
    origin = shapely.Point(
        helpers.ANJI_ORIGIN.x + 2_000 + 600 * (place % 20), helpers.ANJI_ORIGIN.y + 4_000
    )
    made: list[Project] = []
    for op in operations:
        savepoint = session.begin_nested()
        try:
            if op[0] == "register":
                _, start, length, cell = op
                project = projects.create_project(
                    session,
                    actor=roles.coop,
                    cooperative_id=roles.coop.organisation_id,
                    code=f"PG{place % 1000:03d}{len(made):02d}",
                    name="p",
                    type=ProjectType.bamboo,
                    methodology_name="bamboo-rate",
                    methodology_version="1.0",
                    crediting_start=date(start, 1, 1),
                    crediting_end=date(start + length, 12, 31),
                )
                plot = helpers.parcel(session, roles.coop, x=CELLS[cell], side=100, origin=origin)
                helpers.contract(session, roles.coop, [plot])
                projects.add_parcels(
                    session, actor=roles.coop, project_id=project.id, parcel_ids=[plot.id]
                )
                made.append(project)
            elif made:
                project = made[op[1] % len(made)]
                if op[0] == "issue":
                    year = project.crediting_start.year + op[2] % (
                        project.crediting_end.year - project.crediting_start.year + 1
                    )
                    _advance(session, roles, project, year)
                elif op[0] == "terminate":
                    projects.terminate(
                        session, actor=roles.authority, project_id=project.id, reason="撤销"
                    )
                elif op[0] == "suspend":
                    projects.suspend(
                        session, actor=roles.authority, project_id=project.id, reason="暂停"
                    )
                else:
                    projects.resume(session, actor=roles.authority, project_id=project.id)
            savepoint.commit()
        except (GroundAlreadyClaimed, ParcelOverlap, InvalidTransition, InvalidReport):
            savepoint.rollback()
            session.expire_all()
        assert _credited_twice(session, [p.id for p in made]) == []


# --- hole 3: registered area against the polygon ---------------------------------------------


def _ten_thousand_six_hundred_m2() -> dict[str, Any]:
    return helpers.square(-20_000 - 700 * next(_places), 8_000, 103.09)  # ≈ 10,627 m² ≈ 16 mu


def test_a_registered_area_far_off_the_polygon_is_refused_until_a_verifier_accepts_it(
    client: TestClient, session: Session, people: People
) -> None:
    household = _household(client, people.coop, 2)
    geometry = _ten_thousand_six_hundred_m2()
    body = _parcel_body("BIG-1", geometry, household, registered_area_mu="50000")
    before = _count(session, Parcel)
    refused = _problem(
        client.post(f"{API}/parcels", headers=people.coop.headers, json=body), 409, "area-mismatch"
    )
    assert "50000.00" in refused["detail"] and "5 %" in refused["detail"]
    assert _count(session, Parcel) == before
    measured = int(refused["area_m2"])
    assert abs(measured - 10_627) < 15
    acceptance = {
        "cooperative_id": str(people.coop.actor.organisation_id),
        "parcel_code": "BIG-1",
        "registered_area_mu": "50000",
        "area_m2": measured,
        "reason": "林权证面积为旧测绘数据",
    }
    # the cooperative cannot accept its own area; the verifier must, with a reason
    assert (
        client.post(
            f"{API}/area-acceptances", headers=people.coop.headers, json=acceptance
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"{API}/area-acceptances",
            headers=people.verifier.headers,
            json=acceptance | {"reason": ""},
        ).status_code
        == 422
    )
    accepted = client.post(
        f"{API}/area-acceptances", headers=people.verifier.headers, json=acceptance
    )
    assert accepted.status_code == 201, accepted.text
    made = client.post(f"{API}/parcels", headers=people.coop.headers, json=body)
    assert made.status_code == 201, made.text
    # payments use the smaller area: the polygon's ≈ 16 mu, not 50,000
    assert made.json()["registered_area_mu"] == "50000.00"
    assert 15.9 < float(made.json()["area_mu"]) < 16.0
    contract = client.post(
        f"{API}/contracts",
        headers=people.coop.headers,
        json={
            "code": "BIG-C",
            "counterparty": "大里村",
            "start_date": "2021-12-28",
            "term_years": 30,
            "rate_g_per_mu_year": 390000,
            "settlement_period_years": 3,
            "household_share_bp": 8000,
            "parcel_ids": [made.json()["id"]],
        },
    )
    assert contract.status_code == 201, contract.text
    assert 15.9 < float(contract.json()["area_mu"]) < 16.0


def test_contract_creation_reconciles_areas_registered_before_the_check(
    client: TestClient, session: Session, people: People
) -> None:
    coop_id = people.coop.actor.organisation_id
    assert coop_id is not None
    holder = helpers.household(session, people.coop.actor)
    legacy = parcels.prepare(
        code="OLD-1",
        geometry=_ten_thousand_six_hundred_m2(),
        land_type="bamboo",
        registered_area_centimu=5_000_000,
        holdings=[(holder.id, 10_000)],
    )
    row = parcels.insert(session, coop_id, legacy)  # as registered before the check existed
    session.commit()
    body = {
        "code": "OLD-C",
        "counterparty": "大里村",
        "start_date": "2021-12-28",
        "term_years": 30,
        "rate_g_per_mu_year": 390000,
        "settlement_period_years": 3,
        "household_share_bp": 8000,
        "parcel_ids": [str(row.id)],
    }
    _problem(
        client.post(f"{API}/contracts", headers=people.coop.headers, json=body),
        409,
        "area-mismatch",
    )
    assert _count(session, Contract) == 0
    assert [p.code for p in parcels.unreconciled_parcels(session, actor=people.verifier.actor)] == [
        "OLD-1"
    ]
    parcels.accept_area(
        session,
        actor=people.verifier.actor,
        cooperative_id=coop_id,
        parcel_code="OLD-1",
        registered_area_centimu=5_000_000,
        area_m2=row.area_m2,
        reason="核实",
    )
    session.commit()
    made = client.post(f"{API}/contracts", headers=people.coop.headers, json=body)
    assert made.status_code == 201, made.text
    assert float(made.json()["area_mu"]) < 16
    split = contracts.household_areas(session, uuid.UUID(made.json()["id"]))
    assert sum(split.values()) == geo.m2_to_mu(row.area_m2)


# --- hole 4: one certificate number, whatever its typography ---------------------------------


def test_a_certificate_with_swapped_brackets_is_the_same_certificate(
    client: TestClient, session: Session, people: People
) -> None:
    household = _household(client, people.coop, 3)
    first = client.post(
        f"{API}/parcels",
        headers=people.coop.headers,
        json=_parcel_body(
            "CERT-1",
            helpers.square(-26_000, 9_000, 100),
            household,
            forest_right_cert=CERT_FULL_WIDTH,
        ),
    )
    assert first.status_code == 201, first.text
    assert first.json()["forest_right_cert"] == CERT_HALF_WIDTH
    before = _count(session, Parcel)
    other_household = _household(client, people.other_coop, 4)
    for who, holder, variant in (
        (people.coop, household, CERT_HALF_WIDTH),
        (people.other_coop, other_household, " 浙〔2019〕安吉林证第０１２００１号 "),
    ):
        answer = client.post(
            f"{API}/parcels",
            headers=who.headers,
            json=_parcel_body(
                f"CERT-{next(_places)}",
                helpers.square(-27_000, 9_000, 100),
                holder,
                forest_right_cert=variant,
            ),
        )
        body = _problem(answer, 409, "forest-right-in-use")
        assert CERT_HALF_WIDTH in body["detail"]
    assert _count(session, Parcel) == before


def test_a_certificate_under_a_terminated_contract_is_not_contracted_again(
    client: TestClient, session: Session, people: People
) -> None:
    plot = helpers.parcel(session, people.coop.actor, x=-28_000, y=9_000, cert=CERT_FULL_WIDTH)
    signed = helpers.contract(session, people.coop.actor, [plot])
    session.commit()
    owner = helpers.colleague(people.coop.actor, Role.owner)
    contracts.terminate_contract(session, actor=owner, contract_id=signed.id, reason="解约")
    session.commit()
    body = {
        "code": "AGAIN",
        "counterparty": "大里村",
        "start_date": "2022-12-28",
        "term_years": 30,
        "rate_g_per_mu_year": 390000,
        "settlement_period_years": 3,
        "household_share_bp": 8000,
        "parcel_ids": [str(plot.id)],
    }
    problem = _problem(
        client.post(f"{API}/contracts", headers=people.coop.headers, json=body),
        409,
        "forest-right-in-use",
    )
    assert signed.code in problem["detail"] and "terminated" in problem["detail"]
    assert _count(session, Contract) == 1


def test_parcel_import_refuses_a_known_certificate_in_another_typography(
    session: Session,
) -> None:
    from registry.importer import SourceRow
    from registry.service import imports

    roles = helpers.Roles.make(session)
    helpers.parcel(session, roles.coop, x=-29_000, y=9_000, cert=CERT_FULL_WIDTH)
    rows = [
        SourceRow(
            number,
            {"code": f"IMP-{number}", "cert": cert, "mu": mu},
            geo.unproject(
                [
                    shapely.box(
                        helpers.ANJI_ORIGIN.x - 29_500 - 300 * number,
                        helpers.ANJI_ORIGIN.y + 9_000,
                        helpers.ANJI_ORIGIN.x - 29_400 - 300 * number,
                        helpers.ANJI_ORIGIN.y + 9_100,
                    )
                ]
            )[0],
        )
        for number, cert, mu in (
            (1, CERT_HALF_WIDTH, None),
            (2, "LQ-NEW-1", "15"),  # 10,000 m² is 15 mu
            (3, "lq-new-1", None),  # the same number as row 2, in lower case
            (4, "LQ-NEW-2", "50000"),
        )
    ]
    assert roles.coop.organisation_id is not None
    report = imports.import_parcels(
        session,
        actor=roles.coop,
        cooperative_id=roles.coop.organisation_id,
        rows=rows,
        mapping=imports.ImportMapping.from_dict(
            {
                "code": "code",
                "forest_right_cert": "cert",
                "registered_area_mu": "mu",
                "default_land_type": "bamboo",
            }
        ),
    )
    assert report.imported == 1
    reasons = {item.row: item.reason for item in report.rejected}
    assert "already registered" in reasons[1] and "already registered" in reasons[3]
    assert "5 %" in reasons[4]


def test_one_certificate_number_under_concurrent_registrations(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        roles = [helpers.actor(session, OrgKind.cooperative) for _ in range(2)]
        holders = [helpers.household(session, role) for role in roles]
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def register(index: int) -> None:
        barrier.wait()
        try:
            with unit_of_work(engine) as session:
                parcels.register_parcel(
                    session,
                    actor=roles[index],
                    cooperative_id=roles[index].organisation_id,  # type: ignore[arg-type]
                    code="RACE",
                    geometry=helpers.square(-31_000 - 300 * index, 9_000, 100),
                    land_type="bamboo",
                    forest_right_cert=(CERT_FULL_WIDTH, CERT_HALF_WIDTH)[index],
                    holdings=[(holders[index].id, 10_000)],
                )
            outcomes.append("registered")
        except ForestRightInUse:
            outcomes.append("refused")

    threads = [threading.Thread(target=register, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused", "registered"]
    with unit_of_work(engine) as session:
        assert (
            session.exec(
                select(func.count()).where(col(Parcel.forest_right_cert) == CERT_HALF_WIDTH)
            ).one()
            == 1
        )
