"""Kernel routes: sign-in and sign-out, the caller, API tokens, platform administration."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Request, Response, status
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.utils import create_model_field
from sqlmodel import Session

from tanhui import idempotency, identity
from tanhui.auth import (
    CurrentPrincipal,
    CurrentUser,
    OptionalPrincipal,
    PlatformAdmin,
    SessionDep,
    clear_session_cookie,
    set_session_cookie,
)
from tanhui.errors import InvalidInput, NotFound
from tanhui.i18n import N_
from tanhui.models import Organisation, User
from tanhui.schemas import (
    MePublic,
    OrganisationCreate,
    OrganisationPublic,
    PasswordLogin,
    PhoneCodeLogin,
    PhoneCodeRequest,
    Problem,
    SessionStarted,
    TokenCreate,
    TokenCreated,
    TokenPublic,
    UserCreate,
    UserPublic,
)


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries declaring problem+json answers for ``codes``."""
    return {code: {"model": Problem, "content": {"application/problem+json": {}}} for code in codes}


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="client key: a retry with the same key and body returns the first answer",
    ),
]


def run_idempotent(
    session: Session,
    *,
    scope: str,
    key: str | None,
    payload: Any,
    work: Callable[[], Any],
    status_code: int = status.HTTP_201_CREATED,
) -> JSONResponse:
    """Answer ``work()`` (a JSON-ready body), once per ``Idempotency-Key`` within ``scope``:
    a retry with the same key and payload gets the first answer, with another payload a 409."""
    if not key:
        return JSONResponse(work(), status_code=status_code)
    claimed = idempotency.claim(session, scope=scope, key=key, payload=payload)
    if isinstance(claimed, idempotency.Replay):
        return JSONResponse(claimed.body, status_code=claimed.status_code)
    body = work()
    idempotency.remember(session, claimed, status_code=status_code, body=body)
    return JSONResponse(body, status_code=status_code)


# What the permission dependencies answer, whatever the route: a bad bearer token is 401 and a
# cookie write without its CSRF token 403 (optional_principal); nobody signed in is 401
# (require_principal); the wrong kind of caller is 403 (the require_* checks).
_OPTIONAL = {"optional_principal"}
_SIGNED_IN = {"require_principal"}
_REFUSING = {"require_user", "require_resident", "require_platform_admin"}
_REFUSING_FACTORIES = ("require_role.", "require_org_kind.")


def _auth_statuses(dependant: Dependant, methods: set[str]) -> set[int]:
    statuses: set[int] = set()
    for sub in dependant.dependencies:
        name = getattr(sub.call, "__qualname__", "")
        if name in _OPTIONAL:
            statuses.add(401)
            if methods - {"GET", "HEAD", "OPTIONS"}:
                statuses.add(403)
        elif name in _SIGNED_IN:
            statuses.add(401)
        elif name in _REFUSING or name.startswith(_REFUSING_FACTORIES):
            statuses.update((401, 403))
        statuses |= _auth_statuses(sub, methods)
    return statuses


def document_auth_problems(app: FastAPI) -> None:
    """Declare on every API route the problem statuses its permission dependencies answer with,
    so that the OpenAPI document lists every status a client can get (routes declare the rest)."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        # an included route's context holds its own copy of the responses: the document is
        # built from the context's (reached through it), the original keeps the route's own
        responses: dict[int | str, Any] = context.responses
        fields: dict[int | str, Any] = context.response_fields
        for code in sorted(_auth_statuses(route.dependant, route.methods or set())):
            if code in responses or str(code) in responses:
                continue
            responses[code] = problems(code)[code]
            fields[code] = create_model_field(
                name=f"Response_{code}_{route.unique_id}", type_=Problem, mode="serialization"
            )


router = APIRouter(tags=["identity"])


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post(
    "/auth/session",
    response_model=SessionStarted,
    responses=problems(401, 422, 429),
    summary="Sign in with email and password (sets the session cookie)",
)
def login(body: PasswordLogin, request: Request, response: Response, session: SessionDep) -> Any:
    user = identity.authenticate(
        session, email=body.email, password=body.password, ip=client_ip(request)
    )
    started = identity.start_web_session(session, user=user)
    set_session_cookie(response, started.key)
    return SessionStarted(id=user.id, kind="user", csrf_token=started.record.csrf_token)


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(403),
    summary="End the browser session",
)
def logout(principal: OptionalPrincipal, session: SessionDep, response: Response) -> None:
    if principal is not None and principal.web_session is not None:
        identity.end_web_session(session, principal.web_session)
    clear_session_cookie(response)


@router.post(
    "/auth/residents/code",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(422, 429, 503),
    summary="Send a one-time sign-in code to a resident's phone",
)
def request_resident_code(
    body: PhoneCodeRequest, request: Request, session: SessionDep
) -> dict[str, str]:
    identity.request_login_code(session, phone=body.phone, ip=client_ip(request))
    return {"status": "sent"}


@router.post(
    "/auth/residents/session",
    response_model=SessionStarted,
    responses=problems(401, 422, 429),
    summary="Sign a resident in with phone and one-time code (sets the session cookie)",
)
def resident_login(
    body: PhoneCodeLogin, request: Request, response: Response, session: SessionDep
) -> Any:
    resident = identity.verify_login_code(
        session, phone=body.phone, code=body.code, ip=client_ip(request)
    )
    started = identity.start_web_session(session, resident=resident)
    set_session_cookie(response, started.key)
    return SessionStarted(id=resident.id, kind="resident", csrf_token=started.record.csrf_token)


@router.get("/me", response_model=MePublic, responses=problems(401), summary="The caller")
def me(principal: CurrentPrincipal) -> Any:
    if principal.resident is not None:
        return MePublic(
            kind="resident",
            id=principal.resident.id,
            email=None,
            display_name=principal.resident.display_name,
            organisation=None,
            role=None,
            is_platform_admin=False,
            csrf_token=principal.csrf_token,
        )
    assert principal.user is not None
    organisation = principal.organisation
    return MePublic(
        kind="user",
        id=principal.user.id,
        email=principal.user.email,
        display_name=principal.user.display_name,
        organisation=(
            OrganisationPublic(id=organisation.id, name=organisation.name, kind=organisation.kind)
            if organisation
            else None
        ),
        role=principal.role,
        is_platform_admin=principal.is_platform_admin,
        csrf_token=principal.csrf_token,
    )


@router.post(
    "/auth/tokens",
    response_model=TokenCreated,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 422),
    summary="Create an API token for the caller (the token is shown only in this answer)",
)
def create_token(body: TokenCreate, principal: CurrentUser, session: SessionDep) -> Any:
    assert principal.user is not None
    created = identity.create_api_token(session, user=principal.user, name=body.name)
    return TokenCreated(
        id=created.record.id,
        name=created.record.name,
        token=created.token,
        prefix=created.record.prefix,
        created_at=created.record.created_at,
    )


@router.get(
    "/auth/tokens",
    response_model=list[TokenPublic],
    responses=problems(401, 403),
    summary="The caller's API tokens (without their secrets)",
)
def list_tokens(principal: CurrentUser, session: SessionDep) -> Any:
    assert principal.user is not None
    return [
        TokenPublic.model_validate(token, from_attributes=True)
        for token in identity.list_api_tokens(session, user=principal.user)
    ]


@router.delete(
    "/auth/tokens/{token_id}",
    response_model=TokenPublic,
    responses=problems(401, 403, 404),
    summary="Revoke an API token",
)
def revoke_token(token_id: uuid.UUID, principal: CurrentUser, session: SessionDep) -> Any:
    assert principal.user is not None
    record = identity.revoke_api_token(session, user=principal.user, token_id=token_id)
    return TokenPublic.model_validate(record, from_attributes=True)


admin_router = APIRouter(prefix="/admin", tags=["admin"])


@admin_router.get(
    "/organisations",
    response_model=list[OrganisationPublic],
    responses=problems(401, 403),
    summary="All organisations",
)
def list_organisations(_admin: PlatformAdmin, session: SessionDep) -> Any:
    return [
        OrganisationPublic(id=row.id, name=row.name, kind=row.kind)
        for row in identity.list_organisations(session)
    ]


@admin_router.post(
    "/organisations",
    response_model=OrganisationPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 409, 422),
    summary="Register an organisation",
)
def create_organisation(body: OrganisationCreate, admin: PlatformAdmin, session: SessionDep) -> Any:
    organisation = identity.create_organisation(
        session, name=body.name, kind=body.kind, actor=admin.actor
    )
    return OrganisationPublic(id=organisation.id, name=organisation.name, kind=organisation.kind)


@admin_router.post(
    "/users",
    response_model=UserPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 409, 422),
    summary="Create a user in an organisation, or a platform admin",
)
def create_user(body: UserCreate, admin: PlatformAdmin, session: SessionDep) -> Any:
    organisation = None
    if body.organisation_id is not None:
        organisation = session.get(Organisation, body.organisation_id)
        if organisation is None:
            raise NotFound(N_("No organisation {id}."), id=str(body.organisation_id))
    elif not body.is_platform_admin:
        raise InvalidInput(
            N_("A user belongs to an organisation or is a platform admin."),
            errors=[{"field": "organisation_id", "message": "required"}],
        )
    user: User = identity.create_user(
        session,
        email=body.email,
        password=body.password,
        organisation=organisation,
        role=body.role,
        is_platform_admin=body.is_platform_admin,
        display_name=body.display_name,
        actor=admin.actor,
    )
    return UserPublic.model_validate(user, from_attributes=True)
