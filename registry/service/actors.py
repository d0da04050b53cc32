"""Who acts on the registry, and the role checks every use case makes.

Services check roles themselves (not only the routes), so the CLI, jobs and the demo obey the
same rules as the HTTP API. Objects of another organisation answer 404, as everywhere.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlmodel import Session

from registry.errors import RegistryNotFound, RoleRefused
from tanhui.i18n import N_
from tanhui.models import ROLE_RANK, Organisation, OrgKind, Role, User


@dataclass(frozen=True)
class Actor:
    """The caller: ``ref`` goes into audit records (``user:<id>``, ``system:<job>``)."""

    ref: str
    organisation_id: uuid.UUID | None = None
    org_kind: OrgKind | None = None
    role: Role | None = None
    is_platform_admin: bool = False

    @classmethod
    def system(cls, name: str) -> Actor:
        """A job or CLI command run by an operator: acts with platform-admin rights."""
        return cls(ref=f"system:{name}", is_platform_admin=True)

    @classmethod
    def for_user(cls, user: User, organisation: Organisation | None) -> Actor:
        return cls(
            ref=f"user:{user.id}",
            organisation_id=organisation.id if organisation else None,
            org_kind=organisation.kind if organisation else None,
            role=user.role if organisation else None,
            is_platform_admin=user.is_platform_admin,
        )

    @property
    def owner(self) -> str:
        """The wallet owner this actor holds credits as."""
        if self.organisation_id is None:
            raise RoleRefused(N_("This needs an organisation account."))
        return f"org:{self.organisation_id}"


def actor_for_user(session: Session, user: User) -> Actor:
    organisation = session.get(Organisation, user.organisation_id) if user.organisation_id else None
    return Actor.for_user(user, organisation)


def require(
    actor: Actor,
    *kinds: OrgKind,
    minimum: Role = Role.member,
    admin: bool = True,
    action: str = "",
) -> None:
    """The actor belongs to an organisation of one of ``kinds`` with at least ``minimum``.

    Platform administrators (and system jobs) pass when ``admin`` is true.
    """
    if admin and actor.is_platform_admin:
        return
    if (
        actor.org_kind is None
        or actor.org_kind not in kinds
        or actor.role is None
        or ROLE_RANK[actor.role] < ROLE_RANK[minimum]
    ):
        raise RoleRefused(
            N_("{action} needs the role {role} in an organisation of kind {kinds}."),
            action=action or "this",
            role=minimum.value,
            kinds=", ".join(kind.value for kind in kinds),
        )


def ensure_own(actor: Actor, owner_id: uuid.UUID | None, *, what: str, object_id: object) -> None:
    """Objects of another organisation answer 404 (platform administrators see everything)."""
    if actor.is_platform_admin:
        return
    if owner_id is None or actor.organisation_id != owner_id:
        raise RegistryNotFound(N_("No {what} {id}."), what=what, id=str(object_id))


def owner_org_id(owner: str) -> uuid.UUID | None:
    """``org:<uuid>`` → the uuid; None for households and system accounts."""
    kind, _, value = owner.partition(":")
    if kind != "org":
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
