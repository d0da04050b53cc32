"""Rewards and vouchers: points held on redemption, captured by the merchant, returned on
expiry or cancellation; never overdrawn, even by concurrent redemptions on PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

import wallet.service as wallet
from market.rewards.errors import (
    NotEnoughPoints,
    RewardUnavailable,
    UnknownVoucher,
    VoucherClosed,
    VoucherExpired,
    VoucherUsed,
)
from market.rewards.models import RedemptionStatus, RewardKind
from market.rewards.service import catalogue, offsets, redemptions
from tanhui.db import retrying, utcnow
from tanhui.errors import DomainError
from tanhui.models import Organisation, OrgKind, Resident
from tests import factories
from tests.inclusion import helpers


def _reward(session: Session, sponsor: Organisation, price: int = 30, **extra: Any) -> uuid.UUID:
    return catalogue.create_reward(
        session,
        sponsor=sponsor,
        kind=extra.pop("kind", RewardKind.voucher),
        title=extra.pop("title", "莫干山民宿 10 元抵用券"),
        points_price=price,
        actor="test",
        **extra,
    ).id


def test_a_voucher_holds_points_until_the_merchant_confirms_it(session: Session) -> None:
    merchant = factories.organisation(session, OrgKind.merchant)
    other = factories.organisation(session, OrgKind.merchant)
    resident = helpers.resident(session)
    helpers.give_points(session, resident, 100)
    voucher = redemptions.redeem(session, resident=resident, reward_id=_reward(session, merchant))
    assert helpers.points_of(session, resident) == (100, 70)
    assert len(voucher.code) == 14 and voucher.code == redemptions.code_of(voucher.redemption)
    with pytest.raises(UnknownVoucher):  # another merchant's voucher does not exist for them
        redemptions.confirm(session, code=voucher.code, organisation=other, actor="test")
    confirmed = redemptions.confirm(
        session, code=voucher.code.lower().replace("-", " "), organisation=merchant, actor="m"
    )
    assert confirmed.status == RedemptionStatus.confirmed
    assert helpers.points_of(session, resident) == (70, 70)
    with pytest.raises(VoucherUsed):
        redemptions.confirm(session, code=voucher.code, organisation=merchant, actor="m")
    assert wallet.verify_ledger(session).ok


def test_expired_vouchers_return_their_points(session: Session) -> None:
    merchant = factories.organisation(session, OrgKind.merchant)
    resident = helpers.resident(session)
    helpers.give_points(session, resident, 100)
    reward = _reward(session, merchant, valid_days=7)
    first = redemptions.redeem(session, resident=resident, reward_id=reward)
    second = redemptions.redeem(session, resident=resident, reward_id=reward)
    assert helpers.points_of(session, resident) == (100, 40)
    later = utcnow() + timedelta(days=8)
    assert redemptions.expire_due(session, now=later) == 2
    assert first.redemption.status == RedemptionStatus.expired
    assert helpers.points_of(session, resident) == (100, 100)
    with pytest.raises(VoucherClosed):
        redemptions.confirm(session, code=second.code, organisation=merchant, actor="m", now=later)
    assert wallet.verify_ledger(session).ok


def test_a_merchant_confirming_too_late_expires_the_voucher(session: Session) -> None:
    merchant = factories.organisation(session, OrgKind.merchant)
    resident = helpers.resident(session)
    helpers.give_points(session, resident, 50)
    voucher = redemptions.redeem(session, resident=resident, reward_id=_reward(session, merchant))
    later = utcnow() + timedelta(days=31)
    with pytest.raises(VoucherExpired):
        redemptions.confirm(session, code=voucher.code, organisation=merchant, actor="m", now=later)
    assert voucher.redemption.status == RedemptionStatus.expired
    assert helpers.points_of(session, resident) == (50, 50)


def test_cancel_returns_points_and_limits_hold(session: Session) -> None:
    merchant = factories.organisation(session, OrgKind.merchant)
    resident = helpers.resident(session)
    helpers.give_points(session, resident, 40)
    reward = _reward(session, merchant, stock=1)
    voucher = redemptions.redeem(session, resident=resident, reward_id=reward)
    with pytest.raises(RewardUnavailable):  # the only one is taken
        redemptions.redeem(session, resident=resident, reward_id=reward)
    redemptions.cancel(session, resident=resident, redemption_id=voucher.redemption.id)
    assert helpers.points_of(session, resident) == (40, 40)
    again = redemptions.redeem(session, resident=resident, reward_id=reward)  # stock freed
    assert again.redemption.status == RedemptionStatus.issued
    with pytest.raises(NotEnoughPoints):
        redemptions.redeem(session, resident=resident, reward_id=_reward(session, merchant, 11))


def test_tree_planting_is_fulfilled_at_once(session: Session) -> None:
    platform = factories.organisation(session, OrgKind.platform)
    resident = helpers.resident(session)
    helpers.give_points(session, resident, 500)
    tree = _reward(session, platform, 300, kind=RewardKind.tree, title="以您的名义种一棵树")
    voucher = redemptions.redeem(session, resident=resident, reward_id=tree)
    assert voucher.redemption.status == RedemptionStatus.confirmed
    assert helpers.points_of(session, resident) == (200, 200)


@pytest.mark.postgres
def test_concurrent_redemptions_never_overdraw(pg_engine: Engine) -> None:
    with Session(pg_engine) as session:
        merchant = factories.organisation(session, OrgKind.merchant)
        platform = factories.organisation(session, OrgKind.platform)
        resident = helpers.resident(session)
        helpers.give_points(session, resident, 100)
        rewards = [
            _reward(session, merchant, 30),
            _reward(session, platform, 30, kind=RewardKind.tree, title="种树"),
            _reward(session, merchant, 30, stock=50),
        ]
        resident_id = resident.id
        session.commit()
    outcomes: list[str] = []
    barrier = threading.Barrier(20)

    def attempt(index: int) -> None:
        barrier.wait()
        try:
            retrying(
                pg_engine,
                lambda s: redemptions.redeem(
                    s, resident=s.get_one(Resident, resident_id), reward_id=rewards[index % 3]
                ),
            )
            outcomes.append("ok")
        except DomainError as error:
            outcomes.append(error.code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("ok") == 3
    assert outcomes.count("rewards/not-enough-points") == 17
    with Session(pg_engine) as session:
        balance, available = helpers.points_of(session, session.get_one(Resident, resident_id))
        assert available == 10 and balance >= available  # 3 × 30 held or spent, never more
        assert wallet.verify_ledger(session).ok


def test_http_flow_redeem_qr_confirm(client: TestClient, session: Session) -> None:
    merchant = factories.organisation(session, OrgKind.merchant, name="莫干山民宿联盟（测试）")
    cashier = factories.user(session, org=merchant)
    resident = helpers.resident(session, "13957300011")
    helpers.give_points(session, resident, 120)
    reward = _reward(session, merchant, 50)
    from tanhui import identity

    started = identity.start_web_session(session, resident=resident)
    session.commit()
    from fastapi import Response

    from tanhui.auth import set_session_cookie

    response = Response()
    set_session_cookie(response, started.key)
    name, value = response.headers["set-cookie"].split(";")[0].split("=", 1)
    csrf = {"X-CSRF-Token": started.record.csrf_token}
    catalogue_page = client.get("/api/v1/points/rewards").json()
    assert catalogue_page["items"][0]["points_price"] == 50
    client.cookies.set(name, value)
    created = client.post(
        "/api/v1/points/redemptions",
        json={"reward_id": str(reward)},
        headers={**csrf, "Idempotency-Key": "r-1"},
    )
    assert created.status_code == 201, created.text
    voucher = created.json()
    replayed = client.post(
        "/api/v1/points/redemptions",
        json={"reward_id": str(reward)},
        headers={**csrf, "Idempotency-Key": "r-1"},
    )
    assert replayed.json()["id"] == voucher["id"]
    assert client.get(f"/api/v1/points/residents/{resident.id}").json()["points"] == {
        "balance": 120,
        "available": 70,
    }
    qr = client.get(voucher["qr_svg"])
    assert qr.status_code == 200 and qr.headers["content-type"].startswith("image/svg+xml")
    assert client.get(voucher["qr_svg"].replace(".svg", ".png")).content[:4] == b"\x89PNG"
    client.cookies.clear()
    factories.login(client, cashier.email)
    merchant_csrf = client.get("/api/v1/me").json()["csrf_token"]
    confirmed = client.post(
        "/api/v1/points/vouchers/confirm",
        json={"code": voucher["code"]},
        headers={"X-CSRF-Token": merchant_csrf},
    )
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    assert confirmed.json()["code"] is None  # the merchant never sees it again
    again = client.post(
        "/api/v1/points/vouchers/confirm",
        json={"code": voucher["code"]},
        headers={"X-CSRF-Token": merchant_csrf},
    )
    assert again.status_code == 409 and again.json()["type"] == "/problems/rewards/voucher-used"


def test_offset_me_retires_a_whole_tonne_once_the_shares_fill_it(session: Session) -> None:
    from registry.service import transfers
    from registry.service.retirements import get_certificate
    from tests.registry import helpers as registry_helpers

    roles = registry_helpers.Roles.make(session)
    batch = registry_helpers.issued_batch(session, roles, issuable=10, buffer=2)
    platform = factories.organisation(session, OrgKind.platform)
    transfers.transfer(
        session,
        actor=roles.coop,
        batch_id=batch.id,
        to_organisation_id=platform.id,
        quantity_t=2,
    )
    offset = _reward(
        session,
        platform,
        50,
        kind=RewardKind.offset,
        title="为我抵消 500 千克（安吉竹林碳汇）",
        offset_grams=500_000,
        offset_batch_id=batch.id,
    )
    alice = helpers.resident(session)
    bob = helpers.resident(session)
    for who in (alice, bob):
        helpers.give_points(session, who, 100)
    first = redemptions.redeem(session, resident=alice, reward_id=offset)
    share = offsets.share_of(session, first.redemption.id)
    assert share is not None and share.certificate_id is None  # half a tonne: not yet retired
    second = redemptions.redeem(session, resident=bob, reward_id=offset)
    session.refresh(share)
    both = [offsets.share_of(session, v.redemption.id) for v in (first, second)]
    certificates = {item.certificate_id for item in both if item is not None}
    assert len(certificates) == 1 and None not in certificates
    certificate = get_certificate(session, certificates.pop() or "")
    assert "碳惠居民 2 人" in certificate.payload_json
    assert helpers.points_of(session, alice) == (50, 50)
