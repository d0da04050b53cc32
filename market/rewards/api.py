"""HTTP routes of the rewards catalogue and vouchers under ``/api/v1/points`` (thin: parse,
check permission, call the service)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from sqlmodel import Session

from market.rewards.errors import InvalidReward, UnknownReward
from market.rewards.models import RedemptionStatus, Reward, RewardKind
from market.rewards.schemas import (
    HonouredVoucherPage,
    HonouredVoucherPublic,
    OffsetSharePublic,
    RedemptionCreate,
    ReimbursementPublic,
    RewardCreate,
    RewardList,
    RewardPublic,
    RewardsFundPublic,
    RewardUpdate,
    VoucherConfirm,
    VoucherList,
    VoucherPublic,
)
from market.rewards.service import catalogue, offsets, qr, redemptions
from market.service import rewards_fund
from market.service.common import month_span
from tanhui.api import IdempotencyKey, problems, run_idempotent
from tanhui.auth import CurrentResident, CurrentUser, MissingPermission, Principal, SessionDep
from tanhui.i18n import N_
from tanhui.models import ROLE_RANK, Organisation, Role

router = APIRouter(prefix="/points", tags=["carbon points rewards"])
BODY_LIMITS: dict[str, int] = {}


def reward_public(reward: Reward, sponsor: Organisation) -> RewardPublic:
    return RewardPublic(
        id=reward.id,
        kind=str(reward.kind),
        title=reward.title,
        title_en=reward.title_en,
        description=reward.description,
        sponsor=sponsor.name,
        sponsor_id=sponsor.id,
        points_price=reward.points_price,
        value_fen=reward.value_fen,
        stock=reward.stock,
        remaining=catalogue.remaining(reward),
        valid_days=reward.valid_days,
        offset_grams=reward.offset_grams,
        active=reward.active,
    )


def voucher_public(
    session: Session, view: redemptions.VoucherView, *, with_code: bool
) -> VoucherPublic:
    redemption = view.redemption
    share = None
    if view.reward.kind == RewardKind.offset:
        found = offsets.share_of(session, redemption.id)
        if found is not None:
            share = OffsetSharePublic(grams=found.grams, certificate_id=found.certificate_id)
    issued = redemptions.effective_status(redemption) == RedemptionStatus.issued
    return VoucherPublic(
        id=redemption.id,
        reward_id=view.reward.id,
        reward=view.reward.title,
        kind=str(view.reward.kind),
        sponsor=view.sponsor.name,
        points=redemption.points,
        status=redemptions.effective_status(redemption).value,
        code=redemptions.code_of(redemption) if with_code else None,
        code_hint=redemption.code_hint,
        expires_at=redemption.expires_at,
        created_at=redemption.created_at,
        resolved_at=redemption.resolved_at,
        qr_svg=f"/api/v1/points/vouchers/{redemption.id}/qr.svg" if with_code and issued else None,
        offset=share,
    )


def _view(
    session: Session, redemption_id: uuid.UUID, resident_id: uuid.UUID
) -> redemptions.VoucherView:
    redemption = redemptions.get_redemption(session, redemption_id, resident_id=resident_id)
    reward = catalogue.get_reward(session, redemption.reward_id)
    sponsor = session.get(Organisation, reward.sponsor_id)
    assert sponsor is not None
    return redemptions.VoucherView(redemption, reward, sponsor)


@router.get(
    "/rewards",
    response_model=RewardList,
    summary="The rewards catalogue (public): what points buy, and from whom",
)
def list_rewards(session: SessionDep) -> Any:
    return RewardList(
        items=[reward_public(reward, sponsor) for reward, sponsor in catalogue.catalogue(session)]
    )


def _sponsor_for(
    session: Session, principal: Principal, sponsor_id: uuid.UUID | None
) -> Organisation:
    """A member (or owner) offers rewards for their organisation; a platform admin for any."""
    if principal.is_platform_admin and sponsor_id is not None:
        sponsor = session.get(Organisation, sponsor_id)
        if sponsor is None:
            raise InvalidReward(N_("No organisation {id}."), id=str(sponsor_id))
        return sponsor
    organisation = principal.organisation
    if organisation is None:
        raise InvalidReward(N_("Offer rewards as a member of your organisation."))
    if organisation.kind not in catalogue.SPONSOR_KINDS:
        raise MissingPermission(
            N_("Rewards are offered by merchants, partners, enterprises or the platform.")
        )
    _require_member(principal)
    return organisation


def _require_member(principal: Principal) -> None:
    """Offering, changing and honouring rewards change things: members act, viewers read."""
    if principal.is_platform_admin:
        return
    role = principal.role
    if role is None or ROLE_RANK[role] < ROLE_RANK[Role.member]:
        raise MissingPermission(
            N_("This needs the role {role} or higher in your organisation."),
            role=Role.member.value,
        )


@router.post(
    "/rewards",
    response_model=RewardPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 422),
    summary="Offer a reward for points (merchants, partners, enterprises, the platform)",
)
def create_reward(body: RewardCreate, principal: CurrentUser, session: SessionDep) -> Any:
    sponsor = _sponsor_for(session, principal, body.sponsor_id)
    reward = catalogue.create_reward(
        session,
        sponsor=sponsor,
        kind=RewardKind(body.kind),
        title=body.title,
        title_en=body.title_en,
        description=body.description,
        points_price=body.points_price,
        value_fen=body.value_fen,
        stock=body.stock,
        valid_days=body.valid_days,
        offset_grams=body.offset_grams,
        offset_batch_id=body.offset_batch_id,
        actor=principal.actor,
    )
    return reward_public(reward, sponsor)


@router.patch(
    "/rewards/{reward_id}",
    response_model=RewardPublic,
    responses=problems(401, 403, 404, 422),
    summary="Withdraw a reward or change its stock (its sponsor or a platform admin)",
)
def update_reward(
    reward_id: uuid.UUID, body: RewardUpdate, principal: CurrentUser, session: SessionDep
) -> Any:
    reward = catalogue.get_reward(session, reward_id)
    if not principal.is_platform_admin and principal.organisation_id != reward.sponsor_id:
        raise UnknownReward(N_("No reward {reward_id}."), reward_id=str(reward_id))
    _require_member(principal)
    reward = catalogue.update_reward(
        session, reward, active=body.active, stock=body.stock, actor=principal.actor
    )
    sponsor = session.get(Organisation, reward.sponsor_id)
    assert sponsor is not None
    return reward_public(reward, sponsor)


@router.post(
    "/redemptions",
    response_model=VoucherPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 409, 422),
    summary="Redeem points for a reward: the points are held and a single-use voucher issued",
)
def redeem(
    body: RedemptionCreate,
    principal: CurrentResident,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    resident = principal.resident
    assert resident is not None

    def work() -> dict[str, Any]:
        voucher = redemptions.redeem(session, resident=resident, reward_id=body.reward_id)
        answer = voucher_public(
            session, _view(session, voucher.redemption.id, resident.id), with_code=True
        )
        return answer.model_dump(mode="json")

    return run_idempotent(
        session,
        scope=f"resident:{resident.id}:redeem",
        key=idempotency_key,
        payload=body.model_dump(mode="json"),
        work=work,
    )


@router.get(
    "/redemptions",
    response_model=VoucherList,
    responses=problems(401, 403),
    summary="The signed-in resident's vouchers, newest first",
)
def my_vouchers(principal: CurrentResident, session: SessionDep) -> Any:
    assert principal.resident is not None
    return VoucherList(
        items=[
            voucher_public(session, view, with_code=True)
            for view in redemptions.vouchers_of(session, principal.resident.id)
        ]
    )


@router.get(
    "/redemptions/{redemption_id}",
    response_model=VoucherPublic,
    responses=problems(401, 403, 404),
    summary="One of the signed-in resident's vouchers, with its code",
)
def my_voucher(redemption_id: uuid.UUID, principal: CurrentResident, session: SessionDep) -> Any:
    assert principal.resident is not None
    return voucher_public(
        session, _view(session, redemption_id, principal.resident.id), with_code=True
    )


@router.post(
    "/redemptions/{redemption_id}/cancel",
    response_model=VoucherPublic,
    responses=problems(401, 403, 404, 409),
    summary="Give an unused voucher back: its points return",
)
def cancel_voucher(
    redemption_id: uuid.UUID, principal: CurrentResident, session: SessionDep
) -> Any:
    assert principal.resident is not None
    redemptions.cancel(session, resident=principal.resident, redemption_id=redemption_id)
    return voucher_public(
        session, _view(session, redemption_id, principal.resident.id), with_code=False
    )


@router.get(
    "/vouchers/{redemption_id}/qr.svg",
    response_class=Response,
    responses={
        **problems(401, 403, 404),
        200: {"content": {"image/svg+xml": {}}, "description": "the QR code"},
    },
    summary="The QR code of one of the signed-in resident's vouchers (SVG; .png also served)",
)
def voucher_qr_svg(
    redemption_id: uuid.UUID, principal: CurrentResident, session: SessionDep
) -> Response:
    assert principal.resident is not None
    code = redemptions.code_of(
        redemptions.get_redemption(session, redemption_id, resident_id=principal.resident.id)
    )
    return Response(
        qr.svg(qr.voucher_url(code)),
        media_type="image/svg+xml",
        headers={"Cache-Control": "private, no-store"},
    )


@router.get(
    "/vouchers/{redemption_id}/qr.png",
    response_class=Response,
    responses={
        **problems(401, 403, 404),
        200: {"content": {"image/png": {}}, "description": "the QR code"},
    },
    summary="The QR code of one of the signed-in resident's vouchers (PNG)",
)
def voucher_qr_png(
    redemption_id: uuid.UUID, principal: CurrentResident, session: SessionDep
) -> Response:
    assert principal.resident is not None
    code = redemptions.code_of(
        redemptions.get_redemption(session, redemption_id, resident_id=principal.resident.id)
    )
    return Response(
        qr.png(qr.voucher_url(code)),
        media_type="image/png",
        headers={"Cache-Control": "private, no-store"},
    )


@router.post(
    "/vouchers/confirm",
    response_model=VoucherPublic,
    responses=problems(401, 403, 404, 409, 422),
    summary="A merchant honours a voucher by its code (single use: the points are captured)",
)
def confirm_voucher(body: VoucherConfirm, principal: CurrentUser, session: SessionDep) -> Any:
    _require_member(principal)
    redemption = redemptions.confirm(
        session,
        code=body.code,
        organisation=principal.organisation,
        is_platform_admin=principal.is_platform_admin,
        actor=principal.actor,
    )
    reward = catalogue.get_reward(session, redemption.reward_id)
    sponsor = session.get(Organisation, reward.sponsor_id)
    assert sponsor is not None
    answer = voucher_public(
        session, redemptions.VoucherView(redemption, reward, sponsor), with_code=False
    )
    paid = rewards_fund.reimbursement_of(session, redemption.id)
    if paid is not None:
        answer.reimbursement = ReimbursementPublic(
            amount_fen=paid.total_fen,
            from_fund_fen=paid.from_fund_fen,
            from_platform_fen=paid.from_platform_fen,
            journal_entry_id=paid.entry_id,
        )
    return answer


@router.get(
    "/merchant/vouchers",
    response_model=VoucherList,
    responses=problems(401, 403),
    summary="Vouchers of the caller's organisation's rewards, newest first (no resident data)",
)
def merchant_vouchers(principal: CurrentUser, session: SessionDep) -> Any:
    if principal.organisation_id is None:
        return VoucherList(items=[])
    return VoucherList(
        items=[
            voucher_public(session, view, with_code=False)
            for view in redemptions.vouchers_of_sponsor(session, principal.organisation_id)
        ]
    )


@router.get(
    "/merchant/reimbursements",
    response_model=HonouredVoucherPage,
    responses=problems(401, 403, 422),
    summary="Platform vouchers the caller's organisation honoured and what each was reimbursed, "
    "newest first, by cursor",
)
def merchant_reimbursements(
    principal: CurrentUser,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=20, pattern=r"^[0-9]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    if principal.organisation_id is None:
        return HonouredVoucherPage(items=[], next_cursor=None)
    page = redemptions.honoured_platform_vouchers(
        session,
        principal.organisation_id,
        before=int(cursor) if cursor else None,
        limit=limit,
    )
    items = [
        HonouredVoucherPublic(
            redemption_id=item.reimbursement.redemption_id,
            reward_id=item.reward.id,
            reward_title=item.reward.title,
            honoured_at=item.reimbursement.at,
            reimbursement=ReimbursementPublic(
                amount_fen=item.reimbursement.amount_fen,
                from_fund_fen=item.reimbursement.from_fund_fen,
                from_platform_fen=item.reimbursement.from_platform_fen,
                journal_entry_id=item.reimbursement.entry_id,
            ),
        )
        for item in page
    ]
    more = len(page) == limit
    return HonouredVoucherPage(
        items=items, next_cursor=str(page[-1].reimbursement.cursor) if more else None
    )


@router.get(
    "/rewards-fund",
    response_model=RewardsFundPublic,
    responses=problems(422),
    summary="The residents' rewards fund (public): in from pool sales, paid out for rewards, "
    "balance, platform top-ups, vouchers reimbursed; all time or one month",
)
def rewards_fund_figures(
    session: SessionDep,
    month: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{4}-[0-9]{2}$",
            description="YYYY-MM (Asia/Shanghai): that month's money and the balance at its "
            "end; without it, everything and the balance now",
        ),
    ] = None,
) -> Any:
    since = until = None
    if month is not None:
        since, until = month_span(month)
    figures = rewards_fund.summary(session, since=since, until=until)
    return RewardsFundPublic(
        month=month,
        from_sales_fen=figures.from_sales_fen,
        paid_for_rewards_fen=figures.paid_for_rewards_fen,
        balance_fen=figures.balance_fen,
        platform_topped_up_fen=figures.platform_topped_up_fen,
        rewards_total_fen=figures.rewards_total_fen,
        rewards_reimbursed=figures.rewards_reimbursed,
    )
