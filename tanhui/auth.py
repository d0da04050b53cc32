"""Who is calling, and may they: FastAPI dependencies for sessions, principals and permissions.

Two ways in:
- browsers: a signed, HttpOnly, SameSite=Lax cookie carrying a random session key (the database
  keeps its hash, so logout really ends it). A state-changing request that carries the cookie must
  also carry the session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``);
- machines: ``Authorization: Bearer thk_...`` API tokens, scoped to the user's organisation.

Permission checks are dependencies (``require_role``, ``require_org_kind`` ...) declared on routes.
Objects of another organisation answer 404 (see :func:`ensure_same_organisation`).
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from tanhui import identity
from tanhui.db import finish_failed, utcnow
from tanhui.errors import Forbidden, NotFound, Unauthorized
from tanhui.i18n import N_
from tanhui.models import (
    ROLE_RANK,
    ApiToken,
    Organisation,
    OrgKind,
    Resident,
    Role,
    User,
    WebSession,
)
from tanhui.settings import get_settings

SESSION_COOKIE = "tanhui_session"
ANON_CSRF_COOKIE = "tanhui_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class CsrfRejected(Forbidden):
    code = "auth/csrf"
    title = N_("The form has expired; reload the page and try again")


class NotSignedIn(Unauthorized):
    code = "auth/not-signed-in"
    title = N_("Please sign in")


class TokenRejected(Unauthorized):
    code = "auth/invalid-token"
    title = N_("The API token is unknown or revoked")


class MissingPermission(Forbidden):
    code = "auth/forbidden"
    title = N_("Your role does not allow this")


# --- database session per request ----------------------------------------------------------


# "Last used" is kept to within five minutes: writing it on every request made every API call a
# write and serialised concurrent requests of one token on its row until they committed.
TOKEN_TOUCH_INTERVAL = timedelta(minutes=5)


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request, committed before the response is sent (see SessionDep)."""
    with Session(get_engine(request), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException as error:
            finish_failed(session, error)
            raise


# scope="function": the commit happens before the response goes out, so a client that got a
# success answer knows the change is durable.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


# --- cookies -------------------------------------------------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().secret_key_value, salt="tanhui.session")


def set_session_cookie(response: Response, key: str) -> None:
    settings = get_settings()
    response.set_cookie(
        SESSION_COOKIE,
        _serializer().dumps(key),
        max_age=settings.session_max_age_s,
        httponly=True,
        samesite="lax",
        secure=settings.base_url.startswith("https://"),
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")


def session_key_from_cookie(request: Request) -> str | None:
    """The session key in a valid cookie; None for no, expired or forged cookies."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        key = _serializer().loads(raw, max_age=get_settings().session_max_age_s)
    except BadSignature:
        return None
    return key if isinstance(key, str) else None


# --- principals ----------------------------------------------------------------------------


@dataclass
class Principal:
    """The authenticated caller: a user (with organisation and role) or a resident."""

    user: User | None = None
    resident: Resident | None = None
    organisation: Organisation | None = None
    web_session: WebSession | None = None
    token: ApiToken | None = None

    @property
    def actor(self) -> str:
        if self.user is not None:
            return f"user:{self.user.id}"
        if self.resident is not None:
            return f"resident:{self.resident.id}"
        return "anonymous"

    @property
    def role(self) -> Role | None:
        return self.user.role if self.user is not None else None

    @property
    def is_platform_admin(self) -> bool:
        return self.user is not None and self.user.is_platform_admin

    @property
    def organisation_id(self) -> uuid.UUID | None:
        return self.organisation.id if self.organisation else None

    @property
    def csrf_token(self) -> str | None:
        return self.web_session.csrf_token if self.web_session else None


async def submitted_csrf_token(request: Request) -> str | None:
    """The CSRF token a state-changing request carries, from the header or the form."""
    if request.method in SAFE_METHODS:
        return None
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(FORM_CONTENT_TYPES):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


def _principal_for_user(
    session: Session, user_id: uuid.UUID | None
) -> tuple[User, Organisation | None] | None:
    """The active user and their organisation, in one query."""
    if user_id is None:
        return None
    found = session.exec(
        select(User, Organisation)
        .outerjoin(Organisation, col(Organisation.id) == col(User.organisation_id))
        .where(col(User.id) == user_id)
    ).one_or_none()
    if found is None or not found[0].is_active:
        return None
    return found[0], found[1]


def authenticated_principal(request: Request, session: SessionDep) -> Principal | None:
    """The caller if authenticated, None for anonymous; a bad bearer token is an error. The
    CSRF token of a browser session is checked after this (:func:`optional_principal`), so
    that nobody's form body is parsed before we know who sent it."""
    authorization = request.headers.get("authorization", "")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TokenRejected()
        live = identity.find_api_token(session, token.strip())
        if live is None:
            raise TokenRejected()
        record, user, organisation = live
        # A token acts for the organisation it was made in: never for another one its user
        # belongs to later; and never for a deactivated user.
        if not user.is_active or record.organisation_id != user.organisation_id:
            raise TokenRejected()
        moment = utcnow()
        if record.last_used_at is None or moment - record.last_used_at >= TOKEN_TOUCH_INTERVAL:
            record.last_used_at = moment
            session.add(record)
        return Principal(user=user, organisation=organisation, token=record)
    key = session_key_from_cookie(request)
    if key is None:
        return None
    web_session = identity.find_web_session(session, key)
    if web_session is None:
        return None
    if web_session.resident_id is not None:
        resident = session.get(Resident, web_session.resident_id)
        if resident is None:
            return None
        return Principal(resident=resident, web_session=web_session)
    found = _principal_for_user(session, web_session.user_id)
    if found is None:
        return None
    return Principal(user=found[0], organisation=found[1], web_session=web_session)


async def optional_principal(
    request: Request,
    principal: Annotated[Principal | None, Depends(authenticated_principal)],
) -> Principal | None:
    """The authenticated caller, whose browser session's writes carry its CSRF token (read
    from the header or, only now that the session is known, from the form)."""
    if principal is None or principal.web_session is None or request.method in SAFE_METHODS:
        return principal
    csrf = await submitted_csrf_token(request)
    if not (csrf and hmac.compare_digest(csrf, principal.web_session.csrf_token)):
        raise CsrfRejected()
    return principal


OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]


def require_principal(principal: OptionalPrincipal) -> Principal:
    if principal is None:
        raise NotSignedIn()
    return principal


def require_user(principal: Annotated[Principal, Depends(require_principal)]) -> Principal:
    if principal.user is None:
        raise MissingPermission(N_("This needs an organisation or platform account."))
    return principal


def require_resident(principal: Annotated[Principal, Depends(require_principal)]) -> Principal:
    if principal.resident is None:
        raise MissingPermission(N_("This is for residents signed in with their phone."))
    return principal


def require_platform_admin(principal: Annotated[Principal, Depends(require_user)]) -> Principal:
    if not principal.is_platform_admin:
        raise MissingPermission(N_("Only platform administrators may do this."))
    return principal


def require_role(minimum: Role) -> Callable[[Principal], Principal]:
    """A user whose role in their organisation is at least ``minimum`` (owner > member > viewer)."""

    def dependency(principal: Annotated[Principal, Depends(require_user)]) -> Principal:
        role = principal.role
        if principal.organisation is None or role is None or ROLE_RANK[role] < ROLE_RANK[minimum]:
            raise MissingPermission(
                N_("This needs the role {role} or higher in your organisation."),
                role=minimum.value,
            )
        return principal

    return dependency


def require_org_kind(*kinds: OrgKind, minimum: Role = Role.viewer) -> Callable[..., Principal]:
    """A user of an organisation of one of ``kinds``, with at least role ``minimum``."""
    check_role = require_role(minimum)

    def dependency(principal: Annotated[Principal, Depends(require_user)]) -> Principal:
        check_role(principal)
        assert principal.organisation is not None  # checked by require_role
        if principal.organisation.kind not in kinds:
            raise MissingPermission(
                N_("This is for organisations of kind {kinds}."),
                kinds=", ".join(kind.value for kind in kinds),
            )
        return principal

    return dependency


def ensure_same_organisation(
    principal: Principal, owner_id: uuid.UUID | None, *, what: str, object_id: object
) -> None:
    """Hide objects of other organisations: they answer 404, as if they did not exist."""
    if principal.is_platform_admin:
        return
    if owner_id is None or principal.organisation_id != owner_id:
        raise NotFound(N_("No {what} {id}."), what=what, id=str(object_id))


CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
CurrentUser = Annotated[Principal, Depends(require_user)]
CurrentResident = Annotated[Principal, Depends(require_resident)]
PlatformAdmin = Annotated[Principal, Depends(require_platform_admin)]
