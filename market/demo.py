"""The market's part of the Huzhou demo: listings, sales through the market, a judicial case and
a compensation fund's payout round.

Real figures: State Grid Huzhou's 2,000 t at 73.41 CNY/t and four buyers averaging 59 CNY/t
(Anji, 2021), the Xiazhu Lake deal at 58.83 CNY/t (Deqing, 2022), the Huzhou South Taihu court's
judicial restoration in sink credits. Synthetic (and named "（演示）"): the buyers other than the
demo enterprise, the case, the fund's rates, and the dates of the earlier sales, spread over the
past two months so that the price index has a history to draw.

The Anji tonnes come from the five village cooperatives of registry.demo: the earlier sales
are spread over all five (each has sales and households paid); Dali's (AJ0001) lists only a
little more and keeps most of its tonnes (bench/http.py lists them); the State Grid-like lot is
the second village's, the four buyers at 59 CNY/t buy from the fourth's and the fifth lists more
(the third's and part of the fourth's went to the court and an over-the-counter buyer in
registry.demo).

Runs after the registry's demo (it needs AJ0001…AJ0005 and DQ0001 issued). Idempotent: nothing
happens once a listing exists.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Unpack

from sqlmodel import Session, col, select

from market.models import Listing, Order, Payment, Provider
from market.service import bank, compensation, funds, listings, orders, payments
from market.service import buyers as buyer_service
from registry.demo import ANJI_VILLAGES
from registry.models import Batch, RetirementPurpose
from registry.service import issuance, projects
from registry.service.actors import Actor
from tanhui import identity
from tanhui.db import utcnow
from tanhui.models import Organisation, OrgKind, Role

Progress = Callable[[str], None]
WETLAND_COOP = "德清县下渚湖湿地生态资源运营（演示）"
DEMO_BUYER = "湖州绿能制造有限公司（演示）"
STATE_GRID = "国网湖州供电公司（演示）"
OTHER_BUYERS = ("长兴新能源科技有限公司（演示）", "德清莫干山文旅集团（演示）", "湖州银行（演示）")
DEFENDANT = "湖州某建材有限公司（演示）"
COURT = "湖州市南太湖新区人民法院（演示）"
FUND = "湖州市生态保护补偿基金（演示）"
PLATFORM = "碳惠平台运营（演示）"
RESIDENTS_PROJECT = "RES0001"
RESIDENTS_POOL_OPERATOR = "湖州市碳普惠居民减排池（演示）"
CASE_NUMBER = "（2025）浙0591民初0088号（演示）"
# Indexes into ANJI_VILLAGES: who sells the State Grid-like lot, to the four buyers, lists more
STATE_GRID_VILLAGE, FOUR_BUYERS_VILLAGE, MORE_VILLAGE = 1, 3, 4
# Demo unified social credit codes (valid check characters, Huzhou's prefix 913305; no real
# company's): platform staff verified these two buyers, who pay by bank transfer.
STATE_GRID_USCC = "91330500MA2B00001W"
DEMO_BUYER_USCC = "91330500MA2B000020"
DALI_LOT_T = 200  # Dali's own active listing; the rest of its tonnes stay unlisted
# (days ago, price in fen per tonne, tonnes): earlier sales that draw the price index, the n-th
# by the village cooperative n mod 5
HISTORY = [
    (56, 5_600, 40),
    (49, 5_750, 60),
    (42, 5_900, 80),
    (35, 6_120, 50),
    (28, 6_380, 70),
    (21, 6_610, 90),
    (14, 6_940, 60),
    (7, 7_100, 80),
]


def _org(session: Session, name: str) -> Organisation | None:
    return session.exec(select(Organisation).where(col(Organisation.name) == name)).first()


def _enterprise(session: Session, name: str) -> Organisation:
    return identity.get_or_create_organisation(session, name=name, kind=OrgKind.enterprise)


def _acting(organisation: Organisation) -> Actor:
    return Actor(
        ref="system:demo",
        organisation_id=organisation.id,
        org_kind=organisation.kind,
        role=Role.owner,
    )


def _checkout(
    session: Session,
    buyer: Organisation,
    listing: Listing,
    quantity: int,
    **options: Unpack[orders.OrderOptions],
) -> tuple[Order, Payment]:
    """The buyer's order of ``quantity`` tonnes of one listing with its checkout open: how every
    demo sale starts, whichever way it is then paid."""
    actor = _acting(buyer)
    placed = orders.create_order(
        session,
        actor=actor,
        lines=[orders.LineRequest(listing_id=listing.id, quantity_t=quantity)],
        **options,
    )
    return placed, payments.start_checkout(session, actor=actor, order_id=placed.id)


def _buy(
    session: Session,
    buyer: Organisation,
    listing: Listing,
    quantity: int,
    **extra: Unpack[orders.OrderOptions],
) -> Order:
    options: orders.OrderOptions = {**extra, "provider": Provider.sandbox}  # paid below
    placed, payment = _checkout(session, buyer, listing, quantity, **options)
    payments.sandbox_complete(session, actor=_acting(buyer), payment_id=payment.id)
    return placed


def _anji(session: Session) -> list[tuple[Actor, Batch]] | None:
    """Each Anji village cooperative (as an actor) and its batch, in ANJI_VILLAGES order."""
    found = []
    for village in ANJI_VILLAGES:
        project = projects.find_by_code(session, village.project_code)
        coop = session.get(Organisation, project.cooperative_id) if project else None
        batches = issuance.batches_of_project(session, project.id) if project else []
        if coop is None or not batches:
            return None
        found.append((_acting(coop), batches[0]))
    return found


def seed(session: Session, progress: Progress) -> None:
    if session.exec(select(Listing.id)).first() is not None:
        return
    anji = projects.find_by_code(session, ANJI_VILLAGES[0].project_code)
    xiazhu = projects.find_by_code(session, "DQ0001")
    villages = _anji(session)
    wetland_coop = _org(session, WETLAND_COOP)
    platform = _org(session, PLATFORM)
    if anji is None or xiazhu is None or not villages or wetland_coop is None or not platform:
        return
    (xiazhu_batch, *_) = issuance.batches_of_project(session, xiazhu.id)
    wetland = _acting(wetland_coop)
    finance = _acting(platform)

    progress("  market: listings of the Anji villages' bamboo and Xiazhu Lake wetland credits")
    history = []
    for index, (_days, price, tonnes) in enumerate(HISTORY):
        seller, batch = villages[index % len(villages)]
        history.append(
            listings.create_listing(
                session, actor=seller, batch_id=batch.id, quantity_t=tonnes, price_fen_per_t=price
            )
        )
    seller, batch = villages[STATE_GRID_VILLAGE]
    state_grid_lot = listings.create_listing(
        session,
        actor=seller,
        batch_id=batch.id,
        quantity_t=2_200,  # of its measured ~2,470 t (the 2,000 t sale below)
        price_fen_per_t=7_341,
        min_order_t=100,
    )
    seller, batch = villages[FOUR_BUYERS_VILLAGE]
    anji_lot = listings.create_listing(
        session, actor=seller, batch_id=batch.id, quantity_t=1_000, price_fen_per_t=5_900
    )
    seller, batch = villages[0]
    listings.create_listing(
        session, actor=seller, batch_id=batch.id, quantity_t=DALI_LOT_T, price_fen_per_t=6_500
    )
    seller, batch = villages[MORE_VILLAGE]
    listings.create_listing(
        session, actor=seller, batch_id=batch.id, quantity_t=1_500, price_fen_per_t=6_150
    )
    wetland_lot = listings.create_listing(
        session,
        actor=wetland,
        batch_id=xiazhu_batch.id,
        quantity_t=3_000,
        price_fen_per_t=5_883,
        min_order_t=10,
    )

    progress("  market: earlier sales (the price index), four buyers at 59 CNY/t")
    buyers = [_enterprise(session, name) for name in OTHER_BUYERS]
    now = utcnow()
    for index, ((days, _price, tonnes), lot) in enumerate(zip(HISTORY, history, strict=True)):
        sold = _buy(session, buyers[index % len(buyers)], lot, tonnes)
        sold.settled_at = now - timedelta(days=days)  # demo history: spread over two months
        session.add(sold)
    demo_buyer = _org(session, DEMO_BUYER)
    four = [*buyers, demo_buyer] if demo_buyer else buyers
    for buyer, tonnes in zip(four, (300, 250, 200, 150), strict=False):
        _buy(session, buyer, anji_lot, tonnes)

    progress("  market: 2,000 t to a State Grid-like buyer at 73.41 CNY/t, paid by bank transfer")
    state_grid = _enterprise(session, STATE_GRID)
    buyer_service.verify(
        session, actor=finance, organisation_id=state_grid.id, code=STATE_GRID_USCC
    )
    # in two orders of 1,000 t: one buyer holds at most a quarter of the tonnes on sale unpaid
    for tranche in (1, 2):
        big, _ = _checkout(
            session, state_grid, state_grid_lot, 1_000, provider=Provider.bank_transfer
        )
        bank.confirm_bank_transfer(
            session,
            actor=finance,
            reference=big.number,
            amount_fen=big.total_fen,
            bank_reference=f"ICBC-HZ-2021-00000{tranche}（演示）",
        )
    if demo_buyer is not None:
        retired = _buy(
            session,
            demo_buyer,
            wetland_lot,
            120,
            retire_on_purchase=True,
            beneficiary="湖州绿能 2025 年度碳中和（演示）",
            purpose=RetirementPurpose.annual_neutrality,
        )
        buyer_service.verify(
            session, actor=finance, organisation_id=demo_buyer.id, code=DEMO_BUYER_USCC
        )
        waiting, _ = _checkout(
            session, demo_buyer, wetland_lot, 50, provider=Provider.bank_transfer
        )
        bank.confirm_bank_transfer(
            session,
            actor=finance,
            reference=waiting.number,
            amount_fen=100_000,
            bank_reference="ICBC-HZ-2025-000123（演示）",
            note="partial",
        )
        progress(f"  market: order {retired.number} retired 120 t with a certificate")
    _judicial_case(session, progress, xiazhu.id)
    _residents_pool_sale(session, progress, demo_buyer)
    _fund_round(session, progress, finance, anji.district_adcode, xiazhu.district_adcode)


def _residents_pool_sale(session: Session, progress: Progress, buyer: Organisation | None) -> None:
    """Residents' pooled tonnes are sold like any credit (priced like Guangdong's PHCER, about
    24 CNY/t), so residents can see which enterprise bought their reductions."""
    pool = projects.find_by_code(session, RESIDENTS_PROJECT)
    operator = _org(session, RESIDENTS_POOL_OPERATOR)
    if pool is None or operator is None or buyer is None:
        return
    batches = issuance.batches_of_project(session, pool.id)
    if not batches or batches[0].quantity_t < 1:
        return
    lot = listings.create_listing(
        session,
        actor=_acting(operator),
        batch_id=batches[0].id,
        quantity_t=batches[0].quantity_t,
        price_fen_per_t=2_400,
    )
    sold = _buy(session, buyer, lot, 1)
    progress(f"  market: order {sold.number}: 1 t of residents' pooled reductions at 24 CNY/t")


def _judicial_case(session: Session, progress: Progress, project_id: object) -> None:
    court = _org(session, COURT)
    if court is None:
        return
    defendant = _enterprise(session, DEFENDANT)
    case = compensation.create_case(
        session,
        actor=_acting(court),
        case_number=CASE_NUMBER,
        judgment_sha256=hashlib.sha256(CASE_NUMBER.encode("utf-8")).hexdigest(),
        defendant_id=defendant.id,
        project_id=project_id,  # type: ignore[arg-type]
        required_t=200,
        note="演示：以购买并注销湿地碳汇替代履行生态修复",
    )
    actor = _acting(defendant)
    placed = compensation.order_for_case(session, actor=actor, case_id=case.id)
    payment = payments.start_checkout(session, actor=actor, order_id=placed.id)
    payments.sandbox_complete(session, actor=actor, payment_id=payment.id)
    progress(f"  market: judicial case {CASE_NUMBER} fulfilled with 200 t of wetland credits")


def _fund_round(
    session: Session,
    progress: Progress,
    finance: Actor,
    anji_district: str | None,
    deqing_district: str | None,
) -> None:
    fund = _org(session, FUND)
    if fund is None:
        return
    actor = _acting(fund)
    year = utcnow().year - 1
    if anji_district:
        funds.set_standard(
            session,
            actor=actor,
            year=year,
            land_type="bamboo",
            district_adcode=anji_district,
            rate_fen_per_mu_year=1_000,  # 10 CNY per mu per year (synthetic)
        )
    if deqing_district:
        funds.set_standard(
            session,
            actor=actor,
            year=year,
            land_type="wetland",
            district_adcode=deqing_district,
            rate_fen_per_mu_year=3_000,  # 30 CNY per mu per year (synthetic)
        )
    drafted = funds.draft_round(session, actor=actor, year=year)
    funds.record_deposit(
        session,
        actor=finance,
        fund_id=fund.id,
        amount_fen=drafted.total_fen + 5_000_000,
        bank_reference=f"FUND-{year}-001（演示）",
    )
    funds.pay_round(session, actor=actor, round_id=drafted.id)
    progress(
        f"  market: compensation fund paid {drafted.parcels} parcels for {year}"
        f" ({drafted.total_fen // 100:,} CNY)"
    )
