"""Stripe webhooks: the only way a Stripe payment is fulfilled.

:func:`verify_stripe_event` checks the ``Stripe-Signature`` header on the raw body (HMAC-SHA256
of ``"{t}.{body}"`` with the endpoint secret, timestamp within the tolerance) with the Stripe
SDK, before anything is read. :func:`handle_stripe_event` then applies one of the four
Checkout events; each event id is inserted once (``market_webhook_event``, primary key) in the
same transaction as its effect, so the same event delivered twice, or twenty times at once, has
one effect, and a failure rolls back both (Stripe retries). Events may come in any order: an
order locks its row, and each handler looks at where the order is now.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import stripe
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from market.errors import InvalidWebhook
from market.models import (
    OPEN_ORDER_STATUSES,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    Provider,
    WebhookEvent,
)
from market.service import orders as order_service
from market.service import payments as payment_service
from market.service.common import now_or
from tanhui.db import database_kind, utcnow
from tanhui.i18n import N_
from tanhui.settings import get_settings

COMPLETED = "checkout.session.completed"
ASYNC_SUCCEEDED = "checkout.session.async_payment_succeeded"
ASYNC_FAILED = "checkout.session.async_payment_failed"
EXPIRED = "checkout.session.expired"
HANDLED = frozenset({COMPLETED, ASYNC_SUCCEEDED, ASYNC_FAILED, EXPIRED})
PAID_STATUSES = frozenset({"paid", "no_payment_required"})
ACTOR = "system:stripe-webhook"


def verify_stripe_event(payload: bytes, signature: str | None) -> dict[str, Any]:
    """The event in a webhook request whose signature is valid; InvalidWebhook otherwise."""
    settings = get_settings()
    if settings.stripe_webhook_secret is None:
        raise InvalidWebhook(N_("Stripe webhooks are not configured on this server."))
    try:
        stripe.WebhookSignature.verify_header(
            payload.decode("utf-8"),
            signature,
            settings.stripe_webhook_secret.get_secret_value(),
            settings.stripe_webhook_tolerance_s,
        )
    except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError):
        raise InvalidWebhook(
            N_("The Stripe-Signature header is missing, wrong or too old.")
        ) from None
    try:
        event = json.loads(payload)
    except ValueError:
        raise InvalidWebhook(N_("The webhook body is not JSON.")) from None
    if (
        not isinstance(event, dict)
        or not isinstance(event.get("id"), str)
        or not isinstance(event.get("type"), str)
        or not isinstance(event.get("data"), dict)
        or not isinstance(event["data"].get("object"), dict)
    ):
        raise InvalidWebhook(N_("The webhook body is not a Stripe event."))
    return event


def _claim(session: Session, event_id: str, event_type: str, order_id: Any) -> bool:
    """Insert the event id; False when it was already handled (or is being handled: a
    concurrent duplicate waits on the primary key until the first transaction ends)."""
    insert = pg_insert if database_kind(session) == "postgresql" else sqlite_insert
    inserted = session.execute(
        insert(WebhookEvent.__table__)  # type: ignore[attr-defined]
        .values(
            id=event_id[:255],
            provider=Provider.stripe.value,
            type=event_type[:100],
            order_id=order_id,
            outcome="received",
            received_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(WebhookEvent.__table__.c.id)  # type: ignore[attr-defined]
    ).all()
    return bool(inserted)


def _payment_for(session: Session, checkout_session: dict[str, Any]) -> Payment | None:
    session_id = checkout_session.get("id")
    if not isinstance(session_id, str):
        return None
    return session.exec(
        select(Payment)
        .where(col(Payment.provider) == Provider.stripe)
        .where(col(Payment.external_id) == session_id)
    ).one_or_none()


def handle_stripe_event(
    session: Session, event: dict[str, Any], *, now: datetime | None = None
) -> str:
    """Apply a verified event; returns what happened (``ignored``, ``unknown_session``,
    ``duplicate``, ``settled``, ``processing``, ``failed``, ``expired`` ...). Events we do not
    handle, and sessions we do not know, change nothing."""
    moment = now_or(now)
    event_type = event["type"]
    checkout_session = event["data"]["object"]
    if event_type not in HANDLED or checkout_session.get("object") != "checkout.session":
        return "ignored"
    payment = _payment_for(session, checkout_session)
    if payment is None:
        return "unknown_session"
    if not _claim(session, event["id"], event_type, payment.order_id):
        return "duplicate"
    order = order_service.lock_order(session, payment.order_id)
    session.refresh(payment)
    intent = checkout_session.get("payment_intent")
    if isinstance(intent, str) and intent:
        payment.payment_intent = intent
    outcome = _apply(session, event_type, checkout_session, payment, order, moment)
    record = session.get(WebhookEvent, event["id"][:255])
    if record is not None:
        record.outcome = outcome[:40]
        session.add(record)
    session.flush()
    return outcome


def _apply(
    session: Session,
    event_type: str,
    checkout_session: dict[str, Any],
    payment: Payment,
    order: Order,
    moment: datetime,
) -> str:
    paid_now = event_type == ASYNC_SUCCEEDED or (
        event_type == COMPLETED and checkout_session.get("payment_status") in PAID_STATUSES
    )
    if paid_now:
        amount = checkout_session.get("amount_total")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            amount = payment.amount_fen
        if str(checkout_session.get("currency", "cny")).lower() != "cny":
            return "ignored_currency"
        payment.status = PaymentStatus.paid
        payment.updated_at = utcnow()
        session.add(payment)
        session.flush()
        result = payment_service.record_payment(
            session,
            order=order,
            provider=Provider.stripe,
            amount_fen=amount,
            external_ref=str(checkout_session["id"]),
            actor_ref=ACTOR,
        )
        return result.outcome
    if event_type == COMPLETED:  # completed, the money confirms later (async methods)
        changed = False
        if payment.status == PaymentStatus.open:
            payment.status = PaymentStatus.processing
            payment.updated_at = utcnow()
            session.add(payment)
            changed = True
        if order.status == OrderStatus.awaiting_payment:
            order.status = OrderStatus.processing
            order.updated_at = utcnow()
            session.add(order)
            changed = True
        return "processing" if changed else "no_change"
    if event_type == ASYNC_FAILED:
        if payment.status in {PaymentStatus.open, PaymentStatus.processing}:
            payment.status = PaymentStatus.failed
            payment.updated_at = utcnow()
            session.add(payment)
        if order.status in OPEN_ORDER_STATUSES and order.received_fen == 0:
            order_service.close_unpaid(
                session, order, status=OrderStatus.failed, actor_ref=ACTOR, now=moment
            )
            return "failed"
        return "no_change"
    # expired: the session can no longer be paid
    if payment.status == PaymentStatus.open:
        payment.status = PaymentStatus.expired
        payment.updated_at = utcnow()
        session.add(payment)
    others_open = any(
        other.id != payment.id and other.status == PaymentStatus.open
        for other in order_service.payments_of(session, order.id)
    )
    if order.status == OrderStatus.awaiting_payment and order.received_fen == 0 and not others_open:
        order_service.close_unpaid(
            session, order, status=OrderStatus.expired, actor_ref=ACTOR, now=moment
        )
        return "expired"
    return "no_change"
