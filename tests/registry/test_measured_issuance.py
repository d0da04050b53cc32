"""Measured issuance (issue 15, hole 1; invariant 5): credits are issued only from an MRV run the
platform performed on the project's registered parcels, never more than its conservative
estimate, with at least the methodology's minimum buffer; a residents' period comes only from the
pooling job. Over the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import uuid
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from mrv.errors import ImplausibleValue
from mrv.report import Report
from registry import demo_rasters
from registry.errors import IncompleteCoverage
from registry.models import Batch, MonitoringPeriod, ProjectType
from registry.service import mrv_runs, projects
from tests.registry import helpers
from tests.registry.conftest import People

API = "/api/v1/registry"


def _roles(people: People) -> helpers.Roles:
    return helpers.Roles(
        coop=people.coop.actor,
        verifier=people.verifier.actor,
        authority=people.authority.actor,
        enterprise=people.enterprise.actor,
    )


def _two_parcel_project(session: Session, people: People, x: float) -> uuid.UUID:
    """A collected bamboo project of two parcels of 13.84 ha each (about 27.7 ha)."""
    coop = people.coop.actor
    assert coop.organisation_id is not None
    plots = [
        helpers.parcel(session, coop, x=x, y=3_000, side=372),
        helpers.parcel(session, coop, x=x + 500, y=3_000, side=372),
    ]
    project = projects.create_project(
        session,
        actor=coop,
        cooperative_id=coop.organisation_id,
        code=f"MI{uuid.uuid4().hex[:6].upper()}",
        name="测量签发",
        type=ProjectType.bamboo,
        methodology_name="bamboo-rate",
        methodology_version="1.0",
        crediting_start=date(2022, 1, 1),
        crediting_end=date(2051, 12, 31),
    )
    projects.add_parcels(
        session, actor=coop, project_id=project.id, parcel_ids=[p.id for p in plots]
    )
    helpers.contract(session, coop, plots)
    projects.collect(session, actor=coop, project_id=project.id)
    session.commit()
    return project.id


def _batches(session: Session) -> int:
    count = int(session.exec(select(func.count()).select_from(Batch)).one())
    session.rollback()  # end the read: SQLite's writer must not wait for it
    return count


def test_an_uploaded_report_is_evidence_and_never_issued(
    client: TestClient, session: Session, people: People
) -> None:
    """Hole 1: a report saying 1,000,000 t, no buffer, 0 ha went certify → file → issue."""
    project_id = _two_parcel_project(session, people, x=2_000)
    claim = helpers.report(issuable=1_000_000, buffer=0)
    claim["totals"]["area_ha"] = 0
    period = client.post(
        f"{API}/projects/{project_id}/periods", headers=people.coop.headers, json={"report": claim}
    )
    assert period.status_code == 201, period.text
    assert (period.json()["basis"], period.json()["estimate_t"]) == ("uploaded", None)
    period_id = period.json()["id"]
    for step, who in (("certify", people.verifier), ("file", people.authority)):
        answer = client.post(f"{API}/periods/{period_id}/{step}", headers=who.headers, json={})
        assert answer.status_code == 200, answer.text
    before = _batches(session)
    refused = client.post(
        f"{API}/periods/{period_id}/issue", headers=people.authority.headers, json={}
    )
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["type"] == "/problems/registry/not-measured"
    assert problem["rule"] == "invariant-5" and "uploaded report" in problem["detail"]
    session.expire_all()
    assert _batches(session) == before  # nothing written
    assert (
        client.get(f"{API}/periods/{period_id}", headers=people.authority.headers).json()["status"]
        == "filed"
    )


def test_a_residents_project_takes_no_uploaded_period(
    client: TestClient, session: Session, people: People
) -> None:
    """Hole 1: a residents' project collected without parcels submitted a 50,000 t period."""
    coop = people.coop.actor
    assert coop.organisation_id is not None
    project = projects.create_project(
        session,
        actor=coop,
        cooperative_id=coop.organisation_id,
        code=f"RS{uuid.uuid4().hex[:6].upper()}",
        name="居民碳普惠",
        type=ProjectType.residents,
        methodology_name="tanhui-residents-pool",
        methodology_version="1.0",
        crediting_start=date(2022, 1, 1),
        crediting_end=date(2031, 12, 31),
    )
    projects.collect(session, actor=coop, project_id=project.id)
    session.commit()
    refused = client.post(
        f"{API}/projects/{project.id}/periods",
        headers=people.coop.headers,
        json={"report": helpers.report(50_000, 0, methodology="tanhui-residents-pool")},
    )
    assert refused.status_code == 422
    assert refused.json()["type"] == "/problems/registry/residents-pooled-only"
    session.expire_all()
    count = select(func.count()).select_from(MonitoringPeriod)
    assert session.exec(count.where(col(MonitoringPeriod.project_id) == project.id)).one() == 0


def test_a_measured_period_is_issued_within_its_conservative_estimate(
    client: TestClient, session: Session, people: People, tmp_path: Path
) -> None:
    project_id = _two_parcel_project(session, people, x=4_000)
    plots = projects.project_parcels(session, project_id)
    shapes = list(shapely.from_wkb(np.asarray([p.geometry_wkb for p in plots], dtype=object)))
    rasters = demo_rasters.bamboo(tmp_path, "measured", shapes)
    run = mrv_runs.measure(
        session,
        actor=people.coop.actor,
        project_id=project_id,
        period_start=date(2022, 1, 1),
        period_end=date(2024, 12, 31),
        rasters=rasters,
    )
    period = mrv_runs.submit_run(session, actor=people.coop.actor, run_id=run.id)
    session.commit()
    report = Report.from_json(period.report_json).data
    assert sorted(row["id"] for row in report["parcels"]) == sorted(p.code for p in plots)
    assert report["provenance"]["area_crs"] == "EPSG:4549"
    estimate = int(report["totals"]["conservative_net_tco2e"])
    shown = client.get(f"{API}/periods/{period.id}", headers=people.verifier.headers).json()
    assert (shown["basis"], shown["estimate_t"]) == ("measured", estimate)
    for step, who in (("certify", people.verifier), ("file", people.authority)):
        answer = client.post(f"{API}/periods/{period.id}/{step}", headers=who.headers, json={})
        assert answer.status_code == 200, answer.text
    too_many = client.post(
        f"{API}/periods/{period.id}/issue",
        headers=people.authority.headers,
        json={"quantity_t": period.issuable_t + 1},
    )
    assert too_many.status_code == 409
    batch = client.post(
        f"{API}/periods/{period.id}/issue", headers=people.authority.headers, json={}
    )
    assert batch.status_code == 201, batch.text
    issued, buffer = batch.json()["quantity_t"], batch.json()["buffer_t"]
    assert issued + buffer <= estimate and buffer * 10 >= issued + buffer
    assert issued == period.issuable_t > 0

    # anyone can check issued + buffer <= estimate, and what the estimate rests on
    prefix = batch.json()["serial_prefix"]
    shown = client.get(f"/api/v1/public/batches/{prefix}/provenance")
    assert shown.status_code == 200, shown.text
    provenance = shown.json()
    assert (provenance["issued_to_holder_t"], provenance["buffer_t"]) == (issued, buffer)
    assert provenance["estimate_t"] == estimate and provenance["within_estimate"]
    assert (provenance["basis"], provenance["min_buffer_share"]) == ("measured", 0.1)
    stored = client.get(provenance["report_url"])
    assert hashlib.sha256(stored.content).hexdigest() == provenance["report_sha256"]
    assert provenance["report_sha256"] == period.report_sha256
    raster = Path(rasters["index"]).read_bytes()
    assert {"name": "raster:index", "sha256": hashlib.sha256(raster).hexdigest()} in provenance[
        "inputs"
    ]
    assert [(item["code"], item["geometry_sha256"]) for item in provenance["parcels"]] == [
        (plot.code, hashlib.sha256(plot.geometry_wkb).hexdigest()) for plot in plots
    ]
    listed = client.get("/api/v1/public/batches").json()["items"]
    mine = next(item for item in listed if item["batch"] == prefix)
    assert (mine["basis"], mine["estimate_t"]) == ("measured", estimate)
    assert client.get("/api/v1/public/batches/THC-BAM-NONE-2024-001/provenance").status_code == 404


def test_a_run_that_misses_a_registered_parcel_is_refused(session: Session, people: People) -> None:
    project_id = _two_parcel_project(session, people, x=6_000)
    codes = [p.code for p in projects.project_parcels(session, project_id)]
    run = mrv_runs.start_run(
        session,
        actor=people.coop.actor,
        project_id=project_id,
        period_start=date(2022, 1, 1),
        period_end=date(2024, 12, 31),
        layers=["index"],
    )
    partial = helpers.report(500, 100, parcels=codes[:1])
    assert mrv_runs.finish(session, run.id, Report.build(partial).to_json())
    with pytest.raises(IncompleteCoverage) as refused:
        mrv_runs.submit_run(session, actor=people.coop.actor, run_id=run.id)
    assert codes[1] in str(refused.value)


def test_a_class_table_outside_the_methodologys_bounds_is_refused(
    session: Session, people: People, tmp_path: Path
) -> None:
    """Hole 1: a class table of 500 t/ha/yr gave 55,431 t from 70 ha; now refused, naming the
    bound and its source, and no run is stored."""
    project_id = _two_parcel_project(session, people, x=8_000)
    plots = projects.project_parcels(session, project_id)
    shapes = list(shapely.from_wkb(np.asarray([p.geometry_wkb for p in plots], dtype=object)))
    rasters, _wetland_classes = demo_rasters.wetland(tmp_path, "cover", shapes)
    table = tmp_path / "classes.csv"
    table.write_text(
        "value,name,removal_tco2e_per_ha_year,ch4_kg_per_ha_year\n1,bamboo,500,0\n2,other,0,0\n",
        encoding="utf-8",
    )
    with pytest.raises(ImplausibleValue) as refused:
        mrv_runs.measure(
            session,
            actor=people.coop.actor,
            project_id=project_id,
            period_start=date(2022, 1, 1),
            period_end=date(2024, 12, 31),
            rasters=rasters,
            classes=str(table),
        )
    problem = refused.value.to_problem("en")
    assert problem["type"] == "/problems/mrv/implausible-value" and problem["status"] == 422
    assert "500" in problem["detail"] and "20.0" in problem["detail"]
    assert "Anji" in problem["detail"] and problem["rule"] == "methodology-bounds"
    session.rollback()
    assert mrv_runs.runs_of_project(session, actor=people.coop.actor, project_id=project_id) == []
