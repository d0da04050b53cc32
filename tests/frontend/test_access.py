"""Who may open which face: sign-in redirects, 403 for the wrong role, 404 for others' objects."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from fastapi.testclient import TestClient
from sqlmodel import Session

from registry.models import ProjectStatus
from registry.service import projects
from tests.frontend.conftest import HTML, Faces, as_, csrf_of
from tests.registry import helpers

ORGANISATION_PAGES = [
    "/coop",
    "/coop/households",
    "/coop/contracts",
    "/coop/parcels",
    "/coop/pledges",
    "/coop/projects/new",
    "/verifier",
    "/authority",
]


def test_anonymous_visitors_are_sent_to_sign_in(client: TestClient) -> None:
    for path in ORGANISATION_PAGES:
        response = client.get(path, headers=HTML, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == f"/login?next={path}"
    query = client.get("/coop/households?village=大里村", headers=HTML, follow_redirects=False)
    target = parse_qs(urlsplit(query.headers["location"]).query)["next"][0]
    assert unquote(target) == "/coop/households?village=大里村"
    posted = client.post("/coop/households", data={"name": "x"}, follow_redirects=False)
    assert (
        posted.status_code == 303 and posted.headers["location"] == "/login?next=/coop/households"
    )


def test_sign_in_returns_to_the_page_asked_for(
    client: TestClient, session: Session, faces: Faces
) -> None:
    login = client.get("/coop/parcels", headers=HTML)  # follows to the sign-in form
    assert login.url.path == "/login" and 'value="/coop/parcels"' in login.text
    done = client.post(
        "/login",
        data={
            "email": faces.coop.user.email,
            "password": "correct horse battery",
            "csrf_token": csrf_of(login.text),
            "next": "/coop/parcels",
        },
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/coop/parcels"


def test_each_face_is_for_its_kind_of_organisation(
    client: TestClient, session: Session, faces: Faces
) -> None:
    as_(client, faces.enterprise)
    for path in ("/coop", "/verifier", "/authority"):
        assert client.get(path, headers=HTML).status_code == 403
    as_(client, faces.coop)
    assert client.get("/coop", headers=HTML).status_code == 200
    assert client.get("/verifier", headers=HTML).status_code == 403
    assert client.get("/authority", headers=HTML).status_code == 403
    as_(client, faces.verifier)
    assert client.get("/verifier", headers=HTML).status_code == 200
    assert client.get("/authority", headers=HTML).status_code == 403
    as_(client, faces.authority)
    assert client.get("/authority", headers=HTML).status_code == 200
    assert client.get("/coop", headers=HTML).status_code == 403


def test_viewers_read_but_do_not_act(client: TestClient, session: Session, faces: Faces) -> None:
    csrf = as_(client, faces.coop_viewer)
    page = client.get("/coop/households", headers=HTML)
    assert page.status_code == 200 and 'method="post" action="/coop/households"' not in page.text
    refused = client.post(
        "/coop/households",
        data={"csrf_token": csrf, "name": "王建国", "village": "大里村", "national_id": "x"},
        headers=HTML,
    )
    assert refused.status_code == 403
    assert client.get("/coop/projects/new", headers=HTML).status_code == 403


def test_another_cooperatives_objects_answer_404(
    client: TestClient, session: Session, faces: Faces
) -> None:
    project = helpers.project(session, faces.roles, status=ProjectStatus.submitted)
    period = projects.periods(session, project.id)[0]
    household = helpers.household(session, faces.coop.actor)
    session.commit()
    as_(client, faces.other_coop)
    for path in (
        f"/coop/projects/{project.id}",
        f"/coop/periods/{period.id}",
        f"/coop/households/{household.id}",
        "/coop/mrv/0123456789abcdef0123456789abcdef",
    ):
        assert client.get(path, headers=HTML).status_code == 404, path


def test_forms_without_the_csrf_token_are_refused(
    client: TestClient, session: Session, faces: Faces
) -> None:
    as_(client, faces.coop)
    response = client.post(
        "/coop/households",
        data={"name": "王建国", "village": "大里村", "national_id": "x"},
        headers=HTML,
    )
    assert response.status_code == 403
