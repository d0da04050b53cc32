"""A listing's optional end date: once it passes, the listing leaves the search, takes no new
order, and the sweep (``tanhui market expire``) gives back its tonnes except those an open order
reserved before the end, which that order can still pay for."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session

from market.errors import ListingClosed
from market.models import ListingStatus, OrderStatus
from market.service import listings
from registry.models import BlockState
from registry.service import blocks
from tanhui.db import utcnow
from tests.market import helpers
from wallet import service as wallet


def _listed_blocks(session: Session, world: helpers.World) -> int:
    return sum(
        block.quantity_t
        for block in blocks.batch_blocks(session, world.batch.id)
        if block.state == BlockState.listed and block.holder == helpers.owner(world.coop)
    )


def test_an_ended_listing_stops_selling_and_gives_back_its_open_tonnes(
    session: Session, world: helpers.World
) -> None:
    asset, seller = world.batch.asset_code, helpers.owner(world.coop)
    item = helpers.listing(session, world, quantity_t=100, ends_at=utcnow() + timedelta(hours=1))
    assert item.id in {found.id for found in listings.search(session, listings.ListingQuery())}
    placed = helpers.order(session, world.enterprise, item, 20)  # reserved before the end
    assert helpers.available(session, asset, seller) == 900

    item.ends_at = utcnow() - timedelta(seconds=1)  # the end date passes
    session.add(item)
    session.flush()
    assert item.id not in {found.id for found in listings.search(session, listings.ListingQuery())}
    assert listings.open_t(session, item, now=utcnow()) == 0
    with pytest.raises(ListingClosed):
        helpers.order(session, world.enterprise, item, 1)

    assert listings.sweep(session) == 80
    assert item.status == ListingStatus.ended and item.listed_t == 20
    assert helpers.available(session, asset, seller) == 980
    assert _listed_blocks(session, world) == 20
    assert listings.sweep(session) == 0  # nothing more to give back

    # the order that reserved 20 t before the end still pays and settles
    assert helpers.pay_in_sandbox(session, world.enterprise, placed).outcome == "settled"
    assert placed.status == OrderStatus.settled
    assert helpers.balance(session, asset, helpers.owner(world.enterprise)) == 20
    assert helpers.balance(session, asset, seller) == 980
    assert helpers.available(session, asset, seller) == 980
    assert item.listed_t == 0 and item.sold_t == 20
    assert _listed_blocks(session, world) == 0
    assert wallet.verify_ledger(session).ok
