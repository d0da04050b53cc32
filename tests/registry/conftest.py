"""Registry fixtures: the people of a carbon-sink project, with API tokens.

Creating a user hashes a password with argon2 (about a quarter of a second), so tests that need
signed-in callers ask for the ``people`` they need once and reuse them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlmodel import Session

from registry.service.actors import Actor
from tanhui.models import OrgKind, Role, User
from tests import factories
from tests.registry.helpers import Roles


@dataclass
class Person:
    user: User
    actor: Actor
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Accept-Language": "en"}


def person(
    session: Session, kind: OrgKind | None, role: Role = Role.member, org: object = None
) -> Person:
    if kind is None:
        user = factories.user(session, admin=True)
        actor = Actor(ref=f"user:{user.id}", is_platform_admin=True)
    else:
        user = factories.user(session, kind=kind, role=role, org=org)  # type: ignore[arg-type]
        actor = Actor(
            ref=f"user:{user.id}", organisation_id=user.organisation_id, org_kind=kind, role=role
        )
    return Person(user=user, actor=actor, token=factories.token_for(session, user))


@dataclass
class People:
    coop: Person
    coop_viewer: Person
    other_coop: Person
    verifier: Person
    authority: Person
    enterprise: Person
    admin: Person

    @property
    def roles(self) -> Roles:
        return Roles(
            coop=self.coop.actor,
            verifier=self.verifier.actor,
            authority=self.authority.actor,
            enterprise=self.enterprise.actor,
        )

    def everyone(self) -> dict[str, Person]:
        return dict(self.__dict__)


@pytest.fixture
def people(session: Session) -> People:
    coop = person(session, OrgKind.cooperative)
    from tanhui.models import Organisation

    coop_org = session.get(Organisation, coop.user.organisation_id)
    made = People(
        coop=coop,
        coop_viewer=person(session, OrgKind.cooperative, Role.viewer, org=coop_org),
        other_coop=person(session, OrgKind.cooperative),
        verifier=person(session, OrgKind.verifier),
        authority=person(session, OrgKind.authority),
        enterprise=person(session, OrgKind.enterprise),
        admin=person(session, None),
    )
    session.commit()
    return made
