"""From parcels to a verified certificate in a real browser: a cooperative uploads parcels and
runs MRV on a raster, a verifier certifies, the authority files and issues, the cooperative lists
the credits, an enterprise buys them with retire-on-purchase through the sandbox checkout, and
the certificate verifies on the public page. Screenshots of each face are taken (see conftest)."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from frontend import samples
from tanhui.demo import DEMO_PASSWORD
from tests.e2e.a11y import shot
from tests.e2e.conftest import LiveServer

PROJECT = "AJ0101"
MRV_TIMEOUT_MS = 120_000


def sign_in(page: Any, server: LiveServer, email: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{server.base_url}/login")
    page.get_by_label("电子邮箱").fill(email)
    page.get_by_label("密码").fill(DEMO_PASSWORD)
    page.get_by_label("密码").press("Enter")
    page.wait_for_url(f"{server.base_url}/")


def upload(page: Any, field: str, name: str, content: bytes, mime: str) -> None:
    page.locator(field).set_input_files({"name": name, "mimeType": mime, "buffer": content})


def test_public_faces(live_server: LiveServer, desktop: Any) -> None:
    page = desktop
    page.goto(live_server.base_url)
    expect(page.get_by_role("heading", name="累计成果")).to_be_visible()
    assert page.locator("svg.map .map-districts path").count() == 5  # Huzhou's districts
    shot(page, "public-home")
    page.goto(f"{live_server.base_url}/explorer")
    page.get_by_label("类型").select_option("wetland")  # the script submits the filter
    page.wait_for_url(re.compile(r".*/explorer\?type=wetland.*"))
    assert page.locator("table tbody tr").count() >= 1
    page.goto(f"{live_server.base_url}/explorer")
    shot(page, "public-explorer")
    page.locator('svg.map a[href="/projects/AJ0001"]').first.focus()
    page.keyboard.press("Enter")  # the map's projects are links a keyboard reaches
    page.wait_for_url(f"{live_server.base_url}/projects/AJ0001")
    expect(page.get_by_text("签名验证通过").first).to_be_visible()
    expect(page.get_by_text("农户分成比例（净收入）")).to_be_visible()  # from its contract
    shot(page, "public-project")
    page.goto(f"{live_server.base_url}/methodologies")
    expect(page.locator("#bamboo-rate table")).to_be_visible()
    shot(page, "public-methodologies")


def test_from_parcels_to_a_verified_certificate(live_server: LiveServer, desktop: Any) -> None:
    page = desktop
    base = live_server.base_url
    sign_in(page, live_server, "coop@demo.tanhui.cn")

    # Households from CSV.
    page.goto(f"{base}/coop/households")
    upload(
        page, "#f-households_file", "households.csv", samples.households_csv().encode(), "text/csv"
    )
    page.locator('form[action="/coop/households/import"] button').click()
    expect(page.get_by_text("读取 6 行：导入 6 行，拒绝 0 行。")).to_be_visible()
    shot(page, "coop-households")

    # A draft project, then its parcels: the overlapping seventh row is refused on the map.
    page.goto(f"{base}/coop/projects/new")
    page.get_by_label("项目编号").fill(PROJECT)
    page.get_by_label("名称").fill("示例村竹林碳汇项目（浏览器测试）")
    page.get_by_label("计入期开始").fill("2022-01-01")
    page.get_by_label("计入期结束").fill("2051-12-31")
    page.get_by_role("button", name="创建项目").click()
    page.wait_for_url(re.compile(rf"{base}/coop/projects/[0-9a-f-]+$"))
    project_url = page.url
    page.goto(f"{base}/coop/parcels")
    upload(
        page,
        "#f-file",
        "parcels.geojson",
        samples.parcels_geojson().encode(),
        "application/geo+json",
    )
    chooser = page.get_by_label("导入到草稿项目（逐行检查重叠）")
    chooser.select_option(chooser.locator("option", has_text=PROJECT).get_attribute("value"))
    page.locator('form[action="/coop/parcels/import"] button[type=submit]').click()
    expect(page.get_by_role("heading", name="导入报告")).to_be_visible()
    expect(page.get_by_text("导入 6 个地块，拒绝 1 行")).to_be_visible()
    assert page.locator("svg.map path.refused").count() == 1
    shot(page, "coop-parcel-import")

    # The collection contract, then the project is collected.
    page.goto(f"{base}/coop/contracts")
    upload(page, "#f-contracts_file", "contracts.csv", samples.contracts_csv().encode(), "text/csv")
    page.locator('form[action="/coop/contracts/import"] button').click()
    expect(page.get_by_text("读取 1 行：导入 1 行，拒绝 0 行。")).to_be_visible()
    shot(page, "coop-contracts")
    page.goto(project_url)
    page.get_by_role("button", name="标记为已收储").click()
    page.wait_for_url(project_url)
    shot(page, "coop-project")

    # MRV on the synthetic raster, in the background; the page follows the progress.
    page.get_by_role("link", name="运行 MRV").click()
    upload(page, "#f-raster_1", "index-synthetic.tif", samples.index_geotiff(), "image/tiff")
    shot(page, "coop-mrv-form")
    page.get_by_role("button", name="开始估算").click()
    page.wait_for_url(re.compile(rf"{base}/coop/mrv/[0-9a-f]{{32}}$"))
    if page.locator("progress").count():
        shot(page, "coop-mrv-progress")
    submit = page.get_by_role("button", name="提交核证")
    submit.wait_for(timeout=MRV_TIMEOUT_MS)
    assert page.locator("svg.map path.mrv").count() == 6
    shot(page, "coop-mrv-report")
    submit.click()
    page.wait_for_url(project_url)
    expect(page.get_by_text("报告正等待核证机构核证。")).to_be_visible()

    # The verifier certifies.
    sign_in(page, live_server, "verifier@demo.tanhui.cn")
    page.goto(f"{base}/verifier")
    shot(page, "verifier-queue")
    page.locator("tr", has_text=PROJECT).get_by_role("link").click()
    expect(page.get_by_role("heading", name="核证")).to_be_visible()
    shot(page, "verifier-review")
    page.get_by_role("button", name="核证报告").click()
    expect(page.get_by_text("签名验证通过")).to_be_visible()

    # The authority files and issues.
    sign_in(page, live_server, "authority@demo.tanhui.cn")
    page.goto(f"{base}/authority")
    shot(page, "authority-console")
    page.locator("tr", has_text=PROJECT).get_by_role("link", name=re.compile("审核并备案")).click()
    page.get_by_role("button", name="确认备案").click()
    expect(page.get_by_role("heading", name="批准签发")).to_be_visible()
    shot(page, "authority-issue")
    page.get_by_role("button", name="签发碳汇").click()
    expect(page.get_by_role("status").get_by_text("已于")).to_be_visible()

    # The cooperative lists 30 t of the new batch.
    sign_in(page, live_server, "coop@demo.tanhui.cn")
    page.goto(f"{base}/market/sales")
    form = page.locator('form[action="/market/sales/listings"]')
    batch = form.locator("option", has_text=f"THC-BAM-{PROJECT}-").first.get_attribute("value")
    form.locator("select").select_option(batch)
    form.locator('input[name="quantity_t"]').fill("30")
    form.locator('input[name="price"]').fill("61.50")
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"{base}/market/sales")

    # An enterprise buys 12 t with retire-on-purchase through the sandbox checkout.
    sign_in(page, live_server, "buyer@demo.tanhui.cn")
    page.goto(f"{base}/market?type=bamboo")
    row = page.locator("tr", has_text=PROJECT)
    row.locator('input[name="quantity_t"]').fill("12")
    row.get_by_role("button", name="加入购物车").click()
    page.wait_for_url(f"{base}/market/cart")
    page.get_by_label("购买即注销", exact=False).check()
    page.get_by_label("受益方", exact=True).fill("湖州绿能 2026 年会议碳中和（浏览器测试）")
    page.get_by_label("注销用途").select_option("event_neutrality")
    page.get_by_role("button", name="下单并付款").click()
    page.wait_for_url(re.compile(r".*/market/sandbox/[0-9a-f-]+$"))
    page.get_by_role("button", name=re.compile(r"^支付 ¥")).click()
    page.wait_for_url(re.compile(r".*/market/orders/[0-9a-f-]+\?checkout=settled$"))

    # The certificate verifies on the public page.
    certificate = page.locator('a[href^="/verify/THC-RC-"]').first
    certificate_id = certificate.inner_text().strip()
    certificate.click()
    page.wait_for_url(f"{base}/verify/{certificate_id}")
    expect(page.locator(".verdict.ok")).to_be_visible()
    expect(page.get_by_text("湖州绿能 2026 年会议碳中和（浏览器测试）")).to_be_visible()
    expect(page.get_by_text("由本证书注销").first).to_be_visible()
    assert f"tanhui certificate verify {certificate_id}.pdf" in page.content()
    shot(page, "public-verify")
    page.goto(f"{base}/projects/{PROJECT}")
    expect(page.get_by_role("link", name=certificate_id).first).to_be_visible()


def test_registry_faces_in_english_and_by_keyboard(live_server: LiveServer, desktop: Any) -> None:
    page = desktop
    page.goto(f"{live_server.base_url}/lang/en?next=/verify")
    assert page.locator("html").get_attribute("lang") == "en"
    field = page.get_by_label("Certificate number")
    field.focus()
    page.keyboard.type("THC-RC-2026-NOSUCHCERT")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/verify/THC-RC-2026-NOSUCHCERT$"))
    error = page.locator("#certificate-error")
    assert error.is_visible() and "No certificate with this number" in error.inner_text()
    assert page.get_by_label("Certificate number").get_attribute("aria-invalid") == "true"
