"""Platform administration: organisations, users, the audit log."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from frontend.access import AdminFace
from frontend.forms import refusal_errors
from frontend.templating import render
from tanhui import audit, identity, numbers
from tanhui.auth import SessionDep
from tanhui.errors import DomainError, InvalidInput, NotFound
from tanhui.i18n import N_
from tanhui.models import OrgKind, Role

router = APIRouter(prefix="/admin", include_in_schema=False)
E = TypeVar("E", OrgKind, Role)
AUDIT_PAGE_SIZE = 50


@router.get("", response_class=HTMLResponse)
def admin_home(request: Request, principal: AdminFace, session: SessionDep) -> Response:
    return _admin_page(request, principal, session, {})


def _admin_page(
    request: Request,
    principal: AdminFace,
    session: SessionDep,
    errors: dict[str, str],
    *,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    organisations = identity.list_organisations(session)
    names = {organisation.id: organisation.name for organisation in organisations}
    return render(
        request,
        "admin/home.html",
        {
            "organisations": organisations,
            "users": identity.list_users(session),
            "org_names": names,
            "kinds": list(OrgKind),
            "roles": list(Role),
            "errors": errors,
            "form": form or {},
        },
        principal=principal,
        status_code=status_code,
    )


@router.post("/organisations", response_class=HTMLResponse)
def create_organisation(
    request: Request,
    principal: AdminFace,
    session: SessionDep,
    name: Annotated[str, Form(max_length=200)] = "",
    kind: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    try:
        identity.create_organisation(
            session, name=name, kind=_choice(OrgKind, kind, "kind"), actor=principal.actor
        )
    except DomainError as error:
        return _admin_page(
            request,
            principal,
            session,
            refusal_errors(session, request, principal, error),
            form={"name": name, "kind": kind},
            status_code=error.status,
        )
    return RedirectResponse("/admin", status_code=303)


@router.post("/users", response_class=HTMLResponse)
def create_user(
    request: Request,
    principal: AdminFace,
    session: SessionDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    organisation_id: Annotated[str, Form(max_length=40)] = "",
    role: Annotated[str, Form(max_length=16)] = "member",
) -> Response:
    try:
        organisation = None
        if organisation_id:
            organisation = next(
                (o for o in identity.list_organisations(session) if str(o.id) == organisation_id),
                None,
            )
            if organisation is None:
                raise NotFound(N_("No organisation {id}."), id=organisation_id)
        identity.create_user(
            session,
            email=email,
            password=password,
            organisation=organisation,
            role=_choice(Role, role, "role") if organisation else None,
            is_platform_admin=organisation is None,
            actor=principal.actor,
        )
    except DomainError as error:
        return _admin_page(
            request,
            principal,
            session,
            refusal_errors(session, request, principal, error),
            form={"email": email, "organisation_id": organisation_id, "role": role},
            status_code=error.status,
        )
    return RedirectResponse("/admin", status_code=303)


def _choice(enum: type[E], value: str, field: str) -> E:
    try:
        return enum(value)
    except ValueError:
        raise InvalidInput(
            N_("Choose a valid {field}."),
            field=field,
            errors=[{"field": field, "message": "invalid"}],
        ) from None


@router.get("/audit", response_class=HTMLResponse)
def audit_log(
    request: Request, principal: AdminFace, session: SessionDep, before: numbers.RowId | None = None
) -> Response:
    records = audit.list_records(session, before_seq=before, limit=AUDIT_PAGE_SIZE)
    report = audit.verify_chain(session) if before is None else None
    return render(
        request,
        "admin/audit.html",
        {
            "records": records,
            "report": report,
            "next_before": records[-1].seq if len(records) == AUDIT_PAGE_SIZE else None,
        },
        principal=principal,
    )
