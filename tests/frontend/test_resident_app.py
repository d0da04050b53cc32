"""The residents' app without a browser: sign-in by code, settings, manifest, service worker."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tanhui import sms


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def _sign_in(client: TestClient, phone: str) -> str:
    page = client.get("/app")
    assert "手机号登录" in page.text
    sent = client.post("/app/code", data={"phone": phone, "csrf_token": _csrf(page.text)})
    assert sent.status_code == 200 and 'name="code"' in sent.text
    code = re.search(r"(\d{6})", sms.last_message_to("+86" + phone) or "").group(1)  # type: ignore[union-attr]
    done = client.post(
        "/app/login",
        data={"phone": "+86" + phone, "code": code, "csrf_token": _csrf(sent.text)},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/app"
    return _csrf(client.get("/app/settings").text)


def test_resident_signs_in_and_sees_the_app(client: TestClient) -> None:
    _sign_in(client, "13957201001")
    home = client.get("/app")
    assert home.status_code == 200
    assert 'class="tab-bar"' in home.text
    assert client.get("/api/v1/me").json()["kind"] == "resident"


def test_bad_phone_is_shown_next_to_the_field(client: TestClient) -> None:
    page = client.get("/app")
    response = client.post("/app/code", data={"phone": "12345", "csrf_token": _csrf(page.text)})
    assert response.status_code == 422
    assert 'aria-invalid="true"' in response.text and "不是有效的手机号码" in response.text


def test_code_request_without_csrf_is_refused(client: TestClient) -> None:
    client.get("/app")
    assert client.post("/app/code", data={"phone": "13957201002"}).status_code == 403


def test_wrong_code_is_explained(client: TestClient) -> None:
    page = client.get("/app")
    sent = client.post("/app/code", data={"phone": "13957201003", "csrf_token": _csrf(page.text)})
    code = re.search(r"(\d{6})", sms.last_message_to("+8613957201003") or "").group(1)  # type: ignore[union-attr]
    wrong = "000000" if code != "000000" else "111111"
    response = client.post(
        "/app/login",
        data={"phone": "+8613957201003", "code": wrong, "csrf_token": _csrf(sent.text)},
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 401 and "attempts left" in response.text


def test_elder_mode_and_language_are_saved_and_rendered(client: TestClient) -> None:
    csrf = _sign_in(client, "13957201004")
    assert 'class="app"' in client.get("/app").text
    saved = client.post(
        "/app/settings",
        data={"csrf_token": csrf, "elder_mode": "on", "locale": "en", "display_name": "Grandpa Li"},
    )
    assert saved.status_code == 200
    page = client.get("/app")
    assert 'class="app elder"' in page.text
    assert 'lang="en"' in page.text and "Hello, Grandpa Li" in page.text
    settings_without_csrf = client.post("/app/settings", data={"elder_mode": ""})
    assert settings_without_csrf.status_code == 403


def test_manifest_and_service_worker_make_it_installable(client: TestClient) -> None:
    manifest = client.get("/app/manifest.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    body = manifest.json()
    assert body["start_url"] == "/app" and body["display"] == "standalone"
    for icon in body["icons"]:
        image = client.get(icon["src"])
        assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"
    worker = client.get("/app/sw.js")
    assert worker.status_code == 200 and "caches" in worker.text
    assert worker.headers["content-type"].startswith("text/javascript")
    assert worker.headers["service-worker-allowed"] == "/app"  # app.js registers scope /app


def test_settings_need_a_resident(client: TestClient) -> None:
    response = client.get("/app/settings", headers={"Accept": "text/html"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/app"


def test_app_pages_say_whose_they_are_and_sign_out_ends_the_session(client: TestClient) -> None:
    """The service worker keeps one resident's pages at a time by the Tanhui-Resident header;
    personal pages are never stored by the HTTP cache; signing out (inside /app, where the worker
    sees it) ends the session and lands on the sign-in page, which belongs to nobody."""
    signed_out = client.get("/app")
    assert signed_out.headers["tanhui-resident"] == ""
    assert "no-store" not in signed_out.headers.get("cache-control", "")
    csrf = _sign_in(client, "13957201005")
    home = client.get("/app")
    resident = re.search(r'data-resident="([^"]+)"', home.text).group(1)  # type: ignore[union-attr]
    assert home.headers["tanhui-resident"] == resident
    assert home.headers["cache-control"] == "private, no-store"
    assert client.get("/app/settings").headers["tanhui-resident"] == resident
    assert 'action="/app/logout"' in client.get("/app/settings").text
    assert client.post("/app/logout", data={}).status_code == 403  # the session's CSRF token
    out = client.post("/app/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/app"
    page = client.get("/app")
    assert "手机号登录" in page.text and page.headers["tanhui-resident"] == ""
    assert client.get("/api/v1/me").status_code == 401
