"""A project from parcels to a retirement certificate, through the services."""

from __future__ import annotations

from sqlmodel import Session

from registry import certificates
from registry.models import BlockState, ProjectStatus, RetirementPurpose
from registry.service import blocks, issuance, public, retirements, transfers
from tanhui.audit import platform_signing_key
from tests.registry import helpers


def test_parcels_to_certificate(session: Session) -> None:
    roles = helpers.Roles.make(session)
    project = helpers.project(session, roles, status=ProjectStatus.issued)
    assert project.status == ProjectStatus.issued
    batch = issuance.batches_of_project(session, project.id)[0]
    assert batch.serial_prefix == f"THC-BAM-{project.code}-2024-001"
    assert batch.quantity_t == 1000 and batch.buffer_t == 200
    assert roles.enterprise.organisation_id is not None
    transfers.transfer(
        session,
        actor=roles.coop,
        batch_id=batch.id,
        to_organisation_id=roles.enterprise.organisation_id,
        quantity_t=300,
    )
    retirement = retirements.retire(
        session,
        actor=roles.enterprise,
        batch_id=batch.id,
        quantity_t=120,
        beneficiary="湖州绿能",
        purpose=RetirementPurpose.annual_neutrality,
    )
    rows = blocks.batch_blocks(session, batch.id)
    assert blocks.tiles(batch, rows)
    retired = [b for b in rows if b.state == BlockState.retired]
    assert [(b.first, b.last) for b in retired] == [(701, 820)]
    cert = retirements.get_certificate(session, retirement.certificate_id)
    doc = retirements.certificate_document(session, cert)
    platform = platform_signing_key()
    pinned = {platform.key_id: platform.public_raw}  # certificates verify on pinned keys only
    assert certificates.verify_document(doc, pinned).ok
    assert not certificates.verify_document(doc, {}).ok
    pdf = retirements.certificate_pdf(session, cert)
    assert certificates.verify_document(certificates.parse_document(pdf), pinned).ok
    where = public.locate(session, f"{batch.serial_prefix}-000700-000702")
    assert [p.state for p in where.parts] == [BlockState.held, BlockState.retired]
    features = public.public_projects(session)
    assert features["features"][0]["properties"]["retired_t"] == 120
