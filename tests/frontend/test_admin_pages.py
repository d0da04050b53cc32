"""Platform administration pages: organisations, users, the audit log."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session

from tanhui import identity
from tests import factories


def _admin(client: TestClient, session: Session) -> str:
    admin = factories.user(session, admin=True)
    session.commit()
    factories.login(client, admin.email)
    page = client.get("/admin")
    assert page.status_code == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


def test_admin_registers_an_organisation_and_a_user(client: TestClient, session: Session) -> None:
    csrf = _admin(client, session)
    made = client.post(
        "/admin/organisations",
        data={"csrf_token": csrf, "name": "章村镇河垓村股份经济合作社", "kind": "cooperative"},
        follow_redirects=False,
    )
    assert made.status_code == 303
    organisation_id = next(
        o.id for o in identity.list_organisations(session) if o.name == "章村镇河垓村股份经济合作社"
    )
    session.rollback()  # release SQLite's write lock before the app writes
    user = client.post(
        "/admin/users",
        data={
            "csrf_token": csrf,
            "email": "hegai@coop.cn",
            "password": "a long password",
            "organisation_id": str(organisation_id),
            "role": "member",
        },
        follow_redirects=False,
    )
    assert user.status_code == 303
    page = client.get("/admin")
    assert "hegai@coop.cn" in page.text and "章村镇河垓村股份经济合作社" in page.text


def test_admin_form_errors_are_shown_next_to_the_field(
    client: TestClient, session: Session
) -> None:
    csrf = _admin(client, session)
    response = client.post(
        "/admin/users",
        data={"csrf_token": csrf, "email": "not-an-email", "password": "a long password"},
    )
    assert response.status_code == 422
    assert 'id="user-email-error"' in response.text


def test_audit_page_shows_the_chain_and_a_break(client: TestClient, session: Session) -> None:
    _admin(client, session)
    page = client.get("/admin/audit")
    assert "审计链校验通过" in page.text and "user.created" in page.text
    session.execute(text("UPDATE audit_record SET action = 'forged' WHERE seq = 1"))
    session.commit()
    broken = client.get("/admin/audit")
    assert "审计链在第 1 条记录处断裂" in broken.text


def test_admin_pages_are_for_admins_only(client: TestClient, session: Session) -> None:
    member = factories.user(session)
    session.commit()
    anonymous = client.get("/admin", headers={"Accept": "text/html"}, follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=/admin"
    factories.login(client, member.email)
    assert client.get("/admin", headers={"Accept": "text/html"}).status_code == 403
