"""The settlement waterfall (issue 15, hole 9): the cooperative first recovers the collection
price it prepaid its households for the tonnes sold; the households share what remains."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from fractions import Fraction

from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select

from market.models import Payout, PayoutKind
from market.service import settlement, statements
from registry.pricing import apportion, round_half_up
from registry.service import contracts
from registry.service.actors import Actor
from tanhui.models import OrgKind, Role
from tests import factories
from tests.market import helpers
from wallet import service as wallet

COLLECTION_PRICE_FEN = 4_340  # 43.40 CNY/t, Anji's first collection price
SALE_PRICE_FEN = 4_500  # the 45 CNY/t
SOLD_T = 30


def _settle_collection(session: Session, world: helpers.World) -> None:
    """Pay the world's contract its first collection period at 43.40 CNY/t."""
    assert world.coop.organisation_id is not None
    (contract,) = contracts.list_contracts(
        session, actor=world.coop, cooperative_id=world.coop.organisation_id
    )
    days: list[date] = []
    day = contract.start_date
    while len(days) < 30:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    rows = "\n".join(f"{d.isoformat()},43.40" for d in sorted(days))
    contracts.import_ets_prices(session, actor=Actor.system("test"), csv_text="date,close\n" + rows)
    cash = wallet.account_for(session, asset=wallet.ASSET_CNY, owner=helpers.owner(world.coop))
    clearing = wallet.system_account(session, "clearing", wallet.ASSET_CNY)
    wallet.post_entry(
        session, code="adjustment", transfers=[wallet.Transfer(clearing.id, cash.id, 10**9)]
    )
    paid = contracts.settle(session, actor=world.coop, contract_id=contract.id, sequence=1)
    assert paid.price_fen_per_t == COLLECTION_PRICE_FEN


def test_the_cooperative_recovers_the_prepaid_collection_price_first(
    session: Session, client: TestClient
) -> None:
    """The issue's case: 30 t sold at 45 CNY/t with a 3 % fee. Before, the households got
    80 % of the 1,309.50 CNY net on top of the 1,302 CNY prepaid for those tonnes, and the
    cooperative kept 261.90 CNY; now it gets its 1,302.00 CNY back first and 20 % of the
    remaining 7.50 CNY."""
    world = helpers.issued_world(session, areas=[(200.0, {0: 6_000, 1: 4_000})])
    _settle_collection(session, world)
    item = helpers.listing(session, world, quantity_t=100, price_fen_per_t=SALE_PRICE_FEN)
    buyer = factories.user(session, kind=OrgKind.enterprise, role=Role.member)
    headers = {"Authorization": f"Bearer {factories.token_for(session, buyer)}"}
    session.commit()
    order = client.post(
        "/api/v1/market/orders",
        json={"lines": [{"listing_id": str(item.id), "quantity_t": SOLD_T}], "provider": "sandbox"},
        headers=headers,
    )
    assert order.status_code == 201, order.text
    checkout = client.post(f"/api/v1/market/orders/{order.json()['id']}/checkout", headers=headers)
    assert checkout.status_code == 200, checkout.text
    paid = client.post(
        f"/api/v1/market/sandbox/payments/{checkout.json()['payment']['id']}/complete",
        headers=headers,
    )
    assert paid.status_code == 200 and paid.json()["outcome"] == "settled", paid.text

    session.rollback()
    payouts = session.exec(
        select(Payout).where(col(Payout.order_id) == uuid.UUID(order.json()["id"]))
    ).all()
    by_kind: dict[str, int] = {}
    for payout in payouts:
        by_kind[str(payout.kind)] = by_kind.get(str(payout.kind), 0) + payout.amount_fen
    amount = SOLD_T * SALE_PRICE_FEN  # 1,350.00 CNY
    fee = 4_050  # 3 %
    prepaid = SOLD_T * COLLECTION_PRICE_FEN  # 1,302.00 CNY
    remainder = amount - fee - prepaid  # 7.50 CNY
    assert by_kind[PayoutKind.fee] == fee
    assert by_kind[PayoutKind.household] == 600  # 80 % of 7.50 CNY
    assert by_kind[PayoutKind.cooperative] == prepaid + remainder - 600  # 1,303.50 CNY
    assert sum(by_kind.values()) == amount

    # the household's statement shows both parts: the collection payment and the sale share
    first = world.households[0]
    statement = statements.household_statement(session, first.id)
    assert statement.part_fen("collection") > 0
    assert statement.part_fen("sale_share") == 360  # 60 % of the households' 6.00 CNY
    link = statements.household_link(session, actor=world.coop, household_id=first.id)
    session.commit()
    page = client.get(f"/h/{link.token}", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    parts = page.text[page.text.index('id="parts"') :]
    assert "Collection payments, paid in advance" in parts or "收储款" in parts
    assert ("Shares of carbon sales" in parts or "碳汇销售分成" in parts) and "3.60" in parts


def test_without_a_collection_payment_nothing_is_recovered(session: Session) -> None:
    world = helpers.issued_world(session)
    assert settlement.prepaid_fen(session, SOLD_T, world.batch) == 0


@settings(max_examples=300, deadline=None)
@given(
    amount=st.integers(min_value=0, max_value=10**12),
    fee_bp=st.integers(min_value=0, max_value=10_000),
    share_bp=st.integers(min_value=0, max_value=10_000),
    prepaid=st.integers(min_value=0, max_value=10**12),
    weights=st.lists(st.integers(min_value=1, max_value=10**6), min_size=0, max_size=7),
)
def test_the_waterfall_conserves_every_fen(
    amount: int, fee_bp: int, share_bp: int, prepaid: int, weights: list[int]
) -> None:
    keys = [uuid.UUID(int=index + 1) for index in range(len(weights))]

    def households(rest: int) -> dict[uuid.UUID, int]:
        if not keys or rest <= 0:
            return {}
        total = round_half_up(Fraction(rest * share_bp, 10_000))
        return apportion(total, dict(zip(keys, map(Fraction, weights), strict=True)), keys)

    split = settlement.split_line(amount, fee_bp, households, prepaid)
    paid = sum(split.households.values())
    assert split.fee_fen + split.seller_fen + paid == amount
    assert split.recovered_fen == min(prepaid, split.net_fen)
    # the cooperative never ends below what it prepaid when the proceeds cover it
    assert split.seller_fen >= min(prepaid, split.net_fen)
    # the households share only what remains after the recovered price
    assert paid == sum(households(split.net_fen - split.recovered_fen).values())
    assert all(part > 0 for part in split.households.values())
