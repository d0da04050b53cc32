"""The court and compensation-fund console: judicial cases and their fulfilment; compensation
standards and payout rounds. Plain HTML forms; the services check every role again."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import col, select

from frontend import fields
from frontend.access import actor_of, may_act
from frontend.forms import refusal_errors
from frontend.market_pages import LABELS, face
from frontend.navigation import ORGANISATION_LINKS
from frontend.templating import page_locale, render
from market import presenters
from market.schemas import MAX_RATE_FEN_PER_MU_YEAR
from market.service import compensation, funds
from registry import geo
from registry.models import LandType, Project, ProjectStatus
from tanhui import identity
from tanhui.auth import Principal, SessionDep
from tanhui.errors import DomainError, InvalidInput
from tanhui.i18n import N_
from tanhui.models import Organisation, OrgKind

router = APIRouter(include_in_schema=False)

MAX_JUDGMENT_BYTES = 20 * 1024 * 1024
BODY_LIMITS = {"/court/cases": MAX_JUDGMENT_BYTES + 64 * 1024}

ORGANISATION_LINKS[OrgKind.court] += [("/court", N_("Judicial cases"))]
ORGANISATION_LINKS[OrgKind.compensation_fund] += [("/fund", N_("Compensation fund"))]

Court = Annotated[Principal, Depends(face(OrgKind.court))]
Fund = Annotated[Principal, Depends(face(OrgKind.compensation_fund))]
LAND_TYPES = {
    LandType.bamboo.value: N_("Bamboo forest"),
    LandType.wetland.value: N_("Wetland"),
    LandType.other.value: N_("Other land"),
}


def _mu(exact: str) -> str:
    """An exact area (``541/3``) as people read it (``180.33``)."""
    from decimal import ROUND_HALF_UP, Decimal
    from fractions import Fraction

    value = Fraction(exact)
    shown = Decimal(value.numerator) / Decimal(value.denominator)
    return f"{shown.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"


# --- court ---------------------------------------------------------------------------------


@router.get("/court", response_class=HTMLResponse)
def court_home(request: Request, principal: Court, session: SessionDep) -> Response:
    return _court_page(request, principal, session, {}, {})


def _court_page(
    request: Request,
    principal: Principal,
    session: SessionDep,
    errors: dict[str, str],
    form: dict[str, str],
    status_code: int = 200,
) -> Response:
    actor = actor_of(principal)
    cases = [
        presenters.case_public(session, case)
        for case in compensation.cases_for(session, actor=actor)
    ]
    defendants = identity.list_organisations(session, kind=OrgKind.enterprise)
    projects = session.exec(
        select(Project)
        .where(col(Project.status) == ProjectStatus.issued)
        .order_by(col(Project.code))
    ).all()
    return render(
        request,
        "court/cases.html",
        {
            "labels": LABELS,
            "cases": cases,
            "defendants": defendants,
            "projects": projects,
            "errors": errors,
            "form": form,
            "may_act": may_act(principal),
        },
        principal=principal,
        status_code=status_code,
    )


@router.post("/court/cases", response_class=HTMLResponse)
async def create_case(
    request: Request,
    principal: Court,
    session: SessionDep,
    case_number: Annotated[str, Form(max_length=100)] = "",
    judgment_sha256: Annotated[str, Form(max_length=64)] = "",
    defendant_id: Annotated[str, Form(max_length=40)] = "",
    project_id: Annotated[str, Form(max_length=40)] = "",
    required_t: Annotated[str, Form(max_length=20)] = "",
    required_amount: Annotated[str, Form(max_length=20)] = "",
    judgment: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Record a case; the judgment's SHA-256 is computed from the uploaded file, or typed."""

    form = {
        "case_number": case_number,
        "judgment_sha256": judgment_sha256,
        "defendant_id": defendant_id,
        "project_id": project_id,
        "required_t": required_t,
        "required_amount": required_amount,
    }
    digest = judgment_sha256.strip()
    if judgment is not None and judgment.filename:
        content = await judgment.read(MAX_JUDGMENT_BYTES + 1)
        if content:
            digest = hashlib.sha256(content).hexdigest()
    try:
        if required_t.strip() and required_amount.strip():
            raise InvalidInput(
                N_("Give either the tonnes or the amount, not both."),
                errors=[{"field": "required_t", "message": "one of"}],
            )
        case = compensation.create_case(
            session,
            actor=actor_of(principal),
            case_number=case_number,
            judgment_sha256=digest,
            defendant_id=fields.identifier(defendant_id, "defendant_id"),
            project_id=fields.identifier(project_id, "project_id"),
            required_t=fields.whole(required_t, "required_t", minimum=1)
            if required_t.strip()
            else None,
            required_amount_fen=(
                fields.fen(required_amount, "required_amount") if required_amount.strip() else None
            ),
        )
    except DomainError as error:
        errors = refusal_errors(
            session, request, principal, error, renamed={"required_amount_fen": "required_amount"}
        )
        return _court_page(request, principal, session, errors, form, status_code=error.status)
    return RedirectResponse(f"/court/cases/{case.id}", status_code=303)


@router.get("/court/cases/{case_id}", response_class=HTMLResponse)
def case_page(
    case_id: uuid.UUID, request: Request, principal: Court, session: SessionDep
) -> Response:
    actor = actor_of(principal)
    case = compensation.get_case(session, actor=actor, case_id=case_id)
    checks = compensation.verify_case_certificates(session, actor=actor, case_id=case.id)
    return render(
        request,
        "court/case.html",
        {
            "labels": LABELS,
            "case": presenters.case_public(session, case),
            "checks": checks,
            "orders": [
                presenters.order_public(session, order)
                for order in compensation.case_orders(session, case.id)
            ],
        },
        principal=principal,
    )


# --- compensation fund ---------------------------------------------------------------------


@router.get("/fund", response_class=HTMLResponse)
def fund_home(request: Request, principal: Fund, session: SessionDep) -> Response:
    return _fund_page(request, principal, session, {}, {})


def _fund_page(
    request: Request,
    principal: Principal,
    session: SessionDep,
    errors: dict[str, str],
    form: dict[str, str],
    status_code: int = 200,
) -> Response:
    actor = actor_of(principal)
    assert principal.organisation is not None
    return render(
        request,
        "court/fund.html",
        {
            "labels": LABELS,
            "land_types": LAND_TYPES,
            "districts": geo.districts(),
            "district_names": {d.adcode: d for d in geo.districts()},
            "standards": funds.standards_of(session, actor=actor),
            "rounds": funds.rounds_of(session, actor=actor),
            "balance_fen": funds.fund_balance_fen(session, principal.organisation.id),
            "errors": errors,
            "form": form,
            "may_act": may_act(principal),
        },
        principal=principal,
        status_code=status_code,
    )


@router.post("/fund/standards", response_class=HTMLResponse)
def set_standard(
    request: Request,
    principal: Fund,
    session: SessionDep,
    year: Annotated[str, Form(max_length=4)] = "",
    land_type: Annotated[str, Form(max_length=16)] = "",
    district_adcode: Annotated[str, Form(max_length=6)] = "",
    rate: Annotated[str, Form(max_length=20)] = "",
) -> Response:

    form = {"year": year, "land_type": land_type, "district_adcode": district_adcode, "rate": rate}
    try:
        funds.set_standard(
            session,
            actor=actor_of(principal),
            year=fields.whole(year, "year", minimum=1),
            land_type=land_type,
            district_adcode=district_adcode,
            rate_fen_per_mu_year=fields.fen(rate, "rate", maximum=MAX_RATE_FEN_PER_MU_YEAR),
        )
    except DomainError as error:
        errors = refusal_errors(
            session, request, principal, error, renamed={"rate_fen_per_mu_year": "rate"}
        )
        return _fund_page(request, principal, session, errors, form, status_code=error.status)
    return RedirectResponse("/fund", status_code=303)


@router.post("/fund/rounds", response_class=HTMLResponse)
def draft_round(
    request: Request,
    principal: Fund,
    session: SessionDep,
    round_year: Annotated[str, Form(max_length=4)] = "",
) -> Response:
    try:
        drafted = funds.draft_round(
            session,
            actor=actor_of(principal),
            year=fields.whole(round_year, "round_year", minimum=1),
        )
    except DomainError as error:
        errors = refusal_errors(session, request, principal, error, renamed={"year": "round_year"})
        return _fund_page(
            request, principal, session, errors, {"round_year": round_year}, error.status
        )
    return RedirectResponse(f"/fund/rounds/{drafted.id}", status_code=303)


@router.get("/fund/rounds/{round_id}", response_class=HTMLResponse)
def round_page(
    round_id: uuid.UUID, request: Request, principal: Fund, session: SessionDep
) -> Response:
    payout_round = funds.get_round(session, actor=actor_of(principal), round_id=round_id)
    return _round(request, principal, session, payout_round, None)


def _round(
    request: Request,
    principal: Principal,
    session: SessionDep,
    payout_round: Any,
    error: str | None,
    status_code: int = 200,
) -> Response:
    assert principal.organisation is not None
    shown = presenters.round_public(session, payout_round)
    from market.service.statements import household_names

    return render(
        request,
        "court/round.html",
        {
            "labels": LABELS,
            "round": shown,
            "names": household_names(session, [line.household_id for line in shown.lines]),
            "coops": {
                org.id: org.name
                for org in session.exec(
                    select(Organisation).where(
                        col(Organisation.id).in_({line.cooperative_id for line in shown.lines})
                    )
                ).all()
            }
            if shown.lines
            else {},
            "balance_fen": funds.fund_balance_fen(session, principal.organisation.id),
            "mu": _mu,
            "error": error,
            "may_act": may_act(principal),
        },
        principal=principal,
        status_code=status_code,
    )


@router.post("/fund/rounds/{round_id}/pay", response_class=HTMLResponse)
def pay_round(
    round_id: uuid.UUID, request: Request, principal: Fund, session: SessionDep
) -> Response:
    actor = actor_of(principal)
    try:
        funds.pay_round(session, actor=actor, round_id=round_id)
    except DomainError as error:
        session.rollback()
        from tanhui.i18n import translate

        message = translate(error.message, page_locale(request, principal), **error.params)
        payout_round = funds.get_round(session, actor=actor, round_id=round_id)
        return _round(request, principal, session, payout_round, message, error.status)
    return RedirectResponse(f"/fund/rounds/{round_id}", status_code=303)
