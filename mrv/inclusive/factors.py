"""Versioned emission-factor tables for residents' behaviours, with their published sources.

Every factor is a :class:`FactorVersion`: scenario (and variant), version, unit, grams CO2e per
unit, the baseline it is measured against, the data a partner must hold, the citation and the
date from which it applies (a calendar date in Asia/Shanghai). A change never edits a version:
it adds a new one with a later ``valid_from``, and an event is always quantified with the version
in force on the day it happened (:meth:`FactorTable.in_force`), so a receipt never changes.

Figures come from ``DOMAIN.md`` (published programmes, each cited). Where no programme publishes
a quantified factor (refusing disposable tableware, tourism check-ins) Tanhui claims **no**
reduction: the version credits participation points only (``grams_per_unit`` 0), so nothing
unquantified is ever pooled and sold to an enterprise. See ADR 0051.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from mrv.inclusive.scenarios import SPECS, Scenario, Unit
from tanhui.i18n import N_

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
MAX_GRAMS_PER_UNIT = Decimal(1_000_000)  # a tonne per unit: anything above is a typo


class FactorStatus(StrEnum):
    published = "published"  # taken from a named programme's methodology
    participation = "participation"  # no quantified reduction: points only, nothing claimed


class FactorTableError(ValueError):
    """A factor table that contradicts itself (two versions on one day, a changed unit ...)."""


@dataclass(frozen=True)
class FactorVersion:
    scenario: Scenario
    variant: str
    version: str
    unit: Unit
    grams_per_unit: Decimal
    baseline: str
    source: str
    valid_from: date
    daily_cap: Decimal
    status: FactorStatus = FactorStatus.published
    bonus_points_per_unit: int = 0
    notes: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.scenario.value, self.variant)

    @property
    def data_source(self) -> str:
        return SPECS[self.scenario].data_source


@dataclass(frozen=True)
class PointsRate:
    """How many points a kilogram of quantified reduction earns, from ``valid_from``."""

    version: str
    points_per_kg: int
    valid_from: date
    notes: str = ""


_ALL_YEAR = date(2026, 1, 1)  # Tanhui's carbon inclusion starts in Huzhou on 2026-01-01

SHENZHEN_2021 = N_("Shenzhen low-carbon public travel methodology (深圳市低碳公共出行方法学), 2021")
WUHAN_2025 = N_("Wuhan 武碳江湖 carbon inclusion methodology, 2025")
LUZHOU = N_("Luzhou 绿芽积分 carbon inclusion scheme")
CCEA_2023 = N_(
    "China Circular Economy Association group standard (中国循环经济协会团体标准), 2023: "
    "production emissions × replacement rate"
)
CAR_BASELINE = N_("The same trip by private car")

BUILTIN_VERSIONS: tuple[FactorVersion, ...] = (
    FactorVersion(
        Scenario.bus,
        "",
        "1.0",
        Unit.passenger_km,
        Decimal("26.9"),
        baseline=CAR_BASELINE,
        source=SHENZHEN_2021,
        valid_from=_ALL_YEAR,
        daily_cap=Decimal(60),
        notes=N_(
            "Electric bus, per passenger-km. Wuhan (212.5 g) and Luzhou (80 g) publish flat "
            "per-ride figures; operator distance data makes the per-km figure more precise."
        ),
    ),
    FactorVersion(
        Scenario.metro,
        "",
        "1.0",
        Unit.passenger_km,
        Decimal("46.7"),
        baseline=CAR_BASELINE,
        source=SHENZHEN_2021,
        valid_from=_ALL_YEAR,
        daily_cap=Decimal(80),
    ),
    FactorVersion(
        Scenario.metro,
        "",
        "2.0",
        Unit.passenger_km,
        Decimal("78.4"),
        baseline=CAR_BASELINE,
        source=WUHAN_2025,
        valid_from=date(2026, 7, 1),
        daily_cap=Decimal(80),
        notes=N_("Replaces the 2021 Shenzhen figure with the more recent Wuhan 2025 figure."),
    ),
    FactorVersion(
        Scenario.bike,
        "",
        "1.0",
        Unit.km,
        Decimal("93.3"),
        baseline=CAR_BASELINE,
        source=WUHAN_2025,
        valid_from=_ALL_YEAR,
        daily_cap=Decimal(30),
    ),
    FactorVersion(
        Scenario.walk,
        "",
        "1.0",
        Unit.steps,
        Decimal("0.0164"),  # 8.2 g per 500 steps
        baseline=N_("The same distance by private car"),
        source=LUZHOU,
        valid_from=_ALL_YEAR,
        daily_cap=Decimal(20_000),  # ≈ 328 g a day, in line with Ant Forest's ≈ 296 g daily cap
        notes=N_("8.2 g per 500 steps."),
    ),
    FactorVersion(
        Scenario.recycling,
        "textile",
        "1.0",
        Unit.kg,
        Decimal(1280),
        baseline=N_("New textiles produced instead of reused or recycled ones"),
        source=LUZHOU,
        valid_from=_ALL_YEAR,
        daily_cap=Decimal(30),
        notes=N_("Used clothes, per kg."),
    ),
    FactorVersion(
        Scenario.second_hand,
        "phone",
        "1.0",
        Unit.item,
        Decimal(51_900),
        baseline=N_("A new phone produced instead"),
        source=CCEA_2023,
        valid_from=_ALL_YEAR,
        daily_cap=Decimal(2),
        notes=N_("A phone about 90 % new ≈ 51.9 kg CO2e."),
    ),
    FactorVersion(
        Scenario.tableware,
        "",
        "1.0",
        Unit.order,
        Decimal(0),
        baseline=N_("No quantified baseline: no published factor yet"),
        source=N_("Participation points only; no reduction is claimed, pooled or sold"),
        valid_from=_ALL_YEAR,
        daily_cap=Decimal(3),
        status=FactorStatus.participation,
        bonus_points_per_unit=2,
    ),
    FactorVersion(
        Scenario.tourism,
        "",
        "1.0",
        Unit.check_in,
        Decimal(0),
        baseline=N_("No quantified baseline: no published factor yet"),
        source=N_(
            "Participation points only (precedent: Deqing Moganshan B&Bs' 生态绿币); "
            "no reduction is claimed, pooled or sold"
        ),
        valid_from=_ALL_YEAR,
        daily_cap=Decimal(2),
        status=FactorStatus.participation,
        bonus_points_per_unit=20,
    ),
)

BUILTIN_POINTS_RATES: tuple[PointsRate, ...] = (
    PointsRate("1.0", points_per_kg=100, valid_from=_ALL_YEAR, notes=N_("1 point per 10 g")),
)


def local_date(moment: datetime) -> date:
    """The calendar day in Huzhou of an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(LOCAL_TZ).date()


def check_version(version: FactorVersion) -> None:
    """Raise FactorTableError for a version that cannot be right on its own."""
    spec = SPECS.get(version.scenario)
    if spec is None:
        raise FactorTableError(f"unknown scenario {version.scenario}")
    if version.unit != spec.unit:
        raise FactorTableError(
            f"{version.scenario} is counted in {spec.unit}, not {version.unit}: a new unit is a "
            "new scenario"
        )
    if (spec.variant_name is None) != (version.variant == ""):
        raise FactorTableError(
            f"{version.scenario} {version.version}: variant {version.variant!r} does not fit"
        )
    if not Decimal(0) <= version.grams_per_unit <= MAX_GRAMS_PER_UNIT:
        raise FactorTableError(f"{version.scenario} {version.version}: grams_per_unit out of range")
    if version.daily_cap <= 0:
        raise FactorTableError(f"{version.scenario} {version.version}: daily_cap must be > 0")
    if version.bonus_points_per_unit < 0:
        raise FactorTableError(f"{version.scenario} {version.version}: negative bonus")
    if version.grams_per_unit == 0 and version.status != FactorStatus.participation:
        raise FactorTableError(
            f"{version.scenario} {version.version}: a zero factor is a participation version"
        )
    if not version.source.strip() or not version.baseline.strip():
        raise FactorTableError(f"{version.scenario} {version.version}: needs source and baseline")


class FactorTable:
    """All versions of all scenarios; answers which version was in force on a day."""

    def __init__(
        self,
        versions: Iterable[FactorVersion] = BUILTIN_VERSIONS,
        points_rates: Iterable[PointsRate] = BUILTIN_POINTS_RATES,
    ) -> None:
        by_key: dict[tuple[str, str], list[FactorVersion]] = {}
        for version in versions:
            check_version(version)
            by_key.setdefault(version.key, []).append(version)
        for key, listed in by_key.items():
            listed.sort(key=lambda item: item.valid_from)
            days = [item.valid_from for item in listed]
            names = [item.version for item in listed]
            if len(set(days)) != len(days):
                raise FactorTableError(f"{key}: two versions take effect on the same day")
            if len(set(names)) != len(names):
                raise FactorTableError(f"{key}: a version name is used twice")
        self._versions = by_key
        rates = sorted(points_rates, key=lambda rate: rate.valid_from)
        if not rates or len({rate.valid_from for rate in rates}) != len(rates):
            raise FactorTableError("points rates: none, or two on the same day")
        self._rates = rates

    def with_versions(self, extra: Iterable[FactorVersion]) -> FactorTable:
        """This table plus ``extra`` versions (e.g. those an administrator added)."""
        return FactorTable([*self.versions(), *extra], self._rates)

    def versions(self) -> list[FactorVersion]:
        """Every version, by scenario, variant and date."""
        return [version for key in sorted(self._versions) for version in self._versions[key]]

    def history(self, scenario: str, variant: str = "") -> list[FactorVersion]:
        return list(self._versions.get((scenario, variant), []))

    def variants(self, scenario: str) -> list[str]:
        return sorted(variant for name, variant in self._versions if name == scenario)

    def in_force(self, scenario: str, variant: str, day: date) -> FactorVersion | None:
        """The version of (scenario, variant) in force on ``day``; None before the first."""
        found = None
        for version in self._versions.get((scenario, variant), []):
            if version.valid_from <= day:
                found = version
            else:
                break
        return found

    def points_rate(self, day: date) -> PointsRate:
        found = self._rates[0]
        for rate in self._rates:
            if rate.valid_from <= day:
                found = rate
        return found

    def points_rates(self) -> Sequence[PointsRate]:
        return list(self._rates)


DEFAULT_TABLE = FactorTable()
