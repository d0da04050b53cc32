"""The web faces of carbon points, without a browser: the resident's app (balance, receipts,
rewards, vouchers with QR, citizen card, pools), the merchant's page and the admin page."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session

from market.rewards.models import Redemption, RedemptionStatus, RewardKind
from market.rewards.service import catalogue, redemptions
from tanhui import identity, sms
from tanhui.db import utcnow
from tanhui.models import OrgKind
from tests import factories
from tests.inclusion import helpers


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def _sign_in(client: TestClient, phone: str) -> str:
    page = client.get("/app")
    sent = client.post("/app/code", data={"phone": phone, "csrf_token": _csrf(page.text)})
    code = re.search(r"(\d{6})", sms.last_message_to("+86" + phone) or "").group(1)  # type: ignore[union-attr]
    done = client.post(
        "/app/login",
        data={"phone": "+86" + phone, "code": code, "csrf_token": _csrf(sent.text)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    return _csrf(client.get("/app/settings").text)


def test_resident_sees_points_receipts_and_redeems(client: TestClient, session: Session) -> None:
    partner_id, secret = helpers.partner(session, ["bus"], name="湖州公交集团（测试）")
    resident = helpers.resident(session, "13957400001")
    _merchant, cashier, reward = helpers.merchant_voucher(
        session, name="莫干山民宿（测试）", title="民宿 10 元抵用券"
    )
    session.commit()
    posted = helpers.post(client, partner_id, secret, [helpers.event(resident, quantity=12.5)])
    assert posted.json()["accepted"] == 1
    csrf = _sign_in(client, "13957400001")
    home = client.get("/app")
    assert 'data-balance="33"' in home.text and "湖州公交集团（测试）" in home.text
    receipts = client.get("/app/receipts")
    link = re.search(r'href="(/app/receipts/[0-9a-f-]+)"', receipts.text)
    assert link
    receipt = client.get(link.group(1))
    assert "26.9" in receipt.text and "深圳市低碳公共出行方法学" in receipt.text
    rewards = client.get("/app/rewards")
    assert "民宿 10 元抵用券" in rewards.text
    redeemed = client.post(
        f"/app/rewards/{reward.id}/redeem", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert redeemed.status_code == 303
    voucher_page = client.get(redeemed.headers["location"])
    code = re.search(r'class="code"[^>]*>([A-Z0-9-]{14})<', voucher_page.text)
    assert code, voucher_page.text
    qr = re.search(r'src="(/app/vouchers/[0-9a-f-]+/qr\.svg)"', voucher_page.text)
    assert qr and client.get(qr.group(1)).headers["content-type"].startswith("image/svg+xml")
    assert 'data-balance="33"' in client.get("/app").text  # held, not yet spent
    poor = client.post(
        f"/app/rewards/{reward.id}/redeem", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert (poor.status_code == 409 and "积分不足" not in poor.text) or "13" in poor.text

    client.cookies.clear()
    factories.login(client, cashier.email)
    merchant_page = client.get("/merchant")
    assert merchant_page.status_code == 200 and "民宿 10 元抵用券" in merchant_page.text
    by_qr = client.get(f"/merchant/vouchers/{code.group(1)}")
    assert by_qr.status_code == 200
    confirmed = client.post(
        "/merchant/vouchers/confirm",
        data={"code": code.group(1), "csrf_token": _csrf(by_qr.text)},
    )
    assert confirmed.status_code == 200 and 'role="status"' in confirmed.text
    again = client.post(
        "/merchant/vouchers/confirm",
        data={"code": code.group(1), "csrf_token": _csrf(by_qr.text)},
    )
    assert again.status_code == 409


def test_a_voucher_confirmed_too_late_on_the_merchant_page_returns_its_points(
    client: TestClient, session: Session
) -> None:
    """The refusal is shown, and the voucher's expiry (points back to the resident) is kept."""
    resident = helpers.resident(session, "13957400009")
    helpers.give_points(session, resident, 50)
    _merchant, cashier, reward = helpers.merchant_voucher(
        session, name="安吉白茶铺（测试）", title="白茶 5 元抵用券"
    )
    voucher = redemptions.redeem(session, resident=resident, reward_id=reward.id)
    voucher.redemption.expires_at = utcnow() - timedelta(minutes=1)
    session.add(voucher.redemption)
    code, redemption_id, email = voucher.code, voucher.redemption.id, cashier.email
    session.commit()
    assert helpers.points_of(session, resident) == (50, 30)
    session.rollback()  # SQLite: the read's transaction would keep the server waiting
    factories.login(client, email)
    page = client.get("/merchant")
    refused = client.post(
        "/merchant/vouchers/confirm", data={"code": code, "csrf_token": _csrf(page.text)}
    )
    assert refused.status_code == 409 and 'role="alert"' in refused.text
    session.expire_all()
    expired = session.get(Redemption, redemption_id)
    assert expired is not None and expired.status == RedemptionStatus.expired
    assert helpers.points_of(session, resident) == (50, 50)


def test_cancel_asks_on_a_page_not_a_popup(client: TestClient, session: Session) -> None:
    resident = helpers.resident(session, "13957400002")
    helpers.give_points(session, resident, 50)
    platform = factories.organisation(session, OrgKind.merchant)
    reward = catalogue.create_reward(
        session,
        sponsor=platform,
        kind=RewardKind.bus_coupon,
        title="公交 1 元券",
        points_price=10,
        actor="test",
    )
    session.commit()
    csrf = _sign_in(client, "13957400002")
    location = client.post(
        f"/app/rewards/{reward.id}/redeem", data={"csrf_token": csrf}, follow_redirects=False
    ).headers["location"]
    assert f'action="{location}/cancel"' not in client.get(location).text
    assert f'action="{location}/cancel"' in client.get(location + "?cancel=1").text
    done = client.post(location + "/cancel", data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert 'data-balance="50"' in client.get("/app").text
    assert "state-cancelled" in client.get(location).text


def test_citizen_card_and_pool_pages(client: TestClient, session: Session) -> None:
    helpers.resident(session, "13957400003")
    session.commit()
    issuer_id, secret = helpers.card_issuer(session)
    session.commit()
    csrf = _sign_in(client, "13957400003")
    proof = {"issuer": str(issuer_id), "csrf_token": csrf}
    proof["attestation"] = helpers.card_attestation(secret, "HZ330500123457", "+8613957400003")
    bad = client.post("/app/card", data={**proof, "number": "12"})
    assert bad.status_code == 422 and 'role="alert"' in bad.text
    linked = client.post("/app/card", data={**proof, "number": "HZ 3305 0012 3457"})
    assert linked.status_code == 200 and "HZ**********57" in linked.text
    assert client.get("/app/pool").status_code == 200


def test_admin_registers_a_partner_and_sees_its_secret_once(
    client: TestClient, session: Session
) -> None:
    admin = factories.user(session, admin=True)
    session.commit()
    factories.login(client, admin.email)
    page = client.get("/admin/points")
    assert page.status_code == 200
    created = client.post(
        "/admin/points/partners",
        data={
            "csrf_token": _csrf(page.text),
            "name": "湖州再生资源回收站（测试）",
            "scenarios": ["recycling"],
        },
    )
    secret = re.search(r'class="secret">(thsk_[A-Za-z0-9_-]+)<', created.text)
    assert created.status_code == 200 and secret
    assert secret.group(1) not in client.get("/admin/points").text  # shown once only
    late = client.post(
        "/admin/points/methodologies",
        data={
            "csrf_token": _csrf(page.text),
            "scenario": "bus",
            "version": "2.0",
            "grams_per_unit": "30",
            "daily_cap": "60",
            "valid_from": "2020-01-01",
            "baseline": "car",
            "source": "s",
        },
    )
    assert late.status_code == 422 and 'aria-invalid="true"' in late.text
    assert identity.find_user_by_email(session, admin.email) is not None


def test_public_methodology_page(client: TestClient) -> None:
    page = client.get("/points/methodologies")
    assert page.status_code == 200 and "78.4" in page.text and "武汉" in page.text
