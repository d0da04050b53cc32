"""Which methodologies a project may be registered under, and what each one may credit.

The land-based methodologies declare their own applicability (``mrv.methodologies``: land types,
crediting-period limits, with their sources); the residents' pool, which is the registry's own
methodology for pooled carbon-inclusion reductions, is declared here. Registration refuses an
unknown name or version, a project type or parcel land type the methodology does not cover, and
a crediting period outside its limits (ADR 0090).
"""

from __future__ import annotations

from datetime import date, timedelta

from mrv.methodologies import REGISTRY
from mrv.methodologies.base import Applicability
from registry.errors import CreditingPeriodLimits, MethodologyLandType, UnknownMethodology
from registry.serials import ProjectType
from tanhui.i18n import N_

RESIDENTS_POOL_NAME = "tanhui-residents-pool"
RESIDENTS_POOL_VERSION = "1.0"
# Pooled residents' reductions cover no land; their periods are short (verify: no published
# limit, a documented default of 1 to 10 years of measured reductions).
RESIDENTS_POOL = Applicability(
    land_types=(),
    land_source="pooled residents' reductions credit no land (ADR 0057)",
    min_crediting_years=1,
    max_crediting_years=10,
    earliest_start=date(2020, 1, 1),
    crediting_source="(verify) a documented default: 1 to 10 years of measured reductions",
)


def applicability(name: str, version: str) -> Applicability:
    """The declared applicability of ``name`` ``version``; refused when neither is known."""
    if (name, version) == (RESIDENTS_POOL_NAME, RESIDENTS_POOL_VERSION):
        return RESIDENTS_POOL
    found = REGISTRY.get((name, version))
    if found is None:
        known = [*sorted(REGISTRY), (RESIDENTS_POOL_NAME, RESIDENTS_POOL_VERSION)]
        raise UnknownMethodology(
            N_("No methodology {name} version {version}; known: {known}."),
            name=name,
            version=version,
            known=", ".join(f"{n} {v}" for n, v in known),
            errors=[{"field": "methodology_name", "message": "unknown methodology or version"}],
        )
    return found.applicability


def years_after(day: date, years: int) -> date:
    """The last day of a period of ``years`` whole years starting on ``day``."""
    try:
        return day.replace(year=day.year + years) - timedelta(days=1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28) - timedelta(days=1)


def check_registration(
    name: str, version: str, project_type: ProjectType, start: date, end: date
) -> Applicability:
    """Refuse a registration the methodology does not allow (nothing is written before)."""
    terms = applicability(name, version)
    land_based = project_type != ProjectType.residents
    if land_based != bool(terms.land_types) or (
        land_based and not terms.covers(project_type.value)
    ):
        raise MethodologyLandType(
            N_(
                "Methodology {name} {version} covers {covered}; a {type} project cannot be"
                " registered under it."
            ),
            name=name,
            version=version,
            covered=", ".join(terms.land_types) or "residents' pooled reductions",
            type=project_type.value,
            errors=[{"field": "type", "message": "not covered by the methodology"}],
        )
    shortest = years_after(start, terms.min_crediting_years)
    longest = years_after(start, terms.max_crediting_years)
    if start < terms.earliest_start or not shortest <= end <= longest:
        raise CreditingPeriodLimits(
            N_(
                "Methodology {name} {version} credits periods of {minimum} to {maximum} years"
                " starting on or after {earliest}; {start} to {end} is outside them."
            ),
            name=name,
            version=version,
            minimum=terms.min_crediting_years,
            maximum=terms.max_crediting_years,
            earliest=terms.earliest_start.isoformat(),
            start=start.isoformat(),
            end=end.isoformat(),
            errors=[{"field": "crediting_end", "message": "outside the methodology's limits"}],
        )
    return terms


def check_land(name: str, version: str, land_types: set[str]) -> None:
    """Refuse parcels of a land type the project's methodology does not cover."""
    terms = applicability(name, version)
    foreign = sorted(land for land in land_types if not terms.covers(land))
    if foreign:
        raise MethodologyLandType(
            N_("Methodology {name} {version} covers {covered}; parcels of {land} cannot join."),
            name=name,
            version=version,
            covered=", ".join(terms.land_types) or "no land",
            land=", ".join(foreign),
            errors=[{"field": "parcel_ids", "message": "land type not covered"}],
        )
