"""Health, readiness, pages, headers and the OpenAPI document."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tanhui.app import create_app
from tanhui.settings import Settings


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok"}


def test_not_ready_before_migrations(base_settings: Settings, tmp_path: Path) -> None:
    settings = base_settings.model_copy(update={"database_url": f"sqlite:///{tmp_path}/empty.db"})
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["migrations"] == "behind"


def test_security_headers_on_pages_and_api(client: TestClient) -> None:
    for path in ("/login", "/api/v1/me", "/healthz"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        assert "'unsafe-inline'" not in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"


def test_login_page_in_both_languages(client: TestClient) -> None:
    zh = client.get("/login")
    assert "登录" in zh.text and 'lang="zh-CN"' in zh.text
    client.cookies.set("tanhui_lang", "en")
    en = client.get("/login")
    assert "Sign in" in en.text and 'lang="en"' in en.text


def test_language_switch_sets_the_cookie(client: TestClient) -> None:
    response = client.get("/lang/en?next=/login", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    evil = client.get("/lang/en?next=https://evil.example/", follow_redirects=False)
    assert evil.headers["location"] == "/"


def test_openapi_documents_every_api_route(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    assert spec["paths"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), f"{method.upper()} {path} has no summary"
            assert "200" in operation["responses"] or any(
                code.startswith("2") for code in operation["responses"]
            )
