"""A resident on a 390×844 phone: sign in with a code, elder mode, language switch."""

from __future__ import annotations

from typing import Any

from tanhui.demo import DEMO_RESIDENT_PHONE
from tests.e2e.a11y import shot
from tests.e2e.conftest import LiveServer


def sign_in(page: Any, server: LiveServer, phone: str = DEMO_RESIDENT_PHONE) -> None:
    page.goto(f"{server.base_url}/app")
    page.get_by_label("手机号码").fill(phone)
    mark = len(server.log)
    page.get_by_role("button", name="获取验证码").click()
    page.get_by_label("验证码").fill(server.latest_code(after=mark))
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{server.base_url}/app")


def test_resident_signs_in_on_a_phone(live_server: LiveServer, phone: Any) -> None:
    phone.goto(f"{live_server.base_url}/app")
    shot(phone, "app-sign-in")
    sign_in(phone, live_server)
    assert phone.locator(".tab-bar").is_visible()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "nothing overflows the phone's width"
    shot(phone, "app-home")


def test_elder_mode_and_language_change_what_is_rendered(
    live_server: LiveServer, phone: Any
) -> None:
    sign_in(phone, live_server, "13957209002")  # a new resident: one code a minute per phone
    phone.goto(f"{live_server.base_url}/app/settings")
    body_size = phone.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert body_size < 18
    phone.get_by_label("长辈模式：更大的文字和按钮").check()
    phone.get_by_role("button", name="保存").click()
    assert phone.get_by_role("status").is_visible()
    assert phone.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 18
    button = phone.get_by_role("button", name="保存").bounding_box()
    assert button["height"] >= 60
    shot(phone, "app-elder-mode")
    phone.get_by_role("link", name="English").click()
    assert phone.locator("html").get_attribute("lang") == "en"
    assert phone.get_by_role("button", name="Save").is_visible()


def test_login_page_works_by_keyboard(live_server: LiveServer, desktop: Any) -> None:
    desktop.goto(f"{live_server.base_url}/login")
    desktop.keyboard.press("Tab")  # skip link
    desktop.keyboard.press("Tab")
    focused = desktop.evaluate("document.activeElement.tagName")
    assert focused in {"A", "INPUT", "BUTTON"}
    desktop.get_by_label("电子邮箱").fill("admin@demo.tanhui.cn")
    desktop.get_by_label("密码").fill("tanhui-demo-2026")
    desktop.get_by_label("密码").press("Enter")
    desktop.wait_for_url(f"{live_server.base_url}/")
    desktop.goto(f"{live_server.base_url}/admin")
    assert desktop.get_by_role("heading", name="平台管理").is_visible()
    shot(desktop, "admin")
