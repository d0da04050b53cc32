"""A portal MRV run has a time budget and can be cancelled; its failures name files, not the
server's folders (issue 16, issue 18)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from frontend import mrv_jobs
from registry.models import MrvRun, MrvRunState, ProjectStatus
from registry.service import mrv_runs
from tanhui.app import create_app
from tanhui.settings import Settings
from tests.frontend.conftest import Faces, as_
from tests.frontend.test_coop_pages import _wait_for_job
from tests.frontend.test_mrv_runs import _index_over
from tests.registry import helpers

EN = {"Accept": "text/html", "Accept-Language": "en"}


def _start(client: TestClient, csrf: str, project_id: Any, rasters: dict[str, bytes]) -> str:
    data = {"csrf_token": csrf, "period_start": "2022-01-01", "period_end": "2024-12-31"}
    files = {}
    for slot, (layer, content) in enumerate(rasters.items(), start=1):
        data[f"layer_{slot}"] = layer
        files[f"raster_{slot}"] = (f"{layer}.tif", content, "image/tiff")
    started = client.post(
        f"/coop/projects/{project_id}/mrv", data=data, files=files, follow_redirects=False
    )
    assert started.status_code == 303, started.text
    job_url = str(started.headers["location"])
    assert re.fullmatch(r"/coop/mrv/[0-9a-f]{32}", job_url)
    return job_url


def _run(session: Session, job_url: str) -> MrvRun:
    session.expire_all()
    run = session.get(MrvRun, mrv_jobs.run_id_of(job_url.rsplit("/", 1)[1]))
    assert run is not None
    session.rollback()
    return run


@pytest.fixture
def no_time(settings: Settings) -> Iterator[TestClient]:
    """A web process whose MRV runs have no time at all."""
    application = create_app(settings.model_copy(update={"mrv_time_budget_s": 0}))
    with TestClient(application, base_url="http://testserver") as client:
        yield client
    application.state.engine.dispose()


def test_a_run_over_its_time_budget_is_stopped(
    no_time: TestClient, session: Session, faces: Faces
) -> None:
    project = helpers.project(session, faces.roles, status=ProjectStatus.collected)
    raster = _index_over(session, project.id)
    session.commit()
    csrf = as_(no_time, faces.coop)
    job_url = _start(no_time, csrf, project.id, {"index": raster})
    assert _wait_for_job(no_time, job_url)["state"] == "failed"
    page = no_time.get(job_url, headers=EN)
    assert "took longer than its budget of 0 s" in page.text
    run = _run(session, job_url)
    assert run.error_code == mrv_runs.OVER_BUDGET and run.report_json is None


def test_a_run_can_be_cancelled_by_its_cooperative(
    client: TestClient, session: Session, faces: Faces
) -> None:
    project = helpers.project(session, faces.roles, status=ProjectStatus.collected)
    raster = _index_over(session, project.id)
    session.commit()
    csrf = as_(client, faces.coop)
    assert mrv_jobs._running.acquire(timeout=120)  # an earlier run holds the slot: it waits
    try:
        job_url = _start(client, csrf, project.id, {"index": raster})
        waiting = client.get(job_url, headers=EN)
        assert f'action="{job_url}/cancel"' in waiting.text
        viewer_csrf = as_(client, faces.coop_viewer)
        refused = client.post(f"{job_url}/cancel", data={"csrf_token": viewer_csrf}, headers=EN)
        assert refused.status_code == 403
        as_(client, faces.other_coop)
        assert client.post(f"{job_url}/cancel", headers=EN).status_code in {403, 404}
        csrf = as_(client, faces.coop)
        cancelled = client.post(
            f"{job_url}/cancel", data={"csrf_token": csrf}, follow_redirects=False
        )
        assert cancelled.status_code == 303 and cancelled.headers["location"] == job_url
    finally:
        mrv_jobs._running.release()
    assert _wait_for_job(client, job_url)["state"] == "failed"
    page = client.get(job_url, headers=EN)
    assert "The run was cancelled." in page.text
    again = client.post(f"{job_url}/cancel", data={"csrf_token": csrf}, headers=EN)
    assert again.status_code == 409 and "nothing to cancel" in again.text
    run = _run(session, job_url)
    assert run.state == MrvRunState.failed and run.error_code == mrv_runs.CANCELLED
    assert run.report_json is None and run.finished_at is not None
    for _ in range(100):  # the background thread removes the inputs once it sees the run ended
        if not mrv_jobs.job_dir(job_url.rsplit("/", 1)[1]).exists():
            break
        import time

        time.sleep(0.1)
    assert not mrv_jobs.job_dir(job_url.rsplit("/", 1)[1]).exists()


def test_a_failed_run_names_its_files_not_the_servers_folders(
    client: TestClient, session: Session, faces: Faces, settings: Settings
) -> None:
    """Two rasters on different grids fail the estimate; the page says which files, without
    the state folder's path (issue 18)."""
    import numpy as np
    from rasterio.io import MemoryFile

    project = helpers.project(session, faces.roles, status=ProjectStatus.collected)
    index = _index_over(session, project.id)
    session.commit()
    with MemoryFile(index) as memory, memory.open() as dataset:
        profile = dataset.profile
        profile.update(width=dataset.width - 1)
        data = dataset.read()[:, :, :-1]
    with MemoryFile() as other, other.open(**profile) as written:
        written.write(np.asarray(data))
        written.close()
        red = bytes(other.read())
    csrf = as_(client, faces.coop)
    job_url = _start(client, csrf, project.id, {"index": index, "red": red})
    assert _wait_for_job(client, job_url)["state"] == "failed"
    page = client.get(job_url, headers=EN)
    assert "is not on the same grid" in page.text, page.text
    assert "red.tif" in page.text or "index.tif" in page.text
    assert str(settings.state_dir) not in page.text and "mrv-jobs" not in page.text
