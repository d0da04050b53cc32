"""The unified social credit code (统一社会信用代码, GB 32100-2015) of a Chinese organisation.

Eighteen characters of a 31-character alphabet (digits and capitals without I, O, Z, S, V);
the last is a check character computed from the first seventeen. A code that fails the check
was mistyped: it is refused before anyone is asked to confirm it.
"""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
LENGTH = 18


def normalise(code: str) -> str:
    """Upper case, without spaces (as people type it off a business licence)."""
    return "".join(code.split()).upper()


def check_character(body: str) -> str:
    """The check character of the first seventeen characters."""
    total = sum(ALPHABET.index(char) * weight for char, weight in zip(body, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def is_valid(code: str) -> bool:
    """Whether ``code`` (already normalised) is eighteen characters of the alphabet with the
    right check character."""
    if len(code) != LENGTH or any(char not in ALPHABET for char in code):
        return False
    return check_character(code[:17]) == code[17]
