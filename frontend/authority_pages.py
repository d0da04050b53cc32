"""The authority console under ``/authority``: file certified periods (备案), approve issuance,
report losses (reversals: buffer credits cancelled), suspend, resume or terminate projects."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from frontend import fields, review
from frontend.access import actor_of, may_act, require_face
from frontend.forms import refusal_errors
from frontend.templating import page_locale, render
from registry.errors import RegistryNotFound
from registry.models import PeriodStatus, ProjectStatus
from registry.service import issuance, projects, reversals, suspension
from registry.service.transfers import organisation_name
from tanhui.auth import Principal, SessionDep
from tanhui.errors import DomainError
from tanhui.i18n import N_
from tanhui.models import OrgKind, Role

router = APIRouter(prefix="/authority", include_in_schema=False)

Authority = Annotated[Principal, Depends(require_face(OrgKind.authority))]
AuthorityMember = Annotated[
    Principal, Depends(require_face(OrgKind.authority, minimum=Role.member))
]


@router.get("", response_class=HTMLResponse)
def console(request: Request, principal: Authority, session: SessionDep) -> Response:
    actor = actor_of(principal)
    listed = projects.list_projects(session, actor=actor)
    return render(
        request,
        "authority/console.html",
        {
            "to_file": review.queue(
                session,
                actor,
                project_states=(ProjectStatus.certified,),
                period_states=(PeriodStatus.certified,),
            ),
            "to_issue": review.queue(
                session,
                actor,
                project_states=(ProjectStatus.filed,),
                period_states=(PeriodStatus.filed,),
            ),
            "projects": [p for p in listed if p.status != ProjectStatus.draft],
            "cooperatives": {
                p.cooperative_id: organisation_name(session, f"org:{p.cooperative_id}")
                for p in listed
            },
        },
        principal=principal,
    )


def _period_page(
    request: Request,
    principal: Principal,
    session: Session,
    period_id: uuid.UUID,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "authority/period.html",
        {
            "review": review.period_review(
                session, actor_of(principal), period_id, page_locale(request, principal)
            ),
            "errors": errors or {},
            "may_act": may_act(principal),
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/periods/{period_id}", response_class=HTMLResponse)
def period_page(
    request: Request, period_id: uuid.UUID, principal: Authority, session: SessionDep
) -> Response:
    return _period_page(request, principal, session, period_id)


@router.post("/periods/{period_id}/file", response_class=HTMLResponse)
def file_period(
    request: Request, period_id: uuid.UUID, principal: AuthorityMember, session: SessionDep
) -> Response:
    try:
        projects.file_period(session, actor=actor_of(principal), period_id=period_id)
    except RegistryNotFound:
        raise
    except DomainError as error:
        return _period_page(
            request,
            principal,
            session,
            period_id,
            errors={"file": refusal_errors(session, request, principal, error)["_form"]},
            status_code=error.status,
        )
    return RedirectResponse(f"/authority/periods/{period_id}", status_code=303)


@router.post("/periods/{period_id}/issue", response_class=HTMLResponse)
def issue(
    request: Request,
    period_id: uuid.UUID,
    principal: AuthorityMember,
    session: SessionDep,
    quantity_t: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    try:
        issuance.issue(
            session,
            actor=actor_of(principal),
            period_id=period_id,
            quantity_t=fields.whole(quantity_t, "quantity_t", minimum=1)
            if quantity_t.strip()
            else None,
        )
    except RegistryNotFound:
        raise
    except DomainError as error:
        errors = refusal_errors(session, request, principal, error)
        if "_form" in errors:
            errors = {"quantity_t": errors["_form"]}
        return _period_page(
            request, principal, session, period_id, errors=errors, status_code=error.status
        )
    return RedirectResponse(f"/authority/periods/{period_id}", status_code=303)


# --- projects: losses, suspension, termination ---------------------------------------------


def _project_page(
    request: Request,
    principal: Principal,
    session: Session,
    project_id: uuid.UUID,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    actor = actor_of(principal)
    project = projects.get_project(session, actor=actor, project_id=project_id)
    return render(
        request,
        "authority/project.html",
        {
            "project": project,
            "cooperative": organisation_name(session, f"org:{project.cooperative_id}"),
            "periods": projects.periods(session, project.id),
            "batches": issuance.batches_of_project(session, project.id),
            "reversals": reversals.reversals_of(session, project.id),
            "parcels": projects.project_parcels(session, project.id),
            "errors": errors or {},
            "form": form or {},
            "may_act": may_act(principal),
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/projects/{project_id}", response_class=HTMLResponse)
def project_page(
    request: Request, project_id: uuid.UUID, principal: Authority, session: SessionDep
) -> Response:
    return _project_page(request, principal, session, project_id)


@router.post("/reversals/{reversal_id}/{decision}", response_class=HTMLResponse)
def decide_reversal(
    request: Request,
    reversal_id: uuid.UUID,
    decision: str,
    principal: AuthorityMember,
    session: SessionDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Confirm a proposed loss (the project's buffer is cancelled, any excess owed) or reject
    it; the cooperative or a verifier proposed it (ADR 0092)."""
    actor = actor_of(principal)
    reversal = reversals.get_reversal(session, actor=actor, reversal_id=reversal_id)
    project_id = reversal.project_id
    try:
        if decision == "confirm":
            reversals.confirm_reversal(session, actor=actor, reversal_id=reversal_id)
        elif decision == "reject":
            reversals.reject_reversal(session, actor=actor, reversal_id=reversal_id, reason=reason)
        else:
            raise RegistryNotFound(N_("No {what} {id}."), what="action", id=decision[:20])
    except RegistryNotFound:
        raise
    except DomainError as error:
        return _project_page(
            request,
            principal,
            session,
            project_id,
            errors=refusal_errors(session, request, principal, error),
            status_code=error.status,
        )
    return RedirectResponse(f"/authority/projects/{project_id}", status_code=303)


CREDITS_DECISIONS = {"cancel_credits": "cancelled", "reinstate_credits": "reinstated"}


@router.post("/projects/{project_id}/{action}", response_class=HTMLResponse)
def change_status(
    request: Request,
    project_id: uuid.UUID,
    action: str,
    principal: AuthorityMember,
    session: SessionDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    actor = actor_of(principal)
    try:
        if action == "suspend":
            projects.suspend(session, actor=actor, project_id=project_id, reason=reason)
        elif action == "resume":
            projects.resume(session, actor=actor, project_id=project_id, reason=reason)
        elif action == "terminate":
            projects.terminate(session, actor=actor, project_id=project_id, reason=reason)
        elif action in CREDITS_DECISIONS:
            suspension.decide(
                session,
                actor=actor,
                project_id=project_id,
                decision=CREDITS_DECISIONS[action],
                reason=reason,
            )
        else:
            raise RegistryNotFound(N_("No {what} {id}."), what="action", id=action[:20])
    except RegistryNotFound:
        raise
    except DomainError as error:
        errors = refusal_errors(session, request, principal, error)
        return _project_page(
            request,
            principal,
            session,
            project_id,
            errors={f"{action}_reason": errors.get("reason", errors.get("_form", ""))},
            form={f"{action}_reason": reason},
            status_code=error.status,
        )
    return RedirectResponse(f"/authority/projects/{project_id}", status_code=303)
