"""Hostile files against every upload endpoint, over HTTP, on SQLite and PostgreSQL (issue 16).

A listener on 127.0.0.1 counts connections: no upload may make GDAL (or anything) call it. No
response may carry a line of ``/etc/passwd``, of the signing key or of a canary file, a server
path or GDAL's words; none may be a 500; the process's peak memory stays bounded.
"""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from registry.models import MrvRun, ProjectStatus
from tanhui.settings import Settings
from tests import factories
from tests.frontend.conftest import Faces, as_
from tests.registry import helpers
from tests.security.hostile_files import VECTOR_NAMES, Hostile, corpus

API_IMPORT = "/api/v1/registry/parcels/import"
EN = {"Accept": "text/html", "Accept-Language": "en"}
ZH = {"Accept": "text/html", "Accept-Language": "zh-CN"}
MEMORY_BOUND_KIB = 768 * 1024  # growth of the process's peak RSS over the whole corpus
CANARY = "tanhui-canary-5f1c9a7e-the-file-was-read"


class Listener:
    """A TCP listener on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.port = int(self.socket.getsockname()[1])
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    made = Listener()
    yield made
    made.close()


@pytest.fixture
def secrets(tmp_path: Path, settings: Settings) -> list[Path]:
    canary = tmp_path / "canary.csv"
    canary.write_text(f"secret\n{CANARY}\n{CANARY}-2\n")
    found = [canary, Path("/etc/passwd")]
    if settings.signing_key_path.exists():
        found.append(settings.signing_key_path)
    return found


@pytest.fixture
def hostile(tmp_path: Path, secrets: list[Path], listener: Listener) -> list[Hostile]:
    folder = tmp_path / "corpus"
    folder.mkdir()
    return corpus(folder, secrets=secrets, port=listener.port)


def _forbidden(secrets: list[Path], tmp_path: Path) -> list[str]:
    """Strings no response may contain: lines of the secrets, server paths, GDAL's words."""
    found = [str(tmp_path), "/etc/passwd", "vsicurl", "GDAL", "CPLE_", "tanhui-import", "OGR"]
    for path in secrets:
        lines = [line.strip() for line in path.read_text("utf-8", "replace").splitlines()]
        found += [line for line in lines if len(line) >= 8 and "BEGIN" not in line][:6]
    return found


def _check(
    answers: list[tuple[Hostile, Any]], forbidden: list[str], listener: Listener, rss_before: int
) -> None:
    failures = []
    for item, response in answers:
        if response.status_code >= 500:
            failures.append(f"{item.case}: {response.status_code}")
        leaked = [text for text in forbidden if text in response.text]
        if leaked:
            failures.append(f"{item.case}: the response carries {leaked[:2]}")
    assert not failures, "\n".join(failures)
    assert listener.connections == 0, f"{listener.connections} connections reached the listener"
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert grown < MEMORY_BOUND_KIB, f"peak memory grew by {grown // 1024} MiB"


def test_the_parcel_import_api_refuses_every_hostile_file(
    client: TestClient,
    session: Session,
    faces: Faces,
    hostile: list[Hostile],
    secrets: list[Path],
    listener: Listener,
    tmp_path: Path,
) -> None:
    token = factories.token_for(session, faces.coop.user)
    session.commit()
    headers = {"Authorization": f"Bearer {token}", "Accept-Language": "en"}
    mapping = json.dumps({"code": "secret", "default_land_type": "bamboo"})
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    answers = []
    for item in hostile:
        response = client.post(
            API_IMPORT,
            headers=headers,
            files={"file": (item.name, item.content, "application/octet-stream")},
            data={"mapping": mapping},
        )
        answers.append((item, response))
    _check(answers, _forbidden(secrets, tmp_path), listener, rss)
    accepted = [
        item.case
        for item, response in answers
        if item.refused
        and (
            response.status_code != 422
            or response.json()["type"] != "/problems/registry/invalid-import"
        )
    ]
    assert not accepted, accepted


def test_the_parcel_import_page_refuses_every_hostile_file(
    client: TestClient,
    faces: Faces,
    hostile: list[Hostile],
    secrets: list[Path],
    listener: Listener,
    tmp_path: Path,
) -> None:
    csrf = as_(client, faces.coop)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    answers = []
    for item in hostile:
        response = client.post(
            "/coop/parcels/import",
            data={"csrf_token": csrf, "code": "secret", "default_land_type": "bamboo"},
            files={"file": (item.name, item.content, "application/octet-stream")},
            headers=EN,
        )
        answers.append((item, response))
    _check(answers, _forbidden(secrets, tmp_path), listener, rss)
    accepted = [
        item.case
        for item, response in answers
        if item.refused
        and (response.status_code != 422 or 'id="f-file-error"' not in response.text)
    ]
    assert not accepted, accepted


def test_the_mrv_upload_refuses_every_hostile_file_before_a_run_starts(
    client: TestClient,
    session: Session,
    faces: Faces,
    hostile: list[Hostile],
    secrets: list[Path],
    listener: Listener,
    tmp_path: Path,
) -> None:
    project = helpers.project(session, faces.roles, status=ProjectStatus.collected)
    session.commit()
    csrf = as_(client, faces.coop)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    answers = []
    for item in hostile:
        response = client.post(
            f"/coop/projects/{project.id}/mrv",
            data={
                "csrf_token": csrf,
                "period_start": "2022-01-01",
                "period_end": "2024-12-31",
                "layer_1": "index",
            },
            files={"raster_1": (item.name, item.content, "image/tiff")},
            headers=EN,
            follow_redirects=False,
        )
        answers.append((item, response))
    _check(answers, _forbidden(secrets, tmp_path), listener, rss)
    accepted = [
        item.case
        for item, response in answers
        if response.status_code != 422 or 'id="f-raster_1-error"' not in response.text
    ]
    assert not accepted, accepted
    session.rollback()
    runs = session.exec(select(func.count()).select_from(MrvRun)).one()
    assert runs == 0  # nothing was started, nothing written


@pytest.mark.parametrize("path", ["/coop/households/import", "/coop/contracts/import"])
def test_the_csv_imports_answer_hostile_files_without_reading_them(
    client: TestClient,
    faces: Faces,
    hostile: list[Hostile],
    secrets: list[Path],
    listener: Listener,
    tmp_path: Path,
    path: str,
) -> None:
    csrf = as_(client, faces.coop)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    answers = []
    for item in hostile:
        response = client.post(
            path,
            data={"csrf_token": csrf},
            files={"file": (item.name.rsplit(".", 1)[0] + ".csv", item.content, "text/csv")},
            headers=EN,
        )
        answers.append((item, response))
    _check(answers, _forbidden(secrets, tmp_path), listener, rss)
    assert {response.status_code for _, response in answers} <= {200, 413, 422}


def test_uploads_are_read_only_after_the_role_check(
    client: TestClient, session: Session, faces: Faces, listener: Listener, tmp_path: Path
) -> None:
    """A viewer or another kind of organisation gets 403 and GDAL never sees the file."""
    calling = corpus(tmp_path, secrets=[Path("/etc/passwd")], port=listener.port)
    by_url = [item for item in calling if "url" in item.case and item.name in VECTOR_NAMES]
    assert by_url
    for face in (faces.coop_viewer, faces.enterprise):
        token = factories.token_for(session, face.user)
        session.commit()
        for item in by_url:
            response = client.post(
                API_IMPORT,
                headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"},
                files={"file": (item.name, item.content, "application/octet-stream")},
                data={"mapping": json.dumps({"code": "code", "default_land_type": "bamboo"})},
            )
            assert response.status_code == 403, (item.case, response.text[:200])
    csrf = as_(client, faces.coop_viewer)
    for item in by_url:
        page = client.post(
            "/coop/parcels/import",
            data={"csrf_token": csrf, "code": "code"},
            files={"file": (item.name, item.content, "application/octet-stream")},
            headers=EN,
        )
        assert page.status_code == 403, item.case
    assert listener.connections == 0


def test_upload_refusals_are_plain_words_in_the_readers_language(
    client: TestClient, session: Session, faces: Faces, tmp_path: Path
) -> None:
    """Issue 18: a PNG renamed .tif is refused at upload, in Chinese on a zh-CN page, without
    GDAL's words or a server path; the API answers the same in its problem."""
    png = next(item for item in corpus_small(tmp_path) if item.case == "a PNG named .tif")
    project = helpers.project(session, faces.roles, status=ProjectStatus.collected)
    token = factories.token_for(session, faces.coop.user)
    session.commit()
    csrf = as_(client, faces.coop)
    page = client.post(
        f"/coop/projects/{project.id}/mrv",
        data={
            "csrf_token": csrf,
            "period_start": "2022-01-01",
            "period_end": "2024-12-31",
            "layer_1": "index",
        },
        files={"raster_1": (png.name, png.content, "image/tiff")},
        headers=ZH,
        follow_redirects=False,
    )
    assert page.status_code == 422 and 'id="f-raster_1-error"' in page.text
    assert "不是 GeoTIFF" in page.text
    problem = client.post(
        API_IMPORT,
        headers={"Authorization": f"Bearer {token}", "Accept-Language": "zh-CN"},
        files={"file": ("parcels.geojson", png.content, "application/geo+json")},
        data={"mapping": json.dumps({"code": "code", "default_land_type": "bamboo"})},
    )
    body = problem.json()
    assert problem.status_code == 422 and "GeoPackage" in body["detail"]
    assert "文件" in body["detail"] and "GDAL" not in problem.text and "/tmp" not in problem.text
    assert body["errors"] == [{"field": "file", "message": "unreadable"}]


def corpus_small(folder: Path) -> list[Hostile]:
    target = folder / "small"
    target.mkdir()
    return corpus(target, secrets=[Path("/etc/passwd")], port=9)


def test_gdal_makes_no_request_in_a_process_that_serves_the_app(listener: Listener) -> None:
    """Process-wide: once the app's modules are imported, GDAL (rasterio's and pyogrio's) sends
    nothing, whatever path it is given."""
    url = f"http://127.0.0.1:{listener.port}/"
    script = f"""
import tanhui.app, rasterio, pyogrio
for path in ("/vsicurl/{url}a.tif", "{url}a.tif", "/vsicurl/{url}a.geojson", "{url}a.geojson"):
    for opener in (rasterio.open, pyogrio.read_info):
        try:
            opener(path)
        except Exception:
            pass
"""
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, timeout=120)
    assert listener.connections == 0
