"""Settlement: one journal entry, to the fen, with households' shares; serials follow."""

from __future__ import annotations

import json
import uuid
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select

from market.models import OrderStatus, Payout, PayoutKind
from market.service import settlement
from registry import geo
from registry.models import BlockState, Certificate, Parcel, ProjectParcel, RetirementPurpose
from registry.pricing import apportion, round_half_up
from registry.service import blocks
from tanhui.settings import Settings, use_settings
from tests.market import helpers
from wallet import service as wallet
from wallet.models import JournalEntry

PRIME_PRICE_FEN = 7_349  # 73.49 CNY/t, a prime number of fen
PRIME_TONNES = 13


def three_household_world(session: Session) -> helpers.World:
    """Three households on parcels of prime side lengths (97 m, 89 m, 83 m)."""
    return helpers.issued_world(
        session, areas=[(97.0, {0: 10_000}), (89.0, {1: 10_000}), (83.0, {2: 10_000})]
    )


def test_three_households_prime_amounts_every_fen_accounted(
    session: Session, settings: Settings
) -> None:
    use_settings(settings.model_copy(update={"market_fee_bp": 300}))
    world = three_household_world(session)
    item = helpers.listing(session, world, quantity_t=100, price_fen_per_t=PRIME_PRICE_FEN)
    placed = helpers.order(session, world.enterprise, item, PRIME_TONNES)
    assert helpers.pay_in_sandbox(session, world.enterprise, placed).outcome == "settled"

    amount = PRIME_TONNES * PRIME_PRICE_FEN  # 95,537 fen
    fee = round_half_up(Fraction(amount * 300, 10_000))  # 2,866.11 -> 2,866
    net = amount - fee
    parcels = session.exec(
        select(Parcel)
        .join(ProjectParcel, col(ProjectParcel.parcel_id) == col(Parcel.id))
        .where(col(ProjectParcel.project_id) == world.project.id)
    ).all()
    areas = {parcel.id: geo.m2_to_mu(parcel.area_m2) for parcel in parcels}
    total_area = sum(areas.values(), Fraction(0))
    households_total = round_half_up(Fraction(net) * Fraction(8, 10))
    exact = {}
    from registry.models import ParcelHolding

    for parcel in parcels:
        (holding,) = session.exec(
            select(ParcelHolding).where(col(ParcelHolding.parcel_id) == parcel.id)
        ).all()
        exact[holding.household_id] = Fraction(households_total) * areas[parcel.id] / total_area

    payouts = session.exec(select(Payout).where(col(Payout.order_id) == placed.id)).all()
    by_kind: dict[PayoutKind, list[Payout]] = {}
    for payout in payouts:
        by_kind.setdefault(PayoutKind(payout.kind), []).append(payout)
    assert [p.amount_fen for p in by_kind[PayoutKind.fee]] == [fee]
    households = {p.household_id: p.amount_fen for p in by_kind[PayoutKind.household]}
    assert len(households) == 3
    assert sum(households.values()) == households_total
    for household_id, paid in households.items():
        assert abs(paid - exact[household_id]) < 1, (paid, exact[household_id])
    (coop,) = by_kind[PayoutKind.cooperative]
    assert coop.amount_fen == net - households_total
    assert fee + coop.amount_fen + sum(households.values()) == amount
    # the wallet agrees, fen for fen
    for household in world.households:
        paid = households[household.id]
        assert helpers.balance(session, wallet.ASSET_CNY, f"household:{household.id}") == paid
    assert helpers.balance(session, wallet.ASSET_CNY, helpers.owner(world.coop)) == coop.amount_fen
    assert placed.fee_fen == fee


def test_settlement_is_one_journal_entry_with_tonnes_and_money(
    session: Session, world: helpers.World
) -> None:
    item = helpers.listing(session, world, quantity_t=100)
    placed = helpers.order(session, world.enterprise, item, 20)
    helpers.pay_in_sandbox(session, world.enterprise, placed)
    assert placed.settlement_entry_id is not None
    entries = session.exec(select(JournalEntry).where(col(JournalEntry.code) == "settlement")).all()
    assert [entry.id for entry in entries] == [placed.settlement_entry_id]
    entry = entries[0]
    assert json.loads(entry.metadata_json)["order"] == str(placed.id)
    transfers = wallet.transfers_of(session, entry.id)
    accounts = {t.debit_account_id for t in transfers} | {t.credit_account_id for t in transfers}
    assets = {wallet.get_account(session, account_id).asset for account_id in accounts}
    assert assets == {world.batch.asset_code, wallet.ASSET_CNY}
    clearing = wallet.system_account(session, "clearing", wallet.ASSET_CNY).id
    paid_out = sum(t.amount for t in transfers if t.debit_account_id == clearing)
    assert paid_out == placed.total_fen == 20 * 7_341
    tonnes = [t.amount for t in transfers if t.debit_account_id not in {clearing}]
    assert tonnes == [20]
    assert wallet.verify_ledger(session).ok


def test_serial_blocks_follow_the_tonnes(session: Session, world: helpers.World) -> None:
    buyer = helpers.owner(world.enterprise)
    seller = helpers.owner(world.coop)
    item = helpers.listing(session, world, quantity_t=100)
    for quantity in (7, 11, 13):
        placed = helpers.order(session, world.enterprise, item, quantity)
        helpers.pay_in_sandbox(session, world.enterprise, placed)
    all_blocks = blocks.batch_blocks(session, world.batch.id)
    assert blocks.tiles(world.batch, all_blocks)

    def held(holder: str, *states: BlockState) -> int:
        return sum(b.quantity_t for b in all_blocks if b.holder == holder and b.state in states)

    asset = world.batch.asset_code
    assert held(buyer, BlockState.held) == 31 == helpers.balance(session, asset, buyer)
    assert held(seller, BlockState.held, BlockState.listed) == 969
    assert helpers.balance(session, asset, seller) == 969
    assert held(seller, BlockState.listed) == item.listed_t == 69
    assert helpers.available(session, asset, seller) == 900


def test_retire_on_purchase_signs_a_certificate_for_the_beneficiary(
    session: Session, world: helpers.World
) -> None:
    item = helpers.listing(session, world, quantity_t=100)
    placed = helpers.order(
        session,
        world.enterprise,
        item,
        25,
        retire_on_purchase=True,
        beneficiary="2026 杭州亚运低碳办会",
        purpose=RetirementPurpose.event_neutrality,
    )
    assert helpers.pay_in_sandbox(session, world.enterprise, placed).outcome == "settled"
    (line,) = session.exec(
        select(settlement.OrderLine).where(col(settlement.OrderLine.order_id) == placed.id)
    ).all()
    assert line.certificate_id is not None
    certificate = session.get(Certificate, line.certificate_id)
    assert certificate is not None
    payload = json.loads(certificate.payload_json)
    assert payload["beneficiary"] == "2026 杭州亚运低碳办会"
    assert payload["purpose"] == "event_neutrality"
    assert payload["quantity_t"] == 25
    buyer = helpers.owner(world.enterprise)
    assert helpers.balance(session, world.batch.asset_code, buyer) == 0
    retired = helpers.balance(session, world.batch.asset_code, "system:retirement")
    assert retired == 25
    assert placed.status == OrderStatus.settled


@settings(max_examples=200, deadline=None)
@given(
    amount=st.integers(min_value=1, max_value=10**12),
    fee_bp=st.integers(min_value=0, max_value=10_000),
    share_bp=st.integers(min_value=0, max_value=10_000),
    weights=st.lists(st.integers(min_value=1, max_value=10**6), min_size=0, max_size=7),
)
def test_split_accounts_for_every_fen(
    amount: int, fee_bp: int, share_bp: int, weights: list[int]
) -> None:
    keys = [uuid.UUID(int=index + 1) for index in range(len(weights))]

    def households(net: int) -> dict[uuid.UUID, int]:
        if not keys or net <= 0:
            return {}
        total = round_half_up(Fraction(net * share_bp, 10_000))
        return apportion(total, dict(zip(keys, map(Fraction, weights), strict=True)), keys)

    split = settlement.split_line(amount, fee_bp, households)
    assert split.fee_fen + split.seller_fen + sum(split.households.values()) == amount
    assert split.fee_fen == round_half_up(Fraction(amount * fee_bp, 10_000))
    assert split.seller_fen >= 0 and all(part > 0 for part in split.households.values())


def test_a_split_above_the_net_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        settlement.split_line(100, 0, lambda net: {uuid.UUID(int=1): net + 1})
