""" "Offset me": each redemption is a share (e.g. 10 kg) of a tonne of a bamboo or wetland batch
the sponsor holds. Credits are whole tonnes, so shares wait until they add up to one; that tonne
is then retired (registry) with the residents as its beneficiary, and every share names the
certificate. A resident sees "awaiting a full tonne" until then, never a retirement that did not
happen."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from market.rewards.models import OffsetShare, Redemption, Reward
from registry.models import RetirementPurpose
from registry.service import retirements
from registry.service.actors import Actor
from tanhui.models import Organisation, Role

GRAMS_PER_TONNE = 1_000_000


def allocate(session: Session, *, reward: Reward, redemption: Redemption) -> OffsetShare:
    """Record the resident's share; retire a tonne once the waiting shares fill one."""
    assert reward.offset_grams is not None and reward.offset_batch_id is not None
    session.exec(select(Reward.id).where(col(Reward.id) == reward.id).with_for_update()).one()
    share = OffsetShare(
        redemption_id=redemption.id,
        reward_id=reward.id,
        resident_id=redemption.resident_id,
        grams=reward.offset_grams,
    )
    session.add(share)
    session.flush()
    waiting = list(
        session.exec(
            select(OffsetShare)
            .where(col(OffsetShare.reward_id) == reward.id)
            .where(col(OffsetShare.retirement_id).is_(None))
            .order_by(col(OffsetShare.created_at), col(OffsetShare.id))
        ).all()
    )
    if sum(item.grams for item in waiting) < GRAMS_PER_TONNE:
        return share
    sponsor = session.get(Organisation, reward.sponsor_id)
    assert sponsor is not None
    actor = Actor(
        ref="system:rewards-offset",
        organisation_id=sponsor.id,
        org_kind=sponsor.kind,
        role=Role.member,
    )
    residents = len({item.resident_id for item in waiting})
    retirement = retirements.retire(
        session,
        actor=actor,
        batch_id=reward.offset_batch_id,
        quantity_t=1,
        beneficiary=f"碳惠居民 {residents} 人（积分兑换“为我抵消”） Tanhui residents ({residents})",
        purpose=RetirementPurpose.annual_neutrality,
        note=f"Offset-me reward {reward.id}: {len(waiting)} shares of {reward.offset_grams} g",
    )
    for item in waiting:
        item.retirement_id = retirement.id
        item.certificate_id = retirement.certificate_id
        session.add(item)
    session.flush()
    return share


def shares_of(session: Session, resident_id: object) -> list[OffsetShare]:
    return list(
        session.exec(
            select(OffsetShare)
            .where(col(OffsetShare.resident_id) == resident_id)
            .order_by(col(OffsetShare.created_at).desc())
        ).all()
    )


def share_of(session: Session, redemption_id: object) -> OffsetShare | None:
    return session.exec(
        select(OffsetShare).where(col(OffsetShare.redemption_id) == redemption_id)
    ).first()


def waiting_grams(session: Session, reward_id: object) -> int:
    total = session.exec(
        select(func.coalesce(func.sum(OffsetShare.grams), 0))
        .where(col(OffsetShare.reward_id) == reward_id)
        .where(col(OffsetShare.retirement_id).is_(None))
    ).one()
    return int(total)
