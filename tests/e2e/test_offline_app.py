"""The residents' app offline: once a resident has opened /app, its service worker serves the shell
and the last balance seen when the phone has no network (Chromium, 390×844)."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import LiveServer
from tests.e2e.test_resident_app import sign_in

OFFLINE_PHONE = "13957209003"  # its own number: one sign-in code a minute per phone


def test_the_app_shows_the_last_balance_offline(live_server: LiveServer, phone: Any) -> None:
    base = live_server.base_url
    sign_in(phone, live_server, OFFLINE_PHONE)
    registered = phone.evaluate(
        """() => navigator.serviceWorker.register("/app/sw.js", {scope: "/app"})
          .then(() => Promise.race([
            navigator.serviceWorker.ready.then((r) => (r.active ? "active" : "inactive")),
            new Promise((resolve) => setTimeout(() => resolve("timeout"), 15000)),
          ]), (error) => String(error))"""
    )
    assert registered == "active", registered
    phone.reload()  # the page the worker now controls; it keeps a copy of what it fetched
    phone.wait_for_function("navigator.serviceWorker.controller !== null")
    balance = phone.locator("p.balance").get_attribute("data-balance")
    assert balance is not None
    phone.wait_for_function(
        "caches.open('tanhui-app-v1').then((cache) => cache.match('/app'))"
        ".then((hit) => hit !== undefined)"
    )

    phone.context.set_offline(True)
    try:
        phone.goto(f"{base}/app")
        assert phone.locator("p.balance").get_attribute("data-balance") == balance
        assert phone.locator(".tab-bar").is_visible()
        css = phone.evaluate("getComputedStyle(document.body).fontFamily")
        assert css  # the stylesheet came from the cache too
        phone.goto(f"{base}/app/manifest.webmanifest")
        assert "碳惠" in phone.content() or "Tanhui" in phone.content()
    finally:
        phone.context.set_offline(False)
