"""Read models: market rows turned into the API's schemas (shared by the API and the pages)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from market.models import (
    JudicialCase,
    Listing,
    ListingStatus,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PayoutRound,
    Provider,
)
from market.payments.bank_transfer import platform_account
from market.schemas import (
    BankInstructions,
    CasePublic,
    CertificateRow,
    EnterpriseStatementPublic,
    ListingPublic,
    OrderLinePublic,
    OrderPublic,
    PaymentPublic,
    RoundLinePublic,
    RoundPublic,
)
from market.service import compensation, funds, orders
from market.service import listings as listing_service
from market.service.common import now_or
from registry import geo
from registry.models import Batch, Project
from tanhui.models import Organisation
from tanhui.settings import get_settings


def verify_url(certificate_id: str) -> str:
    return f"{get_settings().base_url.rstrip('/')}/verify/{certificate_id}"


# Serial prefixes of batches and codes of projects never change once written: orders show
# them again and again, so they are read once per process (bounded; ids are never reused).
_FIXED_LABELS: dict[uuid.UUID, str] = {}
_FIXED_LABELS_MAX = 50_000


def _fixed_labels(
    session: Session, ids: set[uuid.UUID], column: Any, key: Any
) -> dict[uuid.UUID, str]:
    found = {item: _FIXED_LABELS[item] for item in ids if item in _FIXED_LABELS}
    missing = ids - found.keys()
    if missing:
        rows = session.exec(select(key, column).where(key.in_(missing))).all()
        if len(_FIXED_LABELS) + len(rows) > _FIXED_LABELS_MAX:
            _FIXED_LABELS.clear()
        for item, label in rows:
            _FIXED_LABELS[item] = label
            found[item] = label
    return found


def _batch_prefixes(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Batch id → serial prefix (only the column shown)."""
    return _fixed_labels(session, ids, col(Batch.serial_prefix), col(Batch.id))


def _project_codes(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Project id → code."""
    return _fixed_labels(session, ids, col(Project.code), col(Project.id))


def _listing_labels(
    session: Session, ids: set[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, str, str, str]]:
    """Listing id → (seller's name, batch serial prefix, project code, project name), in one
    query of only the columns shown."""
    if not ids:
        return {}
    rows = session.execute(
        sa_select(
            col(Listing.id),
            col(Organisation.name),
            col(Batch.serial_prefix),
            col(Project.code),
            col(Project.name),
        )
        .join(Organisation, col(Organisation.id) == col(Listing.seller_id))
        .join(Batch, col(Batch.id) == col(Listing.batch_id))
        .join(Project, col(Project.id) == col(Listing.project_id))
        .where(col(Listing.id).in_(ids))
    ).all()
    return {row[0]: (row[1], row[2], row[3], row[4]) for row in rows}


def listings_public(
    session: Session, items: Sequence[Listing], *, now: datetime | None = None
) -> list[ListingPublic]:
    moment = now_or(now)
    open_now = listing_service.open_quantities(session, items, now=moment)
    labels = _listing_labels(session, {item.id for item in items})
    result = []
    for item in items:
        district = geo.district_by_adcode(item.district_adcode)
        seller, batch, code, name = labels.get(item.id, ("", "", "", ""))
        result.append(
            ListingPublic(
                id=item.id,
                seller_id=item.seller_id,
                seller=seller,
                batch_id=item.batch_id,
                batch=batch,
                project_id=item.project_id,
                project_code=code,
                project_name=name,
                credit_type=item.credit_type,
                district_adcode=item.district_adcode,
                district=district.name_zh if district else None,
                vintage=item.vintage,
                price_fen_per_t=item.price_fen_per_t,
                min_order_t=item.min_order_t,
                quantity_t=item.quantity_t,
                listed_t=item.listed_t,
                sold_t=item.sold_t,
                open_t=open_now.get(item.id, 0),
                status=str(_status(item, moment)),
                ends_at=item.ends_at,
                created_at=item.created_at,
            )
        )
    return result


def _status(item: Listing, moment: datetime) -> ListingStatus:
    """An active listing past its end date reads as ended before the sweep records it."""
    if item.status == ListingStatus.active and not listing_service.is_selling(item, moment):
        return ListingStatus.ended
    return item.status


def listing_public(session: Session, item: Listing) -> ListingPublic:
    return listings_public(session, [item])[0]


def outstanding_fen(order: Order) -> int:
    if order.status == OrderStatus.settled:
        return 0
    return max(0, order.total_fen - (order.received_fen - order.refunded_fen))


def bank_instructions(order: Order) -> BankInstructions | None:
    if order.provider != Provider.bank_transfer:
        return None
    account = platform_account()
    return BankInstructions(
        bank=account.bank,
        account_holder=account.holder,
        account_number=account.number,
        reference=order.number,
        amount_fen=order.total_fen,
        outstanding_fen=outstanding_fen(order),
    )


def order_public(
    session: Session,
    order: Order,
    *,
    lines: list[OrderLine] | None = None,
    payments: list[Payment] | None = None,
) -> OrderPublic:
    """An order as its buyer sees it. ``lines`` and ``payments``, when the caller has them (a
    new order), are not read again."""
    if lines is None:
        lines = orders.lines_of(session, order.id)
    if payments is None:
        payments = orders.payments_of(session, order.id)
    batches = _batch_prefixes(session, {line.batch_id for line in lines})
    projects = _project_codes(session, {line.project_id for line in lines})
    return OrderPublic(
        id=order.id,
        number=order.number,
        buyer_id=order.buyer_id,
        status=str(order.status),
        provider=str(order.provider),
        total_fen=order.total_fen,
        received_fen=order.received_fen,
        refunded_fen=order.refunded_fen,
        outstanding_fen=outstanding_fen(order),
        retire_on_purchase=order.retire_on_purchase,
        beneficiary=order.beneficiary,
        purpose=order.purpose,
        case_id=order.case_id,
        hold_expires_at=order.hold_expires_at,
        settled_at=order.settled_at,
        settlement_entry_id=order.settlement_entry_id,
        created_at=order.created_at,
        lines=[
            OrderLinePublic(
                id=line.id,
                listing_id=line.listing_id,
                batch_id=line.batch_id,
                batch=batches.get(line.batch_id, ""),
                project_code=projects.get(line.project_id, ""),
                credit_type=line.credit_type,
                quantity_t=line.quantity_t,
                price_fen_per_t=line.price_fen_per_t,
                amount_fen=line.amount_fen,
                certificate_id=line.certificate_id,
            )
            for line in lines
        ],
        payments=[
            PaymentPublic(
                id=payment.id,
                provider=str(payment.provider),
                status=str(payment.status),
                amount_fen=payment.amount_fen,
                external_id=payment.external_id,
                checkout_url=payment.checkout_url,
                expires_at=payment.expires_at,
            )
            for payment in payments
        ],
        bank_transfer=bank_instructions(order),
    )


def enterprise_statement(session: Session, organisation_id: uuid.UUID) -> EnterpriseStatementPublic:
    placed = orders.orders_of(session, organisation_id)
    presented = [order_public(session, order) for order in placed]
    certificates = [
        CertificateRow(
            certificate_id=line.certificate_id,
            order_number=order.number,
            quantity_t=line.quantity_t,
            beneficiary=order.beneficiary,
            purpose=order.purpose,
            verify_url=verify_url(line.certificate_id),
        )
        for order in presented
        for line in order.lines
        if line.certificate_id
    ]
    settled = [order for order in presented if order.status == OrderStatus.settled]
    return EnterpriseStatementPublic(
        organisation_id=organisation_id,
        orders=presented,
        certificates=certificates,
        spent_fen=sum(order.total_fen for order in settled),
        bought_t=sum(line.quantity_t for order in settled for line in order.lines),
    )


def case_public(session: Session, case: JudicialCase) -> CasePublic:
    court = session.get(Organisation, case.court_id)
    project = session.get(Project, case.project_id)
    case_orders = compensation.case_orders(session, case.id)
    certificates = [
        line.certificate_id
        for order in case_orders
        for line in orders.lines_of(session, order.id)
        if line.certificate_id
    ]
    return CasePublic(
        id=case.id,
        court_id=case.court_id,
        court=court.name if court else "",
        case_number=case.case_number,
        judgment_sha256=case.judgment_sha256,
        defendant_id=case.defendant_id,
        defendant_name=case.defendant_name,
        project_id=case.project_id,
        project_code=project.code if project else "",
        required_t=case.required_t,
        required_amount_fen=case.required_amount_fen,
        status=str(case.status),
        fulfilled_at=case.fulfilled_at,
        created_at=case.created_at,
        orders=[order.id for order in case_orders],
        certificates=certificates,
    )


def round_public(session: Session, payout_round: PayoutRound) -> RoundPublic:
    return RoundPublic(
        id=payout_round.id,
        fund_id=payout_round.fund_id,
        year=payout_round.year,
        status=str(payout_round.status),
        parcels=payout_round.parcels,
        total_fen=payout_round.total_fen,
        paid_at=payout_round.paid_at,
        journal_entry_id=payout_round.journal_entry_id,
        lines=[
            RoundLinePublic(
                parcel_id=line.parcel_id,
                kind=str(line.kind),
                cooperative_id=line.cooperative_id,
                household_id=line.household_id,
                area_mu=line.area_mu,
                amount_fen=line.amount_fen,
            )
            for line in funds.round_lines(session, payout_round.id)
        ],
    )
