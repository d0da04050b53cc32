"""Residents' behaviour methodologies (碳普惠): scenarios, versioned factor tables with their
published sources, plausibility rules and the quantification of one reported behaviour.

Pure code and data (no database): the registry's carbon-inclusion package stores events and
posts to the ledger; this package says what an event is worth and why.
"""

from mrv.inclusive.factors import (
    BUILTIN_POINTS_RATES,
    BUILTIN_VERSIONS,
    DEFAULT_TABLE,
    LOCAL_TZ,
    FactorStatus,
    FactorTable,
    FactorTableError,
    FactorVersion,
    PointsRate,
    check_version,
    local_date,
)
from mrv.inclusive.quantify import (
    FUTURE_TOLERANCE,
    MAX_AGE,
    Problem,
    Quantification,
    Report,
    Timing,
    activity_keys,
    figures,
    is_plausible,
    quantify,
    quantity_milli,
    timing,
)
from mrv.inclusive.scenarios import (
    SCENARIO_LABELS,
    SPECS,
    UNIT_LABELS,
    Scenario,
    ScenarioSpec,
    Unit,
    spec_for,
)

__all__ = [
    "BUILTIN_POINTS_RATES",
    "BUILTIN_VERSIONS",
    "DEFAULT_TABLE",
    "FUTURE_TOLERANCE",
    "LOCAL_TZ",
    "MAX_AGE",
    "SCENARIO_LABELS",
    "SPECS",
    "UNIT_LABELS",
    "FactorStatus",
    "FactorTable",
    "FactorTableError",
    "FactorVersion",
    "PointsRate",
    "Problem",
    "Quantification",
    "Report",
    "Scenario",
    "ScenarioSpec",
    "Timing",
    "Unit",
    "activity_keys",
    "check_version",
    "figures",
    "is_plausible",
    "local_date",
    "quantify",
    "quantity_milli",
    "spec_for",
    "timing",
]
