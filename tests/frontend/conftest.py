"""The people of the registry faces, signed in through the same session cookie browsers get.

Creating a user hashes a password (about a quarter of a second), so a test asks for ``faces``
once; ``as_`` signs the test client in as one of them and returns the CSRF token forms carry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http.cookies import SimpleCookie

import pytest
from fastapi import Response
from fastapi.testclient import TestClient
from sqlmodel import Session

from registry.service.actors import Actor
from tanhui import identity
from tanhui.auth import SESSION_COOKIE, set_session_cookie
from tanhui.models import Organisation, OrgKind, Role, User
from tests import factories
from tests.registry.helpers import Roles

HTML = {"Accept": "text/html"}


class Face:
    """An organisation of one kind and, when a test signs in as it, a user of that role.

    The organisation (cheap) is made at once, for the registry helpers' actors; the user (a
    password hash, about a quarter of a second) only when a test first signs in with it.
    """

    def __init__(
        self,
        session: Session,
        kind: OrgKind,
        role: Role = Role.owner,
        org: Organisation | None = None,
    ) -> None:
        self.session = session
        self.kind = kind
        self.role = role
        self.organisation = org or factories.organisation(session, kind)
        self.actor = Actor(
            ref=f"test:{kind.value}", organisation_id=self.organisation.id, org_kind=kind, role=role
        )
        self._user: User | None = None

    @property
    def user(self) -> User:
        if self._user is None:
            self._user = factories.user(
                self.session, kind=self.kind, role=self.role, org=self.organisation
            )
            self.session.commit()
        return self._user


@dataclass
class Faces:
    coop: Face
    coop_viewer: Face
    other_coop: Face
    verifier: Face
    authority: Face
    enterprise: Face

    @property
    def roles(self) -> Roles:
        return Roles(
            coop=self.coop.actor,
            verifier=self.verifier.actor,
            authority=self.authority.actor,
            enterprise=self.enterprise.actor,
        )


@pytest.fixture
def faces(session: Session) -> Faces:
    coop = Face(session, OrgKind.cooperative)
    made = Faces(
        coop=coop,
        coop_viewer=Face(session, OrgKind.cooperative, Role.viewer, org=coop.organisation),
        other_coop=Face(session, OrgKind.cooperative),
        verifier=Face(session, OrgKind.verifier),
        authority=Face(session, OrgKind.authority),
        enterprise=Face(session, OrgKind.enterprise),
    )
    session.commit()
    return made


def as_(client: TestClient, face: Face) -> str:
    """Sign the client in as ``face`` (replacing any earlier session); returns the CSRF token.

    The session starts as a password sign-in would start it, without checking a password hash
    again (the sign-in form itself is tested in ``test_access``).
    """
    started = identity.start_web_session(face.session, user=face.user)
    face.session.commit()  # end the test's transaction (SQLite's write lock) before the app writes
    carrier = Response()
    set_session_cookie(carrier, started.key)
    cookie: SimpleCookie = SimpleCookie(carrier.headers["set-cookie"])
    client.cookies.set(SESSION_COOKIE, cookie[SESSION_COOKIE].value)
    return started.record.csrf_token


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no form"
    return match.group(1)
