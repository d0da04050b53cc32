"""Judicial restoration (司法修复) and ecological compensation: a case paid in sink credits.

These two retirement purposes exist only through a case (ADR 0091): a court's case is a judicial
restoration, a compensation fund's case is ecological compensation; the general retirement API
and ordinary orders refuse both. At settlement the registry checks the case's organisation,
number and earmarked project against the retirement (``registry.service.retirements``).

A court (or fund) records a case: its number, the SHA-256 of the judgment, the defendant (an
organisation that signs in to pay), the required tonnes or amount, and the restoration project
the credits must come from. The defendant pays through the same checkout as any buyer: the order
takes the cheapest open listings of the earmarked project, retires the tonnes on settlement with
the case's purpose and the case number on the certificate, and marks the case fulfilled.
When the court required an amount, the defendant buys the fewest whole tonnes that cost at
least that amount at the listed prices.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from market.errors import CaseConflict, InvalidCase, SoldOut
from market.models import (
    OPEN_ORDER_STATUSES,
    CaseStatus,
    JudicialCase,
    Order,
    OrderLine,
    OrderStatus,
    Provider,
)
from market.service import listings as listing_service
from market.service import orders as order_service
from market.service.common import can_see, not_found, now_or, organisation, require
from registry.certificates import verify_document
from registry.models import Project, RetirementPurpose
from registry.service import retirements as registry_retirements
from registry.service.actors import Actor
from tanhui import audit
from tanhui.crypto import unb64
from tanhui.i18n import N_
from tanhui.models import OrgKind, SigningKeyRecord

SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_CASE_NUMBER = 100
MAX_REQUIRED_T = 10**7
MAX_REQUIRED_FEN = 10**12


def create_case(
    session: Session,
    *,
    actor: Actor,
    case_number: str,
    judgment_sha256: str,
    defendant_id: uuid.UUID,
    project_id: uuid.UUID,
    required_t: int | None = None,
    required_amount_fen: int | None = None,
    defendant_name: str | None = None,
    note: str = "",
) -> JudicialCase:
    """A court records a case whose restoration is paid in credits of ``project_id``."""
    require(actor, OrgKind.court, OrgKind.compensation_fund, action="Recording cases", admin=False)
    assert actor.organisation_id is not None
    number = (case_number or "").strip()
    digest = (judgment_sha256 or "").strip().lower()
    errors = []
    if not number or len(number) > MAX_CASE_NUMBER:
        errors.append({"field": "case_number", "message": "required"})
    if not SHA256.match(digest):
        errors.append({"field": "judgment_sha256", "message": "64 hexadecimal characters"})
    if (required_t is None) == (required_amount_fen is None):
        errors.append({"field": "required_t", "message": "tonnes or an amount, not both"})
    if required_t is not None and not 0 < required_t <= MAX_REQUIRED_T:
        errors.append({"field": "required_t", "message": "positive"})
    if required_amount_fen is not None and not 0 < required_amount_fen <= MAX_REQUIRED_FEN:
        errors.append({"field": "required_amount_fen", "message": "positive"})
    if errors:
        raise InvalidCase(
            N_(
                "Give the case number, the judgment's SHA-256 (64 hex characters) and either"
                " the tonnes or the amount the defendant must buy."
            ),
            errors=errors,
        )
    defendant = organisation(session, defendant_id)
    if defendant.id == actor.organisation_id:
        raise InvalidCase(
            N_("The court cannot be its own defendant."),
            errors=[{"field": "defendant_id", "message": "another organisation"}],
        )
    if session.get(Project, project_id) is None:
        raise not_found("project", project_id)
    existing = session.exec(
        select(JudicialCase)
        .where(col(JudicialCase.court_id) == actor.organisation_id)
        .where(col(JudicialCase.case_number) == number)
    ).one_or_none()
    if existing is not None:
        raise CaseConflict(N_("Case {number} is already recorded."), number=number)
    case = JudicialCase(
        court_id=actor.organisation_id,
        case_number=number,
        judgment_sha256=digest,
        defendant_name=(defendant_name or defendant.name).strip()[:200],
        defendant_id=defendant.id,
        required_t=required_t,
        required_amount_fen=required_amount_fen,
        project_id=project_id,
        note=note.strip()[:500],
        created_by=actor.ref,
    )
    session.add(case)
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action="judicial_case.recorded",
        subject_type="judicial_case",
        subject_id=case.id,
        payload={
            "case_number": number,
            "judgment_sha256": digest,
            "defendant": str(defendant.id),
            "required_t": required_t,
            "required_amount_fen": required_amount_fen,
            "project": str(project_id),
        },
    )
    return case


def get_case(session: Session, *, actor: Actor, case_id: uuid.UUID) -> JudicialCase:
    """The court that recorded it and the defendant see a case; others get 404."""
    case = session.get(JudicialCase, case_id)
    if case is None or not can_see(actor, case.court_id, case.defendant_id):
        raise not_found("judicial case", case_id)
    return case


def cases_for(session: Session, *, actor: Actor) -> list[JudicialCase]:
    query = select(JudicialCase).order_by(col(JudicialCase.created_at).desc())
    if not actor.is_platform_admin:
        query = query.where(
            (col(JudicialCase.court_id) == actor.organisation_id)
            | (col(JudicialCase.defendant_id) == actor.organisation_id)
        )
    return list(session.exec(query).all())


def case_orders(session: Session, case_id: uuid.UUID) -> list[Order]:
    return list(
        session.exec(
            select(Order).where(col(Order.case_id) == case_id).order_by(col(Order.created_at))
        ).all()
    )


def order_for_case(
    session: Session,
    *,
    actor: Actor,
    case_id: uuid.UUID,
    provider: Provider | None = None,
    now: datetime | None = None,
) -> Order:
    """The defendant's order for its case: the earmarked project's cheapest open tonnes,
    retired on settlement for the court's case."""
    moment = now_or(now)
    case = get_case(session, actor=actor, case_id=case_id)
    if actor.organisation_id != case.defendant_id:
        raise not_found("judicial case", case_id)
    if case.status == CaseStatus.fulfilled:
        raise CaseConflict(N_("Case {number} is already fulfilled."), number=case.case_number)
    for existing in case_orders(session, case.id):
        if existing.status in OPEN_ORDER_STATUSES and existing.hold_expires_at > moment:
            return existing
    court = organisation(session, case.court_id)
    candidates = listing_service.search(
        session,
        listing_service.ListingQuery(project_id=case.project_id, limit=listing_service.MAX_PAGE),
        now=moment,
    )
    candidates = [item for item in candidates if item.seller_id != case.defendant_id]
    available = listing_service.open_quantities(session, candidates, now=moment)
    lines: list[order_service.LineRequest] = []
    tonnes_left = case.required_t
    amount_left = case.required_amount_fen
    for listing in candidates:
        open_now = available.get(listing.id, 0)
        if open_now <= 0:
            continue
        if tonnes_left is not None:
            take = min(open_now, tonnes_left)
        else:
            assert amount_left is not None
            take = min(open_now, -(-amount_left // listing.price_fen_per_t))  # ceiling
        take = max(take, min(listing.min_order_t, open_now))
        lines.append(order_service.LineRequest(listing_id=listing.id, quantity_t=take))
        if tonnes_left is not None:
            tonnes_left -= take
            if tonnes_left <= 0:
                break
        else:
            assert amount_left is not None
            amount_left -= take * listing.price_fen_per_t
            if amount_left <= 0:
                break
    short = (tonnes_left or 0) > 0 if case.required_t is not None else (amount_left or 0) > 0
    if not lines or short:
        raise SoldOut(
            N_(
                "The earmarked project has not enough credits on sale for case {number};"
                " the court or the cooperative must list more."
            ),
            number=case.case_number,
        )
    return order_service.create_order(
        session,
        actor=actor,
        lines=lines,
        provider=provider,
        retire_on_purchase=True,
        beneficiary=f"{court.name}（{case.case_number}）",
        purpose=case_purpose(session, case),
        case=case,
        now=moment,
    )


CASE_KINDS = {
    OrgKind.court: RetirementPurpose.judicial_restoration,
    OrgKind.compensation_fund: RetirementPurpose.ecological_compensation,
}


def case_purpose(session: Session, case: JudicialCase) -> RetirementPurpose:
    """A court's case is a judicial restoration, a fund's an ecological compensation."""
    return CASE_KINDS[organisation(session, case.court_id).kind]


def mandate(session: Session, case: JudicialCase) -> registry_retirements.CaseMandate:
    """The case as the registry checks it at retirement."""
    recorded_by = organisation(session, case.court_id)
    return registry_retirements.CaseMandate(
        purpose=CASE_KINDS[recorded_by.kind],
        organisation_id=recorded_by.id,
        organisation_kind=recorded_by.kind,
        case_number=case.case_number,
        project_id=case.project_id,
    )


@dataclass(frozen=True)
class CertificateCheck:
    certificate_id: str
    ok: bool
    reason: str
    quantity_t: int
    case_number: str | None


def verify_case_certificates(
    session: Session, *, actor: Actor, case_id: uuid.UUID
) -> list[CertificateCheck]:
    """The court checks the certificates of its case: signatures with the platform's pinned
    keys, and that each names the case and judicial restoration."""
    case = get_case(session, actor=actor, case_id=case_id)
    purpose = case_purpose(session, case)
    keys = {
        record.key_id: unb64(record.public_key)
        for record in session.exec(select(SigningKeyRecord)).all()
    }
    checks = []
    for order in case_orders(session, case.id):
        if order.status != OrderStatus.settled:
            continue
        for line in session.exec(
            select(OrderLine).where(col(OrderLine.order_id) == order.id)
        ).all():
            if line.certificate_id is None:
                continue
            certificate = registry_retirements.get_certificate(session, line.certificate_id)
            document = registry_retirements.certificate_document(session, certificate)
            result = verify_document(document, keys)
            payload = document["payload"]
            names_case = (
                payload.get("case_number") == case.case_number
                and payload.get("purpose") == purpose.value
            )
            checks.append(
                CertificateCheck(
                    certificate_id=certificate.id,
                    ok=result.ok and names_case,
                    reason=result.reason if names_case else "the certificate names another case",
                    quantity_t=int(payload.get("quantity_t", 0)),
                    case_number=payload.get("case_number"),
                )
            )
    return checks
