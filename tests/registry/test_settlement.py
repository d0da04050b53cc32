"""Collection contracts and their settlements: Anji's published figures, exactly."""

from __future__ import annotations

import math
import uuid
from datetime import date, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session

from registry import geo, pricing
from registry.errors import AlreadySettled, ForestRightInUse, NotEnoughPrices
from registry.service import contracts
from registry.service.actors import Actor
from registry.service.households import household_owner
from tanhui.models import OrgKind
from tests.registry import helpers
from wallet import service as wallet

ANJI_AREA_MU = 21_392
ANJI_RATE_G = 390_000  # 0.39 t/mu/yr
ANJI_PRICE_FEN = 4_340  # 43.40 CNY/t


def test_anji_figures_from_the_published_numbers() -> None:
    rate = pricing.payment_rate_fen_per_mu_year(ANJI_PRICE_FEN, ANJI_RATE_G)
    assert rate == Fraction(16_926, 10)  # 16.926 CNY/mu/yr
    total = pricing.collection_payment_fen(ANJI_PRICE_FEN, ANJI_RATE_G, Fraction(ANJI_AREA_MU), 3)
    assert total == 108_624_298
    assert pricing.format_cny(total) == "1,086,242.98"
    # Dali village: 5,425 mu → 275,470.65 CNY per 3 years (published: about 275,500)
    dali = pricing.collection_payment_fen(ANJI_PRICE_FEN, ANJI_RATE_G, Fraction(5_425), 3)
    assert pricing.format_cny(dali) == "275,470.65"


def test_average_price_rounds_half_up_to_the_fen() -> None:
    assert pricing.average_price_fen([4_339, 4_340]) == 4_340  # 4,339.5 → 4,340
    assert pricing.average_price_fen([4_339, 4_340, 4_340]) == 4_340  # 4,339.67
    assert pricing.average_price_fen([4_339, 4_339, 4_340]) == 4_339  # 4,339.33


@given(
    total=st.integers(min_value=0, max_value=10**12),
    weights=st.lists(
        st.fractions(min_value=Fraction(1, 10_000), max_value=10_000), min_size=1, max_size=40
    ),
)
def test_apportion_pays_every_fen_within_one_fen_of_each_share(
    total: int, weights: list[Fraction]
) -> None:
    keys = list(range(len(weights)))
    parts = pricing.apportion(total, dict(zip(keys, weights, strict=True)), keys)
    assert sum(parts.values()) == total
    whole = sum(weights, Fraction(0))
    for key, weight in zip(keys, weights, strict=True):
        assert abs(parts[key] - Fraction(total) * weight / whole) < 1


def _prices(session: Session, before: date, closes_fen: list[int]) -> None:
    """ETS closes on consecutive weekdays ending the trading day before ``before``."""
    days: list[date] = []
    day = before
    while len(days) < len(closes_fen):
        day -= timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    rows = "\n".join(
        f"{d.isoformat()},{c // 100}.{c % 100:02d}"
        for d, c in zip(reversed(days), closes_fen, strict=True)
    )
    contracts.import_ets_prices(session, actor=Actor.system("test"), csv_text="date,close\n" + rows)


VILLAGES = {
    "大里村": 5_425,
    "横溪坞村": 4_312,
    "双一村": 3_987,
    "高家堂村": 4_106,
    "马家弄村": 3_562,
}


def _side_m(mu: int) -> float:
    """A square a little over ``mu`` (registered areas within tolerance; the smaller is paid)."""
    return math.sqrt(mu * float(geo.M2_PER_MU)) + 0.5


def test_anji_settlement_pays_every_household_to_the_fen(session: Session) -> None:
    """21,392 mu in 5 villages, 30 trading days averaging 43.40 CNY/t, 0.39 t/mu/yr, 3 years:
    1,086,242.98 CNY, apportioned to the households by area with every fen paid."""
    coop = helpers.actor(session, OrgKind.cooperative)
    start = date(2021, 12, 28)
    closes = [4_300 + (i * 7) % 81 for i in range(29)]
    _prices(session, start, [*closes, 30 * 43_396 // 10 - sum(closes)])  # mean 4,339.6 fen
    assert contracts.average_price(session, before=start, days=30).price_fen_per_t == 4_340
    assert sum(VILLAGES.values()) == ANJI_AREA_MU
    plots = []
    members_of: dict[str, list[uuid.UUID]] = {}
    for index, (village, mu) in enumerate(VILLAGES.items()):
        members = [helpers.household(session, coop, village=village) for _ in range(3)]
        members_of[village] = [m.id for m in members]
        plots.append(
            helpers.parcel(
                session,
                coop,
                x=index * 3_000,
                side=_side_m(mu - 1_000),
                holders=[(members[0], 5_000), (members[1], 3_000), (members[2], 2_000)],
                registered_centimu=(mu - 1_000) * 100,
            )
        )
        plots.append(
            helpers.parcel(
                session,
                coop,
                x=index * 3_000,
                y=3_000,
                side=_side_m(1_000),
                holders=[(members[0], 10_000)],
                registered_centimu=1_000 * 100,
            )
        )
    contract = helpers.contract(session, coop, plots, start_date=start)
    assert coop.organisation_id is not None
    cash = wallet.account_for(session, asset=wallet.ASSET_CNY, owner=f"org:{coop.organisation_id}")
    clearing = wallet.system_account(session, "clearing", wallet.ASSET_CNY)
    wallet.post_entry(
        session, code="adjustment", transfers=[wallet.Transfer(clearing.id, cash.id, 110_000_000)]
    )
    (settlement,) = contracts.settle_due(session, actor=coop, on=start)
    assert settlement.area_mu == "21392"
    assert settlement.price_fen_per_t == ANJI_PRICE_FEN
    assert settlement.amount_fen == 108_624_298  # 1,086,242.98 CNY
    lines = contracts.settlement_lines(session, settlement.id)
    assert len(lines) == 15
    assert sum(line.amount_fen for line, _ in lines) == 108_624_298
    exact_per_mu = Fraction(108_624_298, ANJI_AREA_MU)
    for line, household in lines:
        exact = exact_per_mu * Fraction(line.area_mu)
        assert abs(line.amount_fen - exact) < 1, household.name
        account = wallet.find_account(
            session, asset=wallet.ASSET_CNY, owner=household_owner(household.id)
        )
        assert account is not None
        assert wallet.get_balance(session, account.id).balance == line.amount_fen
    dali = sum(line.amount_fen for line, h in lines if h.village == "大里村")
    assert abs(dali - 27_547_065) <= 2  # 275,470.65 CNY, the published "about 275,500"
    assert wallet.get_balance(session, cash.id).balance == 110_000_000 - 108_624_298
    with pytest.raises(AlreadySettled):
        contracts.settle(session, actor=coop, contract_id=contract.id, sequence=1)
    with pytest.raises(NotEnoughPrices):  # the second period (from 2024-12-28) has no prices
        contracts.settle_due(session, actor=coop, on=date(2025, 1, 1))


def test_a_forest_right_certificate_sits_under_one_parcel_and_one_contract(
    session: Session,
) -> None:
    coop = helpers.actor(session, OrgKind.cooperative)
    first = helpers.parcel(session, coop, x=0, cert="浙(2019)安吉县不动产权第0000001号")
    with pytest.raises(ForestRightInUse) as refused:  # the same number, spaced: one certificate
        helpers.parcel(session, coop, x=500, cert="浙(2019)安吉县不动产权第 0000001 号")
    assert refused.value.params["certificate"] == "浙(2019)安吉县不动产权第0000001号"
    helpers.contract(session, coop, [first])
    with pytest.raises(ForestRightInUse):
        helpers.contract(session, coop, [first])
