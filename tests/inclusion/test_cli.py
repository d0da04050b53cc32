"""The commands partners' integrators and operators script against: exact output formats."""

from __future__ import annotations

import re
import uuid

from fastapi.testclient import TestClient
from sqlmodel import Session

from tanhui.settings import Settings
from tests.factories import run_cli
from tests.inclusion import helpers


def test_partner_and_resident_commands_then_a_signed_post(
    settings: Settings, session: Session, client: TestClient
) -> None:
    session.rollback()
    created = run_cli(
        settings, "partners", "create", "--name", "湖州公交集团（CLI）", "--scenarios", "bus,metro"
    )
    assert created.returncode == 0, created.stderr
    line = created.stdout.strip()
    assert re.fullmatch(r"[0-9a-f-]{36} thsk_[A-Za-z0-9_-]+", line), line
    partner_id, secret = line.split(" ")
    resident = run_cli(settings, "residents", "create", "--phone", "13957500001")
    assert resident.returncode == 0, resident.stderr
    resident_id = uuid.UUID(resident.stdout.strip())
    posted = helpers.post(
        client,
        uuid.UUID(partner_id),
        secret,
        [helpers.event("13957500001", event_id="cli-1")],
    )
    assert posted.status_code == 200 and posted.json()["results"][0]["status"] == "accepted"
    listed = run_cli(settings, "partners", "list")
    assert partner_id in listed.stdout and "bus,metro" in listed.stdout
    again = run_cli(settings, "residents", "create", "--phone", "13957500001")
    assert again.returncode == 2 and "already exists" in again.stderr
    unknown = run_cli(settings, "partners", "create", "--name", "X", "--scenarios", "teleport")
    assert unknown.returncode == 2 and "teleport" in unknown.stderr
    assert resident_id.version == 7


def test_points_pool_command(settings: Settings) -> None:
    early = run_cli(settings, "points", "pool", "--month", "2999-01")
    assert early.returncode == 2 and "2999-01" in early.stderr
    bad = run_cli(settings, "points", "pool", "--month", "2026-13")
    assert bad.returncode == 2
    pooled = run_cli(settings, "points", "pool", "--month", "2026-02")
    assert pooled.returncode == 0, pooled.stderr
    expected = "pooled 2026-02: 0 residents, 0 g + 0 g carried in = 0 t + 0 g carried over"
    assert expected in pooled.stdout
    methodologies = run_cli(settings, "points", "methodologies")
    assert "metro\t-\t2.0\tpassenger_km\t78.4\t2026-07-01\t-\t" in methodologies.stdout
