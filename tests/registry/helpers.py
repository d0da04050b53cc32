"""Registry test data, made through the service functions (no hand-made rows)."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import shapely
from shapely.geometry import box
from sqlmodel import Session

from mrv.report import Report
from registry import geo
from registry.models import (
    Batch,
    Contract,
    Household,
    LandType,
    MonitoringPeriod,
    Parcel,
    Project,
    ProjectStatus,
    ProjectType,
)
from registry.service import contracts, households, issuance, mrv_runs, parcels, projects
from registry.service.actors import Actor
from tanhui.models import OrgKind, Role
from tests import factories

_counter = itertools.count(1)
# A point in Anji county (递铺, near the county seat), in EPSG:4549 metres.
ANJI_ORIGIN = geo.project([shapely.Point(119.68, 30.64)])[0]
DEQING_ORIGIN = geo.project([shapely.Point(120.05, 30.55)])[0]
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def national_id(serial: int) -> str:
    """A syntactically valid 18-character id (Anji area code, check digit computed)."""
    body = f"330523199001{serial % 10000:04d}" + f"{serial // 10000 % 10}"
    body = body[:17]
    total = sum(int(d) * w for d, w in zip(body, ID_WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


def square(x_m: float, y_m: float, side_m: float, origin: Any = ANJI_ORIGIN) -> dict[str, Any]:
    """GeoJSON (WGS84) of a square ``side_m`` wide, ``x_m``/``y_m`` metres east/north of the
    origin (an Anji hillside by default)."""
    projected = box(
        origin.x + x_m, origin.y + y_m, origin.x + x_m + side_m, origin.y + y_m + side_m
    )
    return geo.to_geojson(geo.unproject([projected])[0])


def actor(session: Session, kind: OrgKind, role: Role = Role.member) -> Actor:
    org = factories.organisation(session, kind)
    return Actor(ref=f"test:{kind.value}", organisation_id=org.id, org_kind=kind, role=role)


def colleague(of: Actor, role: Role) -> Actor:
    return Actor(
        ref=f"test:{role.value}",
        organisation_id=of.organisation_id,
        org_kind=of.org_kind,
        role=role,
    )


@dataclass
class Roles:
    coop: Actor
    verifier: Actor
    authority: Actor
    enterprise: Actor

    @classmethod
    def make(cls, session: Session) -> Roles:
        return cls(
            coop=actor(session, OrgKind.cooperative),
            verifier=actor(session, OrgKind.verifier),
            authority=actor(session, OrgKind.authority),
            enterprise=actor(session, OrgKind.enterprise),
        )


METHODOLOGY_OF = {ProjectType.bamboo: "bamboo-rate", ProjectType.wetland: "wetland"}
LAND_OF = {ProjectType.bamboo: LandType.bamboo, ProjectType.wetland: LandType.wetland}


def household(session: Session, coop: Actor, village: str = "大里村", name: str = "") -> Household:
    n = next(_counter)
    assert coop.organisation_id is not None
    return households.create_household(
        session,
        actor=coop,
        cooperative_id=coop.organisation_id,
        name=name or f"农户{n}",
        village=village,
        national_id=national_id(n),
        phone=f"1380000{n % 10000:04d}",
        bank_account=f"62220000{n:08d}",
    )


def parcel(
    session: Session,
    coop: Actor,
    *,
    x: float = 0,
    y: float = 0,
    side: float = 100,
    holders: list[tuple[Household, int]] | None = None,
    cert: str | None = None,
    registered_centimu: int | None = None,
    land_type: LandType = LandType.bamboo,
    origin: Any = ANJI_ORIGIN,
) -> Parcel:
    assert coop.organisation_id is not None
    if holders is None:
        holders = [(household(session, coop), 10_000)]
    return parcels.register_parcel(
        session,
        actor=coop,
        cooperative_id=coop.organisation_id,
        code=f"P{next(_counter):05d}",
        geometry=square(x, y, side, origin),
        land_type=land_type,
        village="大里村",
        forest_right_cert=cert,
        registered_area_centimu=registered_centimu,
        holdings=[(h.id, share) for h, share in holders],
    )


def contract(
    session: Session, coop: Actor, parcel_list: list[Parcel], **overrides: Any
) -> Contract:
    assert coop.organisation_id is not None
    values: dict[str, Any] = {
        "code": f"C{next(_counter):04d}",
        "counterparty": "大里村股份经济合作社",
        "start_date": date(2021, 12, 28),
        "term_years": 30,
        "rate_g_per_mu_year": 390_000,
        "settlement_period_years": 3,
        "household_share_bp": 8_000,
    }
    values.update(overrides)
    return contracts.create_contract(
        session,
        actor=coop,
        cooperative_id=coop.organisation_id,
        parcel_ids=[p.id for p in parcel_list],
        **values,
    )


def report(
    issuable: int = 1_000,
    buffer: int = 200,
    methodology: str = "bamboo-rate",
    start: str = "2022-01-01",
    end: str = "2024-12-31",
    parcels: list[str] | None = None,
) -> dict[str, Any]:
    """A report in the MRV schema whose conservative net is ``issuable + buffer``, split evenly
    over ``parcels`` (codes)."""
    codes = parcels or []
    share = float(issuable + buffer) / max(len(codes), 1)
    return {
        "schema": "tanhui.mrv.report/1",
        "methodology": {"name": methodology, "version": "1.0", "parameters": {}},
        "monitoring_period": {"start": start, "end": end, "years": 3.0},
        "parcels": [
            {
                "id": code,
                "area_ha": 1.0,
                "outside_raster_ha": 0.0,
                "conservative_net_tco2e": share,
                "flags": [],
            }
            for code in codes
        ],
        "totals": {
            "area_ha": 10.0,
            "removals_tco2e": float(issuable + buffer),
            "net_tco2e": float(issuable + buffer),
            "conservative_net_tco2e": float(issuable + buffer),
            "buffer_share": 0.2,
            "buffer_tco2e": buffer,
            "issuable_tco2e": issuable,
        },
        "provenance": {
            "inputs": [],
            "software": "test",
            "seed": 1,
            "crs": "EPSG:4326",
            "area_crs": "EPSG:4549",
        },
    }


def project(
    session: Session,
    roles: Roles,
    *,
    status: ProjectStatus = ProjectStatus.draft,
    x: float | None = None,
    issuable: int = 1_000,
    buffer: int = 200,
    type: ProjectType = ProjectType.bamboo,
    contracted: bool = True,
) -> Project:
    """A project brought to ``status`` through the lifecycle (each project on its own ground)."""
    n = next(_counter)
    coop = roles.coop
    assert coop.organisation_id is not None
    created = projects.create_project(
        session,
        actor=coop,
        cooperative_id=coop.organisation_id,
        code=f"T{n:05d}",
        name=f"测试项目 {n}",
        type=type,
        methodology_name=METHODOLOGY_OF[type],
        methodology_version="1.0",
        crediting_start=date(2022, 1, 1),
        crediting_end=date(2051, 12, 31),
    )
    # each project on its own ground: a 40 × 40 grid of 500 m cells south-west of the origin,
    # inside Anji (tests that place parcels themselves use the ground north-east of it)
    offset_x = x if x is not None else -500.0 * (1 + n % 40)
    offset_y = 0.0 if x is not None else -500.0 * (1 + n // 40 % 40)
    plot = parcel(session, coop, x=offset_x, y=offset_y, land_type=LAND_OF[type])
    projects.add_parcels(session, actor=coop, project_id=created.id, parcel_ids=[plot.id])
    if contracted:
        contract(session, coop, [plot])
    if status == ProjectStatus.draft:
        return created
    projects.collect(session, actor=coop, project_id=created.id)
    if status == ProjectStatus.collected:
        return created
    if status in {ProjectStatus.suspended, ProjectStatus.terminated}:
        return created
    period = measured_period(
        session, coop, created.id, report(issuable, buffer, METHODOLOGY_OF[type])
    )
    if status == ProjectStatus.submitted:
        return created
    projects.certify(session, actor=roles.verifier, period_id=period.id)
    if status == ProjectStatus.certified:
        return created
    projects.file_period(session, actor=roles.authority, period_id=period.id)
    if status == ProjectStatus.filed:
        return created
    issuance.issue(session, actor=roles.authority, period_id=period.id)
    return created


def latest_period(session: Session, project_id: uuid.UUID) -> MonitoringPeriod:
    return projects.periods(session, project_id)[-1]


def issued_batch(session: Session, roles: Roles, issuable: int = 1_000, buffer: int = 200) -> Batch:
    created = project(session, roles, status=ProjectStatus.issued, issuable=issuable, buffer=buffer)
    return issuance.batches_of_project(session, created.id)[-1]


def measured_period(
    session: Session, coop: Actor, project_id: uuid.UUID, made: dict[str, Any]
) -> MonitoringPeriod:
    """A period submitted from an MRV run of the platform whose report covers the project's
    registered parcels; ``made`` (a :func:`report`) stands for what the estimate wrote, so tests
    of everything downstream of issuance choose their quantities. Tests of the measurement
    itself run the real estimate (tests/registry/test_measured_issuance.py)."""
    start, end = made["monitoring_period"]["start"], made["monitoring_period"]["end"]
    run = mrv_runs.start_run(
        session,
        actor=coop,
        project_id=project_id,
        period_start=date.fromisoformat(start),
        period_end=date.fromisoformat(end),
        layers=["landcover"],
    )
    codes = [parcel.code for parcel in projects.project_parcels(session, project_id)]
    totals = made["totals"]
    covered = report(
        totals["issuable_tco2e"],
        totals["buffer_tco2e"],
        made["methodology"]["name"],
        start,
        end,
        parcels=codes,
    )
    assert mrv_runs.finish(session, run.id, Report.build(covered).to_json())
    return mrv_runs.submit_run(session, actor=coop, run_id=run.id)
