"""The public projects collection is computed once per version of the data, never served stale."""

from __future__ import annotations

from sqlmodel import Session

from registry.models import ProjectStatus, RetirementPurpose
from registry.service import issuance, public, retirements
from tests.registry import helpers


def _retired(collection: dict[str, object], code: str) -> int:
    features = collection["features"]
    assert isinstance(features, list)
    return int(next(f for f in features if f["id"] == code)["properties"]["retired_t"])


def test_public_projects_are_reused_until_a_change_and_show_it_at_once(session: Session) -> None:
    roles = helpers.Roles.make(session)
    project = helpers.project(session, roles, status=ProjectStatus.issued)
    batch = issuance.batches_of_project(session, project.id)[0]
    first = public.public_projects(session)
    assert public.public_projects(session) is first  # nothing changed: computed once
    assert _retired(first, project.code) == 0
    retirements.retire(
        session,
        actor=roles.coop,
        batch_id=batch.id,
        quantity_t=50,
        beneficiary="湖州绿能",
        purpose=RetirementPurpose.annual_neutrality,
    )
    after = public.public_projects(session)
    assert after is not first
    assert _retired(after, project.code) == 50
