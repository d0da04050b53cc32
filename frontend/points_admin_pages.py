"""Platform administration of carbon inclusion (``/admin/points``): data partners and their
signing keys (a new secret is shown once, on the page that created it), factor versions (a new
version takes effect from a future day), the monthly pools and the residents' rewards fund (all
time, or one month's money and its closing balance)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from frontend import fields
from frontend.forms import refusal_errors
from frontend.navigation import ADMIN_LINKS
from frontend.points_pages import COMMON
from frontend.templating import render
from market.service import rewards_fund
from market.service.common import month_span
from mrv.inclusive import SPECS
from registry.inclusion.models import PartnerKeyKind
from registry.inclusion.schemas import MAX_FACTOR
from registry.inclusion.service import methodologies, partners, pooling
from tanhui import numbers
from tanhui.auth import PlatformAdmin, SessionDep
from tanhui.errors import DomainError, InvalidInput
from tanhui.i18n import N_

router = APIRouter(prefix="/admin/points", include_in_schema=False)
ADMIN_LINKS.append(("/admin/points", N_("Carbon points")))
SCENARIOS = [scenario.value for scenario in SPECS]


def _page(
    request: Request,
    principal: PlatformAdmin,
    session: Session,
    *,
    secret: tuple[str, str] | None = None,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
    fund_month: str = "",
    fund_of_month: rewards_fund.FundSummary | None = None,
) -> Response:
    table = methodologies.factor_table(session)
    listed = [
        (partner, organisation, partners.keys_of(session, partner.id))
        for partner, organisation in partners.list_partners(session)
    ]
    return render(
        request,
        "admin/points.html",
        {
            "partners": listed,
            "rows": methodologies.methodology_rows(table),
            "pools": pooling.list_pools(session),
            "fund": rewards_fund.summary(session),
            "fund_month": fund_month,
            "fund_of_month": fund_of_month,
            "scenarios": SCENARIOS,
            "secret": secret,
            "errors": errors or {},
            "form": form or {},
            **COMMON,
        },
        principal=principal,
        status_code=status_code,
    )


def _failed(
    request: Request,
    principal: PlatformAdmin,
    session: Session,
    error: DomainError,
    form: dict[str, Any],
) -> Response:
    return _page(
        request,
        principal,
        session,
        errors=refusal_errors(session, request, principal, error),
        form=form,
        status_code=error.status,
    )


@router.get("", response_class=HTMLResponse)
def points_admin(
    request: Request,
    principal: PlatformAdmin,
    session: SessionDep,
    fund_month: Annotated[str, Query(max_length=16)] = "",
) -> Response:
    """The page; with ``fund_month`` (YYYY-MM), also the rewards fund's figures of that month."""
    month = fund_month.strip()
    if not month:
        return _page(request, principal, session)
    try:
        since, until = month_span(month)
    except DomainError as error:
        errors = refusal_errors(session, request, principal, error, renamed={"_form": "fund_month"})
        return _page(
            request,
            principal,
            session,
            errors=errors,
            status_code=error.status,
            fund_month=month,
        )
    figures = rewards_fund.summary(session, since=since, until=until)
    return _page(request, principal, session, fund_month=month, fund_of_month=figures)


@router.post("/partners", response_class=HTMLResponse)
async def create_partner(
    request: Request, principal: PlatformAdmin, session: SessionDep
) -> Response:
    form = await request.form()
    name = str(form.get("name") or "")[:200]
    chosen = [str(value) for value in form.getlist("scenarios")][:20]
    try:
        created = partners.create_partner(
            session, name=name, scenarios=chosen, actor=principal.actor
        )
    except DomainError as error:
        return _failed(request, principal, session, error, {"name": name, "scenarios": chosen})
    return _page(request, principal, session, secret=(str(created.partner.id), created.secret))


@router.post("/partners/{partner_id}/keys", response_class=HTMLResponse)
def add_key(
    request: Request,
    partner_id: uuid.UUID,
    principal: PlatformAdmin,
    session: SessionDep,
    kind: Annotated[str, Form(max_length=16)] = "hmac",
    public_key: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    try:
        created = partners.add_key(
            session,
            partners.get_partner(session, partner_id),
            kind=PartnerKeyKind.ed25519 if kind == "ed25519" else PartnerKeyKind.hmac,
            public_key=public_key or None,
            actor=principal.actor,
        )
    except DomainError as error:
        form = {"partner_id": str(partner_id), "public_key": public_key}
        return _failed(request, principal, session, error, form)
    secret = (str(partner_id), created.secret) if created.secret else None
    return _page(request, principal, session, secret=secret)


@router.post("/partners/{partner_id}/keys/{key_id}/revoke", response_class=HTMLResponse)
def revoke_key(
    request: Request,
    partner_id: uuid.UUID,
    key_id: uuid.UUID,
    principal: PlatformAdmin,
    session: SessionDep,
) -> Response:
    try:
        partners.revoke_key(
            session, partners.get_partner(session, partner_id), key_id, actor=principal.actor
        )
    except DomainError as error:
        return _failed(request, principal, session, error, {})
    return _page(request, principal, session)


@router.post("/methodologies", response_class=HTMLResponse)
def add_version(
    request: Request,
    principal: PlatformAdmin,
    session: SessionDep,
    scenario: Annotated[str, Form(max_length=32)] = "",
    variant: Annotated[str, Form(max_length=32)] = "",
    version: Annotated[str, Form(max_length=16)] = "",
    grams_per_unit: Annotated[str, Form(max_length=24)] = "",
    daily_cap: Annotated[str, Form(max_length=24)] = "",
    valid_from: Annotated[str, Form(max_length=10)] = "",
    baseline: Annotated[str, Form(max_length=500)] = "",
    source: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    form = {
        "scenario": scenario,
        "variant": variant,
        "version": version,
        "grams_per_unit": grams_per_unit,
        "daily_cap": daily_cap,
        "valid_from": valid_from,
        "baseline": baseline,
        "source": source,
    }
    try:
        methodologies.add_version(
            session,
            scenario=scenario,
            variant=variant.strip(),
            version=version.strip(),
            grams_per_unit=_decimal(grams_per_unit, "grams_per_unit"),
            baseline=baseline,
            source=source,
            valid_from=_day(valid_from),
            daily_cap=_decimal(daily_cap, "daily_cap"),
            actor=principal.actor,
        )
    except DomainError as error:
        return _failed(request, principal, session, error, form)
    return _page(request, principal, session)


def _decimal(value: str, field: str) -> Decimal:
    try:
        return numbers.read_decimal(value, places=6, minimum=0, maximum=MAX_FACTOR)
    except numbers.NumberRefused as refused:
        raise fields.invalid(field, refused.message, **refused.params) from None


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(
            N_("Give the date as YYYY-MM-DD."),
            errors=[{"field": "valid_from", "message": "YYYY-MM-DD"}],
        ) from None
