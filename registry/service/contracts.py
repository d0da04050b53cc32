"""Collection contracts (收储合同), ETS prices and the collection payments to households.

A contract binds a cooperative and a village's households over their parcels for a term; every
settlement period the cooperative pays the households for the assumed sequestration at the
ETS-indexed (or a fixed) price. Payments are made in advance, on the first day of each period
(Anji paid at signing in December 2021), at the price of the N trading days before that day, so
running the settlement late changes nothing. Arithmetic and rounding: :mod:`registry.pricing`.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from registry import ledger, pricing
from registry.errors import (
    AlreadySettled,
    DuplicateCode,
    ForestRightInUse,
    InvalidContract,
    InvalidPriceFile,
    InvalidTransition,
    NotEnoughPrices,
    PledgeConflict,
    RegistryNotFound,
)
from registry.models import (
    OPEN_PLEDGE_STATUSES,
    Contract,
    ContractParcel,
    ContractStatus,
    EtsPrice,
    Household,
    Parcel,
    ParcelHolding,
    Pledge,
    PriceRule,
    ProjectParcel,
    Settlement,
    SettlementLine,
)
from registry.service import parcels as parcel_service
from registry.service.actors import Actor, ensure_own, require
from registry.service.households import household_owner
from tanhui import audit
from tanhui.db import utcnow
from tanhui.i18n import N_
from tanhui.models import OrgKind, Role

MAX_TERM_YEARS = 70
MAX_PRICE_WINDOW_DAYS = 250
MAX_PRICE_ROWS = 20_000
MAX_PRICE_STALENESS_DAYS = 15  # the last close before a settlement is at most this old
MAX_PRICE_FEN = 100_000_00  # 100,000 CNY/t: anything above is a typo
DATE_COLUMNS = ("date", "trade_date", "日期", "交易日期")
CLOSE_COLUMNS = ("close", "close_price", "closing_price", "收盘价")


def today() -> date:
    """Today in China (settlement dates are Asia/Shanghai calendar days)."""
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _decimal_text(value: Fraction) -> str:
    """Exact decimal when it terminates (21392, 5425.5), else ``p/q``."""
    number = Decimal(value.numerator) / Decimal(value.denominator)
    if Fraction(number) == value:
        return format(number.normalize(), "f")
    return f"{value.numerator}/{value.denominator}"


# --- contracts -----------------------------------------------------------------------------


def create_contract(
    session: Session,
    *,
    actor: Actor,
    cooperative_id: uuid.UUID,
    code: str,
    counterparty: str,
    start_date: date,
    term_years: int,
    rate_g_per_mu_year: int,
    settlement_period_years: int,
    household_share_bp: int,
    parcel_ids: Sequence[uuid.UUID],
    price_rule: PriceRule = PriceRule.ets_indexed,
    fixed_price_fen_per_t: int | None = None,
    price_window_days: int = 30,
) -> Contract:
    require(actor, OrgKind.cooperative, action="Signing a collection contract", admin=False)
    ensure_own(actor, cooperative_id, what="cooperative", object_id=cooperative_id)
    code = code.strip()
    problems: list[dict[str, str]] = []
    if not code or len(code) > 40:
        problems.append({"field": "code", "message": "1 to 40 characters"})
    if not counterparty.strip():
        problems.append({"field": "counterparty", "message": "required"})
    if not 1 <= term_years <= MAX_TERM_YEARS:
        problems.append({"field": "term_years", "message": f"1 to {MAX_TERM_YEARS}"})
    if not 1 <= settlement_period_years <= max(term_years, 1) or (
        term_years % max(settlement_period_years, 1)
    ):
        problems.append(
            {"field": "settlement_period_years", "message": "divides the term in whole periods"}
        )
    if rate_g_per_mu_year <= 0:
        problems.append({"field": "rate_g_per_mu_year", "message": "positive"})
    if not 0 <= household_share_bp <= pricing.BASIS_POINTS:
        problems.append({"field": "household_share_bp", "message": "0 to 10000"})
    if not 1 <= price_window_days <= MAX_PRICE_WINDOW_DAYS:
        problems.append({"field": "price_window_days", "message": f"1 to {MAX_PRICE_WINDOW_DAYS}"})
    if price_rule == PriceRule.fixed and (fixed_price_fen_per_t or 0) <= 0:
        problems.append({"field": "fixed_price_fen_per_t", "message": "positive for a fixed price"})
    wanted = list(dict.fromkeys(parcel_ids))
    if not wanted:
        problems.append({"field": "parcel_ids", "message": "at least one parcel"})
    if problems:
        raise InvalidContract(
            N_("The contract is not valid: {fields}."),
            fields=", ".join(item["field"] for item in problems),
            errors=problems,
        )
    if session.exec(
        select(Contract.id)
        .where(col(Contract.cooperative_id) == cooperative_id)
        .where(col(Contract.code) == code)
    ).first():
        raise DuplicateCode(N_("The contract code {code} is already taken."), code=code)
    parcels = _parcels(session, wanted)
    if len(parcels) != len(wanted) or any(p.cooperative_id != cooperative_id for p in parcels):
        raise RegistryNotFound(N_("No {what} {id}."), what="parcel", id="(one of parcel_ids)")
    held = {h.parcel_id for h in parcel_service.holdings_of(session, wanted)}
    without = sorted(p.code for p in parcels if p.id not in held)
    if without:
        raise InvalidContract(
            N_("Parcels {parcels} have no household holding them."),
            parcels=", ".join(without[:20]),
        )
    _check_parcels_for_contract(session, parcels)
    contract = Contract(
        cooperative_id=cooperative_id,
        code=code,
        counterparty=counterparty.strip()[:200],
        start_date=start_date,
        term_years=term_years,
        rate_g_per_mu_year=rate_g_per_mu_year,
        price_rule=price_rule,
        fixed_price_fen_per_t=fixed_price_fen_per_t if price_rule == PriceRule.fixed else None,
        price_window_days=price_window_days,
        settlement_period_years=settlement_period_years,
        household_share_bp=household_share_bp,
    )
    session.add(contract)
    session.flush()
    for parcel in parcels:
        session.add(ContractParcel(contract_id=contract.id, parcel_id=parcel.id))
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action="contract.signed",
        subject_type="contract",
        subject_id=contract.id,
        payload={
            "code": code,
            "parcels": len(parcels),
            "area_mu": _decimal_text(contract_area_mu(session, contract.id)),
            "term_years": term_years,
        },
    )
    return contract


def _parcels(session: Session, ids: Sequence[uuid.UUID]) -> list[Parcel]:
    found: list[Parcel] = []
    for start in range(0, len(ids), 1000):
        found.extend(
            session.exec(select(Parcel).where(col(Parcel.id).in_(ids[start : start + 1000]))).all()
        )
    return found


def _check_parcels_for_contract(session: Session, parcels: Sequence[Parcel]) -> None:
    """A parcel sits under at most one active contract; a forest-right certificate number
    (normalised, one parcel ever) under one contract ever, terminated ones included."""
    ids = [p.id for p in parcels]
    under = (
        select(Parcel.code, Parcel.forest_right_cert, Contract.code, Contract.status)
        .join(ContractParcel, col(ContractParcel.parcel_id) == col(Parcel.id))
        .join(Contract, col(Contract.id) == col(ContractParcel.contract_id))
    )
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        clash = session.exec(
            under.where(col(Parcel.id).in_(chunk)).where(
                col(Contract.status) == ContractStatus.active
            )
        ).first()
        if clash is not None:
            raise ForestRightInUse(
                N_("Parcel {parcel} is already under active contract {contract}."),
                parcel=clash[0],
                contract=clash[2],
            )
        clash = session.exec(
            under.where(col(Parcel.id).in_(chunk)).where(col(Parcel.forest_right_cert).is_not(None))
        ).first()
        if clash is not None:
            raise ForestRightInUse(
                N_(
                    "Forest-right certificate {certificate} was already under contract"
                    " {contract} ({status}, parcel {parcel}); a certificate sits under one"
                    " contract ever."
                ),
                certificate=clash[1],
                contract=clash[2],
                status=str(clash[3]),
                parcel=clash[0],
            )
    for parcel in parcels:
        parcel_service.check_area(
            session,
            parcel.cooperative_id,
            code=parcel.code,
            registered_centimu=parcel.registered_area_centimu,
            area_m2=parcel.area_m2,
        )


def get_contract(session: Session, *, actor: Actor, contract_id: uuid.UUID) -> Contract:
    contract = session.get(Contract, contract_id)
    if contract is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="contract", id=str(contract_id))
    ensure_own(actor, contract.cooperative_id, what="contract", object_id=contract_id)
    return contract


def list_contracts(session: Session, *, actor: Actor, cooperative_id: uuid.UUID) -> list[Contract]:
    require(actor, OrgKind.cooperative, minimum=Role.viewer, action="Listing contracts")
    ensure_own(actor, cooperative_id, what="cooperative", object_id=cooperative_id)
    return list(
        session.exec(
            select(Contract)
            .where(col(Contract.cooperative_id) == cooperative_id)
            .order_by(col(Contract.code))
        ).all()
    )


def terminate_contract(
    session: Session, *, actor: Actor, contract_id: uuid.UUID, reason: str
) -> Contract:
    require(actor, OrgKind.cooperative, minimum=Role.owner, action="Terminating a contract")
    contract = get_contract(session, actor=actor, contract_id=contract_id)
    if contract.status != ContractStatus.active:
        raise InvalidTransition(N_("Contract {code} is not active."), code=contract.code)
    if not reason.strip():
        raise InvalidContract(N_("A reason is required."))
    pledged = session.exec(
        select(Pledge.id)
        .where(col(Pledge.contract_id) == contract.id)
        .where(col(Pledge.status).in_(OPEN_PLEDGE_STATUSES))
    ).first()
    if pledged is not None:
        raise PledgeConflict(
            N_("Contract {code} secures an active pledge; the lender must release it first."),
            code=contract.code,
        )
    contract.status = ContractStatus.terminated
    contract.terminated_at = utcnow()
    contract.termination_reason = reason.strip()
    session.add(contract)
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action="contract.terminated",
        subject_type="contract",
        subject_id=contract.id,
        payload={"code": contract.code, "reason": contract.termination_reason},
    )
    return contract


# --- areas and shares ----------------------------------------------------------------------


def household_areas(session: Session, contract_id: uuid.UUID) -> dict[uuid.UUID, Fraction]:
    """Each household's area under the contract in mu: parcel area × its share."""
    rows = session.exec(
        select(Parcel, ParcelHolding.household_id, ParcelHolding.share_bp)
        .join(ContractParcel, col(ContractParcel.parcel_id) == col(Parcel.id))
        .join(ParcelHolding, col(ParcelHolding.parcel_id) == col(Parcel.id))
        .where(col(ContractParcel.contract_id) == contract_id)
    ).all()
    areas: dict[uuid.UUID, Fraction] = {}
    for parcel, household_id, share in rows:
        part = parcel_service.area_mu(parcel) * Fraction(share, pricing.BASIS_POINTS)
        areas[household_id] = areas.get(household_id, Fraction(0)) + part
    return areas


def contract_area_mu(session: Session, contract_id: uuid.UUID) -> Fraction:
    parcels = session.exec(
        select(Parcel)
        .join(ContractParcel, col(ContractParcel.parcel_id) == col(Parcel.id))
        .where(col(ContractParcel.contract_id) == contract_id)
    ).all()
    return sum((parcel_service.area_mu(p) for p in parcels), Fraction(0))


def household_revenue_split(
    session: Session, *, project_id: uuid.UUID, net_proceeds_fen: int
) -> dict[uuid.UUID, int]:
    """The households' part of a sale's net proceeds for a project (for the market).

    Each parcel of the project weighs by its area; the households holding it get the contract's
    ``household_share_bp`` of that weight, split by their shares. The households' total is
    rounded half up to the fen, then apportioned by largest remainder (as settlements are).
    """
    rows = session.exec(
        select(
            Parcel, ParcelHolding.household_id, ParcelHolding.share_bp, Contract.household_share_bp
        )
        .join(ProjectParcel, col(ProjectParcel.parcel_id) == col(Parcel.id))
        .join(ParcelHolding, col(ParcelHolding.parcel_id) == col(Parcel.id))
        .join(ContractParcel, col(ContractParcel.parcel_id) == col(Parcel.id))
        .join(Contract, col(Contract.id) == col(ContractParcel.contract_id))
        .where(col(ProjectParcel.project_id) == project_id)
        .where(col(Contract.status) == ContractStatus.active)
    ).all()
    project_area = sum(
        (
            parcel_service.area_mu(p)
            for p in session.exec(
                select(Parcel)
                .join(ProjectParcel, col(ProjectParcel.parcel_id) == col(Parcel.id))
                .where(col(ProjectParcel.project_id) == project_id)
            ).all()
        ),
        Fraction(0),
    )
    weights: dict[uuid.UUID, Fraction] = {}
    for parcel, household_id, share_bp, contract_bp in rows:
        weight = (
            parcel_service.area_mu(parcel)
            * Fraction(share_bp, pricing.BASIS_POINTS)
            * Fraction(contract_bp, pricing.BASIS_POINTS)
        )
        weights[household_id] = weights.get(household_id, Fraction(0)) + weight
    if not weights or project_area == 0 or net_proceeds_fen <= 0:
        return {}
    total = pricing.round_half_up(
        Fraction(net_proceeds_fen) * sum(weights.values(), Fraction(0)) / project_area
    )
    if total == 0:
        return {}
    order = sorted(weights, key=str)
    return pricing.apportion(total, weights, order)


def prepaid_price_fen_per_t(session: Session, *, project_id: uuid.UUID, vintage: int) -> Fraction:
    """The collection price per tonne the cooperative prepaid its households for the project's
    tonnes of ``vintage``, which it recovers first from a sale (the waterfall, ADR 0041).

    Each parcel of the project weighs by its area; a parcel's price is that of its contract's
    collection payment whose period overlaps the vintage year most (none paid: nothing prepaid).
    """
    parcels = session.exec(
        select(Parcel, ContractParcel.contract_id)
        .join(ProjectParcel, col(ProjectParcel.parcel_id) == col(Parcel.id))
        .join(ContractParcel, col(ContractParcel.parcel_id) == col(Parcel.id), isouter=True)
        .where(col(ProjectParcel.project_id) == project_id)
    ).all()
    contract_ids = {contract_id for _, contract_id in parcels if contract_id is not None}
    first, last = date(vintage, 1, 1), date(vintage, 12, 31)
    price: dict[uuid.UUID, tuple[int, int, int]] = {}  # contract -> (overlap, -sequence, fen)
    if contract_ids:
        for paid in session.exec(
            select(Settlement).where(col(Settlement.contract_id).in_(sorted(contract_ids)))
        ).all():
            overlap = (min(paid.period_end, last) - max(paid.period_start, first)).days + 1
            if overlap <= 0:
                continue
            candidate = (overlap, -paid.sequence, paid.price_fen_per_t)
            price[paid.contract_id] = max(price.get(paid.contract_id, candidate), candidate)
    area = Fraction(0)
    weighted = Fraction(0)
    seen: set[uuid.UUID] = set()
    for parcel, contract_id in parcels:
        if parcel.id in seen:
            continue
        seen.add(parcel.id)
        mu = parcel_service.area_mu(parcel)
        area += mu
        if contract_id in price:
            weighted += mu * price[contract_id][2]
    return weighted / area if area else Fraction(0)


def project_household_share_bp(session: Session, project_id: uuid.UUID) -> int | None:
    """The households' share of net proceeds (basis points) under the project's active
    contracts, as the project and listing pages show it: the largest when its parcels come
    under several contracts; None when none does."""
    shares = session.exec(
        select(Contract.household_share_bp)
        .join(ContractParcel, col(ContractParcel.contract_id) == col(Contract.id))
        .join(ProjectParcel, col(ProjectParcel.parcel_id) == col(ContractParcel.parcel_id))
        .where(col(ProjectParcel.project_id) == project_id)
        .where(col(Contract.status) == ContractStatus.active)
    ).all()
    return max(shares) if shares else None


# --- ETS prices ----------------------------------------------------------------------------


def _fen(text: str, line: int) -> int:
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        raise InvalidPriceFile(
            N_("Line {line}: {value} is not a price."), line=line, value=text
        ) from None
    if not value.is_finite() or not 0 < value * 100 <= MAX_PRICE_FEN:
        raise InvalidPriceFile(N_("Line {line}: {value} is not a price."), line=line, value=text)
    fen = int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if fen <= 0:
        raise InvalidPriceFile(N_("Line {line}: {value} is not a price."), line=line, value=text)
    return fen


def import_ets_prices(session: Session, *, actor: Actor, csv_text: str, source: str = "") -> int:
    """Import closing prices (CNY/t) from CSV with a date and a close column; all or nothing.

    A date already imported takes the new price (corrections happen); returns the rows read.
    """
    require(actor, OrgKind.authority, action="Importing ETS prices")
    reader = csv.DictReader(io.StringIO(csv_text.lstrip("\ufeff")))
    header = {name.strip().lower(): name for name in (reader.fieldnames or [])}
    date_column = next((header[c] for c in DATE_COLUMNS if c in header), None)
    close_column = next((header[c] for c in CLOSE_COLUMNS if c in header), None)
    if date_column is None or close_column is None:
        raise InvalidPriceFile(
            N_("The CSV needs a date column and a close column (e.g. date,close)."),
        )
    prices: dict[date, int] = {}
    for line, row in enumerate(reader, start=2):
        if line > MAX_PRICE_ROWS + 1:
            raise InvalidPriceFile(N_("At most {maximum} rows."), maximum=MAX_PRICE_ROWS)
        raw_date = (row.get(date_column) or "").strip()
        if not raw_date and not (row.get(close_column) or "").strip():
            continue
        try:
            day = date.fromisoformat(raw_date.replace("/", "-"))
        except ValueError:
            raise InvalidPriceFile(
                N_("Line {line}: {value} is not a date (YYYY-MM-DD)."), line=line, value=raw_date
            ) from None
        prices[day] = _fen(row.get(close_column) or "", line)
    if not prices:
        raise InvalidPriceFile(N_("The CSV holds no prices."))
    existing = {
        item.trade_date: item
        for item in session.exec(
            select(EtsPrice).where(col(EtsPrice.trade_date).in_(list(prices)))
        ).all()
    }
    for day, fen in prices.items():
        record = existing.get(day) or EtsPrice(trade_date=day, close_fen_per_t=fen)
        record.close_fen_per_t = fen
        record.source = source[:200]
        record.imported_at = utcnow()
        session.add(record)
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action="ets_prices.imported",
        subject_type="ets_price",
        subject_id=f"{min(prices)}..{max(prices)}",
        payload={"rows": len(prices), "source": source[:200]},
    )
    return len(prices)


@dataclass(frozen=True)
class AveragePrice:
    price_fen_per_t: int
    first: date
    last: date
    days: int


def average_price(session: Session, *, before: date, days: int) -> AveragePrice:
    """Mean close of the ``days`` trading days strictly before ``before``, half up to the fen."""
    rows = session.exec(
        select(EtsPrice)
        .where(col(EtsPrice.trade_date) < before)
        .order_by(col(EtsPrice.trade_date).desc())
        .limit(days)
    ).all()
    if rows and (before - rows[0].trade_date).days > MAX_PRICE_STALENESS_DAYS:
        raise NotEnoughPrices(
            N_("The latest ETS price before {day} is from {latest}: import current prices."),
            day=before.isoformat(),
            latest=rows[0].trade_date.isoformat(),
        )
    if len(rows) < days:
        raise NotEnoughPrices(
            N_("Only {found} ETS trading days before {day}; the price needs {days}."),
            found=len(rows),
            day=before.isoformat(),
            days=days,
        )
    return AveragePrice(
        price_fen_per_t=pricing.average_price_fen([row.close_fen_per_t for row in rows]),
        first=rows[-1].trade_date,
        last=rows[0].trade_date,
        days=days,
    )


# --- settlements ---------------------------------------------------------------------------


def period_of(contract: Contract, sequence: int) -> tuple[date, date]:
    """(first day, last day) of settlement period ``sequence`` (1-based)."""
    years = contract.settlement_period_years
    start = add_years(contract.start_date, (sequence - 1) * years)
    end = add_years(contract.start_date, sequence * years)
    return start, date.fromordinal(end.toordinal() - 1)


def periods_due(contract: Contract, on: date) -> list[int]:
    count = contract.term_years // contract.settlement_period_years
    return [k for k in range(1, count + 1) if period_of(contract, k)[0] <= on]


@dataclass(frozen=True)
class SettlementPlan:
    contract_id: uuid.UUID
    sequence: int
    period_start: date
    period_end: date
    price: AveragePrice | None
    price_fen_per_t: int
    area_mu: Fraction
    amount_fen: int
    lines: dict[uuid.UUID, tuple[Fraction, int]]  # household → (area mu, fen)


def plan_settlement(session: Session, contract: Contract, sequence: int) -> SettlementPlan:
    """The figures of one settlement, computed but not posted."""
    start, end = period_of(contract, sequence)
    price: AveragePrice | None = None
    if contract.price_rule == PriceRule.ets_indexed:
        price = average_price(session, before=start, days=contract.price_window_days)
        price_fen = price.price_fen_per_t
    else:
        assert contract.fixed_price_fen_per_t is not None
        price_fen = contract.fixed_price_fen_per_t
    areas = household_areas(session, contract.id)
    area = contract_area_mu(session, contract.id)
    total = pricing.collection_payment_fen(
        price_fen, contract.rate_g_per_mu_year, area, contract.settlement_period_years
    )
    order = sorted(areas, key=str)
    parts = pricing.apportion(total, areas, order) if total and areas else {}
    return SettlementPlan(
        contract_id=contract.id,
        sequence=sequence,
        period_start=start,
        period_end=end,
        price=price,
        price_fen_per_t=price_fen,
        area_mu=area,
        amount_fen=total,
        lines={household: (areas[household], parts.get(household, 0)) for household in order},
    )


def settle(session: Session, *, actor: Actor, contract_id: uuid.UUID, sequence: int) -> Settlement:
    """Pay settlement period ``sequence`` from the cooperative's CNY account to the households'."""
    require(actor, OrgKind.cooperative, action="Settling a contract")
    contract = session.exec(
        select(Contract).where(col(Contract.id) == contract_id).with_for_update()
    ).one_or_none()
    if contract is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="contract", id=str(contract_id))
    ensure_own(actor, contract.cooperative_id, what="contract", object_id=contract_id)
    if contract.status != ContractStatus.active:
        raise InvalidTransition(N_("Contract {code} is not active."), code=contract.code)
    count = contract.term_years // contract.settlement_period_years
    if not 1 <= sequence <= count:
        raise InvalidContract(
            N_("Contract {code} has settlement periods 1 to {count}."),
            code=contract.code,
            count=count,
        )
    done = session.exec(
        select(Settlement)
        .where(col(Settlement.contract_id) == contract.id)
        .where(col(Settlement.sequence) == sequence)
    ).first()
    if done is not None:
        raise AlreadySettled(
            N_("Period {sequence} of contract {code} was settled on {day}."),
            sequence=sequence,
            code=contract.code,
            day=done.created_at.date().isoformat(),
        )
    plan = plan_settlement(session, contract, sequence)
    settlement = Settlement(
        contract_id=contract.id,
        sequence=sequence,
        period_start=plan.period_start,
        period_end=plan.period_end,
        settlement_date=plan.period_start,
        price_fen_per_t=plan.price_fen_per_t,
        price_window_first=plan.price.first if plan.price else None,
        price_window_last=plan.price.last if plan.price else None,
        area_mu=_decimal_text(plan.area_mu),
        amount_fen=plan.amount_fen,
    )
    session.add(settlement)
    session.flush()
    for household_id, (area, fen) in plan.lines.items():
        session.add(
            SettlementLine(
                settlement_id=settlement.id,
                household_id=household_id,
                area_mu=_decimal_text(area),
                amount_fen=fen,
            )
        )
    moves = [
        ledger.Move(f"org:{contract.cooperative_id}", household_owner(household_id), fen)
        for household_id, (_area, fen) in plan.lines.items()
        if fen > 0
    ]
    if moves:
        settlement.journal_entry_id = ledger.post(
            session,
            code="collection_payment",
            asset=ledger.CNY,
            moves=moves,
            metadata={
                "contract": contract.code,
                "settlement": str(settlement.id),
                "sequence": sequence,
            },
            idempotency_key=f"settlement:{contract.id}:{sequence}",
        )
        session.add(settlement)
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action="contract.settled",
        subject_type="contract",
        subject_id=contract.id,
        payload={
            "code": contract.code,
            "sequence": sequence,
            "price_fen_per_t": plan.price_fen_per_t,
            "area_mu": settlement.area_mu,
            "amount_fen": plan.amount_fen,
            "households": len(moves),
        },
    )
    return settlement


def settle_due(session: Session, *, actor: Actor, on: date) -> list[Settlement]:
    """Every unpaid settlement period of every active contract that began on or before ``on``."""
    require(actor, OrgKind.cooperative, action="Settling contracts")
    query = select(Contract).where(col(Contract.status) == ContractStatus.active)
    if not actor.is_platform_admin:
        query = query.where(col(Contract.cooperative_id) == actor.organisation_id)
    made: list[Settlement] = []
    for contract in session.exec(query.order_by(col(Contract.code))).all():
        paid = set(
            session.exec(
                select(Settlement.sequence).where(col(Settlement.contract_id) == contract.id)
            ).all()
        )
        for sequence in periods_due(contract, on):
            if sequence not in paid:
                made.append(
                    settle(session, actor=actor, contract_id=contract.id, sequence=sequence)
                )
    return made


@dataclass(frozen=True)
class ContractSummary:
    area_mu: str
    parcels: int
    households: int


def summary(session: Session, contract: Contract) -> ContractSummary:
    areas = household_areas(session, contract.id)
    parcel_count = len(
        session.exec(
            select(ContractParcel.parcel_id).where(col(ContractParcel.contract_id) == contract.id)
        ).all()
    )
    return ContractSummary(
        area_mu=_decimal_text(contract_area_mu(session, contract.id)),
        parcels=parcel_count,
        households=len(areas),
    )


def unpaid_periods(session: Session, contract: Contract, on: date) -> list[int]:
    paid = set(
        session.exec(
            select(Settlement.sequence).where(col(Settlement.contract_id) == contract.id)
        ).all()
    )
    return [k for k in periods_due(contract, on) if k not in paid]


def settlements_of(session: Session, contract_id: uuid.UUID) -> list[Settlement]:
    return list(
        session.exec(
            select(Settlement)
            .where(col(Settlement.contract_id) == contract_id)
            .order_by(col(Settlement.sequence))
        ).all()
    )


def settlement_lines(
    session: Session, settlement_id: uuid.UUID
) -> list[tuple[SettlementLine, Household]]:
    return [
        (line, household)
        for line, household in session.exec(
            select(SettlementLine, Household)
            .join(Household, col(Household.id) == col(SettlementLine.household_id))
            .where(col(SettlementLine.settlement_id) == settlement_id)
            .order_by(col(Household.village), col(Household.name))
        ).all()
    ]
