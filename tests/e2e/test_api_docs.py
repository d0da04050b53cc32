"""The API documentation page works in a real browser under the app's own CSP, with no CDN."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import LiveServer


def test_api_docs_render_every_operation_offline(live_server: LiveServer, desktop: Any) -> None:
    page = desktop
    refused: list[str] = []
    foreign: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.on(
        "request",
        lambda request: (
            foreign.append(request.url)
            if not request.url.startswith((live_server.base_url, "data:"))
            else None
        ),
    )
    page.goto(f"{live_server.base_url}/api/docs")
    page.locator(".opblock").first.wait_for(timeout=30_000)
    # an operation with several tags is drawn once under each: compare the distinct ones
    shown = set(
        page.evaluate(
            """() => [...document.querySelectorAll('.opblock')].map(block =>
                block.querySelector('.opblock-summary-method').textContent.toLowerCase() + ' ' +
                block.querySelector('.opblock-summary-path').getAttribute('data-path'))"""
        )
    )
    openapi = page.request.get(f"{live_server.base_url}/api/openapi.json").json()
    documented = {
        f"{method} {path}"
        for path, item in openapi["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert shown == documented
    assert refused == []
    assert foreign == []
