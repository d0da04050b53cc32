"""Test data through the public service functions (no hand-made rows)."""

from __future__ import annotations

import itertools
import subprocess
import sys

from fastapi.testclient import TestClient
from sqlmodel import Session

from tanhui import identity
from tanhui.models import Organisation, OrgKind, Role, User

PASSWORD = "correct horse battery"
_counter = itertools.count(1)


def organisation(
    session: Session, kind: OrgKind = OrgKind.cooperative, name: str = ""
) -> Organisation:
    return identity.create_organisation(
        session, name=name or f"{kind.value} {next(_counter)}", kind=kind
    )


def user(
    session: Session,
    *,
    kind: OrgKind | None = OrgKind.cooperative,
    role: Role = Role.owner,
    org: Organisation | None = None,
    admin: bool = False,
    email: str = "",
    password: str = PASSWORD,
) -> User:
    if admin:
        org = None
    elif org is None and kind is not None:
        org = organisation(session, kind)
    return identity.create_user(
        session,
        email=email or f"user{next(_counter)}@example.cn",
        password=password,
        organisation=org,
        role=role if org else None,
        is_platform_admin=admin,
    )


def login(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Sign in through the JSON API; returns the CSRF token for later writes."""
    response = client.post("/api/v1/auth/session", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


def token_for(session: Session, account: User) -> str:
    return identity.create_api_token(session, user=account, name="test").token


def cli_env(settings: object) -> dict[str, str]:
    """Environment for running ``tanhui`` in a subprocess against the test database."""
    import os

    from tanhui.settings import Settings

    assert isinstance(settings, Settings)
    env = dict(os.environ)
    env.update(
        {
            "TANHUI_ENV": "test",
            "TANHUI_DATABASE_URL": settings.database_url,
            "TANHUI_SECRET_KEY": settings.secret_key_value,
            "TANHUI_DATA_KEY": settings.data_key.get_secret_value() if settings.data_key else "",
            "TANHUI_SIGNING_KEY_FILE": str(settings.signing_key_path),
            "TANHUI_STATE_DIR": str(settings.state_dir),
        }
    )
    return env


def run_cli(settings: object, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tanhui.cli", *args],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
