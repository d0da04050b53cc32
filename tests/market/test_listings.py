"""Listings hold their tonnes in the wallet and the registry; orders reserve them for a while."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session

from market.errors import (
    BelowMinimumOrder,
    BuyerNotVerified,
    InvalidListing,
    InvalidOrder,
    ListingClosed,
    MarketRoleRefused,
    SoldOut,
    WashTrade,
)
from market.models import ListingStatus, OrderStatus, Provider
from market.service import buyers, listings, orders, payments
from registry.errors import InsufficientCredits
from registry.models import BlockState, RetirementPurpose
from registry.service import blocks, contracts, pledges, retirements
from tanhui.db import utcnow
from tanhui.models import OrgKind
from tests.market import helpers


def _blocks(session: Session, world: helpers.World, state: BlockState) -> int:
    return sum(
        block.quantity_t
        for block in blocks.batch_blocks(session, world.batch.id)
        if block.state == state and block.holder == helpers.owner(world.coop)
    )


def test_listing_holds_the_tonnes_in_wallet_and_registry(
    session: Session, world: helpers.World
) -> None:
    asset = world.batch.asset_code
    seller = helpers.owner(world.coop)
    assert helpers.available(session, asset, seller) == 1_000
    item = helpers.listing(session, world, quantity_t=600)
    assert item.listed_t == 600 and item.status == ListingStatus.active
    assert helpers.balance(session, asset, seller) == 1_000  # still the seller's
    assert helpers.available(session, asset, seller) == 400  # but held
    assert _blocks(session, world, BlockState.listed) == 600
    assert _blocks(session, world, BlockState.held) == 400


def test_listed_tonnes_cannot_be_listed_again_retired_or_pledged(
    session: Session, world: helpers.World
) -> None:
    helpers.listing(session, world, quantity_t=900)
    with pytest.raises(InsufficientCredits):
        helpers.listing(session, world, quantity_t=200)
    with pytest.raises(InsufficientCredits):
        retirements.retire(
            session,
            actor=world.coop,
            batch_id=world.batch.id,
            quantity_t=101,
            beneficiary="x",
            purpose=RetirementPurpose.annual_neutrality,
        )
    lender = helpers.org_actor(session, OrgKind.enterprise)
    assert lender.organisation_id is not None
    with pytest.raises(InsufficientCredits):
        pledges.pledge_credits(
            session,
            actor=world.coop,
            batch_id=world.batch.id,
            quantity_t=101,
            lender_id=lender.organisation_id,
            loan_amount_fen=100_000,
            interest_rate_bp=400,
            matures_on=contracts.today() + timedelta(days=90),
        )
    # the 100 t not listed are free
    retirements.retire(
        session,
        actor=world.coop,
        batch_id=world.batch.id,
        quantity_t=100,
        beneficiary="x",
        purpose=RetirementPurpose.annual_neutrality,
    )


def test_delisting_releases_open_tonnes_and_keeps_reserved_ones(
    session: Session, world: helpers.World
) -> None:
    asset, seller = world.batch.asset_code, helpers.owner(world.coop)
    item = helpers.listing(session, world, quantity_t=300)
    placed = helpers.order(session, world.enterprise, item, 50)
    listings.delist(session, actor=world.coop, listing_id=item.id)
    assert item.status == ListingStatus.closed
    assert item.listed_t == 50  # reserved by the open order
    assert helpers.available(session, asset, seller) == 950
    assert _blocks(session, world, BlockState.listed) == 50
    with pytest.raises(ListingClosed):
        helpers.order(session, world.enterprise, item, 1)
    # the reserved order can still be paid
    assert helpers.pay_in_sandbox(session, world.enterprise, placed).outcome == "settled"
    assert item.listed_t == 0 and item.sold_t == 50
    assert helpers.available(session, asset, seller) == 950
    assert helpers.balance(session, asset, seller) == 950
    with pytest.raises(ListingClosed):
        listings.delist(session, actor=world.coop, listing_id=item.id)


def test_a_lapsed_order_on_a_delisted_listing_gives_its_tonnes_back(
    session: Session, world: helpers.World
) -> None:
    asset, seller = world.batch.asset_code, helpers.owner(world.coop)
    item = helpers.listing(session, world, quantity_t=300)
    placed = helpers.order(session, world.enterprise, item, 50)
    listings.delist(session, actor=world.coop, listing_id=item.id)
    later = utcnow() + timedelta(hours=1)
    assert orders.expire_lapsed(session, now=later) == 1
    assert placed.status == OrderStatus.expired
    assert item.listed_t == 0
    assert helpers.available(session, asset, seller) == 1_000
    assert _blocks(session, world, BlockState.listed) == 0
    assert helpers.reservations_disagree(session) == []


def test_order_lines_carry_their_orders_hold_through_every_change(
    session: Session, world: helpers.World
) -> None:
    """Open tonnes are counted from the lines' ``reserved_until``: creating, extending,
    cancelling, expiring and settling an order each keep it equal to the order's hold."""
    item = helpers.listing(session, world, quantity_t=100)
    cancelled = helpers.order(session, world.enterprise, item, 10)
    lapsing = helpers.order(session, world.enterprise, item, 20)
    paid = helpers.order(session, world.enterprise, item, 30)
    kept = helpers.order(session, world.enterprise, item, 40)
    assert helpers.reservations_disagree(session) == []
    assert listings.open_t(session, item, now=utcnow()) == 0
    orders.cancel(session, actor=world.enterprise, order_id=cancelled.id)
    assert helpers.reservations_disagree(session) == []
    assert listings.open_t(session, item, now=utcnow()) == 10
    later = lapsing.hold_expires_at + timedelta(seconds=1)
    # at ``later`` every hold has lapsed: the listing is open again in full
    assert listings.open_t(session, item, now=later) == 100
    orders.extend_hold(session, kept, until=later + timedelta(hours=1), now=utcnow())
    assert helpers.reservations_disagree(session) == []
    assert listings.open_t(session, item, now=later) == 60
    assert listings.open_quantities(session, [item], now=later) == {item.id: 60}
    assert helpers.pay_in_sandbox(session, world.enterprise, paid).outcome == "settled"
    assert orders.expire_lapsed(session, now=later) >= 1
    assert lapsing.status == OrderStatus.expired
    assert helpers.reservations_disagree(session) == []
    assert listings.open_t(session, item, now=later) == 30  # 100 - 30 sold - 40 still held
    assert item.sold_t == 30


def test_listing_checks_its_numbers_and_who_lists(session: Session, world: helpers.World) -> None:
    with pytest.raises(InvalidListing) as caught:
        helpers.listing(session, world, quantity_t=0, price_fen_per_t=-1)
    fields = {item["field"] for item in caught.value.errors}
    assert {"quantity_t", "price_fen_per_t"} <= fields
    with pytest.raises(InvalidListing):
        helpers.listing(session, world, quantity_t=10, min_order_t=11)
    with pytest.raises(InvalidListing):
        helpers.listing(session, world, quantity_t=10, ends_at=utcnow() - timedelta(days=1))
    with pytest.raises(MarketRoleRefused):
        listings.create_listing(
            session,
            actor=world.enterprise,
            batch_id=world.batch.id,
            quantity_t=1,
            price_fen_per_t=100,
        )


def test_search_by_type_district_vintage_and_price(session: Session) -> None:
    bamboo = helpers.issued_world(session)
    wetland = helpers.issued_world(session, kind=helpers.ProjectType.wetland)
    cheap = helpers.listing(session, bamboo, quantity_t=10, price_fen_per_t=5_900)
    dear = helpers.listing(session, bamboo, quantity_t=10, price_fen_per_t=7_341)
    wet = helpers.listing(session, wetland, quantity_t=10, price_fen_per_t=5_883)

    def ids(**query: object) -> list[object]:
        return [item.id for item in listings.search(session, listings.ListingQuery(**query))]

    assert ids(credit_type="bamboo")[:2] == [cheap.id, dear.id]
    assert wet.id in ids(credit_type="wetland") and cheap.id not in ids(credit_type="wetland")
    assert ids(min_price_fen=7_000) == [dear.id]
    assert ids(max_price_fen=5_883, credit_type="wetland") == [wet.id]
    assert cheap.id in ids(vintage=bamboo.batch.vintage)
    assert ids(vintage=1999) == []
    district = bamboo.project.district_adcode
    assert district is not None and cheap.id in ids(district_adcode=district)
    assert ids(district_adcode="000000") == []


def test_orders_reserve_and_the_rest_get_sold_out(session: Session, world: helpers.World) -> None:
    item = helpers.listing(session, world, quantity_t=10)
    other = helpers.org_actor(session, OrgKind.enterprise)
    helpers.order(session, world.enterprise, item, 7)
    with pytest.raises(SoldOut) as caught:
        helpers.order(session, other, item, 4)
    assert caught.value.params["available"] == 3
    helpers.order(session, other, item, 3)
    with pytest.raises(SoldOut):
        helpers.order(session, other, item, 1)
    assert listings.open_t(session, item, now=utcnow()) == 0
    # once the holds lapse the tonnes are open again
    assert listings.open_t(session, item, now=utcnow() + timedelta(hours=1)) == 10


def test_wash_trading_minimum_orders_and_retirement_fields(
    session: Session, world: helpers.World
) -> None:
    item = helpers.listing(session, world, quantity_t=100, min_order_t=10)
    with pytest.raises(WashTrade):
        helpers.order(session, world.coop, item, 10)
    with pytest.raises(BelowMinimumOrder):
        helpers.order(session, world.enterprise, item, 9)
    with pytest.raises(InvalidOrder) as caught:
        helpers.order(session, world.enterprise, item, 10, retire_on_purchase=True)
    assert {error["field"] for error in caught.value.errors} == {"beneficiary", "purpose"}
    with pytest.raises(InvalidOrder):
        helpers.order(
            session,
            world.enterprise,
            item,
            10,
            retire_on_purchase=True,
            beneficiary="x",
            purpose=RetirementPurpose.judicial_restoration,
        )
    with pytest.raises(InvalidOrder):
        helpers.order(
            session,
            world.enterprise,
            item,
            10,
            retire_on_purchase=True,
            beneficiary="x",
            purpose=RetirementPurpose.ecological_compensation,
        )
    with pytest.raises(InvalidOrder):
        orders.create_order(session, actor=world.enterprise, lines=[])
    # below the minimum is allowed for the very last tonnes
    helpers.order(session, world.enterprise, item, 95)
    helpers.order(session, helpers.org_actor(session, OrgKind.enterprise), item, 5)


def test_hold_durations_per_provider(session: Session, world: helpers.World) -> None:
    verified = world.enterprise.organisation_id
    assert verified is not None
    assert buyers.hold_duration(session, verified, Provider.sandbox) == timedelta(minutes=30)
    assert buyers.hold_duration(session, verified, Provider.bank_transfer) == timedelta(days=3)
    assert buyers.hold_duration(session, verified, Provider.stripe) >= timedelta(minutes=32)
    unverified = helpers.org_actor(session, OrgKind.enterprise).organisation_id
    assert unverified is not None
    assert buyers.hold_duration(session, unverified, Provider.sandbox) == timedelta(minutes=15)
    assert buyers.hold_duration(session, unverified, Provider.stripe) >= timedelta(minutes=32)
    with pytest.raises(BuyerNotVerified):
        buyers.hold_duration(session, unverified, Provider.bank_transfer)
    assert orders.default_provider() == Provider.sandbox  # no Stripe key in the tests
    assert Provider.stripe not in orders.available_providers()


def test_cancelling_releases_and_a_cancelled_checkout_cannot_be_paid(
    session: Session, world: helpers.World
) -> None:
    item = helpers.listing(session, world, quantity_t=10)
    placed = helpers.order(session, world.enterprise, item, 10)
    payment = payments.start_checkout(session, actor=world.enterprise, order_id=placed.id)
    assert payment.checkout_url is not None and payment.checkout_url.endswith(str(payment.id))
    payments.sandbox_cancel(session, actor=world.enterprise, payment_id=payment.id)
    assert placed.status == OrderStatus.cancelled
    assert listings.open_t(session, item, now=utcnow()) == 10
    from market.errors import OrderStateConflict

    with pytest.raises(OrderStateConflict):
        payments.sandbox_complete(session, actor=world.enterprise, payment_id=payment.id)
