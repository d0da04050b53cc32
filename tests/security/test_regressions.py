"""Bugs the hostile-input work found, each pinned by the smallest test that failed before its fix.

- viewers could cancel their organisation's orders, open checkouts and complete or cancel
  sandbox payments (market services checked visibility, not the role);
- viewers could change rewards, confirm vouchers (API) and offer rewards and confirm vouchers
  on the merchant page (the page hid the form, the POST did not check);
- a user of a kind that offers no rewards, or a viewer, was told 422 instead of 403;
- ``GET /market/cases`` answered 500 (its template read an undefined ``error``).
"""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from market.models import Order, OrderStatus, Payment, PaymentStatus
from market.rewards.models import Redemption, RedemptionStatus, Reward
from market.service import orders, payments
from registry.service.actors import Actor
from tanhui.db import create_engine, unit_of_work
from tanhui.models import OrgKind, Role
from tanhui.settings import Settings
from tests.security.world import World

API = {"browser": False}


def _open_order(world: World, settings: Settings, *, with_payment: bool) -> tuple[str, str | None]:
    buyer = Actor(
        ref="system:test",
        organisation_id=world.organisations["A:enterprise"],
        org_kind=OrgKind.enterprise,
        role=Role.owner,
    )
    engine = create_engine(settings)
    with unit_of_work(engine) as session:
        line = orders.LineRequest(
            listing_id=uuid.UUID(world.objects["listing_id"]),
            quantity_t=int(world.objects["listing_minimum_t"]),
        )
        placed = orders.create_order(session, actor=buyer, lines=[line])
        payment_id = None
        if with_payment:
            payment_id = str(payments.start_checkout(session, actor=buyer, order_id=placed.id).id)
        order_id = str(placed.id)
    engine.dispose()
    return order_id, payment_id


def _row(settings: Settings, model: type, row_id: str) -> object:
    engine = create_engine(settings)
    with Session(engine) as session:
        found = session.get(model, uuid.UUID(row_id))
    engine.dispose()
    return found


def test_viewers_cannot_cancel_or_pay_orders(
    world: World, world_settings: Settings, world_client: TestClient
) -> None:
    viewer = world.caller("enterprise:viewer").headers(**API)
    order_id, payment_id = _open_order(world, world_settings, with_payment=True)
    assert payment_id is not None
    for path in (
        f"/api/v1/market/orders/{order_id}/cancel",
        f"/api/v1/market/orders/{order_id}/checkout",
        f"/api/v1/market/sandbox/payments/{payment_id}/complete",
        f"/api/v1/market/sandbox/payments/{payment_id}/cancel",
    ):
        response = world_client.post(path, headers=viewer)
        assert response.status_code == 403, (path, response.text)
    order = _row(world_settings, Order, order_id)
    payment = _row(world_settings, Payment, payment_id)
    assert isinstance(order, Order) and order.status == OrderStatus.awaiting_payment
    assert isinstance(payment, Payment) and payment.status == PaymentStatus.open
    # the same on the pages
    viewer_page = world.caller("enterprise:viewer").headers(browser=True)
    cancelled = world_client.post(f"/market/orders/{order_id}/cancel", headers=viewer_page)
    assert cancelled.status_code == 403
    world_client.post(f"/market/sandbox/{payment_id}/pay", headers=viewer_page)
    order = _row(world_settings, Order, order_id)
    assert isinstance(order, Order) and order.status == OrderStatus.awaiting_payment
    # a member still may
    member = world.caller("enterprise:member").headers(**API)
    done = world_client.post(f"/api/v1/market/orders/{order_id}/cancel", headers=member)
    assert done.status_code == 200, done.text


def test_merchant_viewers_only_read(
    world: World, world_settings: Settings, world_client: TestClient
) -> None:
    reward_id = world.objects["reward_id"]
    viewer = world.caller("merchant:viewer")
    changed = world_client.patch(
        f"/api/v1/points/rewards/{reward_id}", json={"active": False}, headers=viewer.headers(**API)
    )
    assert changed.status_code == 403, changed.text
    reward = _row(world_settings, Reward, reward_id)
    assert isinstance(reward, Reward) and reward.active
    # the bus group's coupon, confirmed by a viewer of the bus group
    partner_viewer = world.caller("data_partner:viewer")
    code = world.objects["voucher_code"]
    api = world_client.post(
        "/api/v1/points/vouchers/confirm",
        json={"code": code},
        headers=partner_viewer.headers(**API),
    )
    assert api.status_code == 403, api.text
    page = world_client.post(
        "/merchant/vouchers/confirm",
        data={"code": code, "csrf_token": partner_viewer.csrf or ""},
        headers=partner_viewer.headers(browser=True),
    )
    assert page.status_code == 403, page.text
    redemption = _row(world_settings, Redemption, world.objects["redemption_id"])
    assert isinstance(redemption, Redemption) and redemption.status == RedemptionStatus.issued
    engine = create_engine(world_settings)
    with Session(engine) as session:
        before = len(session.exec(select(Reward.id)).all())
    offered = world_client.post(
        "/merchant/rewards",
        data={
            "title": "Viewer's reward",
            "kind": "voucher",
            "points_price": "10",
            "valid_days": "30",
            "csrf_token": viewer.csrf or "",
        },
        headers=viewer.headers(browser=True),
    )
    assert offered.status_code == 403
    api_offer = world_client.post(
        "/api/v1/points/rewards",
        json={"kind": "voucher", "title": "x", "points_price": 10},
        headers=viewer.headers(**API),
    )
    assert api_offer.status_code == 403, api_offer.text
    with Session(engine) as session:
        assert len(session.exec(select(Reward.id)).all()) == before
        assert session.exec(select(Reward).where(col(Reward.title) == "x")).first() is None
    engine.dispose()


def test_rewards_from_a_kind_that_offers_none_are_refused_with_403(
    world: World, world_client: TestClient
) -> None:
    response = world_client.post(
        "/api/v1/points/rewards",
        json={"kind": "voucher", "title": "x", "points_price": 10},
        headers=world.caller("court:owner").headers(**API),
    )
    assert response.status_code == 403, response.text


def test_defendants_cases_page_renders(world: World, world_client: TestClient) -> None:
    response = world_client.get(
        "/market/cases", headers=world.caller("enterprise:viewer").headers(browser=True)
    )
    assert response.status_code == 200, response.text[:500]


def test_pooling_a_month_of_year_zero_or_9999_is_refused_not_a_500(
    world: World, world_client: TestClient
) -> None:
    """schemathesis sent ``0000-01``: ``date(0, 1, 1)`` raised ValueError (a 500); ``9999-12``
    would overflow the settling date the same way."""
    for month in ("0000-01", "9999-12"):
        response = world_client.post(
            "/api/v1/points/pools",
            json={"month": month},
            headers=world.caller("admin").headers(browser=False),
        )
        assert response.status_code == 409, response.text
        assert response.json()["type"] == "/problems/points/pooling"


def test_listing_search_refuses_numbers_beyond_the_columns(world_client: TestClient) -> None:
    """schemathesis sent a price of 10^20 fen: SQLite could not bind it (a 500)."""
    for query in ("min_price_fen=" + "9" * 20, "max_price_fen=" + "9" * 20, "offset=" + "9" * 20):
        response = world_client.get(f"/api/v1/market/listings?{query}")
        assert response.status_code == 422, (query, response.text)
