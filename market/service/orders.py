"""Orders: an enterprise reserves tonnes of one or more listings while it pays.

Creating an order locks its listings (``FOR UPDATE``, in id order) and counts what is still
open: listed tonnes minus those reserved by open orders whose hold has not expired. With the
listing row locked nobody else can reserve in between, so the last tonnes go to exactly one
buyer and the others get :class:`~market.errors.SoldOut`. The hold lasts
``TANHUI_MARKET_ORDER_HOLD_S`` (30 minutes by default; bank transfers
``TANHUI_MARKET_BANK_TRANSFER_HOLD_S``), and a Stripe order at least as long as a Checkout
Session must stay open. An order whose hold lapsed simply stops counting; the sweeper marks it
expired and gives the tonnes of closed listings back.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict, Unpack

from sqlalchemy import update
from sqlmodel import Session, col, select

from market.errors import (
    BelowMinimumOrder,
    InvalidOrder,
    ListingClosed,
    OrderStateConflict,
    ProviderUnavailable,
    SoldOut,
    WashTrade,
)
from market.models import (
    OPEN_ORDER_STATUSES,
    JudicialCase,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PaymentStatus,
    Provider,
)
from market.service import buyers
from market.service import listings as listing_service
from market.service.common import (
    can_see,
    not_found,
    now_or,
    random_code,
    require_member,
)
from registry.models import RetirementPurpose
from registry.service.actors import Actor
from registry.service.retirements import CASE_PURPOSES
from tanhui import audit
from tanhui.db import new_id, utcnow
from tanhui.i18n import N_
from tanhui.settings import Environment, get_settings

MAX_LINES = 20
MAX_BENEFICIARY = 200
STRIPE_MIN_SESSION = timedelta(minutes=30)  # Stripe: expires_at at least 30 minutes ahead
STRIPE_MAX_SESSION = timedelta(hours=24)
STRIPE_MARGIN = timedelta(minutes=2)  # time between holding and creating the session
SWEEP_LIMIT = 500


@dataclass(frozen=True)
class LineRequest:
    listing_id: uuid.UUID
    quantity_t: int


def available_providers() -> list[Provider]:
    """Stripe when its key is set; bank transfer always; the sandbox outside production."""
    settings = get_settings()
    providers = []
    if settings.stripe_secret_key is not None:
        providers.append(Provider.stripe)
    providers.append(Provider.bank_transfer)
    if settings.env is not Environment.production:
        providers.append(Provider.sandbox)
    return providers


def default_provider() -> Provider:
    """Stripe when configured, else the sandbox (``tanhui demo``), else bank transfer."""
    providers = available_providers()
    if Provider.stripe in providers:
        return Provider.stripe
    return Provider.sandbox if Provider.sandbox in providers else Provider.bank_transfer


def check_provider(provider: Provider | None) -> Provider:
    chosen = provider or default_provider()
    if chosen not in available_providers():
        raise ProviderUnavailable(
            N_("Payment by {provider} is not available here."), provider=chosen.value
        )
    return chosen


def _merge(lines: Sequence[LineRequest]) -> dict[uuid.UUID, int]:
    if not lines:
        raise InvalidOrder(
            N_("An order needs at least one line."),
            errors=[{"field": "lines", "message": "required"}],
        )
    if len(lines) > MAX_LINES:
        raise InvalidOrder(N_("An order has at most {maximum} lines."), maximum=MAX_LINES)
    merged: dict[uuid.UUID, int] = {}
    for position, line in enumerate(lines):
        if isinstance(line.quantity_t, bool) or line.quantity_t <= 0:
            raise InvalidOrder(
                N_("Line {position}: order a positive number of tonnes."),
                position=position + 1,
                errors=[{"field": f"lines[{position}].quantity_t", "message": "positive"}],
            )
        merged[line.listing_id] = merged.get(line.listing_id, 0) + line.quantity_t
    return merged


def _check_retirement(
    retire_on_purchase: bool,
    beneficiary: str | None,
    purpose: RetirementPurpose | None,
    case: JudicialCase | None,
) -> tuple[str | None, RetirementPurpose | None]:
    if not retire_on_purchase:
        return None, None
    name = (beneficiary or "").strip()
    errors = []
    if not name or len(name) > MAX_BENEFICIARY:
        errors.append({"field": "beneficiary", "message": "required"})
    if purpose is None:
        errors.append({"field": "purpose", "message": "required"})
    if purpose in CASE_PURPOSES and case is None:
        errors.append({"field": "purpose", "message": "only through a court's or fund's case"})
    if errors:
        raise InvalidOrder(
            N_(
                "To retire on purchase, name the beneficiary (1 to 200 characters) and the"
                " purpose; judicial restoration and ecological compensation are paid through"
                " the case of a court or a compensation fund."
            ),
            errors=errors,
        )
    return name, purpose


class OrderOptions(TypedDict, total=False):
    """The keyword options of :func:`place_order`, for the functions that forward them. The
    defaults live in :func:`place_order` alone; where the options are passed on, mypy checks
    each key against its parameters (a key it does not take, or of another type, is an error;
    a new parameter of :func:`place_order` is offered here only once it is added)."""

    provider: Provider | None
    retire_on_purchase: bool
    beneficiary: str | None
    purpose: RetirementPurpose | None
    case: JudicialCase | None
    now: datetime | None


def create_order(
    session: Session, *, actor: Actor, lines: Sequence[LineRequest], **options: Unpack[OrderOptions]
) -> Order:
    """Reserve the tonnes of ``lines`` for the actor's organisation until the hold expires
    (:func:`place_order`'s options: provider, retirement on purchase, case, now)."""
    return place_order(session, actor=actor, lines=lines, **options).order


@dataclass(frozen=True)
class PlacedOrder:
    order: Order
    lines: list[OrderLine]  # sorted by listing id, as written


def place_order(
    session: Session,
    *,
    actor: Actor,
    lines: Sequence[LineRequest],
    provider: Provider | None = None,
    retire_on_purchase: bool = False,
    beneficiary: str | None = None,
    purpose: RetirementPurpose | None = None,
    case: JudicialCase | None = None,
    now: datetime | None = None,
) -> PlacedOrder:
    """:func:`create_order`, also returning the lines it wrote (so that presenting the new
    order reads nothing back). Every check runs before anything is written; the order and its
    lines are then inserted together and the audit record comes last, so the audit chain's
    lock is held for as little as possible."""
    buyer_id = require_member(actor, "Buying credits")
    moment = now_or(now)
    chosen = check_provider(provider)
    wanted = _merge(lines)
    name, reason = _check_retirement(retire_on_purchase, beneficiary, purpose, case)
    buyers.lock_buyer(session, buyer_id)  # the buyer's orders one at a time (the cap)
    hold_expires_at = moment + buyers.hold_duration(session, buyer_id, chosen)
    locked = listing_service.lock_listings(session, list(wanted))
    order_id = new_id()
    written: list[OrderLine] = []
    for listing_id in sorted(wanted):
        quantity = wanted[listing_id]
        listing = locked.get(listing_id)
        if listing is None:
            raise not_found("listing", listing_id)
        if listing.seller_id == buyer_id:
            raise WashTrade(
                N_("Your organisation sells listing {id}; it cannot buy it."), id=str(listing.id)
            )
        if not listing_service.is_selling(listing, moment):
            raise ListingClosed(
                N_("Listing {id} is {status}."), id=str(listing.id), status=str(listing.status)
            )
        listing_service.ensure_sellable(session, listing)
        available = listing_service.open_t(session, listing, now=moment)
        if quantity > available:
            raise SoldOut(
                N_("Only {available} t of listing {id} are still available; {quantity} t asked."),
                id=str(listing.id),
                available=available,
                quantity=quantity,
            )
        if quantity < listing.min_order_t and quantity != available:
            raise BelowMinimumOrder(
                N_("Listing {id} sells at least {minimum} t per order."),
                id=str(listing.id),
                minimum=listing.min_order_t,
                errors=[{"field": "quantity_t", "message": "below the minimum order"}],
            )
        written.append(
            OrderLine(
                order_id=order_id,
                listing_id=listing.id,
                batch_id=listing.batch_id,
                project_id=listing.project_id,
                seller_id=listing.seller_id,
                credit_type=listing.credit_type,
                quantity_t=quantity,
                price_fen_per_t=listing.price_fen_per_t,
                amount_fen=quantity * listing.price_fen_per_t,
                reserved_until=hold_expires_at,
            )
        )
    buyers.check_hold_cap(session, buyer_id, sum(wanted.values()), now=moment)
    total = sum(line.amount_fen for line in written)
    order = Order(
        id=order_id,
        number=_order_number(moment),
        buyer_id=buyer_id,
        created_by=actor.ref,
        provider=chosen,
        total_fen=total,
        retire_on_purchase=retire_on_purchase,
        beneficiary=name,
        purpose=str(reason) if reason else None,
        case_id=case.id if case else None,
        hold_expires_at=hold_expires_at,
    )
    session.add(order)
    session.flush()  # the order before its lines (foreign key)
    session.add_all(written)
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action="order.created",
        subject_type="order",
        subject_id=order.id,
        payload={
            "number": order.number,
            "provider": chosen.value,
            "total_fen": total,
            "lines": [[str(key), value] for key, value in sorted(wanted.items())],
            "retire_on_purchase": retire_on_purchase,
            "hold_expires_at": order.hold_expires_at.isoformat(),
        },
    )
    return PlacedOrder(order=order, lines=written)


def _order_number(moment: datetime) -> str:
    """``THO-20261125-7KQ4M2XW``: the order's number and its bank-transfer reference."""
    return f"THO-{moment:%Y%m%d}-{random_code(8)}"


def lock_order(session: Session, order_id: uuid.UUID) -> Order:
    found = session.exec(
        select(Order)
        .where(col(Order.id) == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if found is None:
        raise not_found("order", order_id)
    return found


def get_order(session: Session, *, actor: Actor, order_id: uuid.UUID) -> Order:
    """An order its buyer (or a platform admin, or the court of its case) may see."""
    order = session.get(Order, order_id)
    if order is None:
        raise not_found("order", order_id)
    court_id = None
    if order.case_id is not None:
        case = session.get(JudicialCase, order.case_id)
        court_id = case.court_id if case else None
    if not can_see(actor, order.buyer_id, court_id):
        raise not_found("order", order_id)
    return order


def require_acting_member(actor: Actor, action: str) -> None:
    """Paying for or cancelling an order changes it: members act, viewers only read."""
    if not actor.is_platform_admin:
        require_member(actor, action)


def get_order_unchecked(session: Session, order_id: uuid.UUID) -> Order:
    """An order by id, for callers that checked access already."""
    order = session.get(Order, order_id)
    if order is None:
        raise not_found("order", order_id)
    return order


def find_by_number(session: Session, number: str) -> Order | None:
    cleaned = "".join(number.split()).upper()
    return session.exec(select(Order).where(col(Order.number) == cleaned)).one_or_none()


def lines_of(session: Session, order_id: uuid.UUID) -> list[OrderLine]:
    return list(
        session.exec(
            select(OrderLine).where(col(OrderLine.order_id) == order_id).order_by(col(OrderLine.id))
        ).all()
    )


def payments_of(session: Session, order_id: uuid.UUID) -> list[Payment]:
    return list(
        session.exec(
            select(Payment)
            .where(col(Payment.order_id) == order_id)
            .order_by(col(Payment.created_at))
        ).all()
    )


def orders_of(session: Session, buyer_id: uuid.UUID, *, limit: int = 200) -> list[Order]:
    return list(
        session.exec(
            select(Order)
            .where(col(Order.buyer_id) == buyer_id)
            .order_by(col(Order.created_at).desc())
            .limit(limit)
        ).all()
    )


def hold_is_live(order: Order, now: datetime) -> bool:
    return order.status in OPEN_ORDER_STATUSES and order.hold_expires_at > now


def sync_reservation(session: Session, order: Order) -> None:
    """Copy the order's hold onto its lines (``reserved_until``): the hold's expiry while the
    order is open, nothing once it is settled or closed. Called by every change of an order's
    status or hold, in the same transaction."""
    until = order.hold_expires_at if order.status in OPEN_ORDER_STATUSES else None
    session.flush()
    session.execute(
        update(OrderLine)
        .where(col(OrderLine.order_id) == order.id)
        .values(reserved_until=until)
        .execution_options(synchronize_session="fetch")
    )


def extend_hold(session: Session, order: Order, *, until: datetime, now: datetime) -> None:
    """Hold the order's tonnes until ``until`` (with the order locked). A live hold is simply
    extended; a lapsed one is taken again if the tonnes are still open, else SoldOut."""
    if order.hold_expires_at >= until:
        return
    lines = lines_of(session, order.id)
    lapsed = not hold_is_live(order, now)
    if lapsed:  # taking tonnes again: the cap as for a new order
        buyers.lock_buyer(session, order.buyer_id)
        buyers.check_hold_cap(
            session, order.buyer_id, sum(line.quantity_t for line in lines), now=now
        )
    locked = listing_service.lock_listings(session, [line.listing_id for line in lines])
    if lapsed:
        for line in lines:
            listing = locked[line.listing_id]
            available = listing_service.open_t(session, listing, now=now, excluding_order=order.id)
            if line.quantity_t > available:
                raise SoldOut(
                    N_(
                        "Only {available} t of listing {id} are still available;"
                        " {quantity} t asked."
                    ),
                    id=str(listing.id),
                    available=available,
                    quantity=line.quantity_t,
                )
    order.hold_expires_at = until
    order.updated_at = utcnow()
    session.add(order)
    sync_reservation(session, order)


def close_unpaid(
    session: Session, order: Order, *, status: OrderStatus, actor_ref: str, now: datetime
) -> bool:
    """An open order without payment stops holding tonnes (expired, cancelled, failed); closed
    listings give back what it held. With the order locked; False when it was not open."""
    if order.status not in OPEN_ORDER_STATUSES:
        return False
    before = order.status
    order.status = status
    order.hold_expires_at = min(order.hold_expires_at, now)
    order.updated_at = utcnow()
    session.add(order)
    for payment in payments_of(session, order.id):
        if payment.status in {PaymentStatus.open, PaymentStatus.processing}:
            payment.status = {
                OrderStatus.expired: PaymentStatus.expired,
                OrderStatus.failed: PaymentStatus.failed,
            }.get(status, PaymentStatus.cancelled)
            payment.updated_at = utcnow()
            session.add(payment)
    sync_reservation(session, order)
    lines = lines_of(session, order.id)
    for listing in listing_service.lock_listings(
        session, [line.listing_id for line in lines]
    ).values():
        listing_service.release_unreserved(session, listing, now=now, actor_ref=actor_ref)
    audit.record(
        session,
        actor=actor_ref,
        action=f"order.{status!s}",
        subject_type="order",
        subject_id=order.id,
        payload={"number": order.number, "from": str(before)},
    )
    return True


def cancel(
    session: Session, *, actor: Actor, order_id: uuid.UUID, now: datetime | None = None
) -> Order:
    """The buyer gives up an order that has not been paid."""
    order = get_order(session, actor=actor, order_id=order_id)
    require_acting_member(actor, "Cancelling an order")
    order = lock_order(session, order.id)
    if order.status not in OPEN_ORDER_STATUSES or order.received_fen > 0:
        raise OrderStateConflict(
            N_("Order {number} is {status} and cannot be cancelled."),
            number=order.number,
            status=str(order.status),
        )
    close_unpaid(session, order, status=OrderStatus.cancelled, actor_ref=actor.ref, now=now_or(now))
    return order


def expire_lapsed(session: Session, *, now: datetime | None = None) -> int:
    """Mark open orders whose hold lapsed without money as expired; returns how many."""
    moment = now_or(now)
    ids = session.exec(
        select(Order.id)
        .where(col(Order.status) == OrderStatus.awaiting_payment)
        .where(col(Order.hold_expires_at) <= moment)
        .where(col(Order.received_fen) == 0)
        .order_by(col(Order.id))
        .limit(SWEEP_LIMIT)
    ).all()
    count = 0
    for order_id in ids:
        order = lock_order(session, order_id)
        if order.received_fen == 0 and order.hold_expires_at <= moment:
            count += close_unpaid(
                session, order, status=OrderStatus.expired, actor_ref="system:market", now=moment
            )
    return count
