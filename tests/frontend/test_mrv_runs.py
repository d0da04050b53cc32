"""The portal's MRV runs live in the database: a run started in one web process is followed,
shown and submitted from another; a run whose process died shows as stalled from its row alone;
with TANHUI_MRV_SCHEDULER set the estimate runs on that Dask scheduler."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col

from frontend import mrv_jobs
from registry import geo
from registry.models import MrvRun, MrvRunState, ProjectStatus
from registry.service import mrv_runs, projects
from tanhui.app import create_app
from tanhui.auth import SESSION_COOKIE
from tanhui.db import utcnow
from tanhui.settings import Settings
from tests.frontend.conftest import Faces, as_
from tests.frontend.test_coop_pages import _wait_for_job
from tests.mrv.test_scheduler_setting import start_cluster
from tests.registry import helpers

EN = {"Accept": "text/html", "Accept-Language": "en"}
CELL_M = 10.0


def _index_over(session: Session, project_id: Any) -> bytes:
    """A float32 vegetation index (0.8, bamboo) on a 10 m grid in EPSG:4549 over the parcels."""
    from rasterio.io import MemoryFile
    from rasterio.transform import Affine

    shapes = [
        shapely.from_geojson(parcel.geometry_geojson)
        for parcel in projects.project_parcels(session, project_id)
    ]
    minx, miny, maxx, maxy = shapely.total_bounds(np.asarray(geo.project(shapes), dtype=object))
    left = math.floor((minx - 50) / CELL_M) * CELL_M
    top = math.ceil((maxy + 50) / CELL_M) * CELL_M
    width = math.ceil((maxx + 50 - left) / CELL_M)
    height = math.ceil((top - (miny - 50)) / CELL_M)
    with MemoryFile() as memory:
        with memory.open(
            driver="GTiff",
            height=height,
            width=width,
            count=1,
            dtype="float32",
            crs=geo.AREA_CRS,
            transform=Affine(CELL_M, 0.0, left, 0.0, -CELL_M, top),
        ) as dataset:
            dataset.write(np.full((1, height, width), 0.8, dtype="float32"))
        return bytes(memory.read())


def _start(client: TestClient, csrf: str, project_id: Any, raster: bytes) -> str:
    started = client.post(
        f"/coop/projects/{project_id}/mrv",
        data={
            "csrf_token": csrf,
            "period_start": "2022-01-01",
            "period_end": "2024-12-31",
            "layer_1": "index",
        },
        files={"raster_1": ("index.tif", raster, "image/tiff")},
        follow_redirects=False,
    )
    assert started.status_code == 303, started.text
    job_url = str(started.headers["location"])
    assert re.fullmatch(r"/coop/mrv/[0-9a-f]{32}", job_url)
    return job_url


@pytest.fixture
def other_process(settings: Settings) -> Iterator[TestClient]:
    """A second web process on the same database (and its own state folder view)."""
    application = create_app(settings)
    with TestClient(application, base_url="http://testserver") as second:
        yield second
    application.state.engine.dispose()


def test_a_run_started_in_one_process_is_followed_and_submitted_in_another(
    client: TestClient, other_process: TestClient, session: Session, faces: Faces
) -> None:
    project = helpers.project(session, faces.roles, status=ProjectStatus.collected)
    raster = _index_over(session, project.id)
    session.commit()
    csrf = as_(client, faces.coop)
    other_process.cookies.set(SESSION_COOKIE, client.cookies[SESSION_COOKIE])
    job_url = _start(client, csrf, project.id, raster)
    # its inputs wait in the state folder of the process that took them, only while it runs
    assert _wait_for_job(other_process, job_url)["state"] == "done"
    assert not mrv_jobs.job_dir(job_url.rsplit("/", 1)[1]).exists()

    page = other_process.get(job_url, headers=EN)
    assert "Submit for verification" in page.text and "bamboo-rate 1.0" in page.text
    listed = other_process.get(f"/coop/projects/{project.id}", headers=EN)
    assert "Recent MRV runs" in listed.text and f'href="{job_url}"' in listed.text
    status = other_process.get(f"{job_url}/status").json()
    assert status["done"] == status["total"] > 0

    submitted = other_process.post(
        f"{job_url}/submit", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert submitted.status_code == 303
    again = client.post(f"{job_url}/submit", data={"csrf_token": csrf}, headers=EN)
    assert again.status_code == 422 and "This MRV run has no report to submit." in again.text
    assert "This report was submitted for verification." in client.get(job_url, headers=EN).text

    session.expire_all()
    run = session.get(MrvRun, mrv_jobs.run_id_of(job_url.rsplit("/", 1)[1]))
    assert run is not None and run.state == MrvRunState.submitted
    period = projects.periods(session, project.id)[0]
    assert run.period_id == period.id and run.report_sha256 == period.report_sha256
    assert run.report_json == period.report_json
    session.rollback()


def test_a_run_whose_process_died_shows_as_stalled(
    client: TestClient, session: Session, faces: Faces
) -> None:
    project = helpers.project(session, faces.roles, status=ProjectStatus.collected)
    run = mrv_runs.start_run(
        session,
        actor=faces.coop.actor,
        project_id=project.id,
        period_start=date(2022, 1, 1),
        period_end=date(2024, 12, 31),
        layers=["index"],
    )
    session.commit()
    as_(client, faces.coop)
    job_url = f"/coop/mrv/{run.id.hex}"
    waiting = client.get(job_url, headers=EN)
    assert "Waiting for an earlier run to finish" in waiting.text
    assert "stopped answering" not in waiting.text

    session.execute(
        update(MrvRun)
        .where(col(MrvRun.id) == run.id)
        .values(updated_at=utcnow() - mrv_runs.STALLED_AFTER - timedelta(seconds=1))
    )
    session.commit()
    stalled = client.get(job_url, headers=EN)
    assert "This run stopped answering" in stalled.text
    assert 'http-equiv="refresh"' not in stalled.text

    as_(client, faces.other_coop)  # another cooperative's run is not found
    assert client.get(job_url, headers=EN).status_code == 404
    assert client.get(f"{job_url}/status").status_code == 404


def test_a_portal_run_goes_through_the_configured_scheduler(
    settings: Settings, session: Session, faces: Faces
) -> None:
    distributed = pytest.importorskip("distributed")
    project = helpers.project(session, faces.roles, status=ProjectStatus.collected)
    raster = _index_over(session, project.id)
    session.commit()
    with start_cluster(distributed) as cluster:
        configured = settings.model_copy(update={"mrv_scheduler": cluster.scheduler_address})
        application = create_app(configured)
        try:
            with TestClient(application, base_url="http://testserver") as client:
                csrf = as_(client, faces.coop)
                job_url = _start(client, csrf, project.id, raster)
                assert _wait_for_job(client, job_url)["state"] == "done"
                assert cluster.task_log.ran() > 0, cluster.task_log.finished
                page = client.get(job_url, headers=EN)
                assert "Submit for verification" in page.text
        finally:
            application.state.engine.dispose()
    session.expire_all()
    run = session.get(MrvRun, mrv_jobs.run_id_of(job_url.rsplit("/", 1)[1]))
    assert run is not None and run.report_json is not None
    assert json.loads(run.report_json)["totals"]["parcels"] == 1
    session.rollback()


def test_a_running_run_keeps_its_heartbeat_between_chunks(
    engine: Any, session: Session, faces: Faces, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No chunk finishes for a while (parcels being prepared, a long Dask task): the run's
    heartbeat still moves updated_at, so it never looks stalled; once done, it stops."""
    import threading
    import time

    project = helpers.project(session, faces.roles, status=ProjectStatus.collected)
    run = mrv_runs.start_run(
        session,
        actor=faces.coop.actor,
        project_id=project.id,
        period_start=date(2022, 1, 1),
        period_end=date(2024, 12, 31),
        layers=["index"],
    )
    old = utcnow() - mrv_runs.STALLED_AFTER - timedelta(minutes=1)
    run.updated_at = old
    session.commit()
    monkeypatch.setattr(mrv_jobs, "HEARTBEAT_S", 0.05)
    stop = threading.Event()
    beating = threading.Thread(target=mrv_jobs._heartbeat, args=(engine, run.id, stop))
    beating.start()
    deadline = time.monotonic() + 30
    try:
        while True:
            session.expire_all()
            seen = session.get(MrvRun, run.id)
            assert seen is not None
            beat = seen.updated_at
            session.rollback()
            if beat > old:
                break
            assert time.monotonic() < deadline, "no heartbeat"
            time.sleep(0.05)
    finally:
        stop.set()
        beating.join(timeout=30)
    assert not beating.is_alive()
    assert not mrv_runs.is_stalled(seen)
