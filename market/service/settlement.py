"""Settlement: a paid order becomes one journal entry, all or nothing (ADR 0041).

For every line the entry moves the tonnes from the seller to the buyer and pays the line's price
out of the clearing account (where the buyer's money arrived): the platform fee to the fee
account, the households under the contracts behind the tonnes their share of the net, and the
seller the rest. The serial blocks move in the same transaction (the registry's
``move_serials``), and with ``retire_on_purchase`` the buyer's new tonnes are retired at once
through the registry's retirement, which signs a certificate for the beneficiary.

The arithmetic, to the fen (every fen of the price lands somewhere), a waterfall (ADR 0041):

1. ``amount = quantity × price`` (integers).
2. ``fee = round_half_up(amount × fee_bp / 10,000)``, the commercial rule (四舍五入).
3. ``net = amount − fee``.
4. ``recovered = min(net, round_half_up(quantity × prepaid price))``: the cooperative first gets
   back the collection price it prepaid its households for these tonnes (the registry's
   ``prepaid_price_fen_per_t``: the contracts' collection payment covering the batch's vintage,
   weighted by parcel area; nothing when none was paid). The households were paid for these
   tonnes already; paying them a share of the gross again would make the cooperative lose money.
5. The households' part of the rest, ``net − recovered``, comes from the registry
   (``household_revenue_split``): each parcel of the project weighs by its area, the contract's
   household share (e.g. 80 %) of that weight goes to the households holding it by their shares;
   the households' total is rounded half up once, then apportioned by largest remainder (ties by
   household id), so no household is off by more than one fen from its exact share.
6. The seller gets ``net − Σ households`` (the recovered price included): the seller absorbs the
   rounding remainder.

A line of a residents' (RES) project is the residents' pooled reductions: its seller's share goes
to the residents' rewards fund (``system:rewards_fund``) instead of the pool operator's account,
in the same entry, and its payout row says so (``rewards_fund``, ADR 0059).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from sqlmodel import Session

from market.models import (
    CaseStatus,
    JudicialCase,
    Listing,
    ListingStatus,
    Order,
    OrderLine,
    OrderStatus,
    Payout,
    PayoutKind,
)
from market.service import compensation, rewards_fund
from market.service import listings as listing_service
from market.service.common import (
    BASIS_POINTS,
    clearing_account,
    cny_account,
    credit_account,
    fees_account,
    household_owner,
    org_owner,
)
from market.service.orders import hold_is_live, lines_of, sync_reservation
from registry.models import Batch, RetirementPurpose
from registry.pricing import round_half_up
from registry.service import contracts as registry_contracts
from registry.service import retirements as registry_retirements
from registry.service import transfers as registry_transfers
from registry.service.actors import Actor
from registry.service.blocks import serial_pairs
from tanhui import audit
from tanhui.db import utcnow
from tanhui.models import Organisation, Role
from tanhui.settings import get_settings
from wallet import service as wallet

MAX_TRANSFERS_PER_ENTRY = 100  # the wallet's limit; beyond it the settlement needs more entries


@dataclass(frozen=True)
class LineSplit:
    """Where the fen of one line's price go; ``fee + seller + Σ households == amount``;
    ``recovered_fen`` (part of ``seller_fen``) is the prepaid collection price returned."""

    amount_fen: int
    fee_fen: int
    net_fen: int
    seller_fen: int
    households: dict[uuid.UUID, int]
    recovered_fen: int = 0


def fee_for(amount_fen: int, fee_bp: int) -> int:
    return round_half_up(Fraction(amount_fen * fee_bp, BASIS_POINTS))


def split_line(
    amount_fen: int,
    fee_bp: int,
    household_split: Callable[[int], Mapping[uuid.UUID, int]],
    prepaid_fen: int = 0,
) -> LineSplit:
    """Split ``amount_fen``: the fee; the prepaid collection price back to the seller; the
    households' part of what remains; the rest to the seller."""
    fee = fee_for(amount_fen, fee_bp)
    net = amount_fen - fee
    recovered = max(0, min(net, prepaid_fen))
    remainder = net - recovered
    households = {key: value for key, value in household_split(remainder).items() if value > 0}
    paid = sum(households.values())
    if paid > remainder:  # a misconfigured share above 100 % must never pay out more than that
        raise ValueError(f"households' part {paid} exceeds the net {remainder}")
    return LineSplit(
        amount_fen=amount_fen,
        fee_fen=fee,
        net_fen=net,
        seller_fen=net - paid,
        households=households,
        recovered_fen=recovered,
    )


def prepaid_fen(session: Session, quantity_t: int, batch: Batch) -> int:
    """What the seller prepaid its households for ``quantity_t`` tonnes of the batch."""
    price = registry_contracts.prepaid_price_fen_per_t(
        session, project_id=batch.project_id, vintage=batch.vintage
    )
    return round_half_up(price * quantity_t)


def _households_of(
    session: Session, project_id: uuid.UUID
) -> Callable[[int], Mapping[uuid.UUID, int]]:
    def split(net_fen: int) -> Mapping[uuid.UUID, int]:
        return registry_contracts.household_revenue_split(
            session, project_id=project_id, net_proceeds_fen=net_fen
        )

    return split


def can_fulfil(session: Session, order: Order, listings: Mapping[uuid.UUID, Listing]) -> bool:
    """The order's tonnes are still there for it: held by it, or open again after its hold
    lapsed (with the order and its listings locked)."""
    now = utcnow()
    lines = lines_of(session, order.id)
    if hold_is_live(order, now):
        return all(listings[line.listing_id].listed_t >= line.quantity_t for line in lines)
    for line in lines:
        listing = listings[line.listing_id]
        available = listing_service.open_t(session, listing, now=now, excluding_order=order.id)
        if line.quantity_t > available:
            return False
    return True


def settle(
    session: Session,
    order: Order,
    listings: Mapping[uuid.UUID, Listing],
    *,
    actor_ref: str,
    now: datetime | None = None,
) -> Order:
    """Deliver and pay out a paid order (order and listings locked; ``can_fulfil`` checked)."""
    moment = now or utcnow()
    fee_bp = get_settings().market_fee_bp
    lines = lines_of(session, order.id)
    buyer = org_owner(order.buyer_id)
    batches = {line.batch_id: session.get(Batch, line.batch_id) for line in lines}
    transfers: dict[tuple[uuid.UUID, uuid.UUID], int] = {}
    serials: dict[str, list[list[str]]] = {}
    splits: list[tuple[OrderLine, LineSplit]] = []

    def add(debit: uuid.UUID, credit: uuid.UUID, amount: int) -> None:
        if amount > 0:
            transfers[(debit, credit)] = transfers.get((debit, credit), 0) + amount

    # The tonnes leave the listings first: blocks to the buyer, listing holds shrunk, so that
    # the seller's credit account can be debited by the entry below.
    for line in lines:
        listing = listings[line.listing_id]
        batch = batches[line.batch_id]
        assert batch is not None
        moved = registry_transfers.move_serials(
            session,
            batch_id=batch.id,
            from_owner=org_owner(listing.seller_id),
            to_owner=buyer,
            quantity_t=line.quantity_t,
            kind="sale",
            reference=order.number,
            listing_ref=listing.ref,
        )
        serials[str(line.id)] = [list(pair) for pair in serial_pairs(batch, moved)][:20]
        listing.listed_t -= line.quantity_t
        listing.sold_t += line.quantity_t
        if listing.listed_t == 0 and listing.status == ListingStatus.active:
            listing.status = ListingStatus.sold_out
        session.add(listing)
    for listing_id in sorted({line.listing_id for line in lines}):
        listing_service.resync_hold(session, listings[listing_id], now=moment)

    clearing = clearing_account(session)
    fees = fees_account(session)
    residents_lines = {
        line.id for line in lines if rewards_fund.is_residents_project(session, line.project_id)
    }
    for line in lines:
        listing = listings[line.listing_id]
        batch = batches[line.batch_id]
        assert batch is not None
        seller = org_owner(listing.seller_id)
        add(
            credit_account(session, batch.asset_code, seller),
            credit_account(session, batch.asset_code, buyer),
            line.quantity_t,
        )
        prepaid = 0 if line.id in residents_lines else prepaid_fen(session, line.quantity_t, batch)
        split = split_line(
            line.amount_fen, fee_bp, _households_of(session, line.project_id), prepaid
        )
        splits.append((line, split))
        add(clearing, fees, split.fee_fen)
        seller_cny = (
            rewards_fund.fund_account(session)
            if line.id in residents_lines
            else cny_account(session, seller)
        )
        add(clearing, seller_cny, split.seller_fen)
        for household_id, amount in sorted(split.households.items(), key=lambda i: str(i[0])):
            add(clearing, cny_account(session, household_owner(household_id)), amount)

    entry_id = _post(session, order, transfers, serials)
    _record_payouts(session, order, listings, splits, entry_id, residents_lines)
    order.fee_fen = sum(split.fee_fen for _, split in splits)
    order.status = OrderStatus.settled
    order.settled_at = moment
    order.settlement_entry_id = entry_id
    order.updated_at = utcnow()
    session.add(order)
    sync_reservation(session, order)
    if order.retire_on_purchase:
        _retire(session, order, lines, batches)
    if order.case_id is not None:
        _fulfil_case(session, order, moment)
    audit.record(
        session,
        actor=actor_ref,
        action="order.settled",
        subject_type="order",
        subject_id=order.id,
        payload={
            "number": order.number,
            "total_fen": order.total_fen,
            "fee_fen": order.fee_fen,
            "journal_entry": str(entry_id),
            "households_fen": sum(sum(s.households.values()) for _, s in splits),
            "prepaid_recovered_fen": sum(s.recovered_fen for _, s in splits),
            "rewards_fund_fen": sum(s.seller_fen for ln, s in splits if ln.id in residents_lines),
        },
    )
    return order


def _post(
    session: Session,
    order: Order,
    transfers: Mapping[tuple[uuid.UUID, uuid.UUID], int],
    serials: Mapping[str, list[list[str]]],
) -> uuid.UUID:
    """One entry; an order so large that it has more than 100 transfers (many households)
    continues in further entries of the same transaction (linked by metadata)."""
    items = [
        wallet.Transfer(debit, credit, amount) for (debit, credit), amount in transfers.items()
    ]
    chunks = [
        items[start : start + MAX_TRANSFERS_PER_ENTRY]
        for start in range(0, len(items), MAX_TRANSFERS_PER_ENTRY)
    ]
    first: uuid.UUID | None = None
    for index, chunk in enumerate(chunks):
        metadata: dict[str, object] = {"order": str(order.id), "number": order.number}
        if index == 0:
            metadata["serial_blocks"] = dict(serials)
        if len(chunks) > 1:
            metadata["part"] = f"{index + 1}/{len(chunks)}"
        entry = wallet.post_entry(
            session,
            code="settlement",
            transfers=chunk,
            idempotency_key=f"settlement:{order.id}" + (f"#{index}" if index else ""),
            scope="market",
            metadata=metadata,
        )
        first = first or entry.id
    assert first is not None
    return first


def _record_payouts(
    session: Session,
    order: Order,
    listings: Mapping[uuid.UUID, Listing],
    splits: Sequence[tuple[OrderLine, LineSplit]],
    entry_id: uuid.UUID,
    residents_lines: set[uuid.UUID],
) -> None:
    for line, split in splits:
        seller_id = listings[line.listing_id].seller_id
        rows = [
            Payout(
                order_id=order.id,
                line_id=line.id,
                kind=PayoutKind.fee,
                amount_fen=split.fee_fen,
                journal_entry_id=entry_id,
            ),
            Payout(
                order_id=order.id,
                line_id=line.id,
                kind=PayoutKind.rewards_fund
                if line.id in residents_lines
                else PayoutKind.cooperative,
                cooperative_id=seller_id,
                amount_fen=split.seller_fen,
                journal_entry_id=entry_id,
            ),
        ]
        rows += [
            Payout(
                order_id=order.id,
                line_id=line.id,
                kind=PayoutKind.household,
                cooperative_id=seller_id,
                household_id=household_id,
                amount_fen=amount,
                journal_entry_id=entry_id,
            )
            for household_id, amount in sorted(split.households.items(), key=lambda i: str(i[0]))
        ]
        session.add_all(rows)
    session.flush()


def _retire(
    session: Session,
    order: Order,
    lines: Sequence[OrderLine],
    batches: Mapping[uuid.UUID, Batch | None],
) -> None:
    buyer = session.get(Organisation, order.buyer_id)
    assert buyer is not None and order.purpose is not None and order.beneficiary is not None
    mandate = None
    if order.case_id is not None:
        case = session.get(JudicialCase, order.case_id)
        mandate = compensation.mandate(session, case) if case else None
    # The buyer retires its new tonnes: the order was placed by one of its members.
    actor = Actor(
        ref=order.created_by,
        organisation_id=buyer.id,
        org_kind=buyer.kind,
        role=Role.member,
    )
    for line in lines:
        batch = batches[line.batch_id]
        assert batch is not None
        retirement = registry_retirements.retire(
            session,
            actor=actor,
            batch_id=batch.id,
            quantity_t=line.quantity_t,
            beneficiary=order.beneficiary,
            purpose=RetirementPurpose(order.purpose),
            case=mandate,
            note=f"order {order.number}",
        )
        line.retirement_id = retirement.id
        line.certificate_id = retirement.certificate_id
        session.add(line)
    session.flush()


def _fulfil_case(session: Session, order: Order, moment: datetime) -> None:
    case = session.get(JudicialCase, order.case_id)
    if case is None or case.status == CaseStatus.fulfilled:
        return
    case.status = CaseStatus.fulfilled
    case.fulfilled_at = moment
    session.add(case)
    session.flush()
    audit.record(
        session,
        actor="system:market",
        action="judicial_case.fulfilled",
        subject_type="judicial_case",
        subject_id=case.id,
        payload={"case_number": case.case_number, "order": order.number},
    )
