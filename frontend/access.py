"""Who may open an organisation's face: a signed-in user of the right kind of organisation.

Anonymous visitors are sent to the sign-in page (303, back here afterwards); a signed-in user of
another kind of organisation, or with too low a role, gets 403. Objects of another organisation
answer 404 inside the services (``registry.service.actors.ensure_own``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from starlette.exceptions import HTTPException as StarletteHTTPException

from registry.service.actors import Actor
from tanhui.auth import MissingPermission, OptionalPrincipal, Principal
from tanhui.i18n import N_
from tanhui.models import ROLE_RANK, OrgKind, Role


def sign_in_redirect(request: Request) -> StarletteHTTPException:
    """A 303 to ``/login?next=<this page>`` (GET pages come back where they were)."""
    target = request.url.path
    if request.method == "GET" and request.url.query:
        target += "?" + request.url.query
    location = "/login?next=" + quote(target, safe="/")
    return StarletteHTTPException(status_code=303, headers={"Location": location})


def require_face(*kinds: OrgKind, minimum: Role = Role.viewer) -> Callable[..., Principal]:
    """A dependency: the caller belongs to an organisation of one of ``kinds`` with ``minimum``."""

    def dependency(request: Request, principal: OptionalPrincipal) -> Principal:
        if principal is None:
            raise sign_in_redirect(request)
        organisation = principal.organisation
        if principal.user is None or organisation is None or organisation.kind not in kinds:
            raise MissingPermission(
                N_("This is for organisations of kind {kinds}."),
                kinds=", ".join(kind.value for kind in kinds),
            )
        require_role(principal, minimum)
        return principal

    return dependency


def require_role(principal: Principal, minimum: Role) -> None:
    """Refuse (403) a user whose role in their organisation is below ``minimum``."""
    if not may_act(principal, minimum):
        raise MissingPermission(
            N_("This needs the role {role} or higher in your organisation."), role=minimum.value
        )


def require_admin_face(request: Request, principal: OptionalPrincipal) -> Principal:
    """Platform administration pages: anonymous visitors are sent to sign in first."""
    if principal is None:
        raise sign_in_redirect(request)
    if not principal.is_platform_admin:
        raise MissingPermission(N_("Only platform administrators may do this."))
    return principal


def require_resident_face(request: Request, principal: OptionalPrincipal) -> Principal:
    """Residents' app pages: anyone not signed in as a resident goes to the app's sign-in."""
    if principal is None or principal.resident is None:
        raise StarletteHTTPException(status_code=303, headers={"Location": "/app"})
    return principal


AdminFace = Annotated[Principal, Depends(require_admin_face)]
ResidentFace = Annotated[Principal, Depends(require_resident_face)]


def actor_of(principal: Principal) -> Actor:
    assert principal.user is not None
    return Actor.for_user(principal.user, principal.organisation)


def may_act(principal: Principal, minimum: Role = Role.member) -> bool:
    """Whether the page should offer forms that change things (viewers only read)."""
    role = principal.user.role if principal.user else None
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[minimum]
