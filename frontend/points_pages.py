"""Carbon points in the residents' app (``/app``): balance, carbon receipts, rewards, vouchers
with their QR code, the citizen card, and which enterprises bought the residents' pooled
reductions.

Every page works without JavaScript (plain links and forms, server-drawn QR codes) and honours
elder mode (no pop-ups: cancelling a voucher is a page of its own, not a confirm() dialog).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from frontend.forms import refusal_errors
from frontend.resident_app import HOME_SECTIONS
from frontend.templating import render
from market.rewards.models import RedemptionStatus
from market.rewards.service import catalogue, offsets, qr, redemptions
from market.service import rewards_fund
from mrv.inclusive import SCENARIO_LABELS, SPECS, UNIT_LABELS, Scenario, Unit
from registry.inclusion.service import pooling, receipts, residents
from tanhui import numbers
from tanhui.api import client_ip
from tanhui.auth import OptionalPrincipal, Principal, SessionDep
from tanhui.errors import DomainError
from tanhui.i18n import N_
from tanhui.models import Resident

router = APIRouter(prefix="/app", include_in_schema=False)
SPECS_BY_NAME = {scenario.value: spec for scenario, spec in SPECS.items()}

STATUS_LABELS = {
    RedemptionStatus.issued: N_("Ready to use"),
    RedemptionStatus.confirmed: N_("Used"),
    RedemptionStatus.expired: N_("Expired: points returned"),
    RedemptionStatus.cancelled: N_("Cancelled: points returned"),
}
KIND_LABELS = {
    "bus_coupon": N_("Bus-fare coupon"),
    "voucher": N_("Voucher"),
    "tree": N_("Tree planting"),
    "offset": N_("Offset me"),
}


def scenario_label(scenario: str) -> str:
    try:
        return SCENARIO_LABELS[Scenario(scenario)]
    except ValueError:
        return scenario


def unit_label(unit: str) -> str:
    try:
        return UNIT_LABELS[Unit(unit)]
    except ValueError:
        return unit


COMMON = {
    "scenario_label": scenario_label,
    "unit_label": unit_label,
    "status_labels": STATUS_LABELS,
    "kind_labels": KIND_LABELS,
}


def _home_context(session: Session, resident: Resident) -> dict[str, Any]:
    view = residents.balances(session, resident)
    recent = receipts.list_receipts(session, resident.id, limit=3).items
    open_vouchers = [
        item
        for item in redemptions.vouchers_of(session, resident.id, limit=20)
        if redemptions.effective_status(item.redemption) == RedemptionStatus.issued
    ]
    return {
        "points_view": view,
        "recent_receipts": recent,
        "open_vouchers": open_vouchers,
        **COMMON,
    }


HOME_SECTIONS.append(("app/points/_home.html", _home_context))


def _resident(principal: Principal | None) -> Resident | None:
    return principal.resident if principal is not None else None


def _to_sign_in() -> Response:
    return RedirectResponse("/app", status_code=303)


@router.get("/receipts", response_class=HTMLResponse)
def receipts_page(
    request: Request, principal: OptionalPrincipal, session: SessionDep, cursor: str | None = None
) -> Response:
    resident = _resident(principal)
    if resident is None:
        return _to_sign_in()
    page = receipts.list_receipts(session, resident.id, cursor=cursor, limit=20)
    return render(
        request,
        "app/points/receipts.html",
        {"page": page, **COMMON},
        principal=principal,
    )


@router.get("/receipts/{receipt_id}", response_class=HTMLResponse)
def receipt_page(
    request: Request, receipt_id: uuid.UUID, principal: OptionalPrincipal, session: SessionDep
) -> Response:
    resident = _resident(principal)
    if resident is None:
        return _to_sign_in()
    receipt = receipts.get_receipt(session, receipt_id, resident_id=resident.id)
    return render(
        request, "app/points/receipt.html", {"receipt": receipt, **COMMON}, principal=principal
    )


def _rewards_page(
    request: Request,
    principal: Principal,
    session: Session,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    assert principal.resident is not None
    view = residents.balances(session, principal.resident)
    return render(
        request,
        "app/points/rewards.html",
        {
            "rewards": catalogue.catalogue(session),
            "points_view": view,
            "error": error,
            "remaining": catalogue.remaining,
            **COMMON,
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/rewards", response_class=HTMLResponse)
def rewards_page(request: Request, principal: OptionalPrincipal, session: SessionDep) -> Response:
    if _resident(principal) is None:
        return _to_sign_in()
    assert principal is not None
    return _rewards_page(request, principal, session)


@router.post("/rewards/{reward_id}/redeem", response_class=HTMLResponse)
def redeem(
    request: Request,
    reward_id: uuid.UUID,
    principal: OptionalPrincipal,
    session: SessionDep,
) -> Response:
    resident = _resident(principal)
    if resident is None or principal is None:
        return _to_sign_in()
    try:
        voucher = redemptions.redeem(session, resident=resident, reward_id=reward_id)
    except DomainError as error:
        message = refusal_errors(session, request, principal, error)["_form"]
        return _rewards_page(request, principal, session, error=message, status_code=error.status)
    return RedirectResponse(f"/app/vouchers/{voucher.redemption.id}", status_code=303)


@router.get("/vouchers", response_class=HTMLResponse)
def vouchers_page(request: Request, principal: OptionalPrincipal, session: SessionDep) -> Response:
    resident = _resident(principal)
    if resident is None:
        return _to_sign_in()
    return render(
        request,
        "app/points/vouchers.html",
        {
            "vouchers": redemptions.vouchers_of(session, resident.id),
            "status_of": redemptions.effective_status,
            **COMMON,
        },
        principal=principal,
    )


def _voucher_view(session: Session, resident: Resident, redemption_id: uuid.UUID) -> Any:
    redemption = redemptions.get_redemption(session, redemption_id, resident_id=resident.id)
    reward = catalogue.get_reward(session, redemption.reward_id)
    from tanhui.models import Organisation

    sponsor = session.get(Organisation, reward.sponsor_id)
    assert sponsor is not None
    return redemptions.VoucherView(redemption, reward, sponsor)


@router.get("/vouchers/{redemption_id}", response_class=HTMLResponse)
def voucher_page(
    request: Request,
    redemption_id: uuid.UUID,
    principal: OptionalPrincipal,
    session: SessionDep,
    cancel: Annotated[int, numbers.Bounded(0, 1)] = 0,
) -> Response:
    resident = _resident(principal)
    if resident is None:
        return _to_sign_in()
    view = _voucher_view(session, resident, redemption_id)
    status = redemptions.effective_status(view.redemption)
    return render(
        request,
        "app/points/voucher.html",
        {
            "view": view,
            "status": status,
            "code": redemptions.code_of(view.redemption)
            if status == RedemptionStatus.issued
            else None,
            "share": offsets.share_of(session, view.redemption.id),
            "asking_cancel": bool(cancel) and status == RedemptionStatus.issued,
            **COMMON,
        },
        principal=principal,
    )


@router.get("/vouchers/{redemption_id}/qr.svg")
def voucher_qr(
    redemption_id: uuid.UUID, principal: OptionalPrincipal, session: SessionDep
) -> Response:
    resident = _resident(principal)
    if resident is None:
        return Response(status_code=404)
    redemption = redemptions.get_redemption(session, redemption_id, resident_id=resident.id)
    return Response(
        qr.svg(qr.voucher_url(redemptions.code_of(redemption))),
        media_type="image/svg+xml",
        headers={"Cache-Control": "private, no-store"},
    )


@router.post("/vouchers/{redemption_id}/cancel", response_class=HTMLResponse)
def cancel_voucher(
    redemption_id: uuid.UUID, principal: OptionalPrincipal, session: SessionDep
) -> Response:
    resident = _resident(principal)
    if resident is None:
        return _to_sign_in()
    redemptions.cancel(session, resident=resident, redemption_id=redemption_id)
    return RedirectResponse(f"/app/vouchers/{redemption_id}", status_code=303)


def _card_context(
    resident: Resident, *, number: str = "", issuer: str = "", attestation: str = ""
) -> dict[str, Any]:
    proof = {"number": number, "issuer": issuer, "attestation": attestation}
    return {
        "masked": residents.masked_citizen_card(resident),
        "proof": proof if all(proof.values()) else None,
        "errors": {},
        "saved": False,
    }


@router.get("/card", response_class=HTMLResponse)
def card_page(
    request: Request,
    principal: OptionalPrincipal,
    session: SessionDep,
    number: Annotated[str, Query(max_length=40)] = "",
    issuer: Annotated[str, Query(max_length=40)] = "",
    attestation: Annotated[str, Query(max_length=2_000)] = "",
) -> Response:
    """The card page; the issuer's app sends the resident here with the card number and its
    signed attestation, to confirm the link."""
    resident = _resident(principal)
    if resident is None:
        return _to_sign_in()
    return render(
        request,
        "app/points/card.html",
        _card_context(resident, number=number, issuer=issuer, attestation=attestation),
        principal=principal,
    )


@router.post("/card", response_class=HTMLResponse)
def link_card(
    request: Request,
    principal: OptionalPrincipal,
    session: SessionDep,
    number: Annotated[str, Form(max_length=40)] = "",
    issuer: Annotated[str, Form(max_length=40)] = "",
    attestation: Annotated[str, Form(max_length=2_000)] = "",
    action: Annotated[str, Form(max_length=10)] = "link",
) -> Response:
    resident = _resident(principal)
    if resident is None or principal is None:
        return _to_sign_in()
    try:
        if action == "unlink":
            residents.unlink_citizen_card(session, resident, actor=principal.actor)
        else:
            residents.link_citizen_card(
                session,
                resident,
                number,
                issuer=issuer,
                attestation=attestation,
                ip=client_ip(request),
                actor=principal.actor,
            )
    except DomainError as error:
        errors = refusal_errors(session, request, principal, error)  # before reading the card
        return render(
            request,
            "app/points/card.html",
            {**_card_context(resident), "errors": errors},
            principal=principal,
            status_code=error.status,
        )
    return render(
        request,
        "app/points/card.html",
        {**_card_context(resident), "saved": True},
        principal=principal,
    )


@router.get("/pool", response_class=HTMLResponse)
def pool_page(request: Request, principal: OptionalPrincipal, session: SessionDep) -> Response:
    resident = _resident(principal)
    if resident is None:
        return _to_sign_in()
    return render(
        request,
        "app/points/pool.html",
        {
            "contributions": pooling.contributions_of(session, resident.id),
            "fund": rewards_fund.summary(session),
            **COMMON,
        },
        principal=principal,
    )


public_router = APIRouter(include_in_schema=False)


@public_router.get("/points/methodologies", response_class=HTMLResponse)
def methodologies_page(
    request: Request, principal: OptionalPrincipal, session: SessionDep
) -> Response:
    """The public factor tables and their history (the same data as the API)."""
    from registry.inclusion.service import methodologies

    table = methodologies.factor_table(session)
    return render(
        request,
        "points/methodologies.html",
        {
            "rows": methodologies.methodology_rows(table),
            "rates": table.points_rates(),
            "specs": SPECS_BY_NAME,
            **COMMON,
        },
        principal=principal,
    )
