"""The rewards catalogue: merchants and the platform offer rewards for points."""

from __future__ import annotations

import uuid

from sqlmodel import Session, col, select

from market.rewards.errors import InvalidReward, UnknownReward
from market.rewards.models import Reward, RewardKind
from tanhui import audit
from tanhui.i18n import N_
from tanhui.models import Organisation, OrgKind

GRAMS_PER_TONNE = 1_000_000
MAX_POINTS_PRICE = 10_000_000
MAX_VALID_DAYS = 366
MAX_VALUE_FEN = 10_000_000  # a voucher's face value: 100,000 CNY at most
SPONSOR_KINDS = (OrgKind.merchant, OrgKind.platform, OrgKind.data_partner, OrgKind.enterprise)


def create_reward(
    session: Session,
    *,
    sponsor: Organisation,
    kind: RewardKind,
    title: str,
    points_price: int,
    title_en: str = "",
    description: str = "",
    value_fen: int | None = None,
    stock: int | None = None,
    valid_days: int = 30,
    offset_grams: int | None = None,
    offset_batch_id: uuid.UUID | None = None,
    actor: str,
) -> Reward:
    """A reward offered by ``sponsor`` (a merchant, a data partner such as the bus operator, an
    enterprise, or the platform)."""
    if sponsor.kind not in SPONSOR_KINDS:
        raise InvalidReward(
            N_("Rewards are offered by merchants, partners, enterprises or the platform.")
        )
    if not title.strip():
        raise InvalidReward(
            N_("A reward needs a title."), errors=[{"field": "title", "message": "required"}]
        )
    if not 1 <= points_price <= MAX_POINTS_PRICE:
        raise InvalidReward(
            N_("The price must be between 1 and {maximum} points."),
            maximum=MAX_POINTS_PRICE,
            errors=[{"field": "points_price", "message": "out of range"}],
        )
    if value_fen is not None and not 0 <= value_fen <= MAX_VALUE_FEN:
        raise InvalidReward(
            N_("The face value must be between 0 and {maximum} fen."),
            maximum=MAX_VALUE_FEN,
            errors=[{"field": "value_fen", "message": "out of range"}],
        )
    if stock is not None and stock < 0:
        raise InvalidReward(N_("The stock cannot be negative."))
    if not 1 <= valid_days <= MAX_VALID_DAYS:
        raise InvalidReward(
            N_("A voucher is valid for 1 to {maximum} days."), maximum=MAX_VALID_DAYS
        )
    if kind == RewardKind.offset:
        if offset_batch_id is None or offset_grams is None:
            raise InvalidReward(N_("An offset reward names the batch and the grams it retires."))
        if offset_grams <= 0 or GRAMS_PER_TONNE % offset_grams:
            raise InvalidReward(
                N_("An offset share must divide a tonne exactly (e.g. 10,000 g)."),
                errors=[{"field": "offset_grams", "message": "must divide 1,000,000"}],
            )
    elif offset_grams is not None or offset_batch_id is not None:
        raise InvalidReward(N_("Only offset rewards retire credits."))
    reward = Reward(
        sponsor_id=sponsor.id,
        kind=kind,
        title=title.strip()[:120],
        title_en=title_en.strip()[:120],
        description=description.strip()[:500],
        points_price=points_price,
        value_fen=value_fen,
        stock=stock,
        valid_days=valid_days,
        offset_grams=offset_grams,
        offset_batch_id=offset_batch_id,
    )
    session.add(reward)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="rewards.reward.created",
        subject_type="reward",
        subject_id=reward.id,
        payload={
            "sponsor": str(sponsor.id),
            "kind": kind.value,
            "title": reward.title,
            "points_price": points_price,
            "stock": stock,
        },
    )
    return reward


def get_reward(session: Session, reward_id: uuid.UUID) -> Reward:
    reward = session.get(Reward, reward_id)
    if reward is None:
        raise UnknownReward(N_("No reward {reward_id}."), reward_id=str(reward_id))
    return reward


def catalogue(
    session: Session, *, sponsor_id: uuid.UUID | None = None, include_inactive: bool = False
) -> list[tuple[Reward, Organisation]]:
    """Rewards with their sponsor, cheapest first."""
    query = (
        select(Reward, Organisation)
        .join(Organisation, col(Organisation.id) == col(Reward.sponsor_id))
        .order_by(col(Reward.points_price), col(Reward.created_at))
    )
    if not include_inactive:
        query = query.where(col(Reward.active).is_(True))
    if sponsor_id is not None:
        query = query.where(col(Reward.sponsor_id) == sponsor_id)
    return [(reward, sponsor) for reward, sponsor in session.exec(query).all()]


def update_reward(
    session: Session,
    reward: Reward,
    *,
    active: bool | None = None,
    stock: int | None = None,
    actor: str,
) -> Reward:
    changes: dict[str, object] = {}
    if active is not None:
        reward.active = active
        changes["active"] = active
    if stock is not None:
        if stock < reward.issued:
            raise InvalidReward(
                N_("The stock cannot be lower than the {issued} already redeemed."),
                issued=reward.issued,
            )
        reward.stock = stock
        changes["stock"] = stock
    session.add(reward)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="rewards.reward.updated",
        subject_type="reward",
        subject_id=reward.id,
        payload=changes,
    )
    return reward


def remaining(reward: Reward) -> int | None:
    return None if reward.stock is None else max(0, reward.stock - reward.issued)
