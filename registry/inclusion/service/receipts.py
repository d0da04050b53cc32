"""Carbon receipts: what each accepted behaviour earned, and why (factor, baseline, source,
methodology version, points rate), readable by the resident."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session, col, select

from mrv.inclusive import FactorTable, FactorVersion, spec_for
from registry.inclusion.errors import UnknownReceipt
from registry.inclusion.models import InclusionEvent, InclusionPartner
from registry.inclusion.service.methodologies import factor_table
from tanhui.i18n import N_
from tanhui.models import Organisation

PAGE_SIZE = 20
MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class Receipt:
    event: InclusionEvent
    partner_name: str
    version: FactorVersion | None

    @property
    def quantity(self) -> str:
        return _decimal_text(self.event.quantity_milli)

    @property
    def unit(self) -> str:
        spec = spec_for(self.event.scenario)
        return spec.unit.value if spec else ""

    @property
    def bonus_points(self) -> int:
        bonus = self.version.bonus_points_per_unit if self.version else 0
        return bonus * self.event.quantity_milli // 1000


def _decimal_text(milli: int) -> str:
    value = (Decimal(milli) / 1000).normalize()
    return format(value, "f")


def _version(table: FactorTable, event: InclusionEvent) -> FactorVersion | None:
    for version in table.history(event.scenario, event.variant):
        if version.version == event.factor_version:
            return version
    return None


def _receipts(
    session: Session, rows: list[tuple[InclusionEvent, str]], table: FactorTable | None = None
) -> list[Receipt]:
    factors = table or factor_table(session)
    return [Receipt(event, name, _version(factors, event)) for event, name in rows]


def _query() -> Any:
    return (
        select(InclusionEvent, Organisation.name)
        .join(InclusionPartner, col(InclusionPartner.id) == col(InclusionEvent.partner_id))
        .join(Organisation, col(Organisation.id) == col(InclusionPartner.organisation_id))
    )


def get_receipt(
    session: Session, receipt_id: uuid.UUID, *, resident_id: uuid.UUID | None = None
) -> Receipt:
    """One receipt; with ``resident_id``, only if it is theirs (others answer 404)."""
    row = session.exec(_query().where(col(InclusionEvent.id) == receipt_id)).first()
    if row is None or (resident_id is not None and row[0].resident_id != resident_id):
        raise UnknownReceipt(N_("No carbon receipt {receipt_id}."), receipt_id=str(receipt_id))
    return _receipts(session, [(row[0], row[1])])[0]


@dataclass(frozen=True)
class ReceiptPage:
    items: list[Receipt]
    next_cursor: str | None


def list_receipts(
    session: Session,
    resident_id: uuid.UUID,
    *,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> ReceiptPage:
    """The resident's receipts, newest behaviour first; ``cursor`` continues a listing."""
    size = max(1, min(limit, MAX_PAGE_SIZE))
    query = (
        _query()
        .where(col(InclusionEvent.resident_id) == resident_id)
        .order_by(col(InclusionEvent.occurred_at).desc(), col(InclusionEvent.id).desc())
        .limit(size + 1)
    )
    if cursor:
        moment, _, last = cursor.partition("~")
        try:
            after = datetime.fromisoformat(moment)
            last_id = uuid.UUID(last)
        except ValueError:
            after, last_id = None, None
        if after is not None and last_id is not None:
            query = query.where(
                (col(InclusionEvent.occurred_at) < after)
                | ((col(InclusionEvent.occurred_at) == after) & (col(InclusionEvent.id) < last_id))
            )
    rows = [(event, name) for event, name in session.exec(query).all()]
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = (
        f"{rows[-1][0].occurred_at.isoformat()}~{rows[-1][0].id}" if more and rows else None
    )
    return ReceiptPage(items=_receipts(session, rows), next_cursor=next_cursor)
