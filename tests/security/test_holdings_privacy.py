"""Issue 16, privacy of holdings: anyone could read, per serial, which organisations hold how
many tonnes and which bank holds a pledge. The public answer now says project, batch, state
(held, listed, pledged, retired with its certificate); the holder and the lender are shown only
to the organisation that holds the block."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlmodel import Session

from registry.models import Project, RetirementPurpose
from registry.service import pledges, retirements, transfers
from tanhui.models import Organisation, OrgKind, Role
from tests import factories
from tests.registry import helpers

COOP, BUYER, BANK = "隐私测试合作社", "隐私测试买方有限公司", "隐私测试农商银行"


def test_serial_lookups_name_holders_and_lenders_only_to_the_holder(
    client: TestClient, session: Session
) -> None:
    roles = helpers.Roles.make(session)
    batch = helpers.issued_batch(session, roles)
    bank = helpers.actor(session, OrgKind.enterprise)
    assert roles.enterprise.organisation_id and roles.coop.organisation_id and bank.organisation_id
    for organisation_id, name in (
        (roles.coop.organisation_id, COOP),
        (roles.enterprise.organisation_id, BUYER),
        (bank.organisation_id, BANK),
    ):
        organisation = session.get(Organisation, organisation_id)
        assert organisation is not None
        organisation.name = name
    transfers.transfer(
        session,
        actor=roles.coop,
        batch_id=batch.id,
        to_organisation_id=roles.enterprise.organisation_id,
        quantity_t=300,
    )
    retired = retirements.retire(
        session,
        actor=roles.enterprise,
        batch_id=batch.id,
        quantity_t=100,
        beneficiary="隐私测试受益人",
        purpose=RetirementPurpose.annual_neutrality,
    )
    pledges.pledge_credits(
        session,
        actor=roles.coop,
        batch_id=batch.id,
        quantity_t=200,
        lender_id=bank.organisation_id,
        loan_amount_fen=37_190_000,
        interest_rate_bp=385,
        matures_on=date(2027, 12, 31),
    )
    coop_user = factories.user(
        session,
        kind=OrgKind.cooperative,
        role=Role.viewer,
        org=session.get(Organisation, roles.coop.organisation_id),
    )
    buyer_user = factories.user(
        session,
        kind=OrgKind.enterprise,
        role=Role.viewer,
        org=session.get(Organisation, roles.enterprise.organisation_id),
    )
    coop_token, buyer_token = (factories.token_for(session, u) for u in (coop_user, buyer_user))
    project = session.get(Project, batch.project_id)
    assert project is not None
    project_code = project.code
    session.commit()
    url = f"/api/v1/registry/serials/{batch.serial_prefix}"

    public = client.get(url)
    assert public.status_code == 200, public.text
    parts = public.json()["parts"]
    assert {part["state"] for part in parts} >= {"held", "pledged", "retired"}
    assert any(part["certificate_id"] == retired.certificate_id for part in parts)
    organisations = [part["holder"] for part in parts if part["holder"] != "buffer pool"]
    assert organisations == [None] * len(organisations)
    assert all(part["pledged_to"] is None for part in parts)
    for name in (COOP, BUYER, BANK):
        assert name not in public.text

    as_coop = client.get(url, headers={"Authorization": f"Bearer {coop_token}"}).json()["parts"]
    mine = [part for part in as_coop if part["holder"] == COOP]
    assert mine and any(part["pledged_to"] == BANK for part in mine)
    assert BUYER not in str(as_coop)

    as_buyer = client.get(url, headers={"Authorization": f"Bearer {buyer_token}"}).json()["parts"]
    assert any(part["holder"] == BUYER for part in as_buyer)
    assert COOP not in str(as_buyer) and BANK not in str(as_buyer)

    page = client.get(f"/projects/{project_code}", headers={"Accept": "text/html"})
    assert page.status_code == 200 and batch.serial_prefix in page.text
    assert BUYER not in page.text and BANK not in page.text
