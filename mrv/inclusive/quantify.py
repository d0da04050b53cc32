"""Quantifying one reported behaviour: plausibility, grams CO2e, points, activity fingerprints.

Pure functions of the report and the factor table: the same report always gives the same
receipt. Quantities are decimals (kilometres, kilograms) kept to thousandths (``quantity_milli``,
an integer); grams and points are integers, rounded down, so a resident is never credited a
fraction of a gram that was not measured.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from enum import StrEnum

from mrv.inclusive.factors import (
    DEFAULT_TABLE,
    LOCAL_TZ,
    FactorTable,
    FactorVersion,
    PointsRate,
    local_date,
)
from mrv.inclusive.scenarios import DAY_WINDOW, ScenarioSpec, spec_for

MILLI = Decimal("0.001")
MAX_AGE = timedelta(days=7)  # Beijing MaaS: claims within 7 days
FUTURE_TOLERANCE = timedelta(minutes=5)  # partners' clocks drift a little


class Problem(StrEnum):
    """Why a report cannot be quantified (the ingestion maps these to its reason codes)."""

    unknown_scenario = "unknown_scenario"  # not a scenario (or variant) Tanhui credits
    no_factor = "no_factor"  # the scenario had no version in force on that day
    implausible = "implausible"  # against a physical rule of the scenario


class Timing(StrEnum):
    ok = "ok"
    too_old = "too_old"
    in_future = "in_future"


@dataclass(frozen=True)
class Report:
    """One behaviour as a partner reports it."""

    scenario: str
    variant: str
    quantity: Decimal
    occurred_at: datetime
    duration_s: int | None = None


@dataclass(frozen=True)
class Quantification:
    """The receipt's figures: which version, how much, how many grams and points."""

    version: FactorVersion
    rate: PointsRate
    day: date
    quantity_milli: int
    grams: int
    points: int


def quantity_milli(quantity: Decimal) -> int | None:
    """The quantity in thousandths (rounded down); None when it is not a finite number."""
    try:
        if not quantity.is_finite():
            return None
        return int(quantity.quantize(MILLI, rounding=ROUND_DOWN) * 1000)
    except (InvalidOperation, ValueError):
        return None


def is_plausible(spec: ScenarioSpec, milli: int, duration_s: int | None) -> bool:
    """A positive quantity, whole where the unit is, within one event's and one hour's limits."""
    if milli <= 0 or milli > spec.max_per_event * 1000:
        return False
    if spec.whole_units and milli % 1000:
        return False
    if duration_s is not None:
        if duration_s <= 0:
            return False
        if spec.max_per_hour is not None and milli * 3600 > spec.max_per_hour * 1000 * duration_s:
            return False
    return True


def timing(occurred_at: datetime, now: datetime) -> Timing:
    """Older than 7 days, or later than now (beyond a small clock tolerance)."""
    if occurred_at > now + FUTURE_TOLERANCE:
        return Timing.in_future
    if occurred_at < now - MAX_AGE:
        return Timing.too_old
    return Timing.ok


def quantify(report: Report, table: FactorTable = DEFAULT_TABLE) -> Quantification | Problem:
    """Grams and points for ``report`` with the version in force on the day it happened."""
    spec = spec_for(report.scenario)
    if spec is None:
        return Problem.unknown_scenario
    variant = report.variant or ""
    if (spec.variant_name is None) != (variant == ""):
        return Problem.unknown_scenario
    day = local_date(report.occurred_at)
    version = table.in_force(report.scenario, variant, day)
    if version is None:
        if not table.history(report.scenario, variant):
            return Problem.unknown_scenario
        return Problem.no_factor
    milli = quantity_milli(report.quantity)
    if milli is None or not is_plausible(spec, milli, report.duration_s):
        return Problem.implausible
    return figures(version, table.points_rate(day), day, milli)


def figures(version: FactorVersion, rate: PointsRate, day: date, milli: int) -> Quantification:
    """Grams = quantity × factor, points = grams × rate (+ participation bonus), rounded down."""
    grams = int((Decimal(milli) * version.grams_per_unit / 1000).to_integral_value(ROUND_DOWN))
    points = grams * rate.points_per_kg // 1000 + version.bonus_points_per_unit * milli // 1000
    return Quantification(
        version=version, rate=rate, day=day, quantity_milli=milli, grams=grams, points=points
    )


def activity_keys(resident: str, scenario: str, variant: str, occurred_at: datetime) -> list[str]:
    """Canonical fingerprints of an act, the same whichever partner reports it.

    Day-window scenarios (walking): one key per resident, scenario and day. Others, with the
    scenario's radius ``R``: time is cut into buckets of ``2R``; an act claims its own bucket and
    the nearer neighbour, so two reports less than ``R`` apart always share a key and reports
    ``4R`` or more apart never do. The ingestion stores claimed keys under a unique index:
    whoever claims a key first owns the act.
    """
    spec = spec_for(scenario)
    radius = spec.dedup_window_s if spec else 300
    base = f"{resident}|{scenario}|{variant}|"
    if radius == DAY_WINDOW:
        buckets = [occurred_at.astimezone(LOCAL_TZ).date().isoformat()]
    else:
        size = 2 * radius
        bucket, offset = divmod(int(occurred_at.timestamp()), size)
        neighbour = bucket + 1 if offset * 2 >= size else bucket - 1
        buckets = [str(bucket), str(neighbour)]
    return [hashlib.sha256((base + item).encode()).hexdigest() for item in buckets]
