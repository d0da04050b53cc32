"""The residents' app offline: once a resident has opened /app, its service worker serves the shell
and the last balance seen when the phone has no network (Chromium, 390×844); once they sign out,
or someone else signs in on the same phone, nothing of theirs is kept or shown."""

from __future__ import annotations

from typing import Any

from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import LiveServer
from tests.e2e.test_resident_app import sign_in

OFFLINE_PHONE = "13957209003"  # its own number: one sign-in code a minute per phone
OFFLINE_SIGN_OUT_PHONE = "13957209004"
FIRST, SECOND, THIRD = "13800000004", "13800000005", "13800000006"  # demo residents with points

WORKER_ACTIVE_JS = """() => navigator.serviceWorker.register("/app/sw.js", {scope: "/app"})
  .then(() => Promise.race([
    navigator.serviceWorker.ready.then((r) => (r.active ? "active" : "inactive")),
    new Promise((resolve) => setTimeout(() => resolve("timeout"), 15000)),
  ]), (error) => String(error))"""
# Whose pages the worker keeps: the resident part of its page cache's name ("" signed out).
KEPT_FOR_JS = """() => caches.keys().then((keys) => keys
  .filter((key) => key.startsWith("tanhui-pages-")).map((key) => key.split(":")[1]))"""
# Everything the worker's caches and the page's storage hold, as text.
EVERYTHING_KEPT_JS = """async () => {
  const texts = [JSON.stringify(Object.entries(localStorage))];
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    for (const request of await cache.keys()) {
      const response = await cache.match(request);
      texts.push(request.url + " " + (await response.text()));
    }
  }
  return texts.join("\\n");
}"""


def controlled(phone: Any) -> None:
    """The app under its service worker, which has kept the page now shown."""
    assert phone.evaluate(WORKER_ACTIVE_JS) == "active"
    phone.reload()  # the page the worker now controls; it keeps a copy of what it fetched
    phone.wait_for_function("navigator.serviceWorker.controller !== null")


def resident_of(phone: Any) -> str:
    return str(phone.locator("body").get_attribute("data-resident"))


def test_the_app_shows_the_last_balance_offline(live_server: LiveServer, phone: Any) -> None:
    base = live_server.base_url
    sign_in(phone, live_server, OFFLINE_PHONE)
    controlled(phone)
    balance = phone.locator("p.balance").get_attribute("data-balance")
    assert balance is not None
    phone.wait_for_function("caches.match('/app').then((hit) => hit !== undefined)")

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


def test_signing_out_leaves_nothing_of_the_resident_offline(
    live_server: LiveServer, phone: Any
) -> None:
    base = live_server.base_url
    sign_in(phone, live_server, FIRST)
    controlled(phone)
    first = resident_of(phone)
    balance = phone.locator("p.balance").get_attribute("data-balance")
    phone.goto(f"{base}/app/receipts")
    phone.wait_for_function("caches.match('/app/receipts').then((hit) => hit !== undefined)")
    assert phone.evaluate(KEPT_FOR_JS) == [first]
    assert phone.evaluate(f"localStorage.getItem('tanhui.balance.{first}')") == balance

    # Sign out from the settings tab; the worker forgets the pages, the page the balance.
    phone.goto(f"{base}/app/settings")
    phone.get_by_role("button", name="退出登录").click()
    phone.wait_for_url(f"{base}/app")
    assert phone.get_by_label("手机号码").is_visible()
    phone.wait_for_function(f"""() => caches.keys().then((keys) =>
      !keys.some((key) => key.startsWith("tanhui-pages-") && key.endsWith(":{first}")))""")
    kept = phone.evaluate(EVERYTHING_KEPT_JS)
    assert first not in kept  # neither a page (data-resident) nor the remembered balance

    phone.context.set_offline(True)
    try:
        for path in ("/app", "/app/receipts", "/app/rewards"):
            phone.goto(f"{base}{path}")
            assert phone.locator("p.balance").count() == 0, path
            assert resident_of(phone) == "", path
            assert phone.get_by_label("手机号码").is_visible(), path
        assert phone.evaluate("getComputedStyle(document.body).fontFamily")  # the shell stayed
    finally:
        phone.context.set_offline(False)

    # Someone else signs in on the same phone: offline they see their own pages only.
    sign_in(phone, live_server, SECOND)
    second = resident_of(phone)
    assert second not in {"", first}
    phone.wait_for_function(f"""() => caches.keys().then((keys) =>
      keys.some((key) => key.endsWith(":{second}")))""")
    phone.context.set_offline(True)
    try:
        for path in ("/app", "/app/receipts"):
            phone.goto(f"{base}{path}")
            assert resident_of(phone) == second, path
    finally:
        phone.context.set_offline(False)

    # Without signing out (a session that lapsed, cookies cleared): the next resident to sign
    # in replaces what was kept of the last one.
    phone.context.clear_cookies()
    sign_in(phone, live_server, THIRD)
    third = resident_of(phone)
    phone.wait_for_function(f"""() => caches.keys().then((keys) =>
      keys.some((key) => key.endsWith(":{third}")))""")
    kept = phone.evaluate(EVERYTHING_KEPT_JS)
    assert second not in kept and first not in kept
    phone.context.set_offline(True)
    try:
        phone.goto(f"{base}/app/receipts")  # kept for the second resident only
        assert resident_of(phone) == third
    finally:
        phone.context.set_offline(False)


def test_a_sign_out_without_network_ends_the_session_once_back_online(
    live_server: LiveServer, phone: Any
) -> None:
    """Offline, the sign-out cannot reach the server: the phone forgets the resident at once
    and shows the signed-out page; the server session lives on until the network is back, when
    the worker sends the sign-out (on the browser's background sync, or before the app's next
    request)."""
    import httpx

    base = live_server.base_url
    sign_in(phone, live_server, OFFLINE_SIGN_OUT_PHONE)
    controlled(phone)
    resident = resident_of(phone)
    (cookie,) = [c["value"] for c in phone.context.cookies() if c["name"] == "tanhui_session"]

    def server_says() -> str:
        """Whose /app the server shows to that session cookie (as any client holding it)."""
        page = httpx.get(f"{base}/app", cookies={"tanhui_session": cookie}, timeout=10)
        return page.headers["Tanhui-Resident"]

    assert server_says() == resident
    phone.goto(f"{base}/app/settings")
    phone.context.set_offline(True)
    try:
        phone.get_by_role("button", name="退出登录").click()
        phone.get_by_role("heading", name="已退出登录").wait_for()
        assert_accessible(phone, "app-signed-out-offline")
        assert resident not in phone.evaluate(EVERYTHING_KEPT_JS)
        phone.goto(f"{base}/app/receipts")  # still offline: nothing of theirs, signed out
        assert resident_of(phone) == ""
        assert phone.get_by_role("heading", name="已退出登录").is_visible()
        assert server_says() == resident  # the server has not heard of it yet
    finally:
        phone.context.set_offline(False)

    phone.goto(f"{base}/app")  # back online: the kept sign-out goes first (or a sync sent it)
    assert phone.get_by_label("手机号码").is_visible()
    assert server_says() == ""  # that session is over on the server too
    assert "tanhui_session" not in [c["name"] for c in phone.context.cookies()]
    kept = phone.evaluate(
        "caches.open('tanhui-pending-sign-out').then((c) => c.keys()).then((k) => k.length)"
    )
    assert kept == 0
