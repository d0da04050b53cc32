"""Read models: market rows turned into the API's schemas (shared by the API and the pages)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func
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
from tanhui.db import UTCDateTime
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


_LABELS: tuple[Any, ...] = (
    col(Organisation.name).label("seller"),
    col(Batch.serial_prefix).label("batch"),
    col(Project.code).label("project_code"),
    col(Project.name).label("project_name"),
)


def _reserved_t(listing_id: Any, moment: Any) -> Any:
    """Tonnes of a listing held by open orders at ``moment`` (a correlated subquery)."""
    return (
        sa_select(func.coalesce(func.sum(col(OrderLine.quantity_t)), 0))
        .where(col(OrderLine.listing_id) == listing_id)
        .where(col(OrderLine.reserved_until) > moment)
        .scalar_subquery()
        .label("reserved_t")
    )


def _with_labels(statement: Any, listing: Any) -> Any:
    return (
        statement.join(Organisation, col(Organisation.id) == listing.seller_id)
        .join(Batch, col(Batch.id) == listing.batch_id)
        .join(Project, col(Project.id) == listing.project_id)
    )


def listings_public(
    session: Session, items: Sequence[Listing], *, now: datetime | None = None
) -> list[ListingPublic]:
    """``items`` as the API shows them: their labels and open tonnes in one query."""
    moment = now_or(now)
    if not items:
        return []
    table = Listing.__table__  # type: ignore[attr-defined]
    rows = session.execute(
        _with_labels(sa_select(table.c.id, *_LABELS, _reserved_t(table.c.id, moment)), table.c)
        .select_from(table)
        .where(table.c.id.in_([item.id for item in items]))
    ).all()
    extra = {row.id: row for row in rows}
    return [_listing_public(item, extra[item.id], moment) for item in items if item.id in extra]


def search_public(
    session: Session, query: listing_service.ListingQuery, *, now: datetime | None = None
) -> list[ListingPublic]:
    """:func:`market.service.listings.search` as the API shows it, in one statement: the page
    of listings joined to their labels, with their reserved tonnes (three round trips, ORM
    objects and building the statements were most of a search's time)."""
    shape = listing_service.search_shape(query)
    params = listing_service.search_params(query, now_or(now))
    rows = session.execute(_search_public_statement(shape), params).all()
    return [_listing_public(row, row, params["moment"]) for row in rows]


_SEARCH_PUBLIC: dict[tuple[str, ...], Any] = {}  # one statement per shape, as in the service


def _search_public_statement(shape: tuple[str, ...]) -> Any:
    found = _SEARCH_PUBLIC.get(shape)
    if found is None:
        found = _SEARCH_PUBLIC[shape] = _build_search_public(shape)
    return found


def _build_search_public(shape: tuple[str, ...]) -> Any:
    page = listing_service.search_statement(shape).subquery()
    moment = bindparam("moment", type_=UTCDateTime())
    return (
        _with_labels(sa_select(page, *_LABELS, _reserved_t(page.c.id, moment)), page.c)
        .select_from(page)
        .order_by(page.c.price_fen_per_t, page.c.created_at, page.c.id)
    )


def _listing_public(item: Any, extra: Any, moment: datetime) -> ListingPublic:
    """One listing (an ORM object or a row of its columns) with ``extra``'s labels and reserved
    tonnes."""
    district = geo.district_by_adcode(item.district_adcode)
    selling = listing_service.is_selling(item, moment)
    return ListingPublic(
        id=item.id,
        seller_id=item.seller_id,
        seller=extra.seller,
        batch_id=item.batch_id,
        batch=extra.batch,
        project_id=item.project_id,
        project_code=extra.project_code,
        project_name=extra.project_name,
        credit_type=item.credit_type,
        district_adcode=item.district_adcode,
        district=district.name_zh if district else None,
        vintage=item.vintage,
        price_fen_per_t=item.price_fen_per_t,
        min_order_t=item.min_order_t,
        quantity_t=item.quantity_t,
        listed_t=item.listed_t,
        sold_t=item.sold_t,
        open_t=max(0, item.listed_t - int(extra.reserved_t)) if selling else 0,
        status=str(_status(item, moment)),
        ends_at=item.ends_at,
        created_at=item.created_at,
    )


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
        purpose=str(compensation.case_purpose(session, case)),
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
