"""Retirement: the holder's lowest available serials of a batch, retired once, with a signed
certificate (Ed25519, the platform key) anyone can verify."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from registry import certificates as documents
from registry import geo, ledger
from registry.errors import CaseMandateRefused, PurposeRequiresCase, RegistryNotFound
from registry.models import (
    Batch,
    BlockState,
    Certificate,
    Retirement,
    RetirementPurpose,
    SerialBlock,
)
from registry.service import blocks as block_service
from registry.service import suspension
from registry.service.actors import Actor, require
from registry.service.issuance import period_of, project_of
from registry.service.transfers import organisation_name
from tanhui import audit
from tanhui.audit import platform_signing_key, register_public_key
from tanhui.crypto import b64, canonical_json
from tanhui.errors import InvalidInput
from tanhui.i18n import N_
from tanhui.models import OrgKind
from tanhui.settings import get_settings
from tanhui.translog import entries as log_entries
from tanhui.translog import service as log

RETIREMENT_OWNER = f"system:{ledger.RETIREMENT}"
CERTIFICATE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I
MAX_BENEFICIARY = 200


def new_certificate_id(year: int) -> str:
    """``THC-RC-2026-7KQ4M2XW9P``: 50 random bits, unambiguous when read aloud."""
    tail = "".join(secrets.choice(CERTIFICATE_ALPHABET) for _ in range(10))
    return f"THC-RC-{year}-{tail}"


# Purposes that exist only through a court's or a fund's case (ADR 0091): who may order each.
CASE_PURPOSES: dict[RetirementPurpose, frozenset[OrgKind]] = {
    RetirementPurpose.judicial_restoration: frozenset({OrgKind.court}),
    RetirementPurpose.ecological_compensation: frozenset(
        {OrgKind.court, OrgKind.compensation_fund}
    ),
}


@dataclass(frozen=True)
class CaseMandate:
    """The case a judicial-restoration or ecological-compensation retirement answers, as the
    market read it from its own table: the organisation that recorded it, its number and the
    project its credits are earmarked to. The registry checks the three against the retirement;
    the general retirement API never makes one."""

    purpose: RetirementPurpose
    organisation_id: uuid.UUID
    organisation_kind: OrgKind
    case_number: str
    project_id: uuid.UUID


def retire(
    session: Session,
    *,
    actor: Actor,
    batch_id: uuid.UUID,
    quantity_t: int,
    beneficiary: str,
    purpose: RetirementPurpose,
    case: CaseMandate | None = None,
    note: str = "",
) -> Retirement:
    """Retire ``quantity_t`` of the actor's organisation's available tonnes of a batch."""
    require(actor, *OrgKind, action="Retiring credits", admin=False)
    beneficiary = beneficiary.strip()
    if not beneficiary or len(beneficiary) > MAX_BENEFICIARY:
        raise InvalidInput(
            N_("Name the beneficiary (1 to {maximum} characters)."),
            maximum=MAX_BENEFICIARY,
            errors=[{"field": "beneficiary", "message": "required"}],
        )
    case_number = check_case(session, purpose, case, batch_id)
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="batch", id=str(batch_id))
    holder = actor.owner
    suspension.ensure_movable(session, batch, holder)
    taken = block_service.take(
        session, batch_id=batch.id, holder=holder, quantity=quantity_t, lowest=True
    )
    retirement = Retirement(
        certificate_id=new_certificate_id(_year()),
        holder=holder,
        batch_id=batch.id,
        quantity_t=quantity_t,
        beneficiary=beneficiary,
        purpose=purpose,
        case_number=case_number,
        note=note.strip()[:500],
    )
    session.add(retirement)
    session.flush()
    block_service.change(
        session,
        taken,
        kind="retirement",
        reference=retirement.certificate_id,
        state=BlockState.retired,
        retirement_id=retirement.id,
    )
    pairs = block_service.serial_pairs(batch, taken)
    retirement.journal_entry_id = ledger.post(
        session,
        code="retirement",
        asset=batch.asset_code,
        moves=[ledger.Move(holder, RETIREMENT_OWNER, quantity_t)],
        metadata={
            "certificate": retirement.certificate_id,
            "serial_blocks": ledger.blocks_metadata(pairs),
        },
        idempotency_key=f"retirement:{retirement.id}",
    )
    session.add(retirement)
    certificate = issue_certificate(session, retirement, batch, pairs)
    audit.record(
        session,
        actor=actor.ref,
        action="credits.retired",
        subject_type="retirement",
        subject_id=retirement.id,
        payload={
            "certificate": certificate.id,
            "batch": batch.serial_prefix,
            "quantity_t": quantity_t,
            "purpose": str(purpose),
            "serial_blocks": [list(p) for p in pairs[:50]],
        },
    )
    return retirement


def check_case(
    session: Session, purpose: RetirementPurpose, case: CaseMandate | None, batch_id: uuid.UUID
) -> str | None:
    """The case number a retirement of ``purpose`` carries; refused when the purpose needs a
    case and none (or one of another kind, organisation or project) is given."""
    if purpose not in CASE_PURPOSES:
        if case is not None:
            raise CaseMandateRefused(
                N_("A retirement for {purpose} answers no case."), purpose=str(purpose)
            )
        return None
    if case is None:
        raise PurposeRequiresCase(
            N_(
                "A {purpose} retirement exists only through the case of a court or a"
                " compensation fund, paid through that case; it cannot be declared directly."
            ),
            purpose=str(purpose),
            errors=[{"field": "purpose", "message": "only through a court's or fund's case"}],
        )
    batch = session.get(Batch, batch_id)
    number = case.case_number.strip()
    if (
        case.purpose != purpose
        or case.organisation_kind not in CASE_PURPOSES[purpose]
        or not number
        or (batch is not None and batch.project_id != case.project_id)
    ):
        raise CaseMandateRefused(
            N_(
                "Case {number} does not allow this retirement: it must be a {purpose} case of a"
                " court or fund, and the credits must come from its earmarked project."
            ),
            number=number,
            purpose=str(purpose),
        )
    return number


def _year() -> int:
    from tanhui.db import utcnow

    return utcnow().year


def issue_certificate(
    session: Session, retirement: Retirement, batch: Batch, pairs: list[tuple[str, str]]
) -> Certificate:
    project = project_of(session, batch)
    period = period_of(session, batch)
    district = geo.district_by_adcode(project.district_adcode)
    payload: dict[str, Any] = {
        "type": documents.DOCUMENT_TYPE,
        "certificate_id": retirement.certificate_id,
        "beneficiary": retirement.beneficiary,
        "purpose": str(retirement.purpose),
        "quantity_t": retirement.quantity_t,
        "serial_blocks": [list(pair) for pair in pairs],
        "project": {
            "code": project.code,
            "name": project.name,
            "type": str(project.type),
            "district": district.name_zh if district else None,
            "methodology": f"{project.methodology_name} {project.methodology_version}",
        },
        "batch": batch.serial_prefix,
        "vintage": batch.vintage,
        "monitoring_period": [period.start.isoformat(), period.end.isoformat()],
        "retired_at": retirement.retired_at.isoformat(timespec="seconds"),
        "retired_by": organisation_name(session, retirement.holder),
        "verify_url": f"{get_settings().base_url.rstrip('/')}/verify/{retirement.certificate_id}",
    }
    if retirement.case_number:
        payload["case_number"] = retirement.case_number
    key = platform_signing_key()
    register_public_key(session, key, "platform")
    certificate = Certificate(
        id=retirement.certificate_id,
        retirement_id=retirement.id,
        payload_json=canonical_json(payload).decode("utf-8"),
        signature=key.sign(canonical_json(payload)),
        key_id=key.key_id,
    )
    session.add(certificate)
    session.flush()
    log_entries.append(
        session,
        kind=log_entries.CERTIFICATE_KIND,
        subject_type="certificate",
        subject_id=certificate.id,
        entry=log_entries.certificate_body(
            certificate.id, certificate.payload_json.encode("utf-8"), certificate.key_id
        ),
    )
    return certificate


def get_certificate(session: Session, certificate_id: str) -> Certificate:
    certificate = session.get(Certificate, certificate_id.strip().upper())
    if certificate is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="certificate", id=certificate_id)
    return certificate


def certificate_document(session: Session, certificate: Certificate) -> dict[str, Any]:
    """The signed document served as JSON and embedded in the PDF (with the public key)."""
    import json

    from tanhui.models import SigningKeyRecord

    key = session.get(SigningKeyRecord, certificate.key_id)
    document: dict[str, Any] = {
        "payload": json.loads(certificate.payload_json),
        "signature": certificate.signature,
        "key_id": certificate.key_id,
    }
    if key is not None:
        document["public_key"] = key.public_key
    logged = _log_receipt(session, certificate.id)
    if logged is not None:
        document["log"] = logged
    retirement = session.get(Retirement, certificate.retirement_id)
    batch = session.get(Batch, retirement.batch_id) if retirement else None
    standing = suspension.standing(project_of(session, batch)) if batch else None
    if standing is not None:  # outside the signed payload: what became of the project since
        document["project_standing"] = standing
    return document


def _log_receipt(session: Session, certificate_id: str) -> dict[str, Any] | None:
    """Where the certificate is in the transparency log: its index, an inclusion proof for the
    newest checkpoint and that checkpoint (None until the sequencer has placed it)."""
    entry = log.entry_for(session, "certificate", certificate_id, log_entries.CERTIFICATE_KIND)
    if entry is None or entry.leaf_index is None:
        return None
    signed = log.current_checkpoint(session)
    if signed is None or signed.size <= entry.leaf_index:
        return {"index": entry.leaf_index}
    proof = log.inclusion_proof(session, entry.leaf_index, signed.size)
    return {
        "index": entry.leaf_index,
        "tree_size": signed.size,
        "hashes": [b64(h) for h in proof],
        "checkpoint": signed.note,
    }


def certificate_pdf(session: Session, certificate: Certificate) -> bytes:
    return documents.render_pdf(certificate_document(session, certificate))


def retirements_of(session: Session, holder: str) -> list[Retirement]:
    return list(
        session.exec(
            select(Retirement)
            .where(col(Retirement.holder) == holder)
            .order_by(col(Retirement.retired_at).desc())
        ).all()
    )


def retired_blocks(session: Session, retirement_id: uuid.UUID) -> list[SerialBlock]:
    return list(
        session.exec(
            select(SerialBlock)
            .where(col(SerialBlock.retirement_id) == retirement_id)
            .where(col(SerialBlock.state) == BlockState.retired)
            .order_by(col(SerialBlock.first))
        ).all()
    )


def platform_key_public() -> tuple[str, str]:
    key = platform_signing_key()
    return key.key_id, b64(key.public_raw)
