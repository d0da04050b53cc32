"""Carbon points in a real browser: a partner posts a signed event to the running demo, the
resident (390×844 phone) sees the receipt, redeems a reward and shows the voucher; the
merchant confirms it from the QR code's page."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from typing import Any

import httpx

from registry.inclusion.demo import BNB, BUS, PARTNERS_FILE, RECYCLING
from registry.inclusion.service.signatures import sign
from tanhui.db import utcnow
from tests.e2e.a11y import shot
from tests.e2e.conftest import LiveServer
from tests.e2e.test_resident_app import sign_in

PHONE = "13957209010"


def _post(server: LiveServer, partner: dict[str, str], events: list[dict[str, Any]]) -> Any:
    raw = json.dumps({"events": events}).encode()
    response = httpx.post(
        f"{server.base_url}/api/v1/points/events",
        content=raw,
        headers={
            "X-Tanhui-Partner": partner["id"],
            "X-Tanhui-Signature": sign(partner["secret"], raw, timestamp=int(time.time())),
            "Content-Type": "application/json",
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_receipt_redeem_and_merchant_confirmation(
    live_server: LiveServer, phone: Any, desktop: Any
) -> None:
    partners = json.loads((live_server.folder / ".tanhui" / PARTNERS_FILE).read_text("utf-8"))
    assert {BUS, RECYCLING, BNB} <= set(partners)
    sign_in(phone, live_server, PHONE)  # a first sign-in registers the resident
    when = utcnow() - timedelta(hours=2)
    ride = _post(
        live_server,
        partners[BUS],
        [
            {
                "partner_event_id": "e2e-ride-1",
                "resident": {"phone": PHONE},
                "scenario": "bus",
                "quantity": 12.5,
                "occurred_at": when.isoformat(),
            }
        ],
    )
    assert ride["results"][0]["status"] == "accepted" and ride["results"][0]["points"] == 33
    clothes = _post(
        live_server,
        partners[RECYCLING],
        [
            {
                "partner_event_id": "e2e-clothes-1",
                "resident": {"phone": PHONE},
                "scenario": "recycling",
                "variant": "textile",
                "quantity": 2,
                "occurred_at": when.isoformat(),
            }
        ],
    )
    assert clothes["results"][0]["points"] == 256

    phone.goto(f"{live_server.base_url}/app")
    balance = phone.locator("[data-balance]")
    assert balance.get_attribute("data-balance") == "289"
    assert phone.get_by_text("湖州公交集团（演示）").first.is_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    shot(phone, "points-home")
    phone.get_by_role("link", name="乘坐公交").first.click()
    phone.wait_for_url(re.compile(r".*/app/receipts/.+"))
    assert phone.get_by_text("深圳市低碳公共出行方法学（2021）").is_visible()
    assert phone.get_by_text("26.9 g CO2e").first.is_visible()
    shot(phone, "points-receipt")

    phone.goto(f"{live_server.base_url}/app/rewards")
    reward = phone.locator("article.reward", has_text="莫干山民宿住宿 20 元抵用券")
    reward.get_by_role("button", name="用 200 积分兑换").click()
    phone.wait_for_url(re.compile(r".*/app/vouchers/.+"))
    code = phone.locator(".voucher .code").inner_text().strip()
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}", code)
    qr = phone.locator("img.qr")
    assert qr.evaluate("image => image.complete && image.naturalWidth > 0")
    assert phone.get_by_role("status").inner_text().strip() == "可使用"
    shot(phone, "points-voucher")
    phone.goto(f"{live_server.base_url}/app")
    assert phone.locator("[data-balance]").get_attribute("data-balance") == "289"  # held

    desktop.goto(f"{live_server.base_url}/merchant/vouchers/{code}")  # as the QR code opens it
    desktop.wait_for_url(re.compile(r".*/login\?next=.*"))
    desktop.get_by_label("电子邮箱").fill("merchant@demo.tanhui.cn")
    desktop.get_by_label("密码").fill("tanhui-demo-2026")
    desktop.get_by_label("密码").press("Enter")
    desktop.wait_for_url(re.compile(rf".*/merchant/vouchers/{code}"))
    desktop.get_by_role("button", name="确认核销").click()
    assert desktop.get_by_role("status").is_visible()
    shot(desktop, "merchant-confirm")

    phone.goto(phone.url.rsplit("/app", 1)[0] + "/app/vouchers")
    assert phone.get_by_text("已使用").first.is_visible()
    phone.goto(f"{live_server.base_url}/app")
    assert phone.locator("[data-balance]").get_attribute("data-balance") == "89"
