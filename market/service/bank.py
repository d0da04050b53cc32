"""Bank transfers (对公转账): platform finance confirms what arrived on the platform's account.

The enterprise writes the order number on its transfer. Finance enters the order number, the
amount that arrived and the bank's transaction reference (流水号, which makes a confirmation
safe to repeat). Then, explicitly:

- the exact amount settles the order;
- less (partial) is booked and the order keeps waiting for the rest; its hold keeps running, and
  finance can give the money back (``refund_bank_transfer``) if the rest never comes;
- more (excess) settles the order and books a refund of the difference, which finance wires back;
- money for an order whose hold lapsed and whose tonnes were sold meanwhile goes back whole.
"""

from __future__ import annotations

import uuid

from sqlmodel import Session, col, select

from market.errors import InvalidBankTransfer, MarketNotFound
from market.models import Order, OrderStatus, Provider, Refund
from market.service import orders as order_service
from market.service import payments as payment_service
from market.service.common import FINANCE_KINDS, not_found, require
from registry.service.actors import Actor
from tanhui.i18n import N_

MAX_REFERENCE = 100


def confirm_bank_transfer(
    session: Session,
    *,
    actor: Actor,
    reference: str,
    amount_fen: int,
    bank_reference: str,
    note: str = "",
) -> payment_service.PaymentOutcome:
    """Finance records ``amount_fen`` received for the order numbered ``reference``."""
    require(actor, *FINANCE_KINDS, action="Confirming bank transfers")
    bank_reference = (bank_reference or "").strip()
    if not bank_reference or len(bank_reference) > MAX_REFERENCE:
        raise InvalidBankTransfer(
            N_("Enter the bank's transaction reference (1 to {maximum} characters)."),
            maximum=MAX_REFERENCE,
            errors=[{"field": "bank_reference", "message": "required"}],
        )
    order = order_service.find_by_number(session, reference or "")
    if order is None:
        raise MarketNotFound(
            N_("No order with the reference {reference}."),
            reference=reference,
            errors=[{"field": "reference", "message": "unknown"}],
        )
    if order.provider != Provider.bank_transfer:
        raise InvalidBankTransfer(
            N_("Order {number} is paid by {provider}, not by bank transfer."),
            number=order.number,
            provider=str(order.provider),
            errors=[{"field": "reference", "message": "not a bank-transfer order"}],
        )
    order = order_service.lock_order(session, order.id)
    return payment_service.record_payment(
        session,
        order=order,
        provider=Provider.bank_transfer,
        amount_fen=amount_fen,
        external_ref=f"{order.number}:{bank_reference}",
        actor_ref=actor.ref,
        note=note,
    )


def refund_bank_transfer(session: Session, *, actor: Actor, order_id: uuid.UUID) -> Refund | None:
    """Finance gives back what an unsettled bank-transfer order received, and closes it."""
    require(actor, *FINANCE_KINDS, action="Refunding bank transfers")
    order = session.get(Order, order_id)
    if order is None or order.provider != Provider.bank_transfer:
        raise not_found("order", order_id)
    order = order_service.lock_order(session, order.id)
    return payment_service.refund_unsettled(session, order=order, actor_ref=actor.ref)


def awaiting_transfers(session: Session, *, actor: Actor, limit: int = 200) -> list[Order]:
    """Bank-transfer orders still waiting for (the rest of) their money."""
    require(actor, *FINANCE_KINDS, action="Reading bank transfers")
    return list(
        session.exec(
            select(Order)
            .where(col(Order.provider) == Provider.bank_transfer)
            .where(col(Order.status) == OrderStatus.awaiting_payment)
            .order_by(col(Order.created_at))
            .limit(limit)
        ).all()
    )
