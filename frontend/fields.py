"""Reading typed values from HTML form fields; a bad value is an error next to its field."""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum
from typing import TypeVar

from tanhui import numbers
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


def whole(
    value: str, field: str, *, minimum: int | None = None, maximum: int = numbers.INT4_MAX
) -> int:
    """A whole number as typed (full-width digits too), bounded by its column (INTEGER unless
    ``maximum`` says otherwise)."""
    try:
        return numbers.read_whole(
            value, minimum=-numbers.INT4_MAX if minimum is None else minimum, maximum=maximum
        )
    except numbers.NumberRefused as refused:
        raise invalid(field, refused.message, **refused.params) from None


def fen(value: str, field: str, *, maximum: int = numbers.MAX_FEN) -> int:
    """Yuan as typed (``371900``, ``371,900.50``, ``¥73.41``) → positive integer fen."""
    try:
        return numbers.read_yuan(value, maximum_fen=maximum)
    except numbers.NumberRefused as refused:
        raise invalid(field, refused.message, **refused.params) from None


def basis_points(value: str, field: str) -> int:
    """A yearly rate in per cent as typed (``3.85``, ``3.85%``, ``３.８５``) → basis points."""
    try:
        rate = numbers.read_decimal(value.replace("%", ""), places=2, minimum=0, maximum=100)
    except numbers.NumberRefused as refused:
        raise invalid(field, refused.message, **refused.params) from None
    return int(rate * 100)


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
