"""The verifier console under ``/verifier``: the queue of submitted reports, the review of one
(map, parameters, uncertainty), certification (an Ed25519 signature over the report's hash) or
return to the cooperative with comments."""

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
from registry.service import projects
from tanhui.auth import Principal, SessionDep
from tanhui.errors import DomainError
from tanhui.models import OrgKind, Role

router = APIRouter(prefix="/verifier", include_in_schema=False)

Verifier = Annotated[Principal, Depends(require_face(OrgKind.verifier))]
VerifierMember = Annotated[Principal, Depends(require_face(OrgKind.verifier, minimum=Role.member))]
RETURN_TARGETS = (ProjectStatus.collected, ProjectStatus.draft)


@router.get("", response_class=HTMLResponse)
def queue_page(request: Request, principal: Verifier, session: SessionDep) -> Response:
    actor = actor_of(principal)
    return render(
        request,
        "verifier/queue.html",
        {
            "waiting": review.queue(
                session,
                actor,
                project_states=(ProjectStatus.submitted,),
                period_states=(PeriodStatus.submitted,),
            ),
            "certified": [
                item
                for item in review.queue(
                    session,
                    actor,
                    project_states=tuple(ProjectStatus),
                    period_states=(PeriodStatus.certified, PeriodStatus.filed, PeriodStatus.issued),
                )
                if item.period.verifier_id == actor.organisation_id
            ],
        },
        principal=principal,
    )


def _review_page(
    request: Request,
    principal: Principal,
    session: Session,
    period_id: uuid.UUID,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    actor = actor_of(principal)
    return render(
        request,
        "verifier/review.html",
        {
            "review": review.period_review(
                session, actor, period_id, page_locale(request, principal)
            ),
            "own_key": review.signs_with_own_key(session, actor.organisation_id),
            "errors": errors or {},
            "form": form or {"to": "collected"},
            "may_act": may_act(principal),
            "return_targets": [state.value for state in RETURN_TARGETS],
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/periods/{period_id}", response_class=HTMLResponse)
def review_page(
    request: Request, period_id: uuid.UUID, principal: Verifier, session: SessionDep
) -> Response:
    return _review_page(request, principal, session, period_id)


@router.post("/periods/{period_id}/certify", response_class=HTMLResponse)
def certify(
    request: Request,
    period_id: uuid.UUID,
    principal: VerifierMember,
    session: SessionDep,
    signature: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        projects.certify(
            session,
            actor=actor_of(principal),
            period_id=period_id,
            signature=signature.strip() or None,
        )
    except RegistryNotFound:
        raise
    except DomainError as error:
        errors = refusal_errors(session, request, principal, error)
        if error.code == "registry/invalid-signature":
            errors = {"signature": errors.get("_form", "")}
        return _review_page(
            request, principal, session, period_id, errors=errors, status_code=error.status
        )
    return RedirectResponse(f"/verifier/periods/{period_id}", status_code=303)


@router.post("/periods/{period_id}/return", response_class=HTMLResponse)
def return_period(
    request: Request,
    period_id: uuid.UUID,
    principal: VerifierMember,
    session: SessionDep,
    comments: Annotated[str, Form(max_length=4000)] = "",
    to: Annotated[str, Form(max_length=16)] = "collected",
) -> Response:
    try:
        projects.return_period(
            session,
            actor=actor_of(principal),
            period_id=period_id,
            comments=comments,
            to=fields.choice(ProjectStatus, to, "to"),
        )
    except RegistryNotFound:
        raise
    except DomainError as error:
        return _review_page(
            request,
            principal,
            session,
            period_id,
            errors=refusal_errors(session, request, principal, error),
            form={"comments": comments, "to": to},
            status_code=error.status,
        )
    return RedirectResponse("/verifier", status_code=303)
