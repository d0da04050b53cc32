"""The merchant's face of carbon points (``/merchant``): confirm a voucher by its code or its
QR code (the QR opens ``/merchant/vouchers/{code}``), see recent vouchers of its rewards and the
platform vouchers it honoured with their reimbursements (ADR 0059), offer rewards.

For users of organisations that sponsor rewards (merchants, data partners such as the bus
operator, enterprises, the platform). Works without JavaScript.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from frontend import fields
from frontend.forms import errors_by_field, refusal_errors
from frontend.navigation import ORGANISATION_LINKS
from frontend.points_pages import COMMON
from frontend.templating import page_locale, render
from market.rewards.models import RewardKind
from market.rewards.schemas import MAX_STOCK
from market.rewards.service import catalogue, redemptions
from market.service import rewards_fund
from tanhui import numbers
from tanhui.auth import MissingPermission, OptionalPrincipal, Principal, SessionDep
from tanhui.errors import DomainError, InvalidInput
from tanhui.i18n import N_
from tanhui.models import ROLE_RANK, Role

router = APIRouter(prefix="/merchant", include_in_schema=False)
MERCHANT_KINDS = catalogue.SPONSOR_KINDS

for _kind in MERCHANT_KINDS:
    ORGANISATION_LINKS[_kind].append(("/merchant", N_("Vouchers and rewards")))


def _merchant(
    request: Request, principal: Principal | None, *, acting: bool = False
) -> Principal | Response:
    """The caller if they may use the merchant page; ``acting`` (confirming vouchers, offering
    rewards) needs a member: viewers only read."""
    if principal is None:
        return RedirectResponse("/login?next=" + quote(request.url.path, safe="/"), 303)
    organisation = principal.organisation
    if principal.user is None or organisation is None or organisation.kind not in MERCHANT_KINDS:
        if principal.is_platform_admin:
            return principal
        raise MissingPermission(N_("This is for merchants and partners that offer rewards."))
    if acting and (principal.role is None or ROLE_RANK[principal.role] < ROLE_RANK[Role.member]):
        raise MissingPermission(
            N_("This needs the role {role} or higher in your organisation."),
            role=Role.member.value,
        )
    return principal


def _page(
    request: Request,
    principal: Principal,
    session: Session,
    *,
    result: redemptions.VoucherView | None = None,
    confirmed: bool = False,
    reimbursement: rewards_fund.Reimbursement | None = None,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
    honoured_before: int | None = None,
) -> Response:
    organisation = principal.organisation
    rewards = (
        catalogue.catalogue(session, sponsor_id=organisation.id, include_inactive=True)
        if organisation
        else []
    )
    vouchers = redemptions.vouchers_of_sponsor(session, organisation.id) if organisation else []
    honoured = (
        redemptions.honoured_platform_vouchers(
            session, organisation.id, before=honoured_before, limit=HONOURED_PAGE
        )
        if organisation
        else []
    )
    older = honoured[-1].reimbursement.cursor if len(honoured) == HONOURED_PAGE else None
    return render(
        request,
        "merchant/home.html",
        {
            "rewards": rewards,
            "vouchers": vouchers,
            "honoured": honoured,
            "honoured_older": older,
            "honoured_paged": honoured_before is not None,
            "honours_platform_vouchers": bool(honoured)
            or (organisation is not None and organisation.kind in redemptions.HONOURING_KINDS),
            "result": result,
            "confirmed": confirmed,
            "reimbursement": reimbursement,
            "errors": errors or {},
            "form": form or {},
            "kinds": [kind.value for kind in RewardKind if kind != RewardKind.offset],
            "status_of": redemptions.effective_status,
            "can_offer": principal.role is not None
            and ROLE_RANK[principal.role] >= ROLE_RANK[Role.member],
            **COMMON,
        },
        principal=principal,
        status_code=status_code,
    )


HONOURED_PAGE = 50  # platform vouchers listed per page


@router.get("", response_class=HTMLResponse)
def merchant_home(
    request: Request,
    principal: OptionalPrincipal,
    session: SessionDep,
    before: numbers.RowId | None = None,
) -> Response:
    checked = _merchant(request, principal)
    if isinstance(checked, Response):
        return checked
    return _page(request, checked, session, honoured_before=before)


@router.get("/vouchers/{code}", response_class=HTMLResponse)
def voucher_by_code(
    request: Request, code: str, principal: OptionalPrincipal, session: SessionDep
) -> Response:
    """Where the voucher's QR code leads: what it is, and a button to confirm it."""
    checked = _merchant(request, principal)
    if isinstance(checked, Response):
        return checked
    try:
        view = redemptions.lookup(
            session,
            code=code,
            organisation=checked.organisation,
            is_platform_admin=checked.is_platform_admin,
        )
    except DomainError as error:
        return _page(
            request,
            checked,
            session,
            errors=errors_by_field(error, page_locale(request, checked)),
            form={"code": code},
            status_code=error.status,
        )
    return render(
        request,
        "merchant/voucher.html",
        {
            "view": view,
            "code": code,
            "status": redemptions.effective_status(view.redemption),
            **COMMON,
        },
        principal=checked,
    )


@router.post("/vouchers/confirm", response_class=HTMLResponse)
def confirm(
    request: Request,
    principal: OptionalPrincipal,
    session: SessionDep,
    code: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    checked = _merchant(request, principal, acting=True)
    if isinstance(checked, Response):
        return checked
    try:
        redemption = redemptions.confirm(
            session,
            code=code,
            organisation=checked.organisation,
            is_platform_admin=checked.is_platform_admin,
            actor=checked.actor,
        )
    except DomainError as error:
        # An expired voucher is closed and its points returned although the code is refused.
        errors = refusal_errors(session, request, checked, error)
        return _page(
            request,
            checked,
            session,
            errors=errors,
            form={"code": code},
            status_code=error.status,
        )
    view = redemptions.lookup(
        session, code=code, organisation=checked.organisation, is_platform_admin=True
    )
    assert view.redemption.id == redemption.id
    return _page(
        request,
        checked,
        session,
        result=view,
        confirmed=True,
        reimbursement=rewards_fund.reimbursement_of(session, redemption.id),
    )


@router.post("/rewards", response_class=HTMLResponse)
def offer_reward(
    request: Request,
    principal: OptionalPrincipal,
    session: SessionDep,
    title: Annotated[str, Form(max_length=120)] = "",
    kind: Annotated[str, Form(max_length=16)] = "voucher",
    points_price: Annotated[str, Form(max_length=12)] = "",
    stock: Annotated[str, Form(max_length=12)] = "",
    valid_days: Annotated[str, Form(max_length=4)] = "30",
    description: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    checked = _merchant(request, principal, acting=True)
    if isinstance(checked, Response):
        return checked
    form = {
        "title": title,
        "kind": kind,
        "points_price": points_price,
        "stock": stock,
        "valid_days": valid_days,
        "description": description,
    }
    try:
        if checked.organisation is None:
            raise InvalidInput(N_("Offer rewards as a member of your organisation."))
        catalogue.create_reward(
            session,
            sponsor=checked.organisation,
            kind=_kind_of(kind),
            title=title,
            description=description,
            points_price=fields.whole(points_price, "points_price"),
            stock=fields.whole(stock, "stock", maximum=MAX_STOCK) if stock.strip() else None,
            valid_days=fields.whole(valid_days, "valid_days"),
            actor=checked.actor,
        )
    except DomainError as error:
        return _page(
            request,
            checked,
            session,
            errors=refusal_errors(session, request, checked, error),
            form=form,
            status_code=error.status,
        )
    return RedirectResponse("/merchant", status_code=303)


def _kind_of(value: str) -> RewardKind:
    try:
        kind = RewardKind(value)
    except ValueError:
        kind = RewardKind.offset
    if kind == RewardKind.offset:
        raise InvalidInput(
            N_("Choose a valid {field}."),
            field="kind",
            errors=[{"field": "kind", "message": "invalid"}],
        )
    return kind
