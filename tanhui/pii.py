"""Personal data: normalise, seal and blind-index phone numbers, national ids and bank accounts.

Every package that stores personal data goes through these functions, so the rules (what counts
as the same phone number, which key seals which column) live in one place.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from tanhui.crypto import DataProtector
from tanhui.errors import InvalidInput
from tanhui.i18n import N_
from tanhui.settings import get_settings

_CN_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
_E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")
_NATIONAL_ID = re.compile(r"^[0-9]{17}[0-9X]$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


@lru_cache(maxsize=4)
def _protector_for(data_key: bytes) -> DataProtector:
    return DataProtector(data_key)


def protector() -> DataProtector:
    return _protector_for(get_settings().data_key_bytes)


def fold(raw: str) -> str:
    """NFKC, and every decimal digit of any script as its ASCII digit: what a person typed with
    a full-width (１３９) or another script's digits names the same thing as the ASCII form.
    Identifiers go through this before any lookup, blind index or rate limit."""
    text = unicodedata.normalize("NFKC", raw or "")
    return "".join(
        str(unicodedata.decimal(character)) if character.isdecimal() else character
        for character in text
    )


def normalise_phone(raw: str) -> str:
    """``+86`` and 11 digits for mainland mobiles, E.164 otherwise; spaces and dashes ignored;
    full-width and other scripts' digits read as ASCII (:func:`fold`)."""
    digits = re.sub(r"[\s\-()]", "", fold(raw))
    if digits.startswith("0086"):
        digits = "+86" + digits[4:]
    if digits.startswith("+86"):
        digits = digits[3:]
    if _CN_MOBILE.match(digits):
        return "+86" + digits
    if _E164.match(digits):
        return digits
    raise InvalidInput(
        N_("{value} is not a valid mobile phone number."),
        value=_mask(raw),
        errors=[{"field": "phone", "message": "invalid phone number"}],
    )


def normalise_national_id(raw: str) -> str:
    """An 18-character resident identity number (GB 11643-1999) with a valid check digit."""
    value = fold(raw).strip().upper()
    if not _NATIONAL_ID.match(value):
        raise InvalidInput(
            N_("The national id number must have 18 characters."),
            errors=[{"field": "national_id", "message": "must have 18 characters"}],
        )
    total = sum(int(digit) * weight for digit, weight in zip(value[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != value[17]:
        raise InvalidInput(
            N_("The national id number has a wrong check digit."),
            errors=[{"field": "national_id", "message": "wrong check digit"}],
        )
    return value


def _mask(raw: str) -> str:
    """Enough of a value to recognise it in an error, never the whole of it."""
    text = (raw or "").strip()
    if len(text) <= 4:
        return "*" * len(text)
    return text[:3] + "*" * (len(text) - 5) + text[-2:]


def mask_phone(normalised: str) -> str:
    return normalised[:6] + "****" + normalised[-4:] if len(normalised) > 10 else _mask(normalised)


@dataclass(frozen=True)
class Sealed:
    """A sealed value and its blind index, ready to store in two columns."""

    sealed: bytes
    index: str


def seal(value: str, *, context: str) -> Sealed:
    data = protector()
    return Sealed(data.seal(value, context=context), data.blind_index(value, context=context))


def blind_index(value: str, *, context: str) -> str:
    return protector().blind_index(value, context=context)


def unseal(sealed: bytes, *, context: str) -> str:
    return protector().open(sealed, context=context)


PHONE = "phone"
NATIONAL_ID = "national_id"
BANK_ACCOUNT = "bank_account"
CITIZEN_CARD = "citizen_card"
