"""Checkout and the one fulfilment path every provider drives.

Money that arrives (a Stripe webhook, a bank transfer confirmed by finance, the sandbox's "pay"
button) goes through :func:`record_payment`: a receipt entry from the provider's gateway account
to clearing, then :func:`settle_if_paid`, which settles the order when it is paid in full and its
tonnes are still there, refunds what is too much, and refunds everything when the payment came
after its hold lapsed and the tonnes were sold to someone else. A receipt is keyed by the
provider's reference, so the same payment reported twice counts once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from market.errors import InvalidOrder, OrderStateConflict
from market.models import (
    OPEN_ORDER_STATUSES,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    Provider,
    Receipt,
    Refund,
)
from market.payments import LineDescription, provider_for
from market.service import buyers, settlement
from market.service import listings as listing_service
from market.service import orders as order_service
from market.service.common import clearing_account, gateway_account, not_found, now_or
from registry.models import Batch, Project
from registry.service.actors import Actor
from tanhui import audit
from tanhui.db import utcnow
from tanhui.i18n import N_
from wallet import service as wallet

MAX_PAYMENT_FEN = 10**13  # 100 billion yuan: a typo, not a payment


@dataclass(frozen=True)
class PaymentOutcome:
    """What became of money that arrived: ``settled``, ``partial`` (more is due),
    ``refunded`` (too late: everything went back), ``already_settled`` (the excess went back),
    ``duplicate`` (this payment was recorded before)."""

    outcome: str
    order: Order
    receipt: Receipt | None = None
    refunded_fen: int = 0

    @property
    def outstanding_fen(self) -> int:
        if self.order.status == OrderStatus.settled:
            return 0
        return max(0, self.order.total_fen - (self.order.received_fen - self.order.refunded_fen))


def line_descriptions(session: Session, order: Order) -> list[LineDescription]:
    descriptions = []
    for line in order_service.lines_of(session, order.id):
        batch = session.get(Batch, line.batch_id)
        project = session.get(Project, line.project_id)
        name = f"{project.name if project else ''} {batch.serial_prefix if batch else ''}".strip()
        descriptions.append(
            LineDescription(
                name=name or "carbon credits",
                quantity_t=line.quantity_t,
                price_fen_per_t=line.price_fen_per_t,
            )
        )
    return descriptions


def start_checkout(
    session: Session, *, actor: Actor, order_id: uuid.UUID, now: datetime | None = None
) -> Payment:
    """Open (or return the open) checkout of an order with its provider."""
    moment = now_or(now)
    order = order_service.get_order(session, actor=actor, order_id=order_id)
    order_service.require_acting_member(actor, "Paying for an order")
    order = order_service.lock_order(session, order.id)
    if order.status != OrderStatus.awaiting_payment:
        raise OrderStateConflict(
            N_("Order {number} is {status}: there is nothing to pay."),
            number=order.number,
            status=str(order.status),
        )
    for payment in order_service.payments_of(session, order.id):
        if (
            payment.status == PaymentStatus.open
            and payment.provider == order.provider
            and payment.expires_at > moment
        ):
            return payment
    if order.provider == Provider.stripe:
        order_service.extend_hold(
            session,
            order,
            until=moment + order_service.STRIPE_MIN_SESSION + order_service.STRIPE_MARGIN,
            now=moment,
        )
    elif not order_service.hold_is_live(order, moment):
        order_service.extend_hold(
            session,
            order,
            until=moment + buyers.hold_duration(session, order.buyer_id, order.provider),
            now=moment,
        )
    payment = Payment(
        order_id=order.id,
        provider=order.provider,
        amount_fen=order.total_fen - (order.received_fen - order.refunded_fen),
        expires_at=order.hold_expires_at,
    )
    session.add(payment)
    session.flush()
    started = provider_for(order.provider).start(order, payment, line_descriptions(session, order))
    payment.external_id = started.external_id
    payment.checkout_url = started.checkout_url
    session.add(payment)
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action="order.checkout_started",
        subject_type="order",
        subject_id=order.id,
        payload={
            "provider": str(order.provider),
            "payment": str(payment.id),
            "external_id": payment.external_id,
            "expires_at": payment.expires_at.isoformat(),
        },
    )
    return payment


def find_receipt(session: Session, provider: Provider, external_ref: str) -> Receipt | None:
    return session.exec(
        select(Receipt)
        .where(col(Receipt.provider) == provider)
        .where(col(Receipt.external_ref) == external_ref)
    ).one_or_none()


def record_payment(
    session: Session,
    *,
    order: Order,
    provider: Provider,
    amount_fen: int,
    external_ref: str,
    actor_ref: str,
    note: str = "",
) -> PaymentOutcome:
    """Money arrived for ``order`` (locked by the caller): book it, then settle or refund."""
    if isinstance(amount_fen, bool) or not 0 < amount_fen <= MAX_PAYMENT_FEN:
        raise InvalidOrder(
            N_("A payment is a positive amount in fen."),
            errors=[{"field": "amount_fen", "message": "positive"}],
        )
    if find_receipt(session, provider, external_ref) is not None:
        return PaymentOutcome("duplicate", order)
    # Lock the order's listings before the audit chain's head: a new order locks its listings
    # and then the head, so taking the head first here (audit.record below, then settling)
    # deadlocked with it on PostgreSQL.
    listing_service.lock_listings(
        session, [line.listing_id for line in order_service.lines_of(session, order.id)]
    )
    entry = wallet.post_entry(
        session,
        code="payment",
        transfers=[
            wallet.Transfer(
                gateway_account(session, provider), clearing_account(session), amount_fen
            )
        ],
        idempotency_key=f"receipt:{provider!s}:{external_ref}"[:200],
        scope="market",
        metadata={"order": str(order.id), "number": order.number, "reference": external_ref},
    )
    receipt = Receipt(
        order_id=order.id,
        provider=provider,
        amount_fen=amount_fen,
        external_ref=external_ref,
        note=note.strip()[:500],
        recorded_by=actor_ref,
        journal_entry_id=entry.id,
    )
    session.add(receipt)
    order.received_fen += amount_fen
    order.updated_at = utcnow()
    session.add(order)
    session.flush()
    audit.record(
        session,
        actor=actor_ref,
        action="order.payment_received",
        subject_type="order",
        subject_id=order.id,
        payload={"provider": str(provider), "amount_fen": amount_fen, "reference": external_ref},
    )
    outcome = settle_if_paid(session, order, actor_ref=actor_ref)
    return PaymentOutcome(outcome.outcome, order, receipt, outcome.refunded_fen)


def settle_if_paid(session: Session, order: Order, *, actor_ref: str) -> PaymentOutcome:
    """Settle the order (locked) when the money in covers it; refund what must go back."""
    held = order.received_fen - order.refunded_fen
    if order.status == OrderStatus.settled:
        extra = held - order.total_fen
        if extra > 0:
            refund(
                session, order, amount_fen=extra, reason="duplicate_payment", actor_ref=actor_ref
            )
        return PaymentOutcome("already_settled", order, refunded_fen=max(0, extra))
    if held < order.total_fen:
        if order.status in {OrderStatus.processing}:
            order.status = OrderStatus.awaiting_payment
            session.add(order)
        return PaymentOutcome("partial", order)
    lines = order_service.lines_of(session, order.id)
    listings = listing_service.lock_listings(session, [line.listing_id for line in lines])
    if settlement.can_fulfil(session, order, listings):
        settlement.settle(session, order, listings, actor_ref=actor_ref)
        extra = held - order.total_fen
        if extra > 0:
            refund(session, order, amount_fen=extra, reason="excess", actor_ref=actor_ref)
        return PaymentOutcome("settled", order, refunded_fen=max(0, extra))
    # Paid after the hold lapsed, and the tonnes went to someone else: everything goes back.
    refund(session, order, amount_fen=held, reason="late_payment", actor_ref=actor_ref)
    before = order.status
    order.status = OrderStatus.refunded
    order.hold_expires_at = min(order.hold_expires_at, utcnow())
    order.updated_at = utcnow()
    session.add(order)
    order_service.sync_reservation(session, order)
    for listing in listings.values():
        listing_service.release_unreserved(session, listing, actor_ref=actor_ref)
    audit.record(
        session,
        actor=actor_ref,
        action="order.refunded",
        subject_type="order",
        subject_id=order.id,
        payload={"number": order.number, "from": str(before), "refunded_fen": held},
    )
    return PaymentOutcome("refunded", order, refunded_fen=held)


def paid_payment(session: Session, order: Order) -> Payment | None:
    payments = order_service.payments_of(session, order.id)
    for payment in reversed(payments):
        if payment.status == PaymentStatus.paid:
            return payment
    return payments[-1] if payments else None


def refund(
    session: Session, order: Order, *, amount_fen: int, reason: str, actor_ref: str
) -> Refund:
    """Give ``amount_fen`` back through the order's provider and book it (clearing → gateway)."""
    count = len(session.exec(select(Refund.id).where(col(Refund.order_id) == order.id)).all())
    key = f"{order.id}-{count + 1}"
    provider = order.provider
    external_id = provider_for(provider).refund(
        payment=paid_payment(session, order), amount_fen=amount_fen, key=key, reason=reason
    )
    entry = wallet.post_entry(
        session,
        code="refund",
        transfers=[
            wallet.Transfer(
                clearing_account(session), gateway_account(session, provider), amount_fen
            )
        ],
        idempotency_key=f"refund:{key}",
        scope="market",
        metadata={"order": str(order.id), "number": order.number, "reason": reason},
    )
    record = Refund(
        order_id=order.id,
        provider=provider,
        amount_fen=amount_fen,
        reason=reason,
        external_id=external_id,
        recorded_by=actor_ref,
        journal_entry_id=entry.id,
    )
    session.add(record)
    order.refunded_fen += amount_fen
    order.updated_at = utcnow()
    session.add(order)
    session.flush()
    audit.record(
        session,
        actor=actor_ref,
        action="order.refund",
        subject_type="order",
        subject_id=order.id,
        payload={"amount_fen": amount_fen, "reason": reason, "external_id": external_id},
    )
    return record


def refund_unsettled(
    session: Session, *, order: Order, actor_ref: str, reason: str = "cancelled"
) -> Refund | None:
    """Give back everything received for an order that will not settle, and close it."""
    if order.status == OrderStatus.settled:
        raise OrderStateConflict(
            N_("Order {number} is settled; its money is paid out."), number=order.number
        )
    held = order.received_fen - order.refunded_fen
    record = None
    if held > 0:
        record = refund(session, order, amount_fen=held, reason=reason, actor_ref=actor_ref)
    if order.status in OPEN_ORDER_STATUSES:
        order_service.close_unpaid(
            session, order, status=OrderStatus.cancelled, actor_ref=actor_ref, now=utcnow()
        )
    return record


# --- the sandbox provider's page -----------------------------------------------------------


def _sandbox_payment(session: Session, actor: Actor, payment_id: uuid.UUID) -> Payment:
    if Provider.sandbox not in order_service.available_providers():
        raise not_found("payment", payment_id)  # never in production
    payment = session.get(Payment, payment_id)
    if payment is None or payment.provider != Provider.sandbox:
        raise not_found("payment", payment_id)
    order_service.get_order(session, actor=actor, order_id=payment.order_id)  # visibility
    return payment


def get_sandbox_payment(session: Session, *, actor: Actor, payment_id: uuid.UUID) -> Payment:
    return _sandbox_payment(session, actor, payment_id)


def sandbox_complete(session: Session, *, actor: Actor, payment_id: uuid.UUID) -> PaymentOutcome:
    """The sandbox page's "pay": the same fulfilment as a paid Stripe session."""
    payment = _sandbox_payment(session, actor, payment_id)
    order_service.require_acting_member(actor, "Paying for an order")
    order = order_service.lock_order(session, payment.order_id)
    session.refresh(payment)
    if payment.status == PaymentStatus.paid:
        return PaymentOutcome("duplicate", order)
    if payment.status != PaymentStatus.open:
        raise OrderStateConflict(
            N_("This checkout is {status}."), status=str(payment.status), number=order.number
        )
    payment.status = PaymentStatus.paid
    payment.updated_at = utcnow()
    session.add(payment)
    session.flush()
    return record_payment(
        session,
        order=order,
        provider=Provider.sandbox,
        amount_fen=payment.amount_fen,
        external_ref=payment.external_id or f"sbx_{payment.id.hex}",
        actor_ref=actor.ref,
    )


def sandbox_cancel(session: Session, *, actor: Actor, payment_id: uuid.UUID) -> Order:
    """The sandbox page's "cancel": the checkout ends and the order's tonnes are released."""
    payment = _sandbox_payment(session, actor, payment_id)
    order_service.require_acting_member(actor, "Cancelling an order")
    order = order_service.lock_order(session, payment.order_id)
    session.refresh(payment)
    if payment.status != PaymentStatus.open:
        raise OrderStateConflict(
            N_("This checkout is {status}."), status=str(payment.status), number=order.number
        )
    payment.status = PaymentStatus.cancelled
    payment.updated_at = utcnow()
    session.add(payment)
    if order.received_fen == 0:
        order_service.close_unpaid(
            session, order, status=OrderStatus.cancelled, actor_ref=actor.ref, now=utcnow()
        )
    session.flush()
    return order


def cancel_order(
    session: Session, *, actor: Actor, order_id: uuid.UUID, now: datetime | None = None
) -> Order:
    """The buyer cancels an unpaid order; an open Stripe session is expired first."""
    order = order_service.get_order(session, actor=actor, order_id=order_id)
    order_service.require_acting_member(actor, "Cancelling an order")
    for payment in order_service.payments_of(session, order.id):
        if payment.status == PaymentStatus.open:
            provider_for(payment.provider).cancel(payment)
    return order_service.cancel(session, actor=actor, order_id=order_id, now=now)


def receipts_of(session: Session, order_id: uuid.UUID) -> list[Receipt]:
    return list(
        session.exec(
            select(Receipt)
            .where(col(Receipt.order_id) == order_id)
            .order_by(col(Receipt.created_at))
        ).all()
    )


def refunds_of(session: Session, order_id: uuid.UUID) -> list[Refund]:
    return list(
        session.exec(
            select(Refund).where(col(Refund.order_id) == order_id).order_by(col(Refund.created_at))
        ).all()
    )
