"""One reader for every number a person or a program sends: amounts, quantities, prices, counts.

Form fields, query parameters and JSON bodies all go through :func:`read_decimal` (directly, or
through the pydantic metadata :class:`Bounded`), so that they agree on what a number is:

- digits with at most one decimal point and a sign; thousands separators and spaces are ignored;
  full-width digits and punctuation (``１２，３４５．５``, typed by Chinese input methods) are read
  as their ASCII forms;
- no exponent (``1e30``), ``NaN`` or infinity: nobody types them, and ``Decimal`` turns them into
  values no column can hold (the 500s of issue 16: ``InvalidOperation``, ``OverflowError``,
  PostgreSQL's ``NumericValueOutOfRange``);
- the magnitude bounded by the column the number lands in (``INT4_MAX`` for ``INTEGER``,
  ``MAX_TONNES``/``MAX_FEN`` far below ``BIGINT``), so the database never sees a value it
  cannot store.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from tanhui.i18n import N_

INT4_MAX = 2**31 - 1  # PostgreSQL INTEGER (SQLModel's default for ``int``)
INT8_MAX = 2**63 - 1  # PostgreSQL BIGINT
MAX_TONNES = 10**12  # every quantity in tonnes: far above any project, far below BIGINT
MAX_AMOUNT = 10**15  # any amount in an asset's smallest unit (fen, grams, points)
MAX_FEN = MAX_AMOUNT  # every amount in fen (10**13 yuan)
MAX_LENGTH = 40  # characters of one number as typed, separators included

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_IGNORED = str.maketrans({",": None, "_": None, " ": None, "\u00a0": None, "'": None})
_MINUS = str.maketrans({"\u2212": "-", "\u2012": "-", "\u2013": "-", "\uff0d": "-"})
_CURRENCY = ("¥", "CNY", "RMB", "元")


class NumberRefused(ValueError):
    """A text that is not a number we accept; ``message`` is a catalogue template."""

    def __init__(self, message: str, **params: Any) -> None:
        self.message = message
        self.params = params
        super().__init__(message.format(**params))


def normalise(text: str) -> str:
    """Full-width forms to ASCII (NFKC), a typographic minus to ``-``, separators removed."""
    return unicodedata.normalize("NFKC", text).translate(_MINUS).translate(_IGNORED).strip()


def read_decimal(
    text: str,
    *,
    places: int,
    minimum: int | Decimal,
    maximum: int | Decimal,
) -> Decimal:
    """``text`` as a decimal with at most ``places`` decimals in ``[minimum, maximum]``."""
    if len(text) > MAX_LENGTH:
        raise NumberRefused(N_("Enter a number of at most {maximum}."), maximum=maximum)
    cleaned = normalise(text)
    if not _NUMBER.fullmatch(cleaned):
        if places == 0:
            raise NumberRefused(N_("Enter a whole number."))
        raise NumberRefused(N_("Enter a number like 1234.5 (digits and one decimal point)."))
    value = Decimal(cleaned)  # exact: construction does not round, whatever the length
    if value < minimum:
        raise NumberRefused(N_("Enter a number of at least {minimum}."), minimum=minimum)
    if value > maximum:
        raise NumberRefused(N_("Enter a number of at most {maximum}."), maximum=maximum)
    if value != value.quantize(Decimal(1).scaleb(-places)):  # bounded above: quantize is exact
        if places == 0:
            raise NumberRefused(N_("Enter a whole number."))
        raise NumberRefused(N_("Enter a number with at most {places} decimals."), places=places)
    return value


def read_whole(text: str, *, minimum: int = 0, maximum: int = INT4_MAX) -> int:
    """``text`` as a whole number in ``[minimum, maximum]`` (``12.0`` is 12; ``12.5`` is not)."""
    return int(read_decimal(text, places=0, minimum=minimum, maximum=maximum))


def read_yuan(text: str, *, minimum_fen: int = 1, maximum_fen: int = MAX_FEN) -> int:
    """Yuan as typed (``371900``, ``371,900.50``, ``¥73.41``, ``３７１９００``) → integer fen."""
    cleaned = normalise(text)
    for symbol in _CURRENCY:
        cleaned = cleaned.replace(symbol, "")
    yuan = read_decimal(
        cleaned,
        places=2,
        minimum=Decimal(minimum_fen) / 100,
        maximum=Decimal(maximum_fen) / 100,
    )
    return int(yuan * 100)


@dataclass(frozen=True)
class Bounded:
    """Pydantic metadata for a number of a JSON body or a query parameter:
    ``Annotated[int, Bounded(1, MAX_TONNES)]`` or ``Annotated[Decimal, Bounded(0, 10**6, 2)]``.

    Strings are read by :func:`read_decimal` (full-width digits, no exponent); JSON numbers are
    checked for being finite and, for ``int``, whole; the bounds are the schema's ``minimum``
    and ``maximum`` (documented in OpenAPI, so clients and schemathesis see them).
    """

    minimum: int | Decimal
    maximum: int | Decimal
    places: int = 0

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        inner: Any = dict(handler(source))
        inner["ge"] = self.minimum
        inner["le"] = self.maximum
        whole = inner.get("type") == "int"
        if not whole:
            inner["decimal_places"] = self.places
            inner["allow_inf_nan"] = False

        def coerce(value: Any) -> Any:
            if isinstance(value, bool):
                raise NumberRefused(N_("Enter a finite number."))
            if isinstance(value, str):
                read = read_decimal(
                    value, places=self.places, minimum=self.minimum, maximum=self.maximum
                )
                return int(read) if whole else read
            if isinstance(value, float):
                if not math.isfinite(value):
                    raise NumberRefused(N_("Enter a finite number."))
                if not self.minimum <= value <= self.maximum:
                    raise NumberRefused(
                        N_("Enter a number between {minimum} and {maximum}."),
                        minimum=self.minimum,
                        maximum=self.maximum,
                    )
            return value

        return core_schema.no_info_before_validator_function(coerce, inner)


# The usual shapes; a field whose column is narrower says its own ``Bounded``.
Tonnes = Annotated[int, Bounded(1, MAX_TONNES)]
Fen = Annotated[int, Bounded(1, MAX_FEN)]
Count = Annotated[int, Bounded(0, INT4_MAX)]
RowId = Annotated[int, Bounded(1, INT8_MAX)]  # a BIGINT key, as in a page's ``before`` cursor
