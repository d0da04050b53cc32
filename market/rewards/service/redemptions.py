"""Redeeming points: a hold on the resident's points and a single-use voucher code, confirmed by
the merchant (the hold is captured), or cancelled or expired (the hold is released).

Concurrent redemptions can never spend more points than the resident has: each one reserves its
points with a wallet hold, and the ledger checks holds against the balance under a row lock
(pending debits count against the floor). Limited stock is claimed with one conditional update.

A merchant's voucher is honoured by that merchant alone, and the merchant funds it. A platform
voucher with a face value (a voucher or bus-fare coupon) is honoured by any merchant or data
partner, and the merchant that honours it is reimbursed the face value in the same transaction:
from the residents' rewards fund as far as it goes, the rest from the platform (ADR 0059).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

import wallet.service as wallet
from market.rewards.errors import (
    NotEnoughPoints,
    RewardUnavailable,
    UnknownVoucher,
    VoucherClosed,
    VoucherExpired,
    VoucherUsed,
)
from market.rewards.models import (
    FULFILLED_AT_ONCE,
    Redemption,
    RedemptionStatus,
    Reward,
    RewardKind,
)
from market.rewards.service import catalogue, offsets
from market.service import rewards_fund
from tanhui import audit, pii
from tanhui.db import utcnow
from tanhui.i18n import N_
from tanhui.models import Organisation, OrgKind, Resident
from wallet.errors import HoldExpired, InsufficientFunds

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: read aloud at a till
CODE_LENGTH = 12
CODE_CONTEXT = "rewards.voucher_code"
HOLD_CODE = "points_redemption"
MAX_EXPIRIES_PER_CALL = 500

_REWARD = Reward.__table__  # type: ignore[attr-defined]

# Who may honour a platform voucher with a face value, and which rewards are honoured that way.
HONOURING_KINDS = frozenset({OrgKind.merchant, OrgKind.data_partner})
REIMBURSED_KINDS = frozenset({RewardKind.voucher, RewardKind.bus_coupon})


def platform_funded(session: Session, reward: Reward) -> bool:
    """A platform voucher with a face value: any merchant honours it and is reimbursed."""
    if reward.kind not in REIMBURSED_KINDS or not reward.value_fen or reward.value_fen <= 0:
        return False
    sponsor = session.get(Organisation, reward.sponsor_id)
    return sponsor is not None and sponsor.kind == OrgKind.platform


def may_honour(session: Session, reward: Reward, organisation: Organisation | None) -> bool:
    """The sponsor honours its own vouchers; merchants and data partners also honour the
    platform's vouchers with a face value."""
    if organisation is None:
        return False
    if organisation.id == reward.sponsor_id:
        return True
    return organisation.kind in HONOURING_KINDS and platform_funded(session, reward)


def _reimbursed_merchant(
    session: Session, reward: Reward, organisation: Organisation | None
) -> Organisation | None:
    """The organisation to reimburse for honouring this voucher, if any."""
    if organisation is None or organisation.id == reward.sponsor_id:
        return None
    if organisation.kind not in HONOURING_KINDS or not platform_funded(session, reward):
        return None
    return organisation


@dataclass(frozen=True)
class NewVoucher:
    redemption: Redemption
    code: str


def format_code(raw: str) -> str:
    return "-".join(raw[index : index + 4] for index in range(0, len(raw), 4))


def normalise_code(text: str) -> str:
    """What a merchant types or scans: case, spaces and dashes do not matter."""
    return "".join(char for char in (text or "").upper() if char.isalnum())


def _new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def code_of(redemption: Redemption) -> str:
    """The voucher's code, for its resident."""
    return format_code(pii.unseal(redemption.code_sealed, context=CODE_CONTEXT))


def points_accounts(session: Session, resident_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    """(the resident's POINTS account, the platform's redemption account)."""
    mine = wallet.account_for(session, asset=wallet.ASSET_POINTS, owner=f"resident:{resident_id}")
    spent = wallet.system_account(session, "points_redemption", wallet.ASSET_POINTS)
    return mine.id, spent.id


def _claim_stock(session: Session, reward: Reward) -> None:
    if not reward.active:
        raise RewardUnavailable()
    if reward.stock is None:
        return
    claimed = session.execute(
        update(_REWARD)
        .where(_REWARD.c.id == reward.id)
        .where(_REWARD.c.active.is_(True))
        .where(_REWARD.c.issued < _REWARD.c.stock)
        .values(issued=_REWARD.c.issued + 1)
        .returning(_REWARD.c.issued)
    ).all()
    if not claimed:
        raise RewardUnavailable(N_("{title} is sold out."), title=reward.title)
    session.refresh(reward)


def redeem(
    session: Session, *, resident: Resident, reward_id: uuid.UUID, now: datetime | None = None
) -> NewVoucher:
    """Hold the reward's points and issue a voucher (fulfilled at once for tree planting and
    "offset me"). Raises RewardUnavailable, NotEnoughPoints."""
    moment = now or utcnow()
    reward = catalogue.get_reward(session, reward_id)
    _claim_stock(session, reward)
    mine, spent = points_accounts(session, resident.id)
    expires_at = moment + timedelta(days=reward.valid_days)
    try:
        held = wallet.hold(
            session,
            debit_account_id=mine,
            credit_account_id=spent,
            amount=reward.points_price,
            expires_at=expires_at,
            code=HOLD_CODE,
            metadata={"reward": str(reward.id), "sponsor": str(reward.sponsor_id)},
        )
    except InsufficientFunds as error:
        raise NotEnoughPoints(
            N_("{title} costs {price} points; you have {available} available."),
            title=reward.title,
            price=reward.points_price,
            available=error.params.get("available", 0),
        ) from None
    raw = _new_code()
    sealed = pii.seal(raw, context=CODE_CONTEXT)
    redemption = Redemption(
        reward_id=reward.id,
        resident_id=resident.id,
        points=reward.points_price,
        hold_id=held.id,
        code_sealed=sealed.sealed,
        code_index=sealed.index,
        code_hint=raw[-4:],
        expires_at=expires_at,
        created_at=moment,
    )
    session.add(redemption)
    session.flush()
    if reward.kind in FULFILLED_AT_ONCE:
        wallet.capture_hold(session, held.id)
        redemption.status = RedemptionStatus.confirmed
        redemption.confirmed_by = "platform"
        redemption.resolved_at = moment
        session.add(redemption)
        session.flush()
        if reward.kind == RewardKind.offset:
            offsets.allocate(session, reward=reward, redemption=redemption)
    audit.record(
        session,
        actor=f"resident:{resident.id}",
        action="rewards.redeemed",
        subject_type="redemption",
        subject_id=redemption.id,
        payload={
            "reward": str(reward.id),
            "points": reward.points_price,
            "status": str(redemption.status),
            "code": "…" + redemption.code_hint,
        },
    )
    return NewVoucher(redemption=redemption, code=format_code(raw))


def _locked(session: Session, redemption_id: uuid.UUID) -> Redemption | None:
    return session.exec(
        select(Redemption)
        .where(col(Redemption.id) == redemption_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def _release(session: Session, redemption: Redemption, status: RedemptionStatus) -> None:
    """Return the points (void the hold, or let the ledger expire it) and close the voucher."""
    held = wallet.get_hold(session, redemption.hold_id)
    if held.status == "pending":
        try:
            wallet.void_hold(session, held.id)
        except HoldExpired:
            wallet.expire_holds(session)
    redemption.status = status
    redemption.resolved_at = utcnow()
    session.add(redemption)
    session.flush()
    reward = session.get(Reward, redemption.reward_id)
    if reward is not None and reward.stock is not None:
        session.execute(
            update(_REWARD).where(_REWARD.c.id == reward.id).values(issued=_REWARD.c.issued - 1)
        )
    audit.record(
        session,
        actor="system:rewards",
        action=f"rewards.voucher.{status}",
        subject_type="redemption",
        subject_id=redemption.id,
        payload={"points_returned": redemption.points},
    )


def find_by_code(session: Session, code: str) -> Redemption:
    index = pii.blind_index(normalise_code(code), context=CODE_CONTEXT)
    redemption = session.exec(
        select(Redemption)
        .where(col(Redemption.code_index) == index)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if redemption is None:
        raise UnknownVoucher(N_("No voucher with this code."))
    return redemption


def confirm(
    session: Session,
    *,
    code: str,
    organisation: Organisation | None,
    is_platform_admin: bool = False,
    actor: str,
    now: datetime | None = None,
) -> Redemption:
    """The merchant honours a voucher: its points are captured. Single use."""
    moment = now or utcnow()
    redemption = find_by_code(session, code)
    reward = catalogue.get_reward(session, redemption.reward_id)
    if not may_honour(session, reward, organisation) and not is_platform_admin:
        raise UnknownVoucher(N_("No voucher with this code."))
    if redemption.status == RedemptionStatus.confirmed:
        raise VoucherUsed(
            N_("This voucher was used on {when}."),
            when=(redemption.resolved_at or moment).isoformat(timespec="minutes"),
        )
    if redemption.status != RedemptionStatus.issued:
        raise VoucherClosed(N_("This voucher is {status}."), status=str(redemption.status))
    if redemption.expires_at <= moment:
        _release(session, redemption, RedemptionStatus.expired)
        raise VoucherExpired()
    try:
        wallet.capture_hold(session, redemption.hold_id)
    except HoldExpired:
        _release(session, redemption, RedemptionStatus.expired)
        raise VoucherExpired() from None
    redemption.status = RedemptionStatus.confirmed
    redemption.confirmed_by = actor
    redemption.resolved_at = moment
    session.add(redemption)
    session.flush()
    payload: dict[str, object] = {"reward": str(reward.id), "points": redemption.points}
    merchant = _reimbursed_merchant(session, reward, organisation)
    if merchant is not None and reward.value_fen:
        paid = rewards_fund.reimburse(
            session,
            redemption_id=redemption.id,
            reward_id=reward.id,
            merchant_id=merchant.id,
            value_fen=reward.value_fen,
        )
        if paid is not None:
            payload.update(
                honoured_by=str(merchant.id),
                reimbursed_fen=paid.total_fen,
                from_fund_fen=paid.from_fund_fen,
                from_platform_fen=paid.from_platform_fen,
                journal_entry=str(paid.entry_id),
            )
    audit.record(
        session,
        actor=actor,
        action="rewards.voucher.confirmed",
        subject_type="redemption",
        subject_id=redemption.id,
        payload=payload,
    )
    return redemption


def cancel(session: Session, *, resident: Resident, redemption_id: uuid.UUID) -> Redemption:
    """The resident gives a voucher back before using it: the points return."""
    redemption = _locked(session, redemption_id)
    if redemption is None or redemption.resident_id != resident.id:
        raise UnknownVoucher(N_("No voucher {redemption_id}."), redemption_id=str(redemption_id))
    if redemption.status != RedemptionStatus.issued:
        raise VoucherClosed(N_("This voucher is {status}."), status=str(redemption.status))
    _release(session, redemption, RedemptionStatus.cancelled)
    return redemption


def expire_due(
    session: Session, *, now: datetime | None = None, limit: int = MAX_EXPIRIES_PER_CALL
) -> int:
    """Close vouchers past their date and return their points; returns how many."""
    moment = now or utcnow()
    due = session.exec(
        select(Redemption)
        .where(col(Redemption.status) == RedemptionStatus.issued)
        .where(col(Redemption.expires_at) <= moment)
        .order_by(col(Redemption.expires_at), col(Redemption.id))
        .limit(max(1, min(limit, MAX_EXPIRIES_PER_CALL)))
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).all()
    for redemption in due:
        _release(session, redemption, RedemptionStatus.expired)
    return len(due)


def get_redemption(
    session: Session, redemption_id: uuid.UUID, *, resident_id: uuid.UUID | None = None
) -> Redemption:
    redemption = session.get(Redemption, redemption_id)
    if redemption is None or (resident_id is not None and redemption.resident_id != resident_id):
        raise UnknownVoucher(N_("No voucher {redemption_id}."), redemption_id=str(redemption_id))
    return redemption


def effective_status(redemption: Redemption, now: datetime | None = None) -> RedemptionStatus:
    """The status a person should see: an issued voucher past its date is expired."""
    if redemption.status == RedemptionStatus.issued and redemption.expires_at <= (now or utcnow()):
        return RedemptionStatus.expired
    return RedemptionStatus(redemption.status)


@dataclass(frozen=True)
class VoucherView:
    redemption: Redemption
    reward: Reward
    sponsor: Organisation


def vouchers_of(session: Session, resident_id: uuid.UUID, *, limit: int = 100) -> list[VoucherView]:
    rows = session.exec(
        select(Redemption, Reward, Organisation)
        .join(Reward, col(Reward.id) == col(Redemption.reward_id))
        .join(Organisation, col(Organisation.id) == col(Reward.sponsor_id))
        .where(col(Redemption.resident_id) == resident_id)
        .order_by(col(Redemption.created_at).desc())
        .limit(limit)
    ).all()
    return [VoucherView(*row) for row in rows]


def vouchers_of_sponsor(
    session: Session, sponsor_id: uuid.UUID, *, limit: int = 100
) -> list[VoucherView]:
    rows = session.exec(
        select(Redemption, Reward, Organisation)
        .join(Reward, col(Reward.id) == col(Redemption.reward_id))
        .join(Organisation, col(Organisation.id) == col(Reward.sponsor_id))
        .where(col(Reward.sponsor_id) == sponsor_id)
        .order_by(col(Redemption.created_at).desc())
        .limit(limit)
    ).all()
    return [VoucherView(*row) for row in rows]


@dataclass(frozen=True)
class HonouredVoucher:
    """A platform voucher the organisation honoured, and what it was reimbursed for it."""

    reimbursement: rewards_fund.ReceivedReimbursement
    reward: Reward


def honoured_platform_vouchers(
    session: Session,
    organisation_id: uuid.UUID,
    *,
    before: int | None = None,
    limit: int = 100,
) -> list[HonouredVoucher]:
    """Platform vouchers ``organisation_id`` honoured (not of its own rewards), newest first,
    each with the reimbursement its CNY account received (ADR 0059): read from the ledger.
    Paged: ``before`` is the ``reimbursement.cursor`` of the last item of the previous page."""
    received = rewards_fund.reimbursements_to(session, organisation_id, before=before, limit=limit)
    if not received:
        return []
    wanted = {item.reward_id for item in received}
    rewards = {
        reward.id: reward
        for reward in session.exec(select(Reward).where(col(Reward.id).in_(wanted))).all()
    }
    return [
        HonouredVoucher(item, rewards[item.reward_id])
        for item in received
        if item.reward_id in rewards
    ]


def lookup(
    session: Session, *, code: str, organisation: Organisation | None, is_platform_admin: bool
) -> VoucherView:
    """A voucher as its merchant sees it before confirming (no resident data, no lock)."""
    index = pii.blind_index(normalise_code(code), context=CODE_CONTEXT)
    redemption = session.exec(select(Redemption).where(col(Redemption.code_index) == index)).first()
    if redemption is None:
        raise UnknownVoucher(N_("No voucher with this code."))
    reward = catalogue.get_reward(session, redemption.reward_id)
    if not is_platform_admin and not may_honour(session, reward, organisation):
        raise UnknownVoucher(N_("No voucher with this code."))
    sponsor = session.get(Organisation, reward.sponsor_id)
    assert sponsor is not None
    return VoucherView(redemption, reward, sponsor)
