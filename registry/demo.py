"""The registry's part of the Huzhou demo: Anji's first bamboo collection and Deqing's Xiazhu
Lake wetland, from households and parcels to a retirement certificate.

Anji's first batch is five village cooperatives (organisations of kind cooperative, one login
each), each with its households, parcels, 30-year collection contract, first settlement and an
issued project AJ0001…AJ0005; Dali's is the first (AJ0001). Together they hold 21,392 mu and the
five first settlements add up to the published 1,086,242.98 CNY.

Real: Anji's published figures (5 villages, 21,392 mu, 30 years, 0.39 t/mu/yr, 43.40 CNY/t,
settled every 3 years: 1,086,242.98 CNY; Dali village 5,425 mu; 2,000 t sold; a 371,900 CNY
sink-backed loan), the district boundaries, Xiazhu Lake's 10,000 t first deal.
Synthetic (and said so): households and their personal data, parcel outlines (squares of the
registered area inside the real county boundary), the other four villages' names and split of
the area (chosen so that the five settlements, each rounded to the fen, sum to the published
total), the ETS closes (30 days whose mean is the published 43.40), and the rasters: every batch
is issued from an MRV run the platform performs on the registered parcels over deterministic
rasters it generates (registry.demo_rasters), so issued + buffer <= the run's conservative
estimate holds for each, and anyone can re-run it.

Idempotent: nothing happens when project AJ0001 exists.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from sqlmodel import Session, col, select

from registry import demo_rasters, geo
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
    mrv_runs,
    parcels,
    pledges,
    projects,
    retirements,
    transfers,
)
from registry.service.actors import Actor
from tanhui import identity
from tanhui.models import Organisation, OrgKind, Role
from tanhui.settings import get_settings
from wallet import service as wallet

Progress = Callable[[str], None]

ANJI_START = date(2021, 12, 28)


@dataclass(frozen=True)
class AnjiVillage:
    """One village cooperative of Anji's first collection (2021-12-28)."""

    village: str  # as written on its households and parcels
    cooperative: str  # the organisation's name
    project_code: str
    mu: int
    corner: tuple[float, float]  # (lon, lat) of its first parcel, inside Anji county

    @property
    def short(self) -> str:
        return self.village.split("（")[0]


# Dali's 5,425 mu is published; the other villages and their split of the 21,392 mu are made up
# (each area × 50.778 CNY/mu, rounded to the fen, sums to the published 1,086,242.98 CNY).
ANJI_VILLAGES: list[AnjiVillage] = [
    AnjiVillage("大里村", "安吉县大里村股份经济合作社（演示）", "AJ0001", 5_425, (119.60, 30.58)),
    AnjiVillage(
        "横溪坞村（演示）", "安吉县横溪坞村股份经济合作社（演示）", "AJ0002", 4_310, (119.50, 30.55)
    ),
    AnjiVillage(
        "双溪村（演示）", "安吉县双溪村股份经济合作社（演示）", "AJ0003", 3_985, (119.45, 30.62)
    ),
    AnjiVillage(
        "竹海村（演示）", "安吉县竹海村股份经济合作社（演示）", "AJ0004", 4_105, (119.70, 30.70)
    ),
    AnjiVillage(
        "碧门村（演示）", "安吉县碧门村股份经济合作社（演示）", "AJ0005", 3_567, (119.55, 30.72)
    ),
]
ANJI_TOTAL_MU = 21_392
# Which village's tonnes go where (index into ANJI_VILLAGES): the over-the-counter sale the
# buyer retires. The court's judicial restoration goes through its case (market.demo): the
# registry's general retirement refuses that purpose.
OTC_VILLAGE = 3
PARCELS_PER_VILLAGE = 6
XIAZHU_LAKE = (120.06, 30.55)
# The wetland's baseline: the land before restoration. A negative baseline is emissions the
# restoration stopped. Demo assumption (verify per project): the restored parcels were drained
# cropland on organic soil, IPCC 2013 Wetlands Supplement ch. 2 Table 2.1 (cropland, drained,
# temperate): 7.9 tCO2-C/ha/yr = 29.0 tCO2/ha/yr emitted; rewetting stops it.
XIAZHU_BASELINE = -7.9 * 44.0 / 12.0
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
    """A square of at least ``area_m2`` (a few m² over, after rounding to 1 cm and to whole m²,
    so that the registered area is the smaller one that contracts pay on)."""
    side = math.sqrt(area_m2 + 20)
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


def _raster_folder() -> Path:
    return get_settings().state_dir / "demo-rasters"


def _projected(plots: list[Any]) -> list[Any]:
    return list(shapely.from_wkb(np.asarray([p.geometry_wkb for p in plots], dtype=object)))


def _measured_period(
    session: Session,
    coop: Actor,
    project_id: Any,
    start: date,
    end: date,
    rasters: dict[str, str],
    *,
    classes: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Any:
    """An MRV run of the platform over the project's registered parcels, submitted."""
    run = mrv_runs.measure(
        session,
        actor=coop,
        project_id=project_id,
        period_start=start,
        period_end=end,
        rasters=rasters,
        classes=classes,
        overrides=overrides,
    )
    return mrv_runs.submit_run(session, actor=coop, run_id=run.id)


def _cooperative(session: Session, name: str) -> Organisation:
    """The village cooperative ``name`` (created when the caller did not make it)."""
    found = session.exec(select(Organisation).where(col(Organisation.name) == name)).one_or_none()
    return found or identity.create_organisation(
        session, name=name, kind=OrgKind.cooperative, actor="system:demo"
    )


def anji_cooperatives(session: Session) -> list[Organisation]:
    """The five village cooperatives, in ANJI_VILLAGES order (after the seed)."""
    return [_cooperative(session, village.cooperative) for village in ANJI_VILLAGES]


def seed(session: Session, progress: Progress) -> None:
    if projects.find_by_code(session, ANJI_VILLAGES[0].project_code) is not None:
        return
    villages = anji_cooperatives(session)
    wetland_coop = _organisation(session, OrgKind.cooperative, "德清")
    verifier = _acting(_organisation(session, OrgKind.verifier))
    authority = _acting(_organisation(session, OrgKind.authority))
    buyer = _organisation(session, OrgKind.enterprise)
    progress(
        f"  registry: Anji bamboo collection ({len(ANJI_VILLAGES)} village cooperatives,"
        f" {ANJI_TOTAL_MU:,} mu)"
    )
    _ets_prices(session, ANJI_START)
    batches = [
        _anji_village(session, index, village, _acting(coop), verifier, authority)
        for index, (village, coop) in enumerate(zip(ANJI_VILLAGES, villages, strict=True))
    ]
    progress("  registry: Deqing Xiazhu Lake wetland")
    _xiazhu(session, _acting(wetland_coop), verifier, authority)
    progress("  registry: sale, retirements with certificates, a sink-backed loan")
    seller = _acting(villages[OTC_VILLAGE])
    transfers.transfer(
        session,
        actor=seller,
        batch_id=batches[OTC_VILLAGE].id,
        to_organisation_id=buyer.id,
        quantity_t=500,
        # The State Grid-like 2,000 t sale goes through the market in market.demo; this one is
        # an over-the-counter transfer that the buyer retires for its annual neutrality.
        reference="demo: 500 t transferred over the counter",
    )
    retirements.retire(
        session,
        actor=_acting(buyer),
        batch_id=batches[OTC_VILLAGE].id,
        quantity_t=500,
        beneficiary=buyer.name,
        purpose=RetirementPurpose.annual_neutrality,
        note="2025 年度碳中和（演示）",
    )
    lender = identity.get_or_create_organisation(session, name=LENDER, kind=OrgKind.enterprise)
    dali = _acting(villages[0])
    assert dali.organisation_id is not None
    (contract,) = contracts.list_contracts(session, actor=dali, cooperative_id=dali.organisation_id)
    # The sink-backed loan: 371,900 CNY at 3.85 % a year (demo terms) for three years, accepted
    # by the bank; it can be enforced only after maturity or a confirmed default.
    loan = pledges.pledge_contract(
        session,
        actor=dali,
        contract_id=contract.id,
        lender_id=lender.id,
        loan_amount_fen=37_190_000,
        interest_rate_bp=385,
        matures_on=date(contracts.today().year + 3, 12, 31),
    )
    pledges.accept(session, actor=_acting(lender), pledge_id=loan.id)
    paid = [
        settlement
        for coop in villages
        for own in contracts.list_contracts(session, actor=_acting(coop), cooperative_id=coop.id)
        for settlement in contracts.settlements_of(session, own.id)
    ]
    households_paid = sum(len(contracts.settlement_lines(session, s.id)) for s in paid)
    progress(
        f"  registry: Anji's {len(paid)} village cooperatives were paid"
        f" {format_cny(sum(s.amount_fen for s in paid))} CNY for"
        f" {sum(int(s.area_mu) for s in paid):,} mu at {format_cny(paid[0].price_fen_per_t)} CNY/t,"
        f" {households_paid} households (synthetic people)"
    )
    for retirement in retirements.retirements_of(session, _acting(buyer).owner):
        progress(
            f"  registry: certificate {retirement.certificate_id}:"
            f" /api/v1/public/certificates/{retirement.certificate_id}/pdf"
        )


def _anji_village(
    session: Session,
    index: int,
    village: AnjiVillage,
    coop: Actor,
    verifier: Actor,
    authority: Actor,
) -> Any:
    """One village cooperative's households, parcels, contract, first settlement and project,
    certified, filed and issued; returns its batch."""
    assert coop.organisation_id is not None
    corner = geo.project([shapely.Point(*village.corner)])[0]
    members = []
    serial = index * 2 * PARCELS_PER_VILLAGE
    for _ in range(2 * PARCELS_PER_VILLAGE):
        serial += 1
        members.append(
            households.create_household(
                session,
                actor=coop,
                cooperative_id=coop.organisation_id,
                name=SURNAMES[serial % len(SURNAMES)] + GIVEN[serial % len(GIVEN)],
                village=village.village,
                national_id=_national_id(serial),
                phone=f"1385723{serial:04d}",
                bank_account=f"6228480{serial:012d}",
            )
        )
    shares = [village.mu * 100 // PARCELS_PER_VILLAGE] * PARCELS_PER_VILLAGE
    shares[0] += village.mu * 100 - sum(shares)
    plots = []
    for number, centimu in enumerate(shares):
        area = centimu / 100 * float(geo.M2_PER_MU)
        plots.append(
            parcels.register_parcel(
                session,
                actor=coop,
                cooperative_id=coop.organisation_id,
                code=f"AJ-{index + 1:02d}-{number + 1:02d}",
                geometry=_square(corner, (number % 3) * 1_300.0, (number // 3) * 1_300.0, area),
                land_type=LandType.bamboo,
                village=village.village,
                forest_right_cert=f"浙(2019)安吉林证第{serial:03d}{number + 1:03d}号（演示）",
                registered_area_centimu=centimu,
                holdings=[(members[2 * number].id, 6_000), (members[2 * number + 1].id, 4_000)],
            )
        )
    contract = contracts.create_contract(
        session,
        actor=coop,
        cooperative_id=coop.organisation_id,
        code=f"AJ-2021-{index + 1:03d}",
        counterparty=f"{village.short}农户（两山竹林碳汇收储交易中心首批收储）",
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
        # a little more than the first settlement (50.778 CNY/mu), in whole 10,000 CNY
        transfers=[wallet.Transfer(clearing.id, cash.id, -(-village.mu * 5_100 // 10**6) * 10**6)],
        idempotency_key=f"demo:anji-collection-funds:{village.project_code}",
        metadata={"note": "demo: the cooperative's funds for the first collection payment"},
    )
    contracts.settle(session, actor=coop, contract_id=contract.id, sequence=1)
    project = projects.create_project(
        session,
        actor=coop,
        cooperative_id=coop.organisation_id,
        code=village.project_code,
        name=f"安吉县{village.short}竹林碳汇收储项目（首批）",
        type=ProjectType.bamboo,
        methodology_name="bamboo-rate",
        methodology_version="1.0",
        crediting_start=date(2022, 1, 1),
        crediting_end=date(2051, 12, 31),
        description=(
            f"两山竹林碳汇收储交易中心首批收储（5 个村、{ANJI_TOTAL_MU:,} 亩毛竹林，收储期 30 年）"
            f"之{village.short}：{village.mu:,} 亩。"
        ),
    )
    projects.add_parcels(
        session, actor=coop, project_id=project.id, parcel_ids=[p.id for p in plots]
    )
    projects.collect(session, actor=coop, project_id=project.id)
    rasters = demo_rasters.bamboo(_raster_folder(), village.project_code, _projected(plots))
    period = _measured_period(
        session, coop, project.id, date(2022, 1, 1), date(2024, 12, 31), rasters
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
    rasters, classes = demo_rasters.wetland(_raster_folder(), "DQ0001", _projected(plots))
    period = _measured_period(
        session,
        coop,
        project.id,
        date(2021, 1, 1),
        date(2021, 12, 31),
        rasters,
        classes=classes,
        overrides={"parameters": {"baseline_tco2e_per_ha_year": XIAZHU_BASELINE}},
    )
    projects.certify(session, actor=verifier, period_id=period.id)
    projects.file_period(session, actor=authority, period_id=period.id)
    issuance.issue(session, actor=authority, period_id=period.id)
    assert projects.find_by_code(session, "DQ0001").status == ProjectStatus.issued  # type: ignore[union-attr]
