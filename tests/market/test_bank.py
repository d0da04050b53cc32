"""Bank transfers: finance confirms what arrived; exact, partial, excess and late amounts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session

from market.errors import InvalidBankTransfer, MarketNotFound, MarketRoleRefused
from market.models import OrderStatus, Provider
from market.presenters import bank_instructions
from market.service import bank, orders, payments
from tanhui.db import utcnow
from tanhui.models import OrgKind
from tanhui.settings import get_settings
from tests.market import helpers
from wallet import service as wallet

PRICE = 7_341


def bank_order(session: Session, world: helpers.World, quantity_t: int = 10, listed: int = 100):  # type: ignore[no-untyped-def]
    item = helpers.listing(session, world, quantity_t=listed, price_fen_per_t=PRICE)
    placed = helpers.order(
        session, world.enterprise, item, quantity_t, provider=Provider.bank_transfer
    )
    payments.start_checkout(session, actor=world.enterprise, order_id=placed.id)
    return item, placed


def confirm(session: Session, world: helpers.World, number: str, amount: int, ref: str):  # type: ignore[no-untyped-def]
    return bank.confirm_bank_transfer(
        session, actor=world.finance, reference=number, amount_fen=amount, bank_reference=ref
    )


def test_the_order_shows_the_platform_account_and_its_reference(
    session: Session, world: helpers.World
) -> None:
    _item, placed = bank_order(session, world)
    instructions = bank_instructions(placed)
    assert instructions is not None
    assert instructions.reference == placed.number
    assert instructions.account_number in get_settings().market_bank_account
    assert instructions.amount_fen == 10 * PRICE
    assert placed.hold_expires_at - utcnow() > timedelta(days=2)


def test_exact_amount_settles(session: Session, world: helpers.World) -> None:
    _item, placed = bank_order(session, world)
    outcome = confirm(session, world, placed.number.lower(), 10 * PRICE, "ICBC-0001")
    assert outcome.outcome == "settled"
    assert placed.status == OrderStatus.settled
    # confirming the same bank credit again changes nothing
    again = confirm(session, world, placed.number, 10 * PRICE, "ICBC-0001")
    assert again.outcome == "duplicate"
    assert placed.received_fen == 10 * PRICE


def test_partial_then_the_rest(session: Session, world: helpers.World) -> None:
    _item, placed = bank_order(session, world)
    first = confirm(session, world, placed.number, 50_000, "ICBC-0002")
    assert first.outcome == "partial"
    assert first.outstanding_fen == 10 * PRICE - 50_000
    assert placed.status == OrderStatus.awaiting_payment
    assert placed in bank.awaiting_transfers(session, actor=world.finance)
    second = confirm(session, world, placed.number, 10 * PRICE - 50_000, "ICBC-0003")
    assert second.outcome == "settled"
    assert second.outstanding_fen == 0


def test_excess_settles_and_books_the_refund_of_the_difference(
    session: Session, world: helpers.World
) -> None:
    _item, placed = bank_order(session, world)
    outcome = confirm(session, world, placed.number, 10 * PRICE + 1_234, "ICBC-0004")
    assert outcome.outcome == "settled"
    assert outcome.refunded_fen == 1_234
    assert placed.refunded_fen == 1_234
    (refund,) = payments.refunds_of(session, placed.id)
    assert (refund.reason, refund.amount_fen) == ("excess", 1_234)
    gateway = wallet.find_account(
        session, asset=wallet.ASSET_CNY, owner="system:gateway_bank_transfer"
    )
    assert gateway is not None
    assert wallet.get_balance(session, gateway.id).balance == -(10 * PRICE)


def test_a_partial_payment_can_be_given_back(session: Session, world: helpers.World) -> None:
    item, placed = bank_order(session, world)
    confirm(session, world, placed.number, 10_000, "ICBC-0005")
    bank.refund_bank_transfer(session, actor=world.finance, order_id=placed.id)
    assert placed.status == OrderStatus.cancelled
    assert placed.refunded_fen == placed.received_fen == 10_000
    from market.service.listings import open_t

    assert open_t(session, item, now=utcnow()) == 100


def test_money_after_the_hold_when_the_tonnes_are_gone_goes_back(
    session: Session, world: helpers.World
) -> None:
    item, placed = bank_order(session, world, quantity_t=10, listed=10)
    later = utcnow() + timedelta(days=4)
    assert orders.expire_lapsed(session, now=later) == 1
    assert placed.status == OrderStatus.expired
    rival = helpers.org_actor(session, OrgKind.enterprise)
    sold = helpers.order(session, rival, item, 10)
    helpers.pay_in_sandbox(session, rival, sold)
    outcome = confirm(session, world, placed.number, 10 * PRICE, "ICBC-0006")
    assert outcome.outcome == "refunded"
    assert placed.status == OrderStatus.refunded
    assert placed.refunded_fen == 10 * PRICE


def test_who_may_confirm_and_what(session: Session, world: helpers.World) -> None:
    _item, placed = bank_order(session, world)
    with pytest.raises(MarketRoleRefused):
        bank.confirm_bank_transfer(
            session,
            actor=world.enterprise,
            reference=placed.number,
            amount_fen=1,
            bank_reference="x",
        )
    with pytest.raises(MarketNotFound):
        confirm(session, world, "THO-00000000-NOPE", 1, "x")
    with pytest.raises(InvalidBankTransfer):
        confirm(session, world, placed.number, 1, " ")
    sandboxed = helpers.order(
        session, world.enterprise, helpers.listing(session, world, quantity_t=5), 5
    )
    with pytest.raises(InvalidBankTransfer):
        confirm(session, world, sandboxed.number, 1, "x")
