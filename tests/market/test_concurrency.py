"""No oversell: 50 buyers at once for the last 10 t, on PostgreSQL (real row locks)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from market.errors import HoldCapExceeded, SoldOut
from market.models import Listing, OrderStatus
from market.service import buyers, orders, payments
from registry.models import BlockState
from registry.service import blocks
from registry.service.actors import Actor
from tanhui.db import retrying, utcnow
from tanhui.models import OrgKind
from tanhui.settings import Settings
from tests.market import helpers
from wallet import service as wallet

pytestmark = pytest.mark.postgres
BUYERS = 50


def all_at_once(count: int, work: Callable[[int], Any]) -> tuple[list[Any], list[BaseException]]:
    results: list[Any] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results.append(work(index))
        except BaseException as error:  # collected for the assertions
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def test_fifty_buyers_for_the_last_ten_tonnes(pg_settings: Settings, pg_engine: Engine) -> None:
    with Session(pg_engine, expire_on_commit=False) as session:
        world = helpers.issued_world(session)
        item = helpers.listing(session, world, quantity_t=100)
        first = helpers.order(session, world.enterprise, item, 90)
        helpers.pay_in_sandbox(session, world.enterprise, first)
        buyers = [helpers.org_actor(session, OrgKind.enterprise) for _ in range(BUYERS)]
        session.commit()
        listing_id = item.id

    def buy(index: int) -> uuid.UUID:
        def work(session: Session) -> uuid.UUID:
            placed = orders.create_order(
                session,
                actor=buyers[index],
                lines=[orders.LineRequest(listing_id=listing_id, quantity_t=1)],
            )
            return placed.id

        return retrying(pg_engine, work)

    placed, errors = all_at_once(BUYERS, buy)
    assert len(placed) == 10
    assert len(errors) == BUYERS - 10
    assert all(isinstance(error, SoldOut) for error in errors), errors[:3]

    owners = {}
    with Session(pg_engine) as session:
        for order_id in placed:
            order = orders.get_order_unchecked(session, order_id)
            owners[order_id] = next(b for b in buyers if b.organisation_id == order.buyer_id)

    def pay(index: int) -> str:
        order_id = placed[index]
        buyer: Actor = owners[order_id]

        def work(session: Session) -> str:
            payment = payments.start_checkout(session, actor=buyer, order_id=order_id)
            return payments.sandbox_complete(session, actor=buyer, payment_id=payment.id).outcome

        return retrying(pg_engine, work)

    outcomes, pay_errors = all_at_once(len(placed), pay)
    assert pay_errors == []
    assert outcomes == ["settled"] * 10

    with Session(pg_engine) as session:
        listing = session.get(Listing, listing_id)
        assert listing is not None
        assert (listing.sold_t, listing.listed_t) == (100, 0)
        asset = world.batch.asset_code
        bought = sum(helpers.balance(session, asset, helpers.owner(buyer)) for buyer in buyers)
        assert bought == 10
        all_blocks = blocks.batch_blocks(session, world.batch.id)
        assert blocks.tiles(world.batch, all_blocks)
        by_buyers = sum(
            block.quantity_t
            for block in all_blocks
            if block.state == BlockState.held
            and block.holder in {helpers.owner(buyer) for buyer in buyers}
        )
        assert by_buyers == 10
        assert not [block for block in all_blocks if block.state == BlockState.listed]
        seller = helpers.owner(world.coop)
        assert helpers.balance(session, asset, seller) == 900
        assert helpers.available(session, asset, seller) == 900
        for order_id in placed:
            order = orders.get_order_unchecked(session, order_id)
            assert order.status == OrderStatus.settled
        assert wallet.verify_ledger(session).ok


def test_twenty_parallel_orders_of_one_buyer_stay_under_its_cap(
    pg_settings: Settings, pg_engine: Engine
) -> None:
    """The cap counts what the buyer holds with the buyer's row locked: parallel orders of one
    buyer queue up, so together they never hold more than the cap (a quarter of 1,000 t). Each
    order takes another listing, so no listing's lock puts them in line."""
    with Session(pg_engine, expire_on_commit=False) as session:
        world = helpers.issued_world(session)
        listing_ids = [helpers.listing(session, world, quantity_t=50).id for _ in range(20)]
        session.commit()
    buyer = world.enterprise

    def buy(index: int) -> uuid.UUID:
        def work(session: Session) -> uuid.UUID:
            return orders.create_order(
                session,
                actor=buyer,
                lines=[orders.LineRequest(listing_id=listing_ids[index], quantity_t=20)],
            ).id

        return retrying(pg_engine, work)

    placed, errors = all_at_once(20, buy)
    assert len(placed) == 12, errors[:3]
    assert len(errors) == 8
    assert all(isinstance(error, HoldCapExceeded) for error in errors), errors[:3]
    with Session(pg_engine) as session:
        assert buyers.held_t(session, buyer.organisation_id, now=utcnow()) == 240
