"""Sign-in, sessions, CSRF, rate limits, API tokens, roles, residents' one-time codes."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select, text
from sqlmodel import Session

from tanhui import identity, sms
from tanhui.auth import SESSION_COOKIE, Principal, require_org_kind, require_role
from tanhui.db import utcnow
from tanhui.models import OrgKind, Role, WebSession
from tanhui.settings import Settings
from tests import factories
from tests.factories import PASSWORD, login, run_cli


def _csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the form carries a CSRF token"
    return match.group(1)


def test_web_login_sets_a_hardened_cookie(client: TestClient, session: Session) -> None:
    user = factories.user(session)
    session.commit()
    page = client.get("/login")
    assert page.status_code == 200
    response = client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": _csrf_from(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    cookie = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE)
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    me = client.get("/api/v1/me")
    assert me.status_code == 200 and me.json()["email"] == user.email


def test_login_form_without_csrf_token_is_refused(client: TestClient, session: Session) -> None:
    user = factories.user(session)
    session.commit()
    client.get("/login")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 403
    assert client.get("/api/v1/me").status_code == 401


def test_wrong_password_shows_the_error_next_to_the_form(
    client: TestClient, session: Session
) -> None:
    user = factories.user(session)
    session.commit()
    page = client.get("/login", headers={"Accept-Language": "en"})
    response = client.post(
        "/login",
        data={
            "email": user.email,
            "password": "wrong password!",
            "csrf_token": _csrf_from(page.text),
        },
        headers={"Accept-Language": "en", "Accept": "text/html"},
    )
    assert response.status_code == 401
    assert "Wrong email or password" in response.text
    assert 'aria-invalid="true"' in response.text


def test_state_changing_request_with_cookie_needs_the_csrf_token(
    client: TestClient, session: Session
) -> None:
    user = factories.user(session)
    session.commit()
    csrf = login(client, user.email)
    assert client.post("/api/v1/auth/tokens", json={"name": "x"}).status_code == 403
    created = client.post("/api/v1/auth/tokens", json={"name": "x"}, headers={"X-CSRF-Token": csrf})
    assert created.status_code == 201


def test_logout_ends_the_session_for_good(client: TestClient, session: Session) -> None:
    user = factories.user(session)
    session.commit()
    csrf = login(client, user.email)
    stolen = client.cookies.get(SESSION_COOKIE)
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert client.get("/api/v1/me").status_code == 401
    client.cookies.set(SESSION_COOKIE, stolen or "")
    assert client.get("/api/v1/me").status_code == 401


def test_forged_and_expired_cookies_are_logged_out(
    client: TestClient, session: Session, settings: Settings
) -> None:
    user = factories.user(session)
    session.commit()
    login(client, user.email)
    assert client.get("/api/v1/me").status_code == 200
    # forged: signed with another key
    forged = URLSafeTimedSerializer("not the key", salt="tanhui.session").dumps("anything")
    client.cookies.set(SESSION_COOKIE, forged)
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/").status_code == 200  # a page still renders, as anonymous
    # expired: the server-side session has run out
    login(client, user.email)
    session.execute(
        text("UPDATE web_session SET expires_at = :t"), {"t": utcnow() - timedelta(seconds=1)}
    )
    session.commit()
    assert client.get("/api/v1/me").status_code == 401


def test_expired_cookie_signature_is_logged_out(
    client: TestClient, session: Session, settings: Settings
) -> None:
    user = factories.user(session)
    session.commit()
    login(client, user.email)
    key = URLSafeTimedSerializer(settings.secret_key_value, salt="tanhui.session").loads(
        client.cookies.get(SESSION_COOKIE) or ""
    )

    class OldSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - settings.session_max_age_s - 10

    old = URLSafeTimedSerializer(settings.secret_key_value, salt="tanhui.session", signer=OldSigner)
    client.cookies.set(SESSION_COOKIE, old.dumps(key))
    assert client.get("/api/v1/me").status_code == 401


def test_login_rate_limited_per_account(
    client: TestClient, session: Session, settings: Settings
) -> None:
    user = factories.user(session)
    session.commit()
    for _ in range(settings.login_max_failures_per_account):
        bad = client.post(
            "/api/v1/auth/session", json={"email": user.email, "password": "nope nope nope"}
        )
        assert bad.status_code == 401
    locked = client.post("/api/v1/auth/session", json={"email": user.email, "password": PASSWORD})
    assert locked.status_code == 429
    assert locked.headers["content-type"].startswith("application/problem+json")
    assert locked.json()["type"].endswith("auth/too-many-attempts")
    assert int(locked.headers["retry-after"]) > 0


def test_login_rate_limited_per_ip(
    client: TestClient, session: Session, settings: Settings
) -> None:
    user = factories.user(session)
    session.commit()
    for number in range(settings.login_max_failures_per_ip):
        client.post(
            "/api/v1/auth/session",
            json={"email": f"nobody{number}@x.cn", "password": "whatever1234"},
        )
    locked = client.post("/api/v1/auth/session", json={"email": user.email, "password": PASSWORD})
    assert locked.status_code == 429


def test_api_token_from_the_cli_works_until_revoked(
    client: TestClient, session: Session, settings: Settings
) -> None:
    user = factories.user(session, kind=OrgKind.enterprise)
    session.commit()
    result = run_cli(settings, "tokens", "create", "--email", user.email, "--name", "erp")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.startswith("thk_") and "\n" not in token
    headers = {"Authorization": f"Bearer {token}"}
    me = client.get("/api/v1/me", headers=headers)
    assert me.status_code == 200 and me.json()["organisation"]["kind"] == "enterprise"
    # bearer clients need no CSRF token
    listed = client.get("/api/v1/auth/tokens", headers=headers).json()
    assert listed[0]["prefix"] == token[:12] and "token" not in listed[0]
    revoked = client.delete(f"/api/v1/auth/tokens/{listed[0]['id']}", headers=headers)
    assert revoked.status_code == 200
    after = client.get("/api/v1/me", headers=headers)
    assert after.status_code == 401
    assert after.json()["type"].endswith("auth/invalid-token")
    assert (
        client.get("/api/v1/me", headers={"Authorization": "Bearer thk_unknown"}).status_code == 401
    )
    assert client.get("/api/v1/me", headers={"Authorization": "Basic abc"}).status_code == 401


def test_a_token_acts_only_for_the_organisation_it_was_made_in(
    client: TestClient, session: Session
) -> None:
    user = factories.user(session, kind=OrgKind.enterprise)
    token = factories.token_for(session, user)
    other = factories.organisation(session, OrgKind.cooperative)
    session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    user.organisation_id = other.id  # the person moves to another organisation
    session.add(user)
    session.commit()
    moved = client.get("/api/v1/me", headers=headers)
    assert moved.status_code == 401 and moved.json()["type"].endswith("auth/invalid-token")


def test_a_tokens_last_use_is_recorded_without_a_write_per_request(
    client: TestClient, session: Session
) -> None:
    user = factories.user(session, kind=OrgKind.enterprise)
    token = factories.token_for(session, user)
    session.commit()
    headers = {"Authorization": f"Bearer {token}"}

    def last_used() -> object:
        value = session.execute(text("SELECT last_used_at FROM api_token")).scalar_one()
        session.rollback()  # end the read (on SQLite a transaction holds the write lock)
        return value

    assert last_used() is None
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    first = last_used()
    assert first is not None
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    assert last_used() == first  # within five minutes: not written again
    session.execute(
        text("UPDATE api_token SET last_used_at = :at"), {"at": utcnow() - timedelta(minutes=6)}
    )
    session.commit()
    stale = last_used()
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    assert last_used() != stale


def test_tokens_are_stored_hashed(session: Session) -> None:
    user = factories.user(session)
    created = identity.create_api_token(session, user=user, name="x")
    session.commit()
    dump = repr(session.execute(text("SELECT * FROM api_token")).all())
    assert created.token not in dump


def test_another_users_token_answers_404(client: TestClient, session: Session) -> None:
    owner = factories.user(session)
    other = factories.user(session)
    owners_token = identity.create_api_token(session, user=owner).record.id
    other_token = factories.token_for(session, other)
    session.commit()
    response = client.delete(
        f"/api/v1/auth/tokens/{owners_token}", headers={"Authorization": f"Bearer {other_token}"}
    )
    assert response.status_code == 404


def test_admin_routes_need_a_platform_admin(client: TestClient, session: Session) -> None:
    admin = factories.user(session, admin=True)
    member = factories.user(session, kind=OrgKind.platform)
    session.commit()
    assert client.get("/api/v1/admin/organisations").status_code == 401
    member_token = factories.token_for(session, member)
    admin_token = factories.token_for(session, admin)
    session.commit()
    assert (
        client.get(
            "/api/v1/admin/organisations", headers={"Authorization": f"Bearer {member_token}"}
        ).status_code
        == 403
    )
    created = client.post(
        "/api/v1/admin/organisations",
        json={"name": "安吉县某村股份经济合作社", "kind": "cooperative"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert created.status_code == 201
    names = [
        o["name"]
        for o in client.get(
            "/api/v1/admin/organisations", headers={"Authorization": f"Bearer {admin_token}"}
        ).json()
    ]
    assert "安吉县某村股份经济合作社" in names


@pytest.fixture
def guarded_app(settings: Settings) -> TestClient:
    """A small app using the permission dependencies the domain routes use."""
    from tanhui import problems
    from tanhui.db import create_engine

    app = FastAPI()
    app.state.engine = create_engine(settings)
    problems.install(app)

    @app.get("/members-only")
    def members_only(p: Annotated[Principal, Depends(require_role(Role.member))]) -> str:
        return p.actor

    @app.get("/cooperatives-only")
    def cooperatives_only(
        p: Annotated[
            Principal, Depends(require_org_kind(OrgKind.cooperative, minimum=Role.member))
        ],
    ) -> str:
        return p.actor

    return TestClient(app)


@pytest.mark.parametrize(
    ("kind", "role", "members", "cooperatives"),
    [
        (OrgKind.cooperative, Role.owner, 200, 200),
        (OrgKind.cooperative, Role.member, 200, 200),
        (OrgKind.cooperative, Role.viewer, 403, 403),
        (OrgKind.enterprise, Role.member, 200, 403),
    ],
)
def test_role_and_kind_checks(
    guarded_app: TestClient,
    session: Session,
    kind: OrgKind,
    role: Role,
    members: int,
    cooperatives: int,
) -> None:
    user = factories.user(session, kind=kind, role=role)
    token = factories.token_for(session, user)
    session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    assert guarded_app.get("/members-only", headers=headers).status_code == members
    assert guarded_app.get("/cooperatives-only", headers=headers).status_code == cooperatives
    assert guarded_app.get("/members-only").status_code == 401


def test_resident_signs_in_with_a_one_time_code(client: TestClient, session: Session) -> None:
    phone = "13957200001"
    sent = client.post("/api/v1/auth/residents/code", json={"phone": phone})
    assert sent.status_code == 202
    message = sms.last_message_to("+86" + phone)
    assert message is not None
    code = re.search(r"(\d{6})", message).group(1)  # type: ignore[union-attr]
    wrong = "000000" if code != "000000" else "111111"
    assert (
        client.post(
            "/api/v1/auth/residents/session", json={"phone": phone, "code": wrong}
        ).status_code
        == 401
    )
    signed_in = client.post("/api/v1/auth/residents/session", json={"phone": phone, "code": code})
    assert signed_in.status_code == 200
    me = client.get("/api/v1/me").json()
    assert me["kind"] == "resident"
    # a code works once
    client.cookies.clear()
    again = client.post("/api/v1/auth/residents/session", json={"phone": phone, "code": code})
    assert again.status_code == 401


def test_one_time_code_locks_after_five_wrong_tries(client: TestClient, session: Session) -> None:
    phone = "13957200002"
    client.post("/api/v1/auth/residents/code", json={"phone": phone})
    code = re.search(r"(\d{6})", sms.last_message_to("+86" + phone) or "").group(1)  # type: ignore[union-attr]
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        client.post("/api/v1/auth/residents/session", json={"phone": phone, "code": wrong})
    locked = client.post("/api/v1/auth/residents/session", json={"phone": phone, "code": code})
    assert locked.status_code == 401
    assert client.post("/api/v1/auth/residents/code", json={"phone": phone}).status_code == 429


def test_sessions_store_only_key_hashes(client: TestClient, session: Session) -> None:
    user = factories.user(session)
    session.commit()
    login(client, user.email)
    cookie = client.cookies.get(SESSION_COOKIE) or ""
    stored = session.execute(text("SELECT key_hash FROM web_session")).scalars().all()
    assert stored and all(value not in cookie for value in stored)
    assert len(session.execute(select(WebSession)).all()) == 1
