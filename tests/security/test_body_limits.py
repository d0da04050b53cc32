"""Issue 16, bodies: anonymous requests had 250 MB form bodies parsed under ``/coop/projects/*``
(the CSRF check parsed the form before authentication; body limits applied by path prefix).

Limits are now per route (only the MRV upload takes 256 MB), enforced before anything is read,
streamed bodies included; and a browser session's CSRF token is read after the caller is known,
so an anonymous request to a protected page is sent to sign in without its body being parsed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from fastapi.testclient import TestClient
from sqlmodel import Session

from tanhui.models import OrgKind, Role
from tests import factories

HTML = {"Accept": "text/html"}
# A multipart body that cannot be parsed: a handler (or a dependency) that read it would answer
# 400; one that never reads it answers as if it were not there.
BROKEN_MULTIPART = {"Content-Type": "multipart/form-data; boundary=nothere"}
MEGABYTE = 1024 * 1024


def _chunks(total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * 65536
        sent += 65536


def test_an_anonymous_upload_is_sent_to_sign_in_unread(client: TestClient) -> None:
    project = uuid.uuid4()
    for path in (f"/coop/projects/{project}/mrv",):
        response = client.post(
            path,
            content=b"--garbage\r\n" + b"x" * (2 * MEGABYTE),
            headers={**HTML, **BROKEN_MULTIPART},
            follow_redirects=False,
        )
        assert response.status_code == 303, (path, response.status_code, response.text[:200])
        assert response.headers["location"].startswith("/login"), path


def test_a_bearer_caller_without_a_session_is_never_asked_for_a_form(
    client: TestClient, session: Session
) -> None:
    """The CSRF token belongs to browser sessions: an API token's write is not parsed for one."""
    viewer = factories.user(session, kind=OrgKind.cooperative, role=Role.viewer)
    token = factories.token_for(session, viewer)
    session.commit()
    response = client.post(
        f"/api/v1/registry/projects/{uuid.uuid4()}/periods",
        content=b"--garbage",
        headers={"Authorization": f"Bearer {token}", **BROKEN_MULTIPART},
    )
    assert response.status_code in (403, 404, 415, 422), response.text


def test_limits_are_per_route_not_per_prefix(client: TestClient) -> None:
    """Under ``/coop/projects/`` only the MRV upload is large; every other form gets the
    default 1 MB."""
    project = uuid.uuid4()
    form = {**HTML, "Content-Type": "application/x-www-form-urlencoded"}
    for path in (
        f"/coop/projects/{project}/parcels",
        f"/coop/projects/{project}/collect",
        "/coop/projects",
    ):
        declared = client.post(path, content=b"a=" + b"x" * (2 * MEGABYTE), headers=form)
        assert declared.status_code == 413, (path, declared.status_code)
        assert declared.json()["type"] == "/problems/payload-too-large"
    # the MRV upload's own limit is larger: 2 MB is not refused for size (but for sign-in)
    mrv = client.post(
        f"/coop/projects/{project}/mrv",
        content=_chunks(2 * MEGABYTE),
        headers={**HTML, **BROKEN_MULTIPART},
        follow_redirects=False,
    )
    assert mrv.status_code == 303


def test_a_signed_in_write_still_needs_its_csrf_token(client: TestClient, session: Session) -> None:
    member = factories.user(session, kind=OrgKind.cooperative, role=Role.member)
    session.commit()
    csrf = factories.login(client, member.email)
    refused = client.post(
        "/coop/households",
        data={"name": "x", "csrf_token": "wrong"},
        headers=HTML,
        follow_redirects=False,
    )
    assert refused.status_code == 403
    broken = client.post(
        f"/coop/projects/{uuid.uuid4()}/mrv",
        content=b"--garbage",
        headers={**HTML, **BROKEN_MULTIPART},
        follow_redirects=False,
    )
    assert broken.status_code in (400, 403, 422), broken.text[:200]
    assert csrf
