"""Parameters: defaults with their sources, uncertainty, and overrides from a TOML file.

A methodology declares its parameters as :class:`ParameterSpec` (value, unit, source, an optional
uncertainty distribution for the Monte Carlo, and bounds). The run-wide settings (monitoring
period, risk scores, draws, seed, conservativeness rule, area CRS, band scaling, QA rules) live
in :class:`RunSettings`. A TOML file may override any of them; the report records every value
used and which ones were overridden. Layout of the TOML file (every table optional)::

    [parameters]                      # methodology parameters by name
    rate_tco2e_per_ha_year = 5.0
    [uncertainty]                     # replace a parameter's distribution
    rate_tco2e_per_ha_year = { relative_sd = 0.1 }   # or { sd = .. } or { low = .., high = .. }
    [monitoring_period]
    start = 2021-01-01
    end = 2023-12-31
    [risk]                            # 0 none, 1 low, 2 medium, 3 high
    fire = 1
    pest = 1
    typhoon = 1
    harvest = 1
    [monte_carlo]
    draws = 1000
    seed = 20211228
    [conservativeness]
    rule = "lower-bound"              # or "uncertainty-band"
    [area]
    crs = "EPSG:4549"                 # default "auto": the local UTM zone of each parcel
    [bands.red]                       # scale/offset/nodata of a band (all epochs)
    scale = 2.0e-5
    offset = -0.1
    [qa]                              # a pixel is masked when any rule matches:
    rules = [{ bit = 14, width = 2, at_least = 2 }]   # (qa >> bit) & (2**width - 1) >= at_least
"""

from __future__ import annotations

import datetime as dt
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mrv.errors import InvalidParameters

# Limits on everything a user can set.
MAX_DRAWS = 100_000
MIN_DRAWS = 10
DEFAULT_DRAWS = 1_000
DEFAULT_SEED = 20211228  # the day Anji's collection centre opened; any fixed number would do
MAX_RISK_SCORE = 3
DEFAULT_PERIOD = (dt.date(2021, 1, 1), dt.date(2023, 12, 31))


@dataclass(frozen=True)
class Uncertainty:
    """A parameter's distribution for the Monte Carlo: normal (``sd`` or ``relative_sd``) or
    uniform (``low``..``high``). Normal draws are clipped to the parameter's bounds."""

    kind: str  # "normal" | "uniform"
    sd: float = 0.0
    relative_sd: float = 0.0
    low: float = 0.0
    high: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        if self.kind == "uniform":
            return {"kind": "uniform", "low": self.low, "high": self.high}
        if self.relative_sd:
            return {"kind": "normal", "relative_sd": self.relative_sd}
        return {"kind": "normal", "sd": self.sd}


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    value: float
    unit: str
    source: str
    uncertainty: Uncertainty | None = None
    minimum: float = -math.inf
    maximum: float = math.inf
    description: str = ""

    def as_dict(self, *, overridden: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = {
            "value": self.value,
            "unit": self.unit,
            "source": self.source,
            "uncertainty": self.uncertainty.as_dict() if self.uncertainty else None,
        }
        if overridden:
            result["overridden"] = True
        return result


@dataclass(frozen=True)
class QaRule:
    """Mask a pixel when ``(qa >> bit) & (2**width - 1) >= at_least``."""

    bit: int
    width: int
    at_least: int

    def as_dict(self) -> dict[str, int]:
        return {"bit": self.bit, "width": self.width, "at_least": self.at_least}


# Landsat-8 pre-collection BQA (the shared test scene): designated fill (bit 0) or cloud
# confidence (bits 14-15) medium or high. Source: USGS Landsat 8 OLI/TIRS BQA description.
LANDSAT8_BQA_RULES = (QaRule(bit=0, width=1, at_least=1), QaRule(bit=14, width=2, at_least=2))


@dataclass(frozen=True)
class BandScaling:
    scale: float | None = None
    offset: float | None = None
    nodata: float | None = None


@dataclass(frozen=True)
class RiskScores:
    fire: int = 1
    pest: int = 1
    typhoon: int = 1
    harvest: int = 1

    def as_dict(self) -> dict[str, int]:
        return {
            "fire": self.fire,
            "pest": self.pest,
            "typhoon": self.typhoon,
            "harvest": self.harvest,
        }


# Buffer for non-permanence from the risk score: 10 % floor plus 2.5 points per risk point, at
# most 60 %. Anchors: Verra's AFOLU Non-Permanence Risk Tool (v4.2) buffers between 10 % and
# 60 %; Gold Standard withholds 20 % for land use, which the default scores (1, 1, 1, 1) give.
BUFFER_FLOOR = 0.10
BUFFER_PER_RISK_POINT = 0.025
BUFFER_CEILING = 0.60
BUFFER_SOURCE = (
    "10 % + 2.5 % per risk point (fire, pest, typhoon, harvest scored 0-3), capped at 60 %: "
    "Verra AFOLU Non-Permanence Risk Tool v4.2 range 10-60 %; default scores give Gold "
    "Standard's 20 % land-use buffer"
)
CONSERVATIVENESS_RULES = ("lower-bound", "uncertainty-band")
CONSERVATIVENESS_SOURCE = {
    "lower-bound": (
        "credit the lower bound (5th percentile) of the Monte Carlo 90 % interval: CCER forestry "
        "methodologies' conservativeness principle (when in doubt, the lower sink)"
    ),
    "uncertainty-band": (
        "deduct the share by which the 90 % half-width exceeds 15 % of the mean (VCS VMD0017 "
        "style uncertainty deduction, verify)"
    ),
}
UNCERTAINTY_BAND_ALLOWANCE = 0.15


@dataclass(frozen=True)
class RunSettings:
    period_start: dt.date = DEFAULT_PERIOD[0]
    period_end: dt.date = DEFAULT_PERIOD[1]
    risk: RiskScores = field(default_factory=RiskScores)
    draws: int = DEFAULT_DRAWS
    seed: int = DEFAULT_SEED
    rule: str = "lower-bound"
    area_crs: str = "auto"
    bands: Mapping[str, BandScaling] = field(default_factory=dict)
    qa_rules: tuple[QaRule, ...] = LANDSAT8_BQA_RULES

    @property
    def years(self) -> float:
        return period_years(self.period_start, self.period_end)

    @property
    def buffer_share(self) -> float:
        points = self.risk.fire + self.risk.pest + self.risk.typhoon + self.risk.harvest
        return min(BUFFER_CEILING, BUFFER_FLOOR + BUFFER_PER_RISK_POINT * points)


def period_years(start: dt.date, end: dt.date) -> float:
    """Length of [start, end] (both days included) in years: whole calendar years, then the
    remaining days over the length of the year they fall in (2021-01-01..2023-12-31 is 3.0)."""
    stop = end + dt.timedelta(days=1)
    years = 0
    cursor = start
    while True:
        following = _add_years(start, years + 1)
        if following > stop:
            break
        years += 1
        cursor = following
    next_anniversary = _add_years(start, years + 1)
    remainder = (stop - cursor).days / (next_anniversary - cursor).days
    return years + remainder


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


@dataclass(frozen=True)
class ParameterSet:
    """The values a run uses: the methodology's specs with overrides applied."""

    specs: Mapping[str, ParameterSpec]
    overridden: frozenset[str]
    settings: RunSettings

    def __getitem__(self, name: str) -> float:
        return self.specs[name].value

    def as_dict(self) -> dict[str, Any]:
        return {
            name: spec.as_dict(overridden=name in self.overridden)
            for name, spec in sorted(self.specs.items())
        }


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise InvalidParameters(input=str(path), reason=error.strerror or str(error)) from error
    except tomllib.TOMLDecodeError as error:
        raise InvalidParameters(input=str(path), reason=str(error)) from error


def resolve(
    specs: tuple[ParameterSpec, ...],
    overrides: Mapping[str, Any] | None,
    *,
    source: str = "params",
) -> ParameterSet:
    """Apply a TOML-shaped mapping of overrides to the methodology's specs and the settings."""
    data = dict(overrides or {})
    known_tables = {
        "parameters",
        "uncertainty",
        "monitoring_period",
        "risk",
        "monte_carlo",
        "conservativeness",
        "area",
        "bands",
        "qa",
        "methodology",
    }
    unknown = sorted(set(data) - known_tables)
    if unknown:
        raise InvalidParameters(input=source, reason=f"unknown tables {unknown}")
    by_name = {spec.name: spec for spec in specs}
    overridden: set[str] = set()
    for name, value in _table(data, "parameters", source).items():
        spec = by_name.get(name)
        if spec is None:
            raise InvalidParameters(
                input=source,
                reason=f"unknown parameter {name!r}; known: {', '.join(sorted(by_name))}",
            )
        number = _number(value, f"parameters.{name}", source)
        if not spec.minimum <= number <= spec.maximum:
            raise InvalidParameters(
                input=source,
                reason=f"{name} = {number} is outside [{spec.minimum}, {spec.maximum}]",
            )
        by_name[name] = replace(spec, value=number, source=f"overridden in {Path(source).name}")
        overridden.add(name)
    for name, value in _table(data, "uncertainty", source).items():
        spec = by_name.get(name)
        if spec is None:
            raise InvalidParameters(input=source, reason=f"uncertainty of unknown {name!r}")
        by_name[name] = replace(spec, uncertainty=_uncertainty(value, name, source))
        overridden.add(name)
    settings = _settings(data, source)
    return ParameterSet(specs=by_name, overridden=frozenset(overridden), settings=settings)


def _settings(data: Mapping[str, Any], source: str) -> RunSettings:
    settings = RunSettings()
    period = _table(data, "monitoring_period", source)
    if period:
        start = _date(period.get("start", settings.period_start), "start", source)
        end = _date(period.get("end", settings.period_end), "end", source)
        if end < start:
            raise InvalidParameters(input=source, reason="monitoring_period ends before it starts")
        settings = replace(settings, period_start=start, period_end=end)
    risk = _table(data, "risk", source)
    if risk:
        scores = {}
        for name in ("fire", "pest", "typhoon", "harvest"):
            value = risk.get(name, getattr(settings.risk, name))
            if not isinstance(value, int) or not 0 <= value <= MAX_RISK_SCORE:
                raise InvalidParameters(
                    input=source, reason=f"risk.{name} must be an integer 0..{MAX_RISK_SCORE}"
                )
            scores[name] = value
        extra = sorted(set(risk) - set(scores))
        if extra:
            raise InvalidParameters(input=source, reason=f"unknown risk factors {extra}")
        settings = replace(settings, risk=RiskScores(**scores))
    monte_carlo = _table(data, "monte_carlo", source)
    if monte_carlo:
        draws = monte_carlo.get("draws", settings.draws)
        seed = monte_carlo.get("seed", settings.seed)
        if not isinstance(draws, int) or not MIN_DRAWS <= draws <= MAX_DRAWS:
            raise InvalidParameters(
                input=source, reason=f"monte_carlo.draws must be {MIN_DRAWS}..{MAX_DRAWS}"
            )
        if not isinstance(seed, int) or seed < 0:
            raise InvalidParameters(input=source, reason="monte_carlo.seed must be >= 0")
        settings = replace(settings, draws=draws, seed=seed)
    rule = _table(data, "conservativeness", source).get("rule", settings.rule)
    if rule not in CONSERVATIVENESS_RULES:
        raise InvalidParameters(
            input=source, reason=f"conservativeness.rule must be one of {CONSERVATIVENESS_RULES}"
        )
    settings = replace(settings, rule=rule)
    area_crs = _table(data, "area", source).get("crs", settings.area_crs)
    if not isinstance(area_crs, str):
        raise InvalidParameters(input=source, reason="area.crs must be a string like EPSG:4549")
    settings = replace(settings, area_crs=area_crs)
    bands: dict[str, BandScaling] = {}
    for name, table in _table(data, "bands", source).items():
        if not isinstance(table, Mapping):
            raise InvalidParameters(input=source, reason=f"bands.{name} must be a table")
        bands[name] = BandScaling(
            scale=_optional_number(table.get("scale"), f"bands.{name}.scale", source),
            offset=_optional_number(table.get("offset"), f"bands.{name}.offset", source),
            nodata=_optional_number(table.get("nodata"), f"bands.{name}.nodata", source),
        )
    settings = replace(settings, bands=bands)
    qa = _table(data, "qa", source)
    if "rules" in qa:
        rules = []
        for item in qa["rules"]:
            try:
                rule_obj = QaRule(
                    bit=int(item["bit"]), width=int(item["width"]), at_least=int(item["at_least"])
                )
            except (KeyError, TypeError, ValueError) as error:
                raise InvalidParameters(
                    input=source, reason="qa.rules items need integer bit, width, at_least"
                ) from error
            if not (0 <= rule_obj.bit < 64 and 1 <= rule_obj.width <= 16):
                raise InvalidParameters(input=source, reason="qa rule bit/width out of range")
            rules.append(rule_obj)
        settings = replace(settings, qa_rules=tuple(rules))
    return settings


def _table(data: Mapping[str, Any], name: str, source: str) -> Mapping[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, Mapping):
        raise InvalidParameters(input=source, reason=f"[{name}] must be a table")
    return value


def _number(value: Any, name: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidParameters(input=source, reason=f"{name} must be a finite number")
    return float(value)


def _optional_number(value: Any, name: str, source: str) -> float | None:
    return None if value is None else _number(value, name, source)


def _date(value: Any, name: str, source: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise InvalidParameters(input=source, reason=f"monitoring_period.{name} must be a date")


def _uncertainty(value: Any, name: str, source: str) -> Uncertainty:
    if not isinstance(value, Mapping):
        raise InvalidParameters(input=source, reason=f"uncertainty.{name} must be a table")
    if "relative_sd" in value:
        sd = _number(value["relative_sd"], f"uncertainty.{name}.relative_sd", source)
        if sd < 0:
            raise InvalidParameters(input=source, reason=f"uncertainty.{name} sd must be >= 0")
        return Uncertainty(kind="normal", relative_sd=sd)
    if "sd" in value:
        sd = _number(value["sd"], f"uncertainty.{name}.sd", source)
        if sd < 0:
            raise InvalidParameters(input=source, reason=f"uncertainty.{name} sd must be >= 0")
        return Uncertainty(kind="normal", sd=sd)
    if "low" in value and "high" in value:
        low = _number(value["low"], f"uncertainty.{name}.low", source)
        high = _number(value["high"], f"uncertainty.{name}.high", source)
        if high < low:
            raise InvalidParameters(input=source, reason=f"uncertainty.{name}: high < low")
        return Uncertainty(kind="uniform", low=low, high=high)
    raise InvalidParameters(
        input=source, reason=f"uncertainty.{name} needs relative_sd, sd, or low and high"
    )
