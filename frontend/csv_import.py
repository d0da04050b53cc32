"""Households and collection contracts from CSV, through the registry's services, row by row.

The registry has no CSV import for these, so the portal reads the file here and calls
``create_household`` / ``create_contract`` for each row, each in its own savepoint: a bad row is
reported with its reason (in the reader's language) and the good rows are kept, as the registry's
own parcel import does. Nothing here writes a table directly.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from registry.models import PriceRule
from registry.service import contracts, households, parcels
from registry.service.actors import Actor
from tanhui import numbers
from tanhui.errors import DomainError, InvalidInput
from tanhui.i18n import N_, translate

MAX_CSV_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5_000
MAX_PARCEL_PAGES = 100  # parcel codes are looked up over at most 100 pages of 5,000
MAX_YUAN = numbers.MAX_FEN // 100

HOUSEHOLD_COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("name", "姓名", "户主"),
    "village": ("village", "村", "村名"),
    "national_id": ("national_id", "身份证号", "身份证"),
    "phone": ("phone", "手机", "电话"),
    "bank_account": ("bank_account", "银行账号", "账号"),
}
HOUSEHOLD_REQUIRED = {"name", "village", "national_id"}
CONTRACT_COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("code", "合同编号"),
    "counterparty": ("counterparty", "签约方"),
    "start_date": ("start_date", "起始日期"),
    "term_years": ("term_years", "期限（年）", "期限"),
    "rate_t_per_mu_year": ("rate_t_per_mu_year", "固碳量（吨/亩/年）"),
    "settlement_period_years": ("settlement_period_years", "结算周期（年）"),
    "household_share_pct": ("household_share_pct", "农户分成（%）"),
    "price_rule": ("price_rule", "定价方式"),
    "fixed_price_cny_per_t": ("fixed_price_cny_per_t", "固定价格（元/吨）"),
    "price_window_days": ("price_window_days", "价格窗口（交易日）"),
    "parcels": ("parcels", "地块"),
}
CONTRACT_REQUIRED = set(CONTRACT_COLUMNS) - {
    "price_rule",
    "fixed_price_cny_per_t",
    "price_window_days",
}


@dataclass(frozen=True)
class RowProblem:
    row: int
    key: str  # the row's name or code, to find it in the file
    reason: str  # already translated


@dataclass
class CsvReport:
    rows: int = 0
    imported: int = 0
    rejected: list[RowProblem] = field(default_factory=list)


class CsvFileError(InvalidInput):
    code = "frontend/csv-file"
    title = N_("The CSV file cannot be read")


def _text(content: bytes) -> str:
    if len(content) > MAX_CSV_BYTES:
        raise CsvFileError(N_("The file is larger than {maximum} MiB."), maximum=2)
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise CsvFileError(N_("The file is neither UTF-8 nor GB18030 text."))


def rows_of(
    content: bytes, columns: dict[str, tuple[str, ...]], required: set[str]
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, our field → value) for each row; header names in English or Chinese."""
    reader = csv.reader(io.StringIO(_text(content)))
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise CsvFileError(N_("The file is empty.")) from None
    positions: dict[str, int] = {}
    for ours, aliases in columns.items():
        for alias in aliases:
            if alias.lower() in header:
                positions[ours] = header.index(alias.lower())
                break
    missing = [name for name in columns if name not in positions]
    lacking = [name for name in missing if name in required]
    if lacking:
        raise CsvFileError(
            N_("The header lacks the columns {columns}."), columns=", ".join(lacking)
        )
    for number, values in enumerate(reader, start=2):
        if number - 1 > MAX_ROWS:
            raise CsvFileError(N_("More than {maximum} rows."), maximum=MAX_ROWS)
        if not any(value.strip() for value in values):
            continue
        yield (
            number,
            {
                name: values[index].strip() if index < len(values) else ""
                for name, index in positions.items()
            },
        )


def _each_row(
    session: Session,
    report: CsvReport,
    rows: Iterator[tuple[int, dict[str, str]]],
    key: str,
    work: Callable[[dict[str, str]], Any],
    locale: str,
) -> None:
    for number, values in rows:
        report.rows += 1
        savepoint = session.begin_nested()
        try:
            work(values)
            savepoint.commit()
            report.imported += 1
        except DomainError as error:
            savepoint.rollback()
            reason = translate(error.message, locale, **error.params)
            report.rejected.append(RowProblem(number, values.get(key, ""), reason))


def import_households(
    session: Session, *, actor: Actor, cooperative_id: uuid.UUID, content: bytes, locale: str
) -> CsvReport:
    report = CsvReport()

    def one(values: dict[str, str]) -> None:
        households.create_household(
            session,
            actor=actor,
            cooperative_id=cooperative_id,
            name=values["name"],
            village=values["village"],
            national_id=values["national_id"],
            phone=values.get("phone") or None,
            bank_account=values.get("bank_account") or None,
        )

    _each_row(
        session,
        report,
        rows_of(content, HOUSEHOLD_COLUMNS, HOUSEHOLD_REQUIRED),
        "name",
        one,
        locale,
    )
    return report


def parcel_ids_by_code(
    session: Session, *, actor: Actor, cooperative_id: uuid.UUID
) -> dict[str, uuid.UUID]:
    found: dict[str, uuid.UUID] = {}
    after = None
    for _ in range(MAX_PARCEL_PAGES):
        page = parcels.list_parcels(
            session, actor=actor, cooperative_id=cooperative_id, after=after, limit=5_000
        )
        found.update({parcel.code: parcel.id for parcel in page})
        if len(page) < 5_000:
            break
        after = page[-1].id
    return found


def _invalid(field: str, message: str, **params: Any) -> InvalidInput:
    return InvalidInput(message, errors=[{"field": field, "message": "invalid"}], **params)


def _decimal(
    values: dict[str, str], name: str, *, places: int = 6, maximum: int = 10**9
) -> Decimal:
    try:
        return numbers.read_decimal(values.get(name, ""), places=places, minimum=0, maximum=maximum)
    except numbers.NumberRefused as refused:
        raise _invalid(name, refused.message, **refused.params) from None


def _whole(values: dict[str, str], name: str) -> int:
    try:
        return numbers.read_whole(values.get(name, ""))
    except numbers.NumberRefused as refused:
        raise _invalid(name, refused.message, **refused.params) from None


def import_contracts(
    session: Session, *, actor: Actor, cooperative_id: uuid.UUID, content: bytes, locale: str
) -> CsvReport:
    report = CsvReport()
    codes = parcel_ids_by_code(session, actor=actor, cooperative_id=cooperative_id)

    def one(values: dict[str, str]) -> None:
        try:
            start = date.fromisoformat(values["start_date"])
        except ValueError:
            raise _invalid(
                "start_date",
                N_("Column {column} must be a date like 2022-01-01."),
                column="start_date",
            ) from None
        wanted = values["parcels"].replace(";", " ").replace(",", " ").split()
        unknown = [code for code in wanted if code not in codes]
        if unknown:
            raise _invalid(
                "parcels",
                N_("No registered parcel has the code {codes}."),
                codes=", ".join(unknown[:10]),
            )
        rule_text = (values.get("price_rule") or "ets_indexed").strip().lower()
        try:
            rule = PriceRule(rule_text)
        except ValueError:
            raise _invalid("price_rule", N_("The price rule is ets_indexed or fixed.")) from None
        fixed = None
        if rule == PriceRule.fixed:
            fixed = int(_decimal(values, "fixed_price_cny_per_t", places=2, maximum=MAX_YUAN) * 100)
        rate = _decimal(values, "rate_t_per_mu_year") * 1_000_000
        share = _decimal(values, "household_share_pct", places=2, maximum=100) * 100
        if rate != rate.to_integral_value() or share != share.to_integral_value():
            raise _invalid(
                "rate_t_per_mu_year",
                N_("The rate has at most 6 decimals and the share at most 2."),
            )
        contracts.create_contract(
            session,
            actor=actor,
            cooperative_id=cooperative_id,
            code=values["code"],
            counterparty=values["counterparty"],
            start_date=start,
            term_years=_whole(values, "term_years"),
            rate_g_per_mu_year=int(rate),
            settlement_period_years=_whole(values, "settlement_period_years"),
            household_share_bp=int(share),
            parcel_ids=[codes[code] for code in wanted],
            price_rule=rule,
            fixed_price_fen_per_t=fixed,
            price_window_days=_whole(values, "price_window_days")
            if values.get("price_window_days")
            else 30,
        )

    _each_row(
        session, report, rows_of(content, CONTRACT_COLUMNS, CONTRACT_REQUIRED), "code", one, locale
    )
    return report
