"""Parcels: measurement in EPSG:4549, overlap refusals, imports with a per-row report, and
households' personal data sealed."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session

from registry import geo
from registry.errors import GroundAlreadyClaimed, InvalidParcel, ParcelOverlap
from registry.importer import read_rows
from registry.models import Household, ProjectType
from registry.service import imports, projects
from tanhui.models import OrgKind
from tests.registry import helpers
from tests.registry.conftest import People


def _draft(session: Session, coop: helpers.Actor, code: str) -> helpers.Project:
    assert coop.organisation_id is not None
    return projects.create_project(
        session,
        actor=coop,
        cooperative_id=coop.organisation_id,
        code=code,
        name=code,
        type=ProjectType.bamboo,
        methodology_name="bamboo-rate",
        methodology_version="1.0",
        crediting_start=date(2022, 1, 1),
        crediting_end=date(2051, 12, 31),
    )


def test_area_is_measured_in_cgcs2000_gauss_kruger(session: Session) -> None:
    coop = helpers.actor(session, OrgKind.cooperative)
    parcel = helpers.parcel(session, coop, side=100)
    assert abs(parcel.area_m2 - 10_000) <= 1  # a 100 m square drawn in EPSG:4549
    assert parcel.district_adcode == "330523"  # Anji
    outside = helpers.parcel(session, coop, x=-400_000, side=100)  # far west of Huzhou
    assert outside.district_adcode is None


def test_bad_geometries_are_refused_with_a_reason(session: Session) -> None:
    coop = helpers.actor(session, OrgKind.cooperative)
    bowtie = {
        "type": "Polygon",
        "coordinates": [
            [[119.6, 30.6], [119.61, 30.61], [119.61, 30.6], [119.6, 30.61], [119.6, 30.6]]
        ],
    }
    with pytest.raises(InvalidParcel, match="invalid polygon"):
        helpers.parcels.register_parcel(
            session,
            actor=coop,
            cooperative_id=coop.organisation_id,
            code="X1",
            geometry=bowtie,
            land_type="bamboo",
        )
    with pytest.raises(InvalidParcel, match="polygon, not a Point"):
        helpers.parcels.register_parcel(
            session,
            actor=coop,
            cooperative_id=coop.organisation_id,
            code="X2",
            geometry={"type": "Point", "coordinates": [119.6, 30.6]},
            land_type="bamboo",
        )


def test_overlap_with_another_active_project_is_refused_naming_it(session: Session) -> None:
    coop = helpers.actor(session, OrgKind.cooperative)
    first = _draft(session, coop, "OV0001")
    a = helpers.parcel(session, coop, x=0, side=200)
    projects.add_parcels(session, actor=coop, project_id=first.id, parcel_ids=[a.id])
    second = _draft(session, coop, "OV0002")
    # 200 m × 10 m = 2,000 m² on the shared edge: refused
    b = helpers.parcel(session, coop, x=190, side=200)
    with pytest.raises(ParcelOverlap) as refused:
        projects.add_parcels(session, actor=coop, project_id=second.id, parcel_ids=[b.id])
    assert refused.value.params["other_project"] == "OV0001"
    assert refused.value.params["other_parcel"] == a.code
    assert abs(refused.value.params["overlap_m2"] - 2_000) < 5
    assert "OV0001" in str(refused.value) and "m²" in str(refused.value)
    # a sliver of 200 m × 0.1 m = 20 m² on a 40,000 m² parcel: under both tolerances (40 m²)
    c = helpers.parcel(session, coop, x=199.9, y=0, side=200)
    projects.add_parcels(session, actor=coop, project_id=second.id, parcel_ids=[c.id])
    # a terminated project's ground stays claimed for its crediting years
    d = helpers.parcel(session, coop, x=0, side=150)  # inside a
    with pytest.raises(ParcelOverlap):
        projects.add_parcels(session, actor=coop, project_id=second.id, parcel_ids=[d.id])
    projects.terminate(session, actor=helpers.Actor.system("t"), project_id=first.id, reason="x")
    with pytest.raises(GroundAlreadyClaimed) as claimed:
        projects.add_parcels(session, actor=coop, project_id=second.id, parcel_ids=[d.id])
    assert claimed.value.params["other_project"] == "OV0001"
    assert abs(claimed.value.params["overlap_m2"] - 22_500) < 5


def test_small_parcels_use_the_relative_tolerance(session: Session) -> None:
    coop = helpers.actor(session, OrgKind.cooperative)
    first = _draft(session, coop, "SM0001")
    a = helpers.parcel(session, coop, x=0, side=30)  # 900 m²: tolerance 0.9 m²
    projects.add_parcels(session, actor=coop, project_id=first.id, parcel_ids=[a.id])
    b = helpers.parcel(session, coop, x=29, side=30)  # overlaps 30 m²: under 100 m², over 0.1 %
    with pytest.raises(ParcelOverlap):
        projects.add_parcels(session, actor=coop, project_id=first.id, parcel_ids=[b.id])


def test_two_new_parcels_of_one_project_may_not_overlap(session: Session) -> None:
    coop = helpers.actor(session, OrgKind.cooperative)
    draft = _draft(session, coop, "SP0001")
    a = helpers.parcel(session, coop, x=0, side=100)
    b = helpers.parcel(session, coop, x=50, side=100)
    with pytest.raises(ParcelOverlap) as refused:
        projects.add_parcels(session, actor=coop, project_id=draft.id, parcel_ids=[a.id, b.id])
    assert refused.value.params["other_project"] == "-"


def test_the_overlap_check_on_many_parcels_finds_exactly_the_overlapping_ones() -> None:
    grid = [
        shapely.box(x * 100, y * 100, x * 100 + 90, y * 100 + 90)
        for x in range(100)
        for y in range(100)
    ]
    new = [shapely.box(x * 100 + 45, 45, x * 100 + 135, 135) for x in range(0, 100, 10)]
    against, among = geo.find_overlaps(new, grid)
    assert among == []
    # each new square overlaps 4 grid squares: 45 × 45, 35 × 45, 45 × 35 and 35 × 35 m
    assert len(against) == 4 * 10
    assert {round(hit.area_m2) for hit in against} == {2_025, 1_575, 1_225}


# --- import ------------------------------------------------------------------------------


def _frame(coop_household_id: str | None = None) -> gpd.GeoDataFrame:
    shapes = [
        shapely.geometry.shape(helpers.square(x, 20_000, 100)) for x in (0, 200, 400, 600, 250, 800)
    ]
    x0, y0, x1, y1 = shapes[3].bounds
    shapes[3] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])  # row 4: a bow tie
    return gpd.GeoDataFrame(
        {
            "DKBH": ["A-1", "A-2", "A-2", "A-4", "A-5", "A-6"],  # row 3 repeats a code
            "DLMC": ["竹林", "竹林", "湿地", "竹林", "竹林", "果园"],  # row 6: unknown type
            "CUN": ["大里村"] * 6,
            "LQZH": ["LQ-1", None, None, None, None, None],
            "MJ": [15.0, 15.0, 15.0, 15.0, 15.0, 15.0],
            "SFZH": [coop_household_id] + [None] * 5,
        },
        geometry=shapes,
        crs="EPSG:4326",
    )


MAPPING = {
    "code": "DKBH",
    "land_type": "DLMC",
    "village": "CUN",
    "forest_right_cert": "LQZH",
    "registered_area_mu": "MJ",
    "household_national_id": "SFZH",
}


@pytest.mark.parametrize("kind", ["geojson", "gpkg", "zip"])
def test_import_reports_every_bad_row_and_imports_the_rest(
    kind: str, session: Session, tmp_path: Path
) -> None:
    coop = helpers.actor(session, OrgKind.cooperative)
    household = helpers.household(session, coop)
    national = helpers.national_id(99_991)
    registered = helpers.households.create_household(
        session,
        actor=coop,
        cooperative_id=coop.organisation_id,
        name="王",
        village="大里村",
        national_id=national,
    )
    frame = _frame(national)
    frame.to_crs("EPSG:4549").to_file(tmp_path / "p.gpkg", driver="GPKG")  # GPKG: projected
    if kind == "geojson":
        path = tmp_path / "p.geojson"
        frame.to_file(path, driver="GeoJSON")
    elif kind == "gpkg":
        path = tmp_path / "p.gpkg"
    else:
        folder = tmp_path / "shp"
        folder.mkdir()
        frame.to_file(folder / "parcels.shp", encoding="utf-8")
        path = tmp_path / "p.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for item in folder.iterdir():
                archive.write(item, f"export/{item.name}")
    draft = _draft(session, coop, "IM0001")
    report = imports.import_parcels(
        session,
        actor=coop,
        cooperative_id=coop.organisation_id,
        rows=read_rows(path),
        mapping=imports.ImportMapping.from_dict(MAPPING),
        project_id=draft.id,
    )
    reasons = {r.row: r.reason for r in report.rejected}
    assert report.rows == 6 and report.imported == 2, reasons
    assert set(reasons) == {3, 4, 5, 6}
    assert "twice" in reasons[3]
    assert "invalid polygon" in reasons[4]
    assert "A-2" in reasons[5] and "of this file" in reasons[5]
    assert "果园" in reasons[6]
    imported = projects.project_parcels(session, draft.id)
    assert [p.code for p in imported] == ["A-1", "A-2"]
    assert imported[0].registered_area_centimu == 1_500
    assert imported[0].forest_right_cert == "LQ-1"
    holdings = helpers.parcels.holdings_of(session, [imported[0].id])
    assert [(h.household_id, h.share_bp) for h in holdings] == [(registered.id, 10_000)]
    assert household.id != registered.id


def test_import_over_http_with_a_mapping(
    client: TestClient, session: Session, people: People
) -> None:
    frame = _frame()
    buffer = io.BytesIO(frame.to_json().encode())
    answer = client.post(
        "/api/v1/registry/parcels/import",
        headers=people.coop.headers,
        files={"file": ("parcels.geojson", buffer, "application/geo+json")},
        data={"mapping": json.dumps({**MAPPING, "household_national_id": None})},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["imported"] == 3 and [r["row"] for r in body["rejected"]] == [3, 4, 6]
    bad = client.post(
        "/api/v1/registry/parcels/import",
        headers=people.coop.headers,
        files={"file": ("parcels.geojson", io.BytesIO(b"{not json"), "application/geo+json")},
        data={"mapping": json.dumps(MAPPING)},
    )
    assert bad.status_code == 422 and bad.json()["type"] == "/problems/registry/invalid-import"
    missing = client.post(
        "/api/v1/registry/parcels/import",
        headers=people.coop.headers,
        files={"file": ("parcels.geojson", io.BytesIO(frame.to_json().encode()), "x/y")},
        data={"mapping": json.dumps({"code": "NOPE", "default_land_type": "bamboo"})},
    )
    assert missing.status_code == 422 and "NOPE" in missing.json()["detail"]


def test_household_personal_data_is_sealed_at_rest(session: Session) -> None:
    coop = helpers.actor(session, OrgKind.cooperative)
    national = helpers.national_id(4_242)
    household = helpers.households.create_household(
        session,
        actor=coop,
        cooperative_id=coop.organisation_id,
        name="李四",
        village="大里村",
        national_id=national,
        phone="13912345678",
        bank_account="6222 0202 0000 1234 567",
    )
    session.flush()
    table = Household.__table__  # type: ignore[attr-defined]
    raw = session.execute(select(table).where(table.c.id == household.id)).one()
    dumped = repr(tuple(raw)).encode()
    for secret in (national, "13912345678", "6222020200001234567"):
        assert secret.encode() not in dumped
    owner = helpers.colleague(coop, helpers.Role.owner)
    contact = helpers.households.reveal(session, actor=owner, household_id=household.id)
    assert contact.national_id == national and contact.phone == "+8613912345678"
    assert contact.bank_account == "6222020200001234567"
    found = helpers.households.find_by_national_id(
        session, cooperative_id=coop.organisation_id, national_id=national.lower()
    )
    assert found is not None and found.id == household.id
