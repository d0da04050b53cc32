"""Web hardening: CSRF on every cookie-authenticated write, session cookie flags, security
headers and a Content-Security-Policy that the templates and served pages actually obey, the
sign-in rate limit, and uploads that are too large, bombs, of the wrong type or with broken
geometries, which must all get a clear problem, never a 500."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.testclient import TestClient

from frontend.templating import STATIC_DIR
from tanhui.app import CONTENT_SECURITY_POLICY
from tanhui.auth import SESSION_COOKIE, optional_principal
from tanhui.settings import Settings
from tests.security.probes import fill_path, path_parameters, route_table
from tests.security.test_authorization_matrix import (
    ALLOWED,
    OVERRIDES,
    RULES,
    Rule,
    _label,
    callers_for,
)
from tests.security.world import PASSWORD, World

TEMPLATES = Path(STATIC_DIR).parent / "templates"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Routes that read no cookie: signed machine endpoints, and the JSON sign-in endpoints (no
# session exists yet; the browser forms for the same use the double-submit cookie).
NO_COOKIE_ROUTES = {
    "POST /api/v1/points/events",
    "POST /api/v1/market/webhooks/stripe",
    "POST /api/v1/auth/session",
    "POST /api/v1/auth/residents/code",
    "POST /api/v1/auth/residents/session",
}
# Forms shown before sign-in: a double-submit cookie instead of the session's token.
ANONYMOUS_FORMS = {"POST /login", "POST /app/code", "POST /app/login"}
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>\s*\S", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"<[^>]+\sstyle\s*=", re.IGNORECASE)
STYLE_BLOCK = re.compile(r"<style[\s>]", re.IGNORECASE)
JAVASCRIPT_URL = re.compile(r"(href|src|action)\s*=\s*[\"']?\s*javascript:", re.IGNORECASE)


def _uses_principal(dependant: Dependant) -> bool:
    if dependant.call is optional_principal:
        return True
    return any(_uses_principal(sub) for sub in dependant.dependencies)


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["type"].startswith("/problems/")
    assert body.get("detail")
    return body


# --- CSRF ----------------------------------------------------------------------------------


def test_every_cookie_authenticated_write_refuses_a_missing_csrf_token(
    world: World, world_client: TestClient
) -> None:
    """Signed in with a cookie, without the session's CSRF token: 403 auth/csrf, on every
    write route of the app (API and pages) that reads the caller."""
    table = route_table(world_client.app)  # type: ignore[arg-type]
    owner = world.caller("cooperative:owner")
    checked, failures = 0, []
    for key, route in sorted(table.items(), key=lambda item: str(item[0])):
        label = _label(key)
        if key.method not in WRITE_METHODS or label in NO_COOKIE_ROUTES:
            continue
        values = {name: world.objects.get(name, "x") for name in path_parameters(key.path)}
        url = fill_path(key.path, values)
        cookie = f"{SESSION_COOKIE}={owner.cookie}"
        if label in ANONYMOUS_FORMS:
            cookie = "tanhui_csrf=expected"  # the double-submit cookie, without the form field
        else:
            assert _uses_principal(route.dependant), f"{label} reads no principal"
        world_client.cookies.clear()
        response = world_client.request(
            key.method, url, headers={"Cookie": cookie, "Accept": "application/json"}, data={}
        )
        checked += 1
        if response.status_code != 403 or "auth/csrf" not in response.text:
            failures.append(f"{label}: {response.status_code} {response.text[:120]}")
        wrong = world_client.request(
            key.method,
            url,
            headers={"Cookie": cookie, "X-CSRF-Token": "forged", "Accept": "application/json"},
        )
        if wrong.status_code != 403:
            failures.append(f"{label} with a forged token: {wrong.status_code}")
    assert checked > 100
    assert not failures, "\n".join(failures)
    for label in NO_COOKIE_ROUTES:
        method, path = label.split(" ", 1)
        route = next(r for k, r in table.items() if k.method == method and k.path == path)
        assert not _uses_principal(route.dependant), f"{label} reads the session cookie"


def test_a_bearer_token_needs_no_csrf_token(world: World, world_client: TestClient) -> None:
    """Tokens are not sent by browsers on their own, so they are not subject to CSRF."""
    response = world_client.post(
        "/api/v1/auth/tokens",
        json={"name": "scripted"},
        headers=world.caller("enterprise:owner").headers(browser=False),
    )
    assert response.status_code == 201, response.text


# --- cookies and headers -------------------------------------------------------------------


def _cookie_attributes(header: str) -> dict[str, str]:
    parts = [part.strip() for part in header.split(";")]
    return {
        part.split("=", 1)[0].lower(): (part.split("=", 1)[1] if "=" in part else "")
        for part in parts[1:]
    }


def test_session_cookie_flags(world: World, world_client: TestClient) -> None:
    response = world_client.post(
        "/api/v1/auth/session", json={"email": "signin@matrix.example.cn", "password": PASSWORD}
    )
    assert response.status_code == 200
    header = next(
        value
        for name, value in response.headers.multi_items()
        if name == "set-cookie" and value.startswith(SESSION_COOKIE + "=")
    )
    attributes = _cookie_attributes(header)
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "lax"
    assert attributes["path"] == "/"
    assert int(attributes["max-age"]) <= 8 * 3600
    assert "secure" not in attributes  # http://testserver: a Secure cookie would never return
    # the CSRF token is in the body, never in a cookie JavaScript could read
    assert response.json()["csrf_token"] not in header


def test_session_cookie_is_secure_behind_https(base_settings: Settings) -> None:
    from fastapi import Response

    from tanhui.auth import set_session_cookie
    from tanhui.settings import use_settings

    use_settings(base_settings.model_copy(update={"base_url": "https://tanhui.example.cn"}))
    try:
        response = Response()
        set_session_cookie(response, "key")
        attributes = _cookie_attributes(response.headers["set-cookie"])
    finally:
        use_settings(base_settings)
    assert "secure" in attributes and "httponly" in attributes


EXPECTED_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/", {"Accept": "text/html"}),
        ("/login", {"Accept": "text/html"}),
        ("/app", {"Accept": "text/html"}),
        ("/api/v1/public/projects", {}),
        ("/api/openapi.json", {}),
        ("/nowhere", {"Accept": "text/html"}),
        ("/api/v1/nowhere", {}),
        ("/static/css/base.css", {}),
    ],
)
def test_security_headers_on_every_kind_of_answer(
    world_client: TestClient, path: str, headers: dict[str, str]
) -> None:
    response = world_client.get(path, headers=headers)
    assert response.status_code < 500
    for name, value in EXPECTED_HEADERS.items():
        assert response.headers.get(name) == value, (path, name)
    policy = response.headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY
    directives = dict(
        [*part.strip().split(" ", 1), ""][:2] for part in policy.split(";") if part.strip()
    )
    assert directives["frame-ancestors"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_too_large_bodies_get_the_headers_too(world_client: TestClient) -> None:
    response = world_client.post(
        "/api/v1/auth/session",
        content=b"x" * (1024 * 1024 + 1),
        headers={"Content-Type": "application/json"},
    )
    _problem(response, 413)
    assert response.headers["x-content-type-options"] == "nosniff"


def test_templates_have_no_inline_script_style_or_handlers() -> None:
    """The CSP forbids inline scripts, event-handler attributes and inline styles; a template
    using one would break silently in the browser."""
    offenders = []
    templates = sorted(TEMPLATES.rglob("*.html"))
    assert len(templates) > 30
    for template in templates:
        text = template.read_text(encoding="utf-8")
        for name, pattern in (
            ("inline <script>", INLINE_SCRIPT),
            ("on*= handler", EVENT_HANDLER),
            ("style= attribute", STYLE_ATTRIBUTE),
            ("<style> block", STYLE_BLOCK),
            ("javascript: URL", JAVASCRIPT_URL),
        ):
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                offenders.append(f"{template.relative_to(TEMPLATES)}:{line}: {name}")
    assert not offenders, "\n".join(offenders)


def test_every_served_page_obeys_the_policy(world: World, world_client: TestClient) -> None:
    """Every HTML page, fetched as a caller who may see it, has no inline script, handler or
    style (maps and charts are SVG drawn on the server: their styling must be attributes the
    CSP allows, not ``style=``)."""
    table = route_table(world_client.app)  # type: ignore[arg-type]
    pages, offenders = 0, []
    for key in sorted(table, key=str):
        label = _label(key)
        rule = RULES.get(label)
        if key.method != "GET" or key.path.startswith("/api/") or not isinstance(rule, Rule):
            continue
        allowed = [c for c in callers_for(rule, world) if rule.expected(c) == ALLOWED]
        if not allowed:
            continue
        caller = allowed[-1]
        override = OVERRIDES.get(label, {})
        values = {name: world.objects.get(name, "") for name in path_parameters(key.path)}
        for name, value in override.get("path", {}).items():
            values[name] = world.objects.get(value, value)
        url = override.get("url") or fill_path(key.path, values)
        world_client.cookies.clear()
        response = world_client.get(
            url, headers={**caller.headers(browser=True), "Accept": "text/html"}
        )
        if not response.headers.get("content-type", "").startswith("text/html"):
            continue
        pages += 1
        assert response.status_code < 500, (label, response.status_code)
        for name, pattern in (
            ("inline <script>", INLINE_SCRIPT),
            ("on*= handler", EVENT_HANDLER),
            ("style= attribute", STYLE_ATTRIBUTE),
            ("<style> block", STYLE_BLOCK),
            ("javascript: URL", JAVASCRIPT_URL),
        ):
            if pattern.search(response.text):
                offenders.append(f"{label} as {caller.name}: {name}")
    assert pages > 40
    assert not offenders, "\n".join(offenders)


# --- the sign-in rate limit ----------------------------------------------------------------


def test_sign_in_is_rate_limited_per_account(world: World, world_client: TestClient) -> None:
    email = world.caller("court:viewer").email
    for _ in range(5):
        wrong = world_client.post(
            "/api/v1/auth/session", json={"email": email, "password": "wrong password!"}
        )
        _problem(wrong, 401)
    limited = world_client.post("/api/v1/auth/session", json={"email": email, "password": PASSWORD})
    body = _problem(limited, 429)
    assert body["type"] == "/problems/auth/too-many-attempts"
    assert int(limited.headers["retry-after"]) > 0
    # the browser form obeys the same limit
    world_client.cookies.clear()
    page = world_client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": "t"},
        headers={"Cookie": "tanhui_csrf=t", "Accept": "text/html"},
    )
    assert page.status_code == 429
    # another account from the same address still signs in
    other = world_client.post(
        "/api/v1/auth/session", json={"email": "signin@matrix.example.cn", "password": PASSWORD}
    )
    assert other.status_code == 200


def test_sign_in_is_rate_limited_per_address(world: World, world_client: TestClient) -> None:
    for number in range(20):
        world_client.post(
            "/api/v1/auth/session",
            json={"email": f"nobody{number}@example.cn", "password": "wrong password!"},
        )
    limited = world_client.post(
        "/api/v1/auth/session", json={"email": "signin@matrix.example.cn", "password": PASSWORD}
    )
    # the right password of a real account is refused too: the address is limited, not the account
    assert _problem(limited, 429)["type"] == "/problems/auth/too-many-attempts"


def test_resident_codes_are_rate_limited(world_client: TestClient) -> None:
    first = world_client.post("/api/v1/auth/residents/code", json={"phone": "13911112222"})
    assert first.status_code == 202
    again = world_client.post("/api/v1/auth/residents/code", json={"phone": "13911112222"})
    _problem(again, 429)


# --- uploads -------------------------------------------------------------------------------

IMPORT = "/api/v1/registry/parcels/import"
MAPPING = json.dumps({"code": "code", "village": "village", "default_land_type": "bamboo"})


def _coop(world: World) -> dict[str, str]:
    return world.caller("cooperative:member").headers(browser=False)


def _import(client: TestClient, world: World, name: str, content: bytes) -> Any:
    return client.post(
        IMPORT,
        headers=_coop(world),
        files={"file": (name, content, "application/octet-stream")},
        data={"mapping": MAPPING},
    )


def _feature(coordinates: Any, geometry_type: str = "Polygon") -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"code": "HOSTILE-1", "village": "x"},
        "geometry": {"type": geometry_type, "coordinates": coordinates},
    }


def _collection(*features: dict[str, Any]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()


def test_an_oversized_upload_is_refused_before_it_is_read(
    world: World, world_client: TestClient
) -> None:
    from registry.api import BODY_LIMITS, IMPORT_PATH

    limit = BODY_LIMITS[IMPORT_PATH]
    response = world_client.post(
        IMPORT,
        headers={
            **_coop(world),
            "Content-Type": "multipart/form-data; boundary=x",
            "Content-Length": str(limit + 1),
        },
        content=b"--x--\r\n",
    )
    assert _problem(response, 413)["type"] == "/problems/payload-too-large"
    # the default limit for an ordinary JSON route, with a real body
    big = world_client.post(
        "/api/v1/registry/parcels",
        headers={**_coop(world), "Content-Type": "application/json"},
        content=b'{"code": "' + b"x" * (1024 * 1024 + 10) + b'"}',
    )
    assert _problem(big, 413)["type"] == "/problems/payload-too-large"


def test_a_zip_bomb_is_refused(world: World, world_client: TestClient) -> None:
    from tanhui.uploads import MAX_UNZIPPED_BYTES

    buffer = io.BytesIO()
    chunk = b"\0" * (16 * 1024 * 1024)
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as bomb:
        with bomb.open("parcels.shp", "w", force_zip64=True) as entry:
            for _ in range(MAX_UNZIPPED_BYTES // len(chunk) + 1):
                entry.write(chunk)
        bomb.writestr("parcels.dbf", b"")
        bomb.writestr("parcels.shx", b"")
    content = buffer.getvalue()
    assert len(content) < 4 * 1024 * 1024  # small on the wire, large unpacked
    body = _problem(_import(world_client, world, "bomb.zip", content), 422)
    assert "MiB" in body["detail"] or "unzip" in body["detail"].lower() or body["detail"]


def test_many_small_files_in_a_zip_are_refused(world: World, world_client: TestClient) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for number in range(500):
            archive.writestr(f"f{number}.txt", b"x")
    body = _problem(_import(world_client, world, "many.zip", buffer.getvalue()), 422)
    assert body["type"] == "/problems/registry/invalid-import"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("parcels.geojson", b"\x89PNG\r\n\x1a\n" + b"\0" * 64),  # an image named .geojson
        ("parcels.exe", b"MZ" + b"\0" * 64),  # a type we do not read
        ("parcels.zip", b"PK\x03\x04 not really a zip"),
        ("parcels.gpkg", b"SQLite format 3\0" + b"\0" * 100),  # a broken GeoPackage
        ("parcels.geojson", b'{"type": "FeatureCollection", "features": [{"type": '),
        ("parcels.geojson", "中文".encode("utf-16")),
    ],
)
def test_unreadable_files_get_a_clear_problem(
    world: World, world_client: TestClient, name: str, content: bytes
) -> None:
    body = _problem(_import(world_client, world, name, content), 422)
    assert body["type"] == "/problems/registry/invalid-import"


SQUARE = [[119.6, 30.6], [119.601, 30.6], [119.601, 30.601], [119.6, 30.601], [119.6, 30.6]]
HOSTILE_GEOMETRIES = {
    "bow tie": [
        [[119.6, 30.6], [119.601, 30.601], [119.601, 30.6], [119.6, 30.601], [119.6, 30.6]]
    ],
    "two points": [[[119.6, 30.6], [119.601, 30.6]]],
    "huge coordinates": [[[1e308, 1e308], [-1e308, 1e308], [1e308, -1e308], [1e308, 1e308]]],
    "outside the earth": [[[500.0, 95.0], [501.0, 95.0], [501.0, 96.0], [500.0, 95.0]]],
    "not numbers": [[["a", "b"], ["c", "d"], ["e", "f"], ["a", "b"]]],
    "nested too deep": [[[[[[119.6, 30.6]]]]]],
    "empty": [],
}


@pytest.mark.parametrize("case", list(HOSTILE_GEOMETRIES))
def test_hostile_geometries_get_a_clear_problem(
    world: World, world_client: TestClient, case: str
) -> None:
    coordinates = HOSTILE_GEOMETRIES[case]
    created = world_client.post(
        "/api/v1/registry/parcels",
        headers=_coop(world),
        json={
            "code": f"HOSTILE-{case}",
            "land_type": "bamboo",
            "geometry": {"type": "Polygon", "coordinates": coordinates},
        },
    )
    _problem(created, 422)
    imported = _import(world_client, world, "hostile.geojson", _collection(_feature(coordinates)))
    assert imported.status_code in (200, 201, 422), imported.text[:300]
    if imported.status_code != 422:
        report = imported.json()
        assert report["imported"] == 0 and report["rejected"], report


def test_nan_and_infinite_numbers_are_refused(world: World, world_client: TestClient) -> None:
    body = (
        b'{"code": "NAN-1", "land_type": "bamboo", "geometry": {"type": "Polygon",'
        b' "coordinates": [[[NaN, 30.6], [Infinity, 30.6], [119.6, -Infinity], [NaN, 30.6]]]}}'
    )
    response = world_client.post(
        "/api/v1/registry/parcels",
        headers={**_coop(world), "Content-Type": "application/json"},
        content=body,
    )
    assert response.status_code == 422, response.text[:300]


@pytest.mark.parametrize(
    ("path", "field", "name", "content", "kind"),
    [
        ("/api/v1/registry/ets-prices", "file", "prices.csv", b"\xff\xfe\x00garbage", "import"),
        (
            "/api/v1/registry/ets-prices",
            "file",
            "prices.csv",
            b"date,close\nnot a day,abc\n",
            "price-file",
        ),
        (
            "/api/v1/registry/ets-prices",
            "file",
            "prices.csv",
            b"date,close\n2020-01-02,1e400\n",
            "price-file",
        ),
    ],
)
def test_broken_price_files_get_a_clear_problem(
    world: World,
    world_client: TestClient,
    path: str,
    field: str,
    name: str,
    content: bytes,
    kind: str,
) -> None:
    response = world_client.post(
        path,
        headers=world.caller("authority:member").headers(browser=False),
        files={field: (name, content, "text/csv")},
    )
    assert _problem(response, 422)["type"] == f"/problems/registry/invalid-{kind}"


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("/coop/households/import", b"\x00\x01\x02 binary, not CSV"),
        ("/coop/households/import", b"name,village\n" + b"x," * 5000 + b"\n"),
        ("/coop/contracts/import", '名称\n"unterminated'.encode()),
        ("/coop/parcels/import", b"\x89PNG\r\n\x1a\n"),
    ],
)
def test_portal_uploads_never_answer_500(
    world: World, world_client: TestClient, path: str, content: bytes
) -> None:
    caller = world.caller("cooperative:member")
    world_client.cookies.clear()
    response = world_client.post(
        path,
        headers={**caller.headers(browser=True), "Accept": "text/html"},
        files={"file": ("upload.csv", content, "text/csv")},
        data={"csrf_token": caller.csrf or "", "mapping": MAPPING},
    )
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
