"""Statements: what an enterprise bought, what a cooperative sold and paid its households, and
what one household received (sale shares, compensation, collection payments).

A household has no login: its cooperative hands it a signed link (``/h/{token}``, fit for an
SMS) that shows its own statement and nothing else.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlmodel import Session, col, select

from market.documents import ReceiptDocument, ReceiptLine, render_receipt
from market.errors import InvalidStatementLink, StatementLinkExpired
from market.models import (
    Order,
    OrderLine,
    OrderStatus,
    Payout,
    PayoutKind,
    PayoutRound,
    PayoutRoundLine,
    RoundStatus,
)
from market.service import orders as order_service
from market.service.common import household_owner, not_found, require
from registry.models import Batch, Contract, Household, Parcel, Project, Settlement, SettlementLine
from registry.service.actors import Actor
from tanhui.models import Organisation, OrgKind, Role
from tanhui.settings import get_settings
from wallet import service as wallet

LINK_SALT = "tanhui.household-statement"
MAX_ROWS = 1_000


# --- enterprise ----------------------------------------------------------------------------


def receipt_pdf(session: Session, *, actor: Actor, order_id: uuid.UUID) -> tuple[str, bytes]:
    """The order's receipt as a PDF (file name, bytes)."""
    order = order_service.get_order(session, actor=actor, order_id=order_id)
    buyer = session.get(Organisation, order.buyer_id)
    lines = []
    for line in order_service.lines_of(session, order.id):
        batch = session.get(Batch, line.batch_id)
        project = session.get(Project, line.project_id)
        lines.append(
            ReceiptLine(
                description=f"{project.code if project else ''} {project.name if project else ''}"
                f" · {batch.serial_prefix if batch else ''}",
                quantity_t=line.quantity_t,
                price_fen_per_t=line.price_fen_per_t,
                amount_fen=line.amount_fen,
                certificate_id=line.certificate_id,
            )
        )
    document = ReceiptDocument(
        order_number=order.number,
        status=str(order.status),
        buyer=buyer.name if buyer else "",
        created_at=order.created_at,
        settled_at=order.settled_at,
        provider=str(order.provider),
        lines=lines,
        total_fen=order.total_fen,
        received_fen=order.received_fen,
        refunded_fen=order.refunded_fen,
        beneficiary=order.beneficiary,
        purpose=order.purpose,
        verify_base_url=get_settings().base_url.rstrip("/"),
    )
    return f"receipt-{order.number}.pdf", render_receipt(document)


# --- cooperative ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SaleRow:
    settled_at: datetime
    order_number: str
    buyer: str
    batch: str
    quantity_t: int
    price_fen_per_t: int
    amount_fen: int
    fee_fen: int
    cooperative_fen: int
    households_fen: int
    rewards_fund_fen: int = 0  # a residents' pool line: the seller's share funds rewards


@dataclass(frozen=True)
class HouseholdTotal:
    household_id: uuid.UUID
    name: str
    village: str
    sales_fen: int
    compensation_fen: int

    @property
    def total_fen(self) -> int:
        return self.sales_fen + self.compensation_fen


@dataclass
class CompensationRow:
    """One paid compensation round as the cooperative sees it: its own part and its
    households' part."""

    round_id: uuid.UUID
    paid_at: datetime
    fund: str
    year: int
    parcels: int
    cooperative_fen: int
    households_fen: int


@dataclass
class CooperativeStatement:
    cooperative_id: uuid.UUID
    sales: list[SaleRow] = field(default_factory=list)
    households: list[HouseholdTotal] = field(default_factory=list)
    compensation_fen: int = 0
    compensation: list[CompensationRow] = field(default_factory=list)

    @property
    def sold_t(self) -> int:
        return sum(row.quantity_t for row in self.sales)

    @property
    def revenue_fen(self) -> int:
        return sum(row.cooperative_fen for row in self.sales)

    @property
    def households_fen(self) -> int:
        return sum(row.households_fen for row in self.sales)

    @property
    def rewards_fund_fen(self) -> int:
        return sum(row.rewards_fund_fen for row in self.sales)


def cooperative_statement(
    session: Session, *, actor: Actor, cooperative_id: uuid.UUID | None = None
) -> CooperativeStatement:
    require(
        actor, OrgKind.cooperative, OrgKind.platform, minimum=Role.viewer, action="Reading sales"
    )
    coop_id = cooperative_id or actor.organisation_id
    if coop_id is None or (not actor.is_platform_admin and coop_id != actor.organisation_id):
        raise not_found("cooperative", cooperative_id)
    statement = CooperativeStatement(cooperative_id=coop_id)
    rows = session.exec(
        select(OrderLine, Order)
        .join(Order, col(Order.id) == col(OrderLine.order_id))
        .where(col(OrderLine.seller_id) == coop_id)
        .where(col(Order.status) == OrderStatus.settled)
        .order_by(col(Order.settled_at).desc())
        .limit(MAX_ROWS)
    ).all()
    payouts: dict[uuid.UUID, list[Payout]] = {}
    if rows:
        for payout in session.exec(
            select(Payout).where(col(Payout.line_id).in_([line.id for line, _ in rows]))
        ).all():
            payouts.setdefault(payout.line_id, []).append(payout)
    names = _org_names(session, [order.buyer_id for _, order in rows])
    prefixes = _batch_prefixes(session, [line.batch_id for line, _ in rows])
    for line, order in rows:
        parts = payouts.get(line.id, [])
        assert order.settled_at is not None
        statement.sales.append(
            SaleRow(
                settled_at=order.settled_at,
                order_number=order.number,
                buyer=names.get(order.buyer_id, ""),
                batch=prefixes.get(line.batch_id, ""),
                quantity_t=line.quantity_t,
                price_fen_per_t=line.price_fen_per_t,
                amount_fen=line.amount_fen,
                fee_fen=sum(p.amount_fen for p in parts if p.kind == PayoutKind.fee),
                cooperative_fen=sum(
                    p.amount_fen for p in parts if p.kind == PayoutKind.cooperative
                ),
                households_fen=sum(p.amount_fen for p in parts if p.kind == PayoutKind.household),
                rewards_fund_fen=sum(
                    p.amount_fen for p in parts if p.kind == PayoutKind.rewards_fund
                ),
            )
        )
    sales: dict[uuid.UUID, int] = {}
    for payout in session.exec(
        select(Payout)
        .where(col(Payout.cooperative_id) == coop_id)
        .where(col(Payout.kind) == PayoutKind.household)
    ).all():
        assert payout.household_id is not None
        sales[payout.household_id] = sales.get(payout.household_id, 0) + payout.amount_fen
    compensation: dict[uuid.UUID, int] = {}
    rounds: dict[uuid.UUID, PayoutRound] = {}
    by_round: dict[uuid.UUID, tuple[set[uuid.UUID], list[int]]] = {}
    for round_line, payout_round in session.exec(
        select(PayoutRoundLine, PayoutRound)
        .join(PayoutRound, col(PayoutRound.id) == col(PayoutRoundLine.round_id))
        .where(col(PayoutRound.status) == RoundStatus.paid)
        .where(col(PayoutRoundLine.cooperative_id) == coop_id)
    ).all():
        rounds[payout_round.id] = payout_round
        parcels, split = by_round.setdefault(payout_round.id, (set(), [0, 0]))
        parcels.add(round_line.parcel_id)
        if round_line.household_id is None:
            statement.compensation_fen += round_line.amount_fen
            split[0] += round_line.amount_fen
        else:
            split[1] += round_line.amount_fen
            compensation[round_line.household_id] = (
                compensation.get(round_line.household_id, 0) + round_line.amount_fen
            )
    funds = _org_names(session, [item.fund_id for item in rounds.values()])
    for round_id, (parcels, (own, theirs)) in by_round.items():
        payout_round = rounds[round_id]
        assert payout_round.paid_at is not None
        statement.compensation.append(
            CompensationRow(
                round_id=round_id,
                paid_at=payout_round.paid_at,
                fund=funds.get(payout_round.fund_id, ""),
                year=payout_round.year,
                parcels=len(parcels),
                cooperative_fen=own,
                households_fen=theirs,
            )
        )
    statement.compensation.sort(key=lambda row: (row.paid_at, str(row.round_id)), reverse=True)
    households = {
        h.id: h
        for h in session.exec(
            select(Household).where(col(Household.cooperative_id) == coop_id)
        ).all()
    }
    for household_id in sorted(set(sales) | set(compensation), key=str):
        household = households.get(household_id)
        statement.households.append(
            HouseholdTotal(
                household_id=household_id,
                name=household.name if household else "",
                village=household.village if household else "",
                sales_fen=sales.get(household_id, 0),
                compensation_fen=compensation.get(household_id, 0),
            )
        )
    statement.households.sort(key=lambda item: (item.village, item.name, str(item.household_id)))
    return statement


def _org_names(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    return {
        org.id: org.name
        for org in session.exec(
            select(Organisation).where(col(Organisation.id).in_(set(ids)))
        ).all()
    }


def _batch_prefixes(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    return {
        batch.id: batch.serial_prefix
        for batch in session.exec(select(Batch).where(col(Batch.id).in_(set(ids)))).all()
    }


# --- household -----------------------------------------------------------------------------


@dataclass(frozen=True)
class HouseholdEntry:
    day: date
    kind: str  # sale_share, compensation, collection
    reference: str
    amount_fen: int


@dataclass
class HouseholdStatement:
    household_id: uuid.UUID
    name: str
    village: str
    cooperative: str
    entries: list[HouseholdEntry] = field(default_factory=list)
    balance_fen: int = 0

    @property
    def total_fen(self) -> int:
        return sum(entry.amount_fen for entry in self.entries)

    def part_fen(self, kind: str) -> int:
        """The total of one kind: ``collection`` (the price paid in advance for the household's
        sinks), ``sale_share`` (its share of sales, after the cooperative recovered that price)
        or ``compensation``."""
        return sum(entry.amount_fen for entry in self.entries if entry.kind == kind)


def household_statement(session: Session, household_id: uuid.UUID) -> HouseholdStatement:
    """Everything paid to one household (read by its signed link or its cooperative)."""
    household = session.get(Household, household_id)
    if household is None:
        raise not_found("household", household_id)
    coop = session.get(Organisation, household.cooperative_id)
    statement = HouseholdStatement(
        household_id=household.id,
        name=household.name,
        village=household.village,
        cooperative=coop.name if coop else "",
    )
    for payout, order in session.exec(
        select(Payout, Order)
        .join(Order, col(Order.id) == col(Payout.order_id))
        .where(col(Payout.household_id) == household.id)
        .limit(MAX_ROWS)
    ).all():
        assert order.settled_at is not None
        statement.entries.append(
            HouseholdEntry(order.settled_at.date(), "sale_share", order.number, payout.amount_fen)
        )
    for line, payout_round, parcel in session.exec(
        select(PayoutRoundLine, PayoutRound, Parcel)
        .join(PayoutRound, col(PayoutRound.id) == col(PayoutRoundLine.round_id))
        .join(Parcel, col(Parcel.id) == col(PayoutRoundLine.parcel_id))
        .where(col(PayoutRoundLine.household_id) == household.id)
        .where(col(PayoutRound.status) == RoundStatus.paid)
        .limit(MAX_ROWS)
    ).all():
        assert payout_round.paid_at is not None
        statement.entries.append(
            HouseholdEntry(
                payout_round.paid_at.date(),
                "compensation",
                f"{payout_round.year} · {parcel.code}",
                line.amount_fen,
            )
        )
    for settlement_line, settlement, contract in session.exec(
        select(SettlementLine, Settlement, Contract)
        .join(Settlement, col(Settlement.id) == col(SettlementLine.settlement_id))
        .join(Contract, col(Contract.id) == col(Settlement.contract_id))
        .where(col(SettlementLine.household_id) == household.id)
        .limit(MAX_ROWS)
    ).all():
        statement.entries.append(
            HouseholdEntry(
                settlement.settlement_date,
                "collection",
                f"{contract.code} #{settlement.sequence}",
                settlement_line.amount_fen,
            )
        )
    statement.entries.sort(key=lambda entry: (entry.day, entry.kind, entry.reference), reverse=True)
    account = wallet.find_account(
        session, asset=wallet.ASSET_CNY, owner=household_owner(household.id)
    )
    statement.balance_fen = wallet.get_balance(session, account.id).balance if account else 0
    return statement


def household_statement_for(
    session: Session, *, actor: Actor, household_id: uuid.UUID
) -> HouseholdStatement:
    """A cooperative reads one of its households' statements."""
    household = session.get(Household, household_id)
    if household is None or not (
        actor.is_platform_admin or household.cooperative_id == actor.organisation_id
    ):
        raise not_found("household", household_id)
    return household_statement(session, household.id)


def household_names(
    session: Session, household_ids: list[uuid.UUID | None]
) -> dict[uuid.UUID, str]:
    wanted = {item for item in household_ids if item is not None}
    if not wanted:
        return {}
    return {
        household.id: f"{household.name}（{household.village}）"
        for household in session.exec(select(Household).where(col(Household.id).in_(wanted))).all()
    }


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().secret_key_value, salt=LINK_SALT)


@dataclass(frozen=True)
class HouseholdLink:
    token: str
    expires_at: datetime


def household_link(session: Session, *, actor: Actor, household_id: uuid.UUID) -> HouseholdLink:
    """A signed, dated token for the household's own statement page (its cooperative hands it
    out by SMS). It expires after ``household_link_days``: a link forwarded or left on an old
    phone should not show a family's income for ever; the cooperative sends a fresh one."""
    household = session.get(Household, household_id)
    if household is None or not (
        actor.is_platform_admin or household.cooperative_id == actor.organisation_id
    ):
        raise not_found("household", household_id)
    serializer = _serializer()
    token = str(serializer.dumps(str(household.id)))
    _value, signed_at = serializer.loads(token, return_timestamp=True)
    days = get_settings().household_link_days
    return HouseholdLink(token=token, expires_at=signed_at + timedelta(days=days))


def household_from_token(token: str) -> uuid.UUID:
    days = get_settings().household_link_days
    try:
        value = _serializer().loads(token, max_age=days * 86_400)
        return uuid.UUID(str(value))
    except SignatureExpired:
        raise StatementLinkExpired(days=days) from None
    except (BadSignature, ValueError):
        raise InvalidStatementLink() from None
