"""The residents' app keeps text at 4.5:1 or more on every tab, disabled buttons included (a new
resident cannot afford any reward yet, so every redeem button is disabled), labels every field
and works by keyboard."""

from __future__ import annotations

from typing import Any

from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import LiveServer
from tests.e2e.test_resident_app import sign_in

TABS = ["/app", "/app/rewards", "/app/receipts", "/app/vouchers", "/app/settings", "/app/pool"]


def test_every_tab_reaches_the_contrast_and_labels_every_field(
    live_server: LiveServer, phone: Any
) -> None:
    sign_in(phone, live_server, "13957209005")  # a new resident with no points
    for path in TABS:
        phone.goto(f"{live_server.base_url}{path}")
        if path == "/app/rewards":
            assert phone.locator("button[disabled]").count() >= 1
        assert_accessible(phone, path)
