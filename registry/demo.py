"""The registry's part of the Huzhou demo: Anji's first bamboo collection and Deqing's Xiazhu
Lake wetland, from households and parcels to a retirement certificate.

Real: Anji's published figures (5 villages, 21,392 mu, 30 years, 0.39 t/mu/yr, 43.40 CNY/t,
settled every 3 years: 1,086,242.98 CNY; Dali village 5,425 mu; 2,000 t sold; a 371,900 CNY
sink-backed loan), the district boundaries, Xiazhu Lake's 10,000 t first deal.
Synthetic (and said so): households and their personal data, parcel outlines (squares of the
registered area inside the real county boundary), the other four villages' split of the area,
the ETS closes (30 days whose mean is the published 43.40), and the MRV reports (derived from
the contract's assumed rate, not from rasters).

Idempotent: nothing happens when project AJ0001 exists.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import shapely
from sqlmodel import Session

from registry import geo
from registry.models import (
    LandType,
    PriceRule,
    ProjectStatus,
    ProjectType,
    RetirementPurpose,
)
from registry.pricing import format_cny
from registry.service import (
    contracts,
    households,
    issuance,
    parcels,
    pledges,
    projects,
    retirements,
    transfers,
)
from registry.service.actors import Actor
from tanhui import identity
from tanhui.models import Organisation, OrgKind, Role
from wallet import service as wallet

Progress = Callable[[str], None]

ANJI_START = date(2021, 12, 28)
# Dali's 5,425 mu is published; the other villages' split of the 21,392 mu is made up.
ANJI_VILLAGES: list[tuple[str, int, tuple[float, float]]] = [
    ("大里村", 5_425, (119.60, 30.58)),
    ("横溪坞村（演示）", 4_312, (119.50, 30.55)),
    ("双溪村（演示）", 3_987, (119.45, 30.62)),
    ("竹海村（演示）", 4_106, (119.70, 30.70)),
    ("碧门村（演示）", 3_562, (119.55, 30.72)),
]
PARCELS_PER_VILLAGE = 6
XIAZHU_LAKE = (120.06, 30.55)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙朱胡郭何高林罗郑"
GIVEN = ("建国", "秀英", "国强", "桂芳", "志明", "海燕", "永康", "丽华", "金根", "美珍", "伟", "芳")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
LENDER = "安吉农村商业银行（演示）"


def _national_id(serial: int) -> str:
    body = (
        f"330523{1950 + serial % 40}{1 + serial % 12:02d}{1 + serial % 28:02d}{serial % 1000:03d}"
    )
    total = sum(int(d) * w for d, w in zip(body, ID_WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


def _organisation(session: Session, kind: OrgKind, contains: str = "") -> Organisation:
    found = [o for o in identity.list_organisations(session) if o.kind == kind]
    chosen = next((o for o in found if contains in o.name), None) if contains else None
    if chosen is None and found:
        chosen = found[0]
    if chosen is None:
        raise LookupError(f"the demo needs an organisation of kind {kind}")
    return chosen


def _acting(organisation: Organisation) -> Actor:
    return Actor(
        ref="system:demo",
        organisation_id=organisation.id,
        org_kind=organisation.kind,
        role=Role.owner,
    )


def _square(corner: Any, x_m: float, y_m: float, area_m2: float) -> dict[str, Any]:
    side = math.sqrt(area_m2)
    shape = shapely.box(
        corner.x + x_m, corner.y + y_m, corner.x + x_m + side, corner.y + y_m + side
    )
    return geo.to_geojson(geo.unproject([shape])[0])


def _ets_prices(session: Session, before: date) -> None:
    """30 weekday closes before ``before`` averaging 43.396 CNY/t (→ 43.40, as published)."""
    closes = [4_260 + (i * 37) % 170 for i in range(29)]
    closes.append(30 * 43_396 // 10 - sum(closes))
    days: list[date] = []
    day = before
    while len(days) < len(closes):
        day -= timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    rows = "\n".join(
        f"{d.isoformat()},{c // 100}.{c % 100:02d}"
        for d, c in zip(reversed(days), closes, strict=True)
    )
    contracts.import_ets_prices(
        session,
        actor=Actor.system("demo"),
        csv_text="date,close\n" + rows,
        source="synthetic demo closes (mean 43.40 CNY/t, the published Anji figure)",
    )


def _report(
    name: str,
    start: date,
    end: date,
    removals_t: int,
    uncertainty: float,
    buffer_share: float,
    note: str,
) -> dict[str, Any]:
    conservative = int(removals_t * (1 - uncertainty))
    buffer = math.ceil(conservative * buffer_share)
    return {
        "schema": "tanhui.mrv.report/1",
        "methodology": {"name": name, "version": "1.0", "parameters": {"demo": True}},
        "monitoring_period": {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "years": round((end - start).days / 365.25, 2),
        },
        "parcels": [],
        "totals": {
            "area_ha": 0.0,
            "removals_tco2e": float(removals_t),
            "net_tco2e": float(removals_t),
            "conservative_net_tco2e": float(conservative),
            "buffer_share": buffer_share,
            "buffer_tco2e": buffer,
            "issuable_tco2e": conservative - buffer,
        },
        "provenance": {
            "inputs": [],
            "software": "tanhui demo",
            "seed": 0,
            "crs": geo.WGS84,
            "area_crs": geo.AREA_CRS,
            "note": note,
        },
    }


def seed(session: Session, progress: Progress) -> None:
    if projects.find_by_code(session, "AJ0001") is not None:
        return
    anji_coop = _organisation(session, OrgKind.cooperative, "安吉")
    wetland_coop = _organisation(session, OrgKind.cooperative, "德清")
    verifier = _acting(_organisation(session, OrgKind.verifier))
    authority = _acting(_organisation(session, OrgKind.authority))
    buyer = _organisation(session, OrgKind.enterprise)
    court = _organisation(session, OrgKind.court)
    progress("  registry: Anji bamboo collection (5 villages, 21,392 mu)")
    batch = _anji(session, _acting(anji_coop), verifier, authority)
    progress("  registry: Deqing Xiazhu Lake wetland")
    _xiazhu(session, _acting(wetland_coop), verifier, authority)
    progress("  registry: sale, retirements with certificates, a sink-backed loan")
    coop = _acting(anji_coop)
    transfers.transfer(
        session,
        actor=coop,
        batch_id=batch.id,
        to_organisation_id=buyer.id,
        quantity_t=500,
        # The State Grid-like 2,000 t sale goes through the market in market.demo; this one is
        # an over-the-counter transfer that the buyer retires for its annual neutrality.
        reference="demo: 500 t transferred over the counter",
    )
    retirements.retire(
        session,
        actor=_acting(buyer),
        batch_id=batch.id,
        quantity_t=500,
        beneficiary=buyer.name,
        purpose=RetirementPurpose.annual_neutrality,
        note="2025 年度碳中和（演示）",
    )
    transfers.transfer(
        session, actor=coop, batch_id=batch.id, to_organisation_id=court.id, quantity_t=1_800
    )
    retirements.retire(
        session,
        actor=_acting(court),
        batch_id=batch.id,
        quantity_t=1_800,
        beneficiary="仙山湖湿地增汇项目（演示）",
        purpose=RetirementPurpose.judicial_restoration,
        case_number="(2023)浙0591民初0001号（演示）",
    )
    lender = identity.get_or_create_organisation(session, name=LENDER, kind=OrgKind.enterprise)
    (contract,) = contracts.list_contracts(session, actor=coop, cooperative_id=anji_coop.id)
    pledges.pledge_contract(
        session,
        actor=coop,
        contract_id=contract.id,
        lender_id=lender.id,
        loan_amount_fen=37_190_000,
        matures_on=date(2026, 12, 31),
    )
    (settlement,) = contracts.settlements_of(session, contract.id)
    progress(
        f"  registry: Anji paid {format_cny(settlement.amount_fen)} CNY for {settlement.area_mu} mu"
        f" at {format_cny(settlement.price_fen_per_t)} CNY/t to"
        f" {len(contracts.settlement_lines(session, settlement.id))} households (synthetic people)"
    )
    for retirement in retirements.retirements_of(session, _acting(buyer).owner):
        progress(
            f"  registry: certificate {retirement.certificate_id}:"
            f" /api/v1/public/certificates/{retirement.certificate_id}/pdf"
        )


def _anji(session: Session, coop: Actor, verifier: Actor, authority: Actor) -> Any:
    assert coop.organisation_id is not None
    _ets_prices(session, ANJI_START)
    plots = []
    serial = 0
    for village, mu, (lon, lat) in ANJI_VILLAGES:
        corner = geo.project([shapely.Point(lon, lat)])[0]
        members = []
        for _ in range(2 * PARCELS_PER_VILLAGE):
            serial += 1
            members.append(
                households.create_household(
                    session,
                    actor=coop,
                    cooperative_id=coop.organisation_id,
                    name=SURNAMES[serial % len(SURNAMES)] + GIVEN[serial % len(GIVEN)],
                    village=village,
                    national_id=_national_id(serial),
                    phone=f"1385723{serial:04d}",
                    bank_account=f"6228480{serial:012d}",
                )
            )
        shares = [mu * 100 // PARCELS_PER_VILLAGE] * PARCELS_PER_VILLAGE
        shares[0] += mu * 100 - sum(shares)
        for index, centimu in enumerate(shares):
            area = centimu / 100 * float(geo.M2_PER_MU)
            plots.append(
                parcels.register_parcel(
                    session,
                    actor=coop,
                    cooperative_id=coop.organisation_id,
                    code=f"AJ-{serial // 12:02d}-{index + 1:02d}",
                    geometry=_square(corner, (index % 3) * 1_300.0, (index // 3) * 1_300.0, area),
                    land_type=LandType.bamboo,
                    village=village,
                    forest_right_cert=f"浙(2019)安吉林证第{serial:03d}{index + 1:03d}号（演示）",
                    registered_area_centimu=centimu,
                    holdings=[(members[2 * index].id, 6_000), (members[2 * index + 1].id, 4_000)],
                )
            )
    contract = contracts.create_contract(
        session,
        actor=coop,
        cooperative_id=coop.organisation_id,
        code="AJ-2021-001",
        counterparty="大里村等5个村股份经济合作社（首批收储）",
        start_date=ANJI_START,
        term_years=30,
        rate_g_per_mu_year=390_000,
        settlement_period_years=3,
        household_share_bp=8_000,
        parcel_ids=[p.id for p in plots],
        price_rule=PriceRule.ets_indexed,
    )
    cash = wallet.account_for(session, asset=wallet.ASSET_CNY, owner=f"org:{coop.organisation_id}")
    clearing = wallet.system_account(session, "clearing", wallet.ASSET_CNY)
    wallet.post_entry(
        session,
        code="adjustment",
        transfers=[wallet.Transfer(clearing.id, cash.id, 110_000_000)],
        idempotency_key="demo:anji-collection-funds",
        metadata={"note": "demo: the cooperative's funds for the first collection payment"},
    )
    contracts.settle(session, actor=coop, contract_id=contract.id, sequence=1)
    project = projects.create_project(
        session,
        actor=coop,
        cooperative_id=coop.organisation_id,
        code="AJ0001",
        name="安吉县竹林碳汇收储项目（首批）",
        type=ProjectType.bamboo,
        methodology_name="bamboo-rate",
        methodology_version="1.0",
        crediting_start=date(2022, 1, 1),
        crediting_end=date(2051, 12, 31),
        description="两山竹林碳汇收储交易中心首批收储：5 个村、21,392 亩毛竹林，收储期 30 年。",
    )
    projects.add_parcels(
        session, actor=coop, project_id=project.id, parcel_ids=[p.id for p in plots]
    )
    projects.collect(session, actor=coop, project_id=project.id)
    period = projects.submit_period(
        session,
        actor=coop,
        project_id=project.id,
        report=_report(
            "bamboo-rate",
            date(2022, 1, 1),
            date(2024, 12, 31),
            removals_t=25_028,
            uncertainty=0.08,
            buffer_share=0.2,
            note="demo: 21,392 mu × 0.39 t/mu/yr × 3 years, not a raster estimate",
        ),
    )
    projects.certify(session, actor=verifier, period_id=period.id)
    projects.file_period(session, actor=authority, period_id=period.id)
    return issuance.issue(session, actor=authority, period_id=period.id)


def _xiazhu(session: Session, coop: Actor, verifier: Actor, authority: Actor) -> None:
    assert coop.organisation_id is not None
    corner = geo.project([shapely.Point(*XIAZHU_LAKE)])[0]
    plots = []
    for index in range(4):
        steward = households.create_household(
            session,
            actor=coop,
            cooperative_id=coop.organisation_id,
            name=f"下渚湖村集体代表{index + 1}（演示）",
            village="下渚湖街道",
            national_id=_national_id(900 + index),
        )
        plots.append(
            parcels.register_parcel(
                session,
                actor=coop,
                cooperative_id=coop.organisation_id,
                code=f"XZ-{index + 1:02d}",
                geometry=_square(corner, (index % 2) * 2_400.0, (index // 2) * 2_400.0, 5e6),
                land_type=LandType.wetland,
                village="下渚湖街道",
                holdings=[(steward.id, 10_000)],
            )
        )
    contracts.create_contract(
        session,
        actor=coop,
        cooperative_id=coop.organisation_id,
        code="XZ-2021-001",
        counterparty="下渚湖街道村集体（演示）",
        start_date=date(2021, 1, 1),
        term_years=20,
        rate_g_per_mu_year=560_000,
        settlement_period_years=5,
        household_share_bp=7_000,
        parcel_ids=[p.id for p in plots],
        price_rule=PriceRule.fixed,
        fixed_price_fen_per_t=2_000,
    )
    project = projects.create_project(
        session,
        actor=coop,
        cooperative_id=coop.organisation_id,
        code="DQ0001",
        name="德清县下渚湖湿地碳汇项目",
        type=ProjectType.wetland,
        methodology_name="wetland",
        methodology_version="1.0",
        crediting_start=date(2021, 1, 1),
        crediting_end=date(2040, 12, 31),
        description="浙江省首单湿地碳汇：2022-04-28 县生态银行以 58.83 元/吨购入 1 万吨。",
    )
    projects.add_parcels(
        session, actor=coop, project_id=project.id, parcel_ids=[p.id for p in plots]
    )
    projects.collect(session, actor=coop, project_id=project.id)
    period = projects.submit_period(
        session,
        actor=coop,
        project_id=project.id,
        report=_report(
            "wetland",
            date(2021, 1, 1),
            date(2021, 12, 31),
            removals_t=17_000,
            uncertainty=0.1,
            buffer_share=0.15,
            note="demo: the published capacity of about 17,000 t/yr, not a raster estimate",
        ),
    )
    projects.certify(session, actor=verifier, period_id=period.id)
    projects.file_period(session, actor=authority, period_id=period.id)
    issuance.issue(session, actor=authority, period_id=period.id)
    assert projects.find_by_code(session, "DQ0001").status == ProjectStatus.issued  # type: ignore[union-attr]
