"""Ecological-compensation funds (生态保护补偿基金): standards and payout rounds.

A fund sets standards: fen per mu per year by land type and district, for a year. A payout round
for a year covers every eligible parcel: under an active collection contract, of a land type and
district the fund has a standard for. Per parcel (ADR 0043):

1. ``amount = round_half_up(rate × area_mu)``, the area being the contract's (registered, else
   measured) area of the parcel;
2. the households holding the parcel get the contract's household share of it (e.g. 80 %),
   rounded half up, apportioned by their holding shares with the largest-remainder rule;
3. the cooperative gets the rest.

Paying a round posts the fund's money (its ``CNY`` account, filled by deposits that platform
finance confirms) to every recipient, summed per recipient, in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from fractions import Fraction

from sqlmodel import Session, col, delete, select

from market.errors import InvalidStandard, RoundConflict
from market.models import (
    CompensationStandard,
    FundDeposit,
    PayoutKind,
    PayoutRound,
    PayoutRoundLine,
    Provider,
    RoundStatus,
)
from market.service.common import (
    BASIS_POINTS,
    FINANCE_KINDS,
    cny_account,
    gateway_account,
    household_owner,
    not_found,
    org_owner,
    organisation,
    require,
)
from registry import geo
from registry.models import (
    Contract,
    ContractParcel,
    ContractStatus,
    LandType,
    Parcel,
    ParcelHolding,
)
from registry.pricing import apportion, round_half_up
from registry.service.actors import Actor
from registry.service.parcels import area_mu
from tanhui import audit
from tanhui.db import utcnow
from tanhui.i18n import N_
from tanhui.models import OrgKind
from wallet import service as wallet

MAX_RATE_FEN = 1_000_000  # 10,000 CNY per mu per year
MAX_DEPOSIT_FEN = 10**12
MAX_TRANSFERS_PER_ENTRY = 100


def _fund(actor: Actor) -> uuid.UUID:
    require(actor, OrgKind.compensation_fund, action="Managing compensation", admin=False)
    assert actor.organisation_id is not None
    return actor.organisation_id


def set_standard(
    session: Session,
    *,
    actor: Actor,
    year: int,
    land_type: str,
    district_adcode: str,
    rate_fen_per_mu_year: int,
) -> CompensationStandard:
    """Create or change the fund's rate for (year, land type, district), until a round of that
    year has been paid."""
    fund_id = _fund(actor)
    errors = []
    if not 2000 <= year <= 2100:
        errors.append({"field": "year", "message": "2000 to 2100"})
    if land_type not in {item.value for item in LandType}:
        errors.append({"field": "land_type", "message": "bamboo, wetland or other"})
    if geo.district_by_adcode(district_adcode) is None:
        errors.append({"field": "district_adcode", "message": "a Huzhou district"})
    if isinstance(rate_fen_per_mu_year, bool) or not 0 < rate_fen_per_mu_year <= MAX_RATE_FEN:
        errors.append({"field": "rate_fen_per_mu_year", "message": "positive"})
    if errors:
        raise InvalidStandard(
            N_(
                "A standard names a year, a land type, a Huzhou district and a positive rate"
                " (fen per mu per year)."
            ),
            errors=errors,
        )
    _refuse_if_paid(session, fund_id, year)
    standard = session.exec(
        select(CompensationStandard)
        .where(col(CompensationStandard.fund_id) == fund_id)
        .where(col(CompensationStandard.year) == year)
        .where(col(CompensationStandard.land_type) == land_type)
        .where(col(CompensationStandard.district_adcode) == district_adcode)
    ).one_or_none()
    if standard is None:
        standard = CompensationStandard(
            fund_id=fund_id,
            year=year,
            land_type=land_type,
            district_adcode=district_adcode,
            rate_fen_per_mu_year=rate_fen_per_mu_year,
            created_by=actor.ref,
        )
    else:
        standard.rate_fen_per_mu_year = rate_fen_per_mu_year
    session.add(standard)
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action="compensation_standard.set",
        subject_type="compensation_standard",
        subject_id=standard.id,
        payload={
            "year": year,
            "land_type": land_type,
            "district": district_adcode,
            "rate_fen_per_mu_year": rate_fen_per_mu_year,
        },
    )
    return standard


def _refuse_if_paid(session: Session, fund_id: uuid.UUID, year: int) -> None:
    paid = session.exec(
        select(PayoutRound)
        .where(col(PayoutRound.fund_id) == fund_id)
        .where(col(PayoutRound.year) == year)
        .where(col(PayoutRound.status) == RoundStatus.paid)
    ).first()
    if paid is not None:
        raise RoundConflict(N_("The payout round of {year} is paid already."), year=year)


def standards_of(session: Session, *, actor: Actor) -> list[CompensationStandard]:
    fund_id = _fund(actor)
    return list(
        session.exec(
            select(CompensationStandard)
            .where(col(CompensationStandard.fund_id) == fund_id)
            .order_by(
                col(CompensationStandard.year).desc(),
                col(CompensationStandard.district_adcode),
                col(CompensationStandard.land_type),
            )
        ).all()
    )


def record_deposit(
    session: Session, *, actor: Actor, fund_id: uuid.UUID, amount_fen: int, bank_reference: str
) -> FundDeposit:
    """Platform finance confirms money a fund paid in (bank → the fund's CNY account)."""
    require(actor, *FINANCE_KINDS, action="Recording fund deposits")
    fund = organisation(session, fund_id)
    if fund.kind != OrgKind.compensation_fund:
        raise not_found("compensation fund", fund_id)
    reference = (bank_reference or "").strip()[:100]
    if isinstance(amount_fen, bool) or not 0 < amount_fen <= MAX_DEPOSIT_FEN or not reference:
        raise InvalidStandard(
            N_("A deposit is a positive amount with the bank's transaction reference."),
            errors=[{"field": "amount_fen", "message": "positive"}],
        )
    entry = wallet.post_entry(
        session,
        code="compensation",
        transfers=[
            wallet.Transfer(
                gateway_account(session, Provider.bank_transfer),
                cny_account(session, org_owner(fund.id)),
                amount_fen,
            )
        ],
        idempotency_key=f"fund-deposit:{fund.id}:{reference}",
        scope="market",
        metadata={"fund": str(fund.id), "deposit": reference},
    )
    deposit = FundDeposit(
        fund_id=fund.id,
        amount_fen=amount_fen,
        bank_reference=reference,
        recorded_by=actor.ref,
        journal_entry_id=entry.id,
    )
    session.add(deposit)
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action="fund.deposit",
        subject_type="organisation",
        subject_id=fund.id,
        payload={"amount_fen": amount_fen, "reference": reference},
    )
    return deposit


def fund_balance_fen(session: Session, fund_id: uuid.UUID) -> int:
    account = wallet.find_account(session, asset=wallet.ASSET_CNY, owner=org_owner(fund_id))
    return wallet.get_balance(session, account.id).available if account else 0


def _eligible(
    session: Session, standards: Sequence[CompensationStandard]
) -> list[tuple[Parcel, Contract, CompensationStandard]]:
    by_key = {(s.land_type, s.district_adcode): s for s in standards}
    rows = session.exec(
        select(Parcel, Contract)
        .join(ContractParcel, col(ContractParcel.parcel_id) == col(Parcel.id))
        .join(Contract, col(Contract.id) == col(ContractParcel.contract_id))
        .where(col(Contract.status) == ContractStatus.active)
        .order_by(col(Parcel.id))
    ).all()
    found = []
    seen: set[uuid.UUID] = set()
    for parcel, contract in rows:
        standard = by_key.get((str(parcel.land_type), parcel.district_adcode or ""))
        if standard is None or parcel.id in seen:
            continue
        seen.add(parcel.id)
        found.append((parcel, contract, standard))
    return found


def parcel_split(
    amount_fen: int, household_share_bp: int, holdings: dict[uuid.UUID, int]
) -> tuple[int, dict[uuid.UUID, int]]:
    """(cooperative, {household: fen}) of one parcel's compensation; sums to ``amount_fen``."""
    if not holdings or amount_fen <= 0:
        return amount_fen, {}
    households_total = round_half_up(Fraction(amount_fen * household_share_bp, BASIS_POINTS))
    households_total = min(households_total, amount_fen)
    if households_total == 0:
        return amount_fen, {}
    weights = {key: Fraction(share) for key, share in holdings.items()}
    parts = apportion(households_total, weights, sorted(holdings, key=str))
    return amount_fen - households_total, parts


def draft_round(session: Session, *, actor: Actor, year: int) -> PayoutRound:
    """Compute (or recompute) the fund's round for ``year`` from its standards."""
    fund_id = _fund(actor)
    _refuse_if_paid(session, fund_id, year)
    standards = list(
        session.exec(
            select(CompensationStandard)
            .where(col(CompensationStandard.fund_id) == fund_id)
            .where(col(CompensationStandard.year) == year)
        ).all()
    )
    if not standards:
        raise InvalidStandard(
            N_("Set the standards of {year} before drafting its payout round."),
            year=year,
            errors=[{"field": "year", "message": "no standards"}],
        )
    payout_round = session.exec(
        select(PayoutRound)
        .where(col(PayoutRound.fund_id) == fund_id)
        .where(col(PayoutRound.year) == year)
        .with_for_update()
    ).one_or_none()
    if payout_round is None:
        payout_round = PayoutRound(fund_id=fund_id, year=year, created_by=actor.ref)
        session.add(payout_round)
        session.flush()
    else:
        session.execute(
            delete(PayoutRoundLine).where(col(PayoutRoundLine.round_id) == payout_round.id)
        )
    eligible = _eligible(session, standards)
    holdings: dict[uuid.UUID, dict[uuid.UUID, int]] = {}
    if eligible:
        for holding in session.exec(
            select(ParcelHolding).where(
                col(ParcelHolding.parcel_id).in_([parcel.id for parcel, _, _ in eligible])
            )
        ).all():
            holdings.setdefault(holding.parcel_id, {})[holding.household_id] = holding.share_bp
    total = 0
    for parcel, contract, standard in eligible:
        area = area_mu(parcel)
        amount = round_half_up(standard.rate_fen_per_mu_year * area)
        coop_part, household_parts = parcel_split(
            amount, contract.household_share_bp, holdings.get(parcel.id, {})
        )
        area_text = _area_text(area)
        session.add(
            PayoutRoundLine(
                round_id=payout_round.id,
                parcel_id=parcel.id,
                standard_id=standard.id,
                kind=PayoutKind.cooperative,
                cooperative_id=parcel.cooperative_id,
                area_mu=area_text,
                amount_fen=coop_part,
            )
        )
        for household_id, part in sorted(household_parts.items(), key=lambda i: str(i[0])):
            session.add(
                PayoutRoundLine(
                    round_id=payout_round.id,
                    parcel_id=parcel.id,
                    standard_id=standard.id,
                    kind=PayoutKind.household,
                    cooperative_id=parcel.cooperative_id,
                    household_id=household_id,
                    area_mu=area_text,
                    amount_fen=part,
                )
            )
        total += amount
    payout_round.parcels = len(eligible)
    payout_round.total_fen = total
    session.add(payout_round)
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action="payout_round.drafted",
        subject_type="payout_round",
        subject_id=payout_round.id,
        payload={"year": year, "parcels": len(eligible), "total_fen": total},
    )
    return payout_round


def _area_text(area: Fraction) -> str:
    if area.denominator == 1:
        return str(area.numerator)
    return f"{area.numerator}/{area.denominator}"


def get_round(session: Session, *, actor: Actor, round_id: uuid.UUID) -> PayoutRound:
    found = session.get(PayoutRound, round_id)
    if found is None or not (actor.is_platform_admin or found.fund_id == actor.organisation_id):
        raise not_found("payout round", round_id)
    return found


def round_lines(session: Session, round_id: uuid.UUID) -> list[PayoutRoundLine]:
    return list(
        session.exec(
            select(PayoutRoundLine)
            .where(col(PayoutRoundLine.round_id) == round_id)
            .order_by(col(PayoutRoundLine.parcel_id), col(PayoutRoundLine.kind))
        ).all()
    )


def rounds_of(session: Session, *, actor: Actor) -> list[PayoutRound]:
    fund_id = _fund(actor)
    return list(
        session.exec(
            select(PayoutRound)
            .where(col(PayoutRound.fund_id) == fund_id)
            .order_by(col(PayoutRound.year).desc())
        ).all()
    )


def pay_round(session: Session, *, actor: Actor, round_id: uuid.UUID) -> PayoutRound:
    """Pay a drafted round out of the fund's account (all recipients, or none)."""
    fund_id = _fund(actor)
    payout_round = session.exec(
        select(PayoutRound)
        .where(col(PayoutRound.id) == round_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if payout_round is None or payout_round.fund_id != fund_id:
        raise not_found("payout round", round_id)
    if payout_round.status != RoundStatus.draft:
        raise RoundConflict(
            N_("The payout round of {year} is paid already."), year=payout_round.year
        )
    lines = round_lines(session, payout_round.id)
    per_owner: dict[str, int] = {}
    for line in lines:
        owner = (
            household_owner(line.household_id)
            if line.household_id is not None
            else org_owner(line.cooperative_id)
        )
        per_owner[owner] = per_owner.get(owner, 0) + line.amount_fen
    source = cny_account(session, org_owner(fund_id))
    transfers = [
        wallet.Transfer(source, cny_account(session, owner), amount)
        for owner, amount in sorted(per_owner.items())
        if amount > 0
    ]
    first: uuid.UUID | None = None
    for index, start in enumerate(range(0, len(transfers), MAX_TRANSFERS_PER_ENTRY)):
        entry = wallet.post_entry(
            session,
            code="compensation",
            transfers=transfers[start : start + MAX_TRANSFERS_PER_ENTRY],
            idempotency_key=f"payout-round:{payout_round.id}#{index}",
            scope="market",
            metadata={"payout_round": str(payout_round.id), "year": payout_round.year},
        )
        first = first or entry.id
    payout_round.status = RoundStatus.paid
    payout_round.paid_at = utcnow()
    payout_round.journal_entry_id = first
    session.add(payout_round)
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action="payout_round.paid",
        subject_type="payout_round",
        subject_id=payout_round.id,
        payload={
            "year": payout_round.year,
            "total_fen": payout_round.total_fen,
            "recipients": len(transfers),
        },
    )
    return payout_round
