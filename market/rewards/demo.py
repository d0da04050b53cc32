"""Rewards in the Huzhou demo: the B&B union's vouchers, the bus group's fare coupons, the
platform's tree planting, its green-travel voucher honoured by any merchant (reimbursed from the
residents' rewards fund) and "offset me" (shares of two Anji bamboo tonnes the platform holds),
and the demo resident's vouchers: one to show at the till, one already used.

Runs after the registry's and carbon inclusion's demo seeds (it calls the latter). Idempotent.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session, col, select

from market.rewards.models import Reward, RewardKind
from market.rewards.service import catalogue, redemptions
from registry.inclusion import demo as inclusion_demo
from tanhui import identity
from tanhui.models import Organisation

Progress = Callable[[str], None]
PLATFORM = "碳惠平台运营（演示）"
DEMO_PHONE = "+8613800000001"
PLATFORM_VOUCHER = "碳惠平台低碳出行 5 元通用券"
FUND_DEMO_PHONE = "+8613800000002"  # 王阿姨: the demo resident's own points stay as they are


def _org(session: Session, name: str) -> Organisation | None:
    return session.exec(select(Organisation).where(col(Organisation.name) == name)).first()


def _offset_batch(session: Session, platform: Organisation) -> object | None:
    """Two tonnes of the Anji batch given to the platform for "offset me" (None without it)."""
    from registry.service import issuance, projects, transfers
    from registry.service.actors import Actor
    from tanhui.models import Role

    project = projects.find_by_code(session, "AJ0001")
    if project is None:
        return None
    batches = issuance.batches_of_project(session, project.id)
    if not batches:
        return None
    coop = session.get(Organisation, project.cooperative_id)
    assert coop is not None
    transfers.transfer(
        session,
        actor=Actor(
            ref="system:demo", organisation_id=coop.id, org_kind=coop.kind, role=Role.owner
        ),
        batch_id=batches[0].id,
        to_organisation_id=platform.id,
        quantity_t=2,
        reference="demo: tonnes for residents' offset-me rewards",
    )
    return batches[0].id


def seed(session: Session, progress: Progress) -> None:
    inclusion_demo.seed(session, progress)
    if session.exec(select(Reward.id)).first() is not None:
        return
    bnb = _org(session, inclusion_demo.BNB)
    bus = _org(session, inclusion_demo.BUS)
    platform = _org(session, PLATFORM)
    if bnb is None or bus is None or platform is None:
        progress("  rewards: the demo organisations are missing; no rewards seeded")
        return
    made = [
        catalogue.create_reward(
            session,
            sponsor=bnb,
            kind=RewardKind.voucher,
            title="莫干山民宿住宿 20 元抵用券",
            title_en="Moganshan B&B: 20 CNY off a night",
            description="在联盟内任一民宿入住时抵扣 20 元。",
            points_price=200,
            value_fen=2_000,
            stock=100,
            actor="system:demo",
        ),
        catalogue.create_reward(
            session,
            sponsor=bnb,
            kind=RewardKind.voucher,
            title="农家乐 5 元餐饮券",
            title_en="Farm restaurant: 5 CNY off a meal",
            points_price=60,
            value_fen=500,
            actor="system:demo",
        ),
        catalogue.create_reward(
            session,
            sponsor=bus,
            kind=RewardKind.bus_coupon,
            title="公交乘车 2 元券",
            title_en="Bus fare: 2 CNY",
            points_price=150,
            value_fen=200,
            valid_days=14,
            actor="system:demo",
        ),
        catalogue.create_reward(
            session,
            sponsor=platform,
            kind=RewardKind.tree,
            title="以您的名义在安吉种一棵毛竹",
            title_en="A Moso bamboo planted in Anji in your name",
            points_price=500,
            actor="system:demo",
        ),
    ]
    made.append(
        catalogue.create_reward(
            session,
            sponsor=platform,
            kind=RewardKind.voucher,
            title=PLATFORM_VOUCHER,
            title_en="Tanhui green travel: 5 CNY off at any partner merchant",
            description="联盟内任一商户均可核销；商户由居民权益基金（不足时由平台）按面值结算。",
            points_price=50,
            value_fen=500,
            stock=1_000,
            actor="system:demo",
        )
    )
    batch_id = _offset_batch(session, platform)
    if batch_id is not None:
        made.append(
            catalogue.create_reward(
                session,
                sponsor=platform,
                kind=RewardKind.offset,
                title="为我抵消 10 千克（安吉竹林碳汇）",
                title_en="Offset 10 kg for me (Anji bamboo sink)",
                description="每 100 份凑满一吨，以居民的名义注销并出具证书。",
                points_price=100,
                offset_grams=10_000,
                offset_batch_id=batch_id,  # type: ignore[arg-type]
                actor="system:demo",
            )
        )
    progress(f"  rewards: {len(made)} rewards from the B&B union, the bus group and the platform")
    resident = identity.find_resident_by_phone(session, DEMO_PHONE)
    if resident is None:
        return
    meal = redemptions.redeem(session, resident=resident, reward_id=made[1].id)
    redemptions.confirm(session, code=meal.code, organisation=bnb, actor="system:demo")
    redemptions.redeem(session, resident=resident, reward_id=made[2].id)
    progress("  rewards: the demo resident holds a bus coupon and used a meal voucher")


def honour_platform_voucher(session: Session, progress: Progress) -> None:
    """After the market's demo sold a tonne of the residents' pool: a resident's platform
    voucher honoured by the B&B union, reimbursed from the residents' rewards fund. Runs once."""
    from market.rewards.errors import RewardsError
    from market.service import rewards_fund

    if rewards_fund.summary(session).rewards_reimbursed:
        return
    reward = session.exec(select(Reward).where(col(Reward.title) == PLATFORM_VOUCHER)).first()
    bnb = _org(session, inclusion_demo.BNB)
    resident = identity.find_resident_by_phone(session, FUND_DEMO_PHONE)
    if reward is None or bnb is None or resident is None:
        return
    try:
        voucher = redemptions.redeem(session, resident=resident, reward_id=reward.id)
    except RewardsError as error:
        progress(f"  rewards: no platform voucher redeemed ({error})")
        return
    redemptions.confirm(session, code=voucher.code, organisation=bnb, actor="system:demo")
    fund = rewards_fund.summary(session)
    progress(
        f"  rewards fund: {fund.from_sales_fen / 100:.2f} CNY from the residents' pool sale,"
        f" {fund.paid_for_rewards_fen / 100:.2f} CNY paid to the B&B union for a platform voucher,"
        f" {fund.balance_fen / 100:.2f} CNY left"
    )
