"""Reading typed values from HTML form fields; a bad value is an error next to its field."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import TypeVar

from tanhui.errors import InvalidInput
from tanhui.i18n import N_

E = TypeVar("E", bound=StrEnum)


def invalid(field: str, message: str, **params: object) -> InvalidInput:
    return InvalidInput(message, errors=[{"field": field, "message": "invalid"}], **params)


def required_date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise invalid(field, N_("Enter a date like 2024-12-31.")) from None


def optional_date(value: str, field: str) -> date | None:
    return required_date(value, field) if value.strip() else None


def whole(value: str, field: str, *, minimum: int | None = None) -> int:
    try:
        number = int(value.strip().replace(",", ""))
    except ValueError:
        raise invalid(field, N_("Enter a whole number.")) from None
    if minimum is not None and number < minimum:
        raise invalid(field, N_("Enter a number of at least {minimum}."), minimum=minimum)
    return number


MAX_YUAN = Decimal(10**13)  # 10**15 fen: far above any real amount, far below 64 bits


def fen(value: str, field: str) -> int:
    """Yuan as typed (``371900`` or ``371,900.50``) → integer fen."""
    try:
        amount = Decimal(value.strip().replace(",", "").replace("¥", ""))
    except InvalidOperation:
        raise invalid(field, N_("Enter an amount in yuan, e.g. 371900.00.")) from None
    if not amount.is_finite() or amount > MAX_YUAN:  # "NaN", "Infinity", "1e30"
        raise invalid(field, N_("Enter an amount in yuan, e.g. 371900.00."))
    if amount <= 0 or amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise invalid(field, N_("Enter a positive amount with at most two decimals."))
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def identifier(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise invalid(field, N_("Choose one of the options.")) from None


def choice(enum: type[E], value: str, field: str) -> E:
    try:
        return enum(value.strip())
    except ValueError:
        raise invalid(field, N_("Choose one of the options.")) from None
