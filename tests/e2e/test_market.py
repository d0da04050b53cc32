"""An enterprise buys with retire-on-purchase through the sandbox checkout, and the certificate
verifies on the public page; the cooperative, finance, court and fund faces render."""

from __future__ import annotations

import re
from typing import Any

from tanhui.demo import DEMO_PASSWORD
from tests.e2e.a11y import shot
from tests.e2e.conftest import LiveServer


def sign_in(page: Any, server: LiveServer, email: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{server.base_url}/login")
    page.get_by_label("电子邮箱").fill(email)
    page.get_by_label("密码").fill(DEMO_PASSWORD)
    page.get_by_label("密码").press("Enter")
    page.wait_for_url(f"{server.base_url}/")


def test_enterprise_buys_retires_and_verifies(live_server: LiveServer, desktop: Any) -> None:
    page = desktop
    sign_in(page, live_server, "buyer@demo.tanhui.cn")
    page.goto(f"{live_server.base_url}/market?type=wetland")
    assert page.get_by_role("heading", name="碳汇市场").is_visible()
    shot(page, "market-browse")
    row = page.locator("form.buy").first
    row.get_by_label("吨数").fill("12")
    row.get_by_role("button", name="加入购物车").click()
    page.wait_for_url(f"{live_server.base_url}/market/cart")
    page.get_by_label("购买即注销", exact=False).check()
    page.get_by_label("受益方", exact=True).fill("湖州绿能 2026 年产品碳足迹（演示）")
    page.get_by_label("注销用途").select_option("product_footprint")
    assert page.get_by_label("沙箱（演示支付）").is_checked()
    shot(page, "market-cart")
    page.get_by_role("button", name="下单并付款").click()
    page.wait_for_url(re.compile(r".*/market/sandbox/[0-9a-f-]+$"))
    assert page.get_by_role("heading", name="沙箱收银台").is_visible()
    shot(page, "market-sandbox-checkout")
    page.get_by_role("button", name=re.compile(r"^支付 ¥")).click()
    page.wait_for_url(re.compile(r".*/market/orders/[0-9a-f-]+\?checkout=settled$"))
    assert page.get_by_role("status").is_visible()
    shot(page, "market-order-settled")
    certificate = page.locator('a[href^="/verify/THC-RC-"]').first
    certificate_id = certificate.inner_text().strip()
    certificate.click()
    page.wait_for_url(f"{live_server.base_url}/verify/{certificate_id}")
    assert page.locator(".verdict.ok").is_visible()
    assert certificate_id in page.content()
    assert "湖州绿能 2026 年产品碳足迹（演示）" in page.content()
    shot(page, "market-certificate-verified")
    page.goto(f"{live_server.base_url}/market/orders")
    assert certificate_id in page.content()
    shot(page, "market-orders")


def test_the_other_market_faces(live_server: LiveServer, desktop: Any) -> None:
    page = desktop
    page.goto(f"{live_server.base_url}/price-index")
    assert page.locator("figure.chart svg polyline").count() >= 1
    shot(page, "market-price-index")
    sign_in(page, live_server, "coop@demo.tanhui.cn")
    page.goto(f"{live_server.base_url}/market/sales")
    assert page.get_by_role("heading", name="各农户收入").is_visible()
    shot(page, "market-coop-sales")
    sign_in(page, live_server, "platform@demo.tanhui.cn")
    page.goto(f"{live_server.base_url}/market/finance")
    assert page.get_by_role("heading", name="待到账的银行转账").is_visible()
    shot(page, "market-finance")
    sign_in(page, live_server, "court@demo.tanhui.cn")
    page.goto(f"{live_server.base_url}/court")
    page.get_by_role("link", name=re.compile("浙0591民初0088号")).click()
    assert page.get_by_text("核验通过").first.is_visible()
    shot(page, "court-case")
    sign_in(page, live_server, "fund@demo.tanhui.cn")
    page.goto(f"{live_server.base_url}/fund")
    page.locator('a[href^="/fund/rounds/"]').first.click()
    assert page.get_by_text("已发放").first.is_visible()
    shot(page, "fund-payout-round")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280
