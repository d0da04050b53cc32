"""Collection-contract arithmetic (收储): exact rationals, integer fen at the end. Pure.

The rounding rule (ADR 0032):

1. The ETS-indexed price is the mean of the closing prices (integer fen per tonne) of the N
   trading days before the settlement date, rounded half up to the fen: 43.40 CNY/t.
2. The payment rate is that price times the assumed sequestration, kept exact:
   4,340 fen/t × 0.39 t/mu/yr = 1,692.6 fen/mu/yr (16.926 CNY/mu/yr), never rounded.
3. A contract's payment for a settlement period is rate × contract area (mu) × years, computed
   exactly and rounded half up to the fen once: 1,692.6 × 21,392 × 3 = 108,624,297.6 fen
   → 108,624,298 fen = 1,086,242.98 CNY.
4. That total is apportioned to the households by their share of the contract's area with the
   largest-remainder method: each household first gets the floor of its exact share in fen; the
   fen left over (fewer than the number of households) go one each to the households with the
   largest fractional remainders, ties broken by household id. Every fen of the total is paid,
   no household is off by more than one fen from its exact share.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from fractions import Fraction
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

GRAMS_PER_TONNE = 1_000_000
BASIS_POINTS = 10_000


def round_half_up(value: Fraction) -> int:
    """Nearest integer, halves away from zero (the commercial rule, 四舍五入)."""
    if value < 0:
        return -round_half_up(-value)
    return int((value + Fraction(1, 2)).__floor__())


def average_price_fen(closing_prices_fen: Sequence[int]) -> int:
    """Mean closing price, half up to the fen."""
    if not closing_prices_fen:
        raise ValueError("no prices")
    return round_half_up(Fraction(sum(closing_prices_fen), len(closing_prices_fen)))


def payment_rate_fen_per_mu_year(price_fen_per_t: int, rate_g_per_mu_year: int) -> Fraction:
    """Price × sequestration rate, exact (4,340 × 0.39 = 1,692.6 fen/mu/yr)."""
    return Fraction(price_fen_per_t) * Fraction(rate_g_per_mu_year, GRAMS_PER_TONNE)


def collection_payment_fen(
    price_fen_per_t: int, rate_g_per_mu_year: int, area_mu: Fraction, years: int
) -> int:
    """One settlement of a contract, half up to the fen."""
    return round_half_up(
        payment_rate_fen_per_mu_year(price_fen_per_t, rate_g_per_mu_year) * area_mu * years
    )


def apportion(total: int, weights: Mapping[K, Fraction], order: Sequence[K]) -> dict[K, int]:
    """Split integer ``total`` by ``weights`` (largest remainder; ties by position in ``order``).

    The parts sum to ``total`` exactly. Zero weights get zero.
    """
    if total < 0:
        raise ValueError("negative total")
    weight_sum = sum(weights.values(), Fraction(0))
    if weight_sum <= 0:
        raise ValueError("weights must sum to more than zero")
    exact = {key: Fraction(total) * weights[key] / weight_sum for key in order}
    parts = {key: int(value.__floor__()) for key, value in exact.items()}
    left = total - sum(parts.values())
    position = {key: index for index, key in enumerate(order)}
    by_remainder = sorted(order, key=lambda key: (-(exact[key] - parts[key]), position[key]))
    for key in by_remainder[:left]:
        parts[key] += 1
    return parts


def format_cny(fen: int) -> str:
    """``108624298`` → ``"1,086,242.98"``."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan:,}.{cents:02d}"
