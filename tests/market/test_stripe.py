"""Stripe Checkout through the real SDK against the local double; webhooks signed like Stripe's."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from market.errors import PaymentProviderFailed
from market.models import (
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    Provider,
    Receipt,
    WebhookEvent,
)
from market.service import payments, webhooks
from tanhui.db import retrying
from tanhui.settings import Settings
from tests.market import helpers
from tests.market.conftest import with_stripe
from tests.market.stripe_double import StripeDouble
from wallet import service as wallet
from wallet.models import JournalEntry

WEBHOOK = "/api/v1/market/webhooks/stripe"
COMPLETED = "checkout.session.completed"


def stripe_order(
    session: Session, world: helpers.World, quantity_t: int = 10, listed: int = 100
) -> tuple[Order, Payment]:
    item = helpers.listing(session, world, quantity_t=listed)
    placed = helpers.order(session, world.enterprise, item, quantity_t, provider=Provider.stripe)
    payment = payments.start_checkout(session, actor=world.enterprise, order_id=placed.id)
    return placed, payment


def deliver(client: TestClient, double: StripeDouble, event: dict[str, Any]) -> Any:
    body, headers = double.signed(event)
    return client.post(WEBHOOK, content=body, headers=headers)


def count(session: Session, model: Any) -> int:
    return int(session.exec(select(func.count()).select_from(model)).one())


def test_checkout_session_is_made_from_the_order(
    session: Session, world: helpers.World, stripe_settings: Settings, stripe_double: StripeDouble
) -> None:
    placed, payment = stripe_order(session, world)
    posts = [r for r in stripe_double.requests if r[0] == "POST"]
    assert len(posts) == 1
    _method, path, params, key = posts[0]
    assert path == "/v1/checkout/sessions"
    assert params["mode"] == "payment"
    assert params["currency"] == "cny"
    assert params["payment_method_types"] == ["card", "wechat_pay"]
    assert params["metadata"]["order_id"] == str(placed.id)
    assert params["client_reference_id"] == str(placed.id)
    assert int(params["expires_at"]) == int(placed.hold_expires_at.timestamp())
    assert placed.hold_expires_at.timestamp() - time.time() >= 30 * 60
    (item,) = params["line_items"]
    assert item["quantity"] == "10" and item["price_data"]["unit_amount"] == "7341"
    assert key is not None and str(placed.id) in key
    session_id = payment.external_id
    assert session_id in stripe_double.sessions
    assert payment.checkout_url == stripe_double.sessions[str(session_id)]["url"]
    # starting again returns the open checkout: no second session
    again = payments.start_checkout(session, actor=world.enterprise, order_id=placed.id)
    assert again.id == payment.id
    assert len([r for r in stripe_double.requests if r[0] == "POST"]) == 1


def test_stripe_refusing_changes_nothing(
    session: Session, world: helpers.World, settings: Settings, stripe_double: StripeDouble
) -> None:
    configured = with_stripe(settings, stripe_double)
    from pydantic import SecretStr

    from tanhui.settings import use_settings

    item = helpers.listing(session, world, quantity_t=10)
    placed = helpers.order(session, world.enterprise, item, 1, provider=Provider.stripe)
    session.commit()
    use_settings(configured.model_copy(update={"stripe_secret_key": SecretStr("sk_test_wrong")}))
    with pytest.raises(PaymentProviderFailed):
        payments.start_checkout(session, actor=world.enterprise, order_id=placed.id)
    session.rollback()
    assert count(session, Payment) == 0


def test_completed_webhook_settles_once(
    session: Session,
    world: helpers.World,
    stripe_double: StripeDouble,
    stripe_client: TestClient,
) -> None:
    placed, payment = stripe_order(session, world)
    session.commit()
    stripe_double.pay(str(payment.external_id))
    event = stripe_double.event(COMPLETED, str(payment.external_id))
    answers = [deliver(stripe_client, stripe_double, event) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["outcome"] for a in answers] == ["settled", "duplicate", "duplicate"]
    session.expire_all()
    order = session.get(Order, placed.id)
    assert order is not None and order.status == OrderStatus.settled
    assert count(session, Receipt) == 1
    assert count(session, WebhookEvent) == 1
    buyer = helpers.owner(world.enterprise)
    assert helpers.balance(session, world.batch.asset_code, buyer) == 10


def test_bad_missing_or_stale_signatures_are_refused_and_change_nothing(
    session: Session,
    world: helpers.World,
    stripe_double: StripeDouble,
    stripe_client: TestClient,
) -> None:
    placed, payment = stripe_order(session, world)
    session.commit()
    stripe_double.pay(str(payment.external_id))
    event = stripe_double.event(COMPLETED, str(payment.external_id))
    body, headers = stripe_double.signed(event, secret="whsec_forged")
    forged = stripe_client.post(WEBHOOK, content=body, headers=headers)
    stale_body, stale_headers = stripe_double.signed(event, timestamp=int(time.time()) - 301)
    stale = stripe_client.post(WEBHOOK, content=stale_body, headers=stale_headers)
    missing = stripe_client.post(
        WEBHOOK, content=body, headers={"Content-Type": "application/json"}
    )
    good_body, good_headers = stripe_double.signed(event)
    tampered = stripe_client.post(
        WEBHOOK, content=good_body.replace(b"paid", b"PAID"), headers=good_headers
    )
    for answer in (forged, stale, missing, tampered):
        assert answer.status_code == 400
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["type"] == "/problems/market/invalid-webhook"
    session.expire_all()
    assert count(session, WebhookEvent) == 0
    assert count(session, Receipt) == 0
    order = session.get(Order, placed.id)
    assert order is not None and order.status == OrderStatus.awaiting_payment
    session.rollback()  # SQLite: one writer; the app writes next
    # the same event, correctly signed and fresh, still works afterwards
    assert deliver(stripe_client, stripe_double, event).json()["outcome"] == "settled"


def test_unhandled_events_and_unknown_sessions_answer_200_and_do_nothing(
    session: Session,
    world: helpers.World,
    stripe_double: StripeDouble,
    stripe_client: TestClient,
) -> None:
    placed, payment = stripe_order(session, world)
    session.commit()
    stripe_double.pay(str(payment.external_id))
    other = stripe_double.event("payment_intent.succeeded", str(payment.external_id))
    unknown = stripe_double.event(COMPLETED, "cs_test_unknown")
    first = deliver(stripe_client, stripe_double, other)
    second = deliver(stripe_client, stripe_double, unknown)
    assert (first.status_code, first.json()["outcome"]) == (200, "ignored")
    assert (second.status_code, second.json()["outcome"]) == (200, "unknown_session")
    session.expire_all()
    assert count(session, WebhookEvent) == 0 and count(session, Receipt) == 0
    order = session.get(Order, placed.id)
    assert order is not None and order.status == OrderStatus.awaiting_payment


def test_delayed_payment_then_success_or_failure(
    session: Session, world: helpers.World, stripe_settings: Settings, stripe_double: StripeDouble
) -> None:
    placed, payment = stripe_order(session, world, quantity_t=10)
    other, other_payment = stripe_order(session, world, quantity_t=5)
    for checkout in (payment, other_payment):
        stripe_double.pay(str(checkout.external_id), delayed=True)
        event = stripe_double.event(COMPLETED, str(checkout.external_id))
        assert webhooks.handle_stripe_event(session, event) == "processing"
    assert placed.status == OrderStatus.processing
    stripe_double.settle_delayed(str(payment.external_id), succeeded=True)
    succeeded = stripe_double.event(
        "checkout.session.async_payment_succeeded", str(payment.external_id)
    )
    assert webhooks.handle_stripe_event(session, succeeded) == "settled"
    assert placed.status == OrderStatus.settled
    stripe_double.settle_delayed(str(other_payment.external_id), succeeded=False)
    failed = stripe_double.event(
        "checkout.session.async_payment_failed", str(other_payment.external_id)
    )
    assert webhooks.handle_stripe_event(session, failed) == "failed"
    assert other.status == OrderStatus.failed
    session.refresh(other_payment)
    assert other_payment.status == PaymentStatus.failed


def test_completed_after_expired_settles_while_the_tonnes_are_still_there(
    session: Session, world: helpers.World, stripe_settings: Settings, stripe_double: StripeDouble
) -> None:
    placed, payment = stripe_order(session, world, quantity_t=10, listed=10)
    session_id = str(payment.external_id)
    stripe_double.pay(session_id)
    completed = stripe_double.event(COMPLETED, session_id)
    expired = stripe_double.event("checkout.session.expired", session_id)
    assert webhooks.handle_stripe_event(session, expired) == "expired"
    assert placed.status == OrderStatus.expired
    assert webhooks.handle_stripe_event(session, completed) == "settled"
    assert placed.status == OrderStatus.settled
    assert not stripe_double.refunds


def test_payment_after_the_tonnes_are_gone_is_refunded_through_stripe_and_booked(
    session: Session, world: helpers.World, stripe_settings: Settings, stripe_double: StripeDouble
) -> None:
    placed, payment = stripe_order(session, world, quantity_t=10, listed=10)
    session_id = str(payment.external_id)
    expired = stripe_double.event("checkout.session.expired", session_id)
    assert webhooks.handle_stripe_event(session, expired) == "expired"
    # the same tonnes are sold to someone else meanwhile
    item_id = placed_listing(session, placed)
    from market.models import Listing

    item = session.get(Listing, item_id)
    assert item is not None
    rival = helpers.org_actor(session, helpers.OrgKind.enterprise)
    sold = helpers.order(session, rival, item, 10)
    assert helpers.pay_in_sandbox(session, rival, sold).outcome == "settled"
    # then the late payment arrives
    paid = stripe_double.pay(session_id)
    completed = stripe_double.event(COMPLETED, session_id)
    assert webhooks.handle_stripe_event(session, completed) == "refunded"
    assert placed.status == OrderStatus.refunded
    assert placed.received_fen == placed.refunded_fen == 10 * 7_341
    (refund,) = stripe_double.refunds_for(paid["payment_intent"])
    assert refund["amount"] == 10 * 7_341
    codes = [
        entry.code
        for entry in session.exec(
            select(JournalEntry).where(col(JournalEntry.metadata_json).contains(str(placed.id)))
        ).all()
    ]
    assert sorted(codes) == ["payment", "refund"]
    assert helpers.reservations_disagree(session) == []
    gateway = wallet.find_account(session, asset=wallet.ASSET_CNY, owner="system:gateway_stripe")
    assert gateway is not None and wallet.get_balance(session, gateway.id).balance == 0
    # a redelivery changes nothing
    assert webhooks.handle_stripe_event(session, completed) == "duplicate"
    assert len(stripe_double.refunds) == 1


def test_events_after_settlement_change_nothing(
    session: Session, world: helpers.World, stripe_settings: Settings, stripe_double: StripeDouble
) -> None:
    placed, payment = stripe_order(session, world, quantity_t=10)
    session_id = str(payment.external_id)
    stripe_double.pay(session_id)
    succeeded = stripe_double.event("checkout.session.async_payment_succeeded", session_id)
    completed = stripe_double.event(COMPLETED, session_id)
    assert webhooks.handle_stripe_event(session, succeeded) == "settled"
    # the same payment told again by another event type, then late expiry and failure events
    assert webhooks.handle_stripe_event(session, completed) == "duplicate"
    for late in ("checkout.session.expired", "checkout.session.async_payment_failed"):
        assert webhooks.handle_stripe_event(session, stripe_double.event(late, session_id)) == (
            "no_change"
        )
    assert placed.status == OrderStatus.settled
    assert placed.received_fen == 10 * 7_341 and placed.refunded_fen == 0
    assert count(session, Receipt) == 1
    assert not stripe_double.refunds


def placed_listing(session: Session, placed: Order) -> Any:
    from market.service.orders import lines_of

    (line,) = lines_of(session, placed.id)
    return line.listing_id


def test_cancelling_expires_the_open_session(
    session: Session, world: helpers.World, stripe_settings: Settings, stripe_double: StripeDouble
) -> None:
    placed, payment = stripe_order(session, world)
    payments.cancel_order(session, actor=world.enterprise, order_id=placed.id)
    assert stripe_double.sessions[str(payment.external_id)]["status"] == "expired"
    assert placed.status == OrderStatus.cancelled


@pytest.mark.postgres
def test_the_same_event_twenty_times_at_once_settles_once(
    pg_settings: Settings, pg_engine: Engine, stripe_double: StripeDouble
) -> None:
    with_stripe(pg_settings, stripe_double)
    with Session(pg_engine, expire_on_commit=False) as session:
        world = helpers.issued_world(session)
        _placed, payment = stripe_order(session, world, quantity_t=10)
        session.commit()
    stripe_double.pay(str(payment.external_id))
    event = stripe_double.event(COMPLETED, str(payment.external_id))
    outcomes: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(20)

    def deliver_once() -> None:
        try:
            start.wait()
            outcomes.append(retrying(pg_engine, lambda s: webhooks.handle_stripe_event(s, event)))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=deliver_once) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(outcomes) == ["duplicate"] * 19 + ["settled"]
    with Session(pg_engine) as session:
        assert count(session, Receipt) == 1
        assert count(session, WebhookEvent) == 1
        settlements = session.exec(
            select(JournalEntry).where(col(JournalEntry.code) == "settlement")
        ).all()
        assert len(settlements) == 1
        buyer = helpers.owner(world.enterprise)
        assert helpers.balance(session, world.batch.asset_code, buyer) == 10
        assert wallet.verify_ledger(session).ok
