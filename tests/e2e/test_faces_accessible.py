"""Issue 8 on the faces the journeys do not pass through, and on their error states: text at
4.5:1, a label for every field, everything by keyboard. The market (listing, API tokens with a
new token shown, compensation cases, a checkout refused next to its field), the court and fund
consoles (lists, a refused case and standard), the merchant page (a voucher that does not exist),
a household's page as its cooperative sees it and as the household opens it from its link,
and administration (organisations, users, partners, audit log, a refused organisation). One
browser page signs in as each role in turn; nothing here changes the demo except one API token."""

from __future__ import annotations

from typing import Any

from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import LiveServer
from tests.e2e.test_market import sign_in


def submit_unchecked(page: Any, action: str, fields: dict[str, str]) -> None:
    """Submit a form as a browser without validation would, so the server's refusal shows."""
    form = page.locator(f'form[action="{action}"]').first
    form.evaluate("(form) => { form.noValidate = true; }")
    for selector, value in fields.items():
        form.locator(selector).fill(value)
    form.locator("button[type=submit]").first.click()
    page.wait_for_load_state()


def visit(page: Any, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    assert_accessible(page, url)


def refused(page: Any, name: str) -> None:
    """The page answered a refusal: an error next to a field or at the top of the form."""
    assert page.locator('.error, [aria-invalid="true"]').count() >= 1, name
    assert_accessible(page, name)


def test_every_other_face_and_its_errors(live_server: LiveServer, desktop: Any) -> None:
    page = desktop
    base = live_server.base_url

    sign_in(page, live_server, "buyer@demo.tanhui.cn")
    page.goto(f"{base}/market")
    visit(
        page, base + str(page.locator('a[href^="/market/listings/"]').first.get_attribute("href"))
    )
    visit(page, f"{base}/market/cases")
    visit(page, f"{base}/market/tokens")
    submit_unchecked(page, "/market/tokens", {"#token-name": "a11y 检查"})
    assert page.locator("code").count() >= 1  # the new token, shown once
    assert_accessible(page, "market-token-created")
    page.goto(f"{base}/market?type=wetland")
    row = page.locator("form.buy").first
    row.get_by_label("吨数").fill("1")
    row.get_by_role("button", name="加入购物车").click()
    page.wait_for_url(f"{base}/market/cart")
    page.get_by_label("购买即注销", exact=False).check()
    submit_unchecked(page, "/market/checkout", {"#beneficiary": ""})  # retiring for nobody
    refused(page, "market-checkout-refused")
    page.locator('form[action="/market/cart/remove"] button').first.click()  # leave it empty

    sign_in(page, live_server, "coop@demo.tanhui.cn")  # a household's shares and its link
    page.goto(f"{base}/market/sales")
    household = page.locator('a[href^="/market/sales/households/"]').first
    visit(page, base + str(household.get_attribute("href")))
    link = page.locator("code.token").first.inner_text().strip()
    page.context.clear_cookies()  # the household has no login: it opens the link from an SMS
    visit(page, base + "/h/" + link.rsplit("/h/", 1)[1])

    sign_in(page, live_server, "court@demo.tanhui.cn")
    visit(page, f"{base}/court")
    submit_unchecked(page, "/court/cases", {"#c-number": "", "#c-tonnes": "十吨"})
    refused(page, "court-case-refused")

    sign_in(page, live_server, "fund@demo.tanhui.cn")
    visit(page, f"{base}/fund")
    submit_unchecked(page, "/fund/standards", {"#s-year": "明年", "#s-rate": "x"})
    refused(page, "fund-standard-refused")

    sign_in(page, live_server, "merchant@demo.tanhui.cn")
    visit(page, f"{base}/merchant")
    submit_unchecked(page, "/merchant/vouchers/confirm", {"#voucher-code": "NONE-0000-0000"})
    refused(page, "merchant-voucher-refused")

    sign_in(page, live_server, "admin@demo.tanhui.cn")
    visit(page, f"{base}/admin")
    visit(page, f"{base}/admin/audit")
    visit(page, f"{base}/admin/points")
    page.goto(f"{base}/admin")
    submit_unchecked(page, "/admin/organisations", {"#org-name": ""})
    refused(page, "admin-organisation-refused")
    page.goto(f"{base}/lang/en?next=/admin/points")  # and in English
    assert page.get_by_role("heading", name="Data partners").is_visible()
    assert_accessible(page, "admin-points-en")
