"""Bad input gets a problem+json answer with a stable type, in Chinese and English."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session

from tests import factories

PROBLEM = "application/problem+json"


def test_unknown_api_route_is_a_404_problem(client: TestClient) -> None:
    response = client.get("/api/v1/no/such/thing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["type"] == "/problems/not-found" and body["status"] == 404
    assert set(body["messages"]) == {"zh-CN", "en"}


def test_unknown_page_for_a_browser_is_an_html_404(client: TestClient) -> None:
    response = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")


def test_wrong_content_type_is_415(client: TestClient) -> None:
    response = client.post(
        "/api/v1/auth/session",
        content=b"email=a@b.cn&password=x",
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 415
    assert response.json()["type"] == "/problems/unsupported-media-type"
    form = client.post("/api/v1/auth/session", data={"email": "a@b.cn", "password": "x"})
    assert form.status_code == 415


def test_malformed_json_is_422_naming_the_place(client: TestClient) -> None:
    response = client.post(
        "/api/v1/auth/session",
        content=b'{"email": "a@b.cn", "password": ',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    body = response.json()
    assert body["type"] == "/problems/invalid-input"
    assert body["errors"][0]["code"] == "json_invalid"


def test_missing_field_is_422_with_the_field(client: TestClient) -> None:
    response = client.post("/api/v1/auth/session", json={"email": "a@b.cn"})
    assert response.status_code == 422
    fields = [error["field"] for error in response.json()["errors"]]
    assert fields == ["password"]


def test_oversized_body_is_413(client: TestClient) -> None:
    big = b'{"email": "' + b"a" * (1024 * 1024 + 10) + b'"}'
    response = client.post(
        "/api/v1/auth/session", content=big, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["type"] == "/problems/payload-too-large"


def test_problem_language_follows_accept_language(client: TestClient, session: Session) -> None:
    zh = client.get("/api/v1/me")
    en = client.get("/api/v1/me", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert zh.status_code == en.status_code == 401
    assert zh.json()["title"] == "请登录"
    assert en.json()["title"] == "Please sign in"
    assert zh.json()["messages"]["en"] == en.json()["detail"]


def test_conflict_changes_nothing(client: TestClient, session: Session) -> None:
    admin = factories.user(session, admin=True)
    token = factories.token_for(session, admin)
    session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    body = {"name": "重复的合作社", "kind": "cooperative"}
    assert client.post("/api/v1/admin/organisations", json=body, headers=headers).status_code == 201
    again = client.post("/api/v1/admin/organisations", json=body, headers=headers)
    assert again.status_code == 409
    names = [o["name"] for o in client.get("/api/v1/admin/organisations", headers=headers).json()]
    assert names.count("重复的合作社") == 1


def test_problem_types_are_documented(client: TestClient) -> None:
    page = client.get("/problems/auth/too-many-attempts")
    assert page.status_code == 200
    assert client.get("/problems/no-such-type").status_code == 404


def test_streamed_oversized_body_is_413(client: TestClient) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"x" * 65536

    response = client.post(
        "/api/v1/auth/session", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["type"] == "/problems/payload-too-large"


class _Deadlock(Exception):
    sqlstate = "40P01"  # what psycopg reports for deadlock_detected


def test_a_transaction_aborted_by_a_database_conflict_is_a_503_to_retry() -> None:
    """PostgreSQL resolves a deadlock or serialization failure by aborting one transaction: that
    request changed nothing and may be sent again, so it is a 503 problem, not a 500."""
    from fastapi import FastAPI
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from tanhui import problems

    app = FastAPI()
    problems.install(app)

    @app.post("/api/v1/conflict")
    def conflict() -> None:
        raise OperationalError("UPDATE balance ...", {}, _Deadlock("deadlock detected"))

    @app.post("/api/v1/broken")
    def broken() -> None:
        raise ProgrammingError("SELECT nope", {}, Exception("syntax error"))

    with TestClient(app, raise_server_exceptions=False) as test_client:
        busy = test_client.post("/api/v1/conflict")
        assert busy.status_code == 503
        assert busy.headers["content-type"].startswith(PROBLEM)
        assert busy.headers["retry-after"] == "1"
        assert busy.json()["type"] == "/problems/database-busy"
        assert "UPDATE" not in busy.text and "deadlock" not in busy.text
        other = test_client.post("/api/v1/broken")
        assert other.status_code == 500 and other.json()["type"] == "/problems/internal-error"
        assert "SELECT" not in other.text


class _AdminShutdown(Exception):
    sqlstate = "57P01"  # terminating connection due to administrator command


def test_a_lost_database_connection_is_a_503_to_retry_with_the_key() -> None:
    """The connection dropped mid-request (pg_terminate_backend, a restart): the outcome of a
    commit in flight is unknown, so the answer says to retry with the same key, not a 500."""
    from fastapi import FastAPI
    from sqlalchemy.exc import OperationalError

    from tanhui import problems

    app = FastAPI()
    problems.install(app)

    @app.post("/api/v1/cut")
    def cut() -> None:
        raise OperationalError("COMMIT", {}, _AdminShutdown("terminating connection"))

    @app.post("/api/v1/invalidated")
    def invalidated() -> None:
        raise OperationalError(
            "SELECT 1", {}, Exception("server closed the connection"), connection_invalidated=True
        )

    with TestClient(app, raise_server_exceptions=False) as test_client:
        for path in ("/api/v1/cut", "/api/v1/invalidated"):
            lost = test_client.post(path, headers={"Accept-Language": "en"})
            assert lost.status_code == 503, path
            assert lost.headers["retry-after"] == "1"
            body = lost.json()
            assert body["type"] == "/problems/database-unavailable"
            assert "Idempotency-Key" in body["detail"]
            assert "COMMIT" not in lost.text and "terminating" not in lost.text


def test_every_type_the_handlers_answer_with_has_its_page(client: TestClient) -> None:
    from tanhui import problems

    codes = [code for code, _title in problems._HTTP_PROBLEMS.values()]
    for code in [
        *codes,
        "internal-error",
        "database-busy",
        "database-unavailable",
        "invalid-input",
    ]:
        page = client.get(f"/problems/{code}", headers={"Accept": "text/html"})
        assert page.status_code == 200, code
