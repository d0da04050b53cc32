"""What every methodology shares: inputs, per-cell kernels for classes and indices, results."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from mrv.errors import MissingBand
from mrv.io import FieldPlots, LandCoverClass, Layer
from mrv.params import ParameterSet, ParameterSpec
from mrv.zonal import CellData, Kernel, Totals

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
CO2_PER_C = 44.0 / 12.0
M2_PER_HA = 10_000.0
MASKED_SAMPLE = "__masked__"  # plot_samples key: 1.0 where the QA band masks the plot's cell
MINIMUM_AREA_SOURCE = "CCER AR-CM-005: contiguous area >= 0.0667 ha (1 mu)"


@dataclass(frozen=True)
class Inputs:
    """What a methodology receives besides parameters: the layers given and the tables."""

    layers: Mapping[str, Layer]
    classes: tuple[LandCoverClass, ...] | None = None
    plots: FieldPlots | None = None
    plot_samples: Mapping[str, FloatArray] | None = None  # layer key -> value at each plot


@dataclass
class ParcelGeometry:
    """Per-parcel areas the service measured from the geometries (area CRS)."""

    area_ha: FloatArray
    inside_ha: FloatArray

    def hectares(self, totals: Totals, m2: FloatArray) -> FloatArray:
        """Ground hectares of a coverage-weighted sum: its share of the covered cells times the
        parcel's area inside the raster (measured in the area CRS)."""
        covered = totals.get("covered_m2")
        if m2.ndim == 2:
            covered = covered[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(covered > 0, m2 / covered, 0.0)
        if share.ndim == 2:
            return share * self.inside_ha[:, None]
        return share * self.inside_ha


Simulator = Callable[[IntArray, Mapping[str, FloatArray], np.random.Generator], FloatArray]


@dataclass
class Evaluation:
    """A methodology's nominal results per parcel and how to simulate their uncertainty."""

    class_keys: list[str]
    class_names: dict[str, str]
    area_by_class_ha: FloatArray  # (parcels, classes)
    eligible_area_ha: FloatArray
    masked_ha: FloatArray
    removals: FloatArray
    emissions: FloatArray
    baseline: FloatArray
    leakage: FloatArray
    statistics: dict[str, FloatArray]
    simulate: Simulator
    flags: list[list[str]]
    extra: dict[str, Any] = field(default_factory=dict)
    # Extra shared Monte Carlo draws the simulator reads: name -> (mean, sd) of a normal.
    shared_normal: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def net(self) -> FloatArray:
        return self.removals - self.emissions - self.baseline - self.leakage


@dataclass(frozen=True)
class Applicability:
    """What a methodology may credit, declared with the methodology and checked by the registry
    when a project is registered: the land types it covers (``LandType`` values, which are also
    the project types of land-based projects) and the limits of a crediting period."""

    land_types: tuple[str, ...]
    land_source: str
    min_crediting_years: int
    max_crediting_years: int
    earliest_start: date
    crediting_source: str

    def covers(self, land_type: str) -> bool:
        return land_type in self.land_types


# Crediting-period limits of Chinese forestry and wetland carbon-sink projects: at least 20 and at
# most 40 years, starting on or after 2005-02-16 (the Kyoto Protocol's entry into force, from
# which CDM afforestation projects could start). (verify) against the CCER 2023 project design
# guidance; DOMAIN.md records the Anji scheme's 30-year collection term, which sits inside them.
CREDITING_SOURCE = (
    "(verify) CCER forestry carbon-sink crediting period 20-40 years; the Anji collection term "
    "is 30 years (shared/docs/DOMAIN.md, Anji bamboo collection and trading centre)"
)
MIN_CREDITING_YEARS = 20
MAX_CREDITING_YEARS = 40
EARLIEST_START = date(2005, 2, 16)

BAMBOO_APPLICABILITY = Applicability(
    land_types=("bamboo",),
    land_source=(
        "CCER AR-CM-005 applies to bamboo forest, not to wetland or organic soil; "
        "CCER-14-001-V01 excludes wetland (shared/docs/DOMAIN.md, Bamboo)"
    ),
    min_crediting_years=MIN_CREDITING_YEARS,
    max_crediting_years=MAX_CREDITING_YEARS,
    earliest_start=EARLIEST_START,
    crediting_source=CREDITING_SOURCE,
)


class Methodology(Protocol):
    name: str
    version: str
    title: str
    parameters: tuple[ParameterSpec, ...]
    applicability: Applicability

    def kernel(self, params: ParameterSet, inputs: Inputs) -> Kernel: ...

    def plot_layers(self, params: ParameterSet, inputs: Inputs) -> tuple[str, ...]:
        """Layers to sample at field plots (none unless the methodology calibrates)."""
        ...

    def evaluate(
        self,
        totals: Totals,
        geometry: ParcelGeometry,
        params: ParameterSet,
        inputs: Inputs,
    ) -> Evaluation: ...


# --- indices ---------------------------------------------------------------------------


INDEX_BANDS = {
    "ndvi": ("red", "nir"),
    "evi": ("red", "nir", "blue"),
    "mndwi": ("green", "swir1"),
    "ndwi": ("green", "nir"),
    "precomputed": ("index",),
    "agb": ("agb",),
}


def index_values(kind: str, prefix: str, values: Mapping[str, FloatArray]) -> FloatArray:
    """The index per cell; NaN where a band is nodata or the formula is undefined."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "ndvi":
            red, nir = values[prefix + "red"], values[prefix + "nir"]
            result = (nir - red) / (nir + red)
        elif kind == "evi":
            red, nir, blue = values[prefix + "red"], values[prefix + "nir"], values[prefix + "blue"]
            result = 2.5 * (nir - red) / (nir + 6.0 * red - 7.5 * blue + 1.0)
        elif kind == "mndwi":
            green, swir = values[prefix + "green"], values[prefix + "swir1"]
            result = (green - swir) / (green + swir)
        elif kind == "ndwi":
            green, nir = values[prefix + "green"], values[prefix + "nir"]
            result = (green - nir) / (green + nir)
        elif kind == "precomputed":
            result = values[prefix + "index"].copy()
        elif kind == "agb":
            result = values[prefix + "agb"].copy()
        else:  # pragma: no cover - validated when the kernel is made
            raise ValueError(kind)
    result[~np.isfinite(result)] = np.nan
    return result


def index_layers(kind: str, prefix: str) -> tuple[str, ...]:
    return tuple(prefix + band for band in INDEX_BANDS[kind])


def require(methodology: str, layers: Mapping[str, Layer], needed: tuple[str, ...]) -> None:
    for key in needed:
        if key not in layers:
            raise MissingBand(band=key, methodology=methodology, given=", ".join(sorted(layers)))


def qa_layers(layers: Mapping[str, Layer], prefixes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(prefix + "qa" for prefix in prefixes if prefix + "qa" in layers)


def masked_by_qa(cells: CellData, qa: tuple[str, ...]) -> NDArray[np.bool_]:
    masked = np.zeros(cells.weight.size, dtype=bool)
    for key in qa:
        masked |= cells.invalid[key]
    return masked


# --- a kernel that puts every cell in a class ---------------------------------------------


@dataclass(frozen=True)
class ClassKernel:
    """Classes per cell from a land-cover raster or from index thresholds.

    Columns of ``class_m2``: 0 = other, 1..K = the classes, K+1 = masked (nodata or QA).
    ``rules`` (index mode): (class column, index kind, threshold), first match wins.
    """

    continuous: tuple[str, ...]
    categorical: tuple[str, ...]
    qa: tuple[str, ...]
    class_values: tuple[int, ...] = ()
    rules: tuple[tuple[int, str, float], ...] = ()
    n_classes: int = 0
    statistics: tuple[str, ...] = ()

    def accumulate(self, cells: CellData) -> dict[str, FloatArray]:
        masked = masked_by_qa(cells, self.qa)
        n = cells.weight.size
        column = np.zeros(n, dtype=np.int64)
        sums: dict[str, FloatArray] = {}
        indices = {kind: index_values(kind, "", cells.values) for kind in self.statistics}
        if self.categorical:
            key = self.categorical[0]
            raw = cells.raw[key].astype(np.int64)
            masked |= cells.invalid[key]
            values = np.asarray(self.class_values, dtype=np.int64)
            position = np.clip(np.searchsorted(values, raw), 0, max(values.size - 1, 0))
            listed = values[position] == raw if values.size else np.zeros(n, dtype=bool)
            column = np.where(listed, position + 1, 0).astype(np.int64)
        else:
            assigned = np.zeros(n, dtype=bool)
            for target, kind, threshold in self.rules:
                index = indices[kind]
                masked |= np.isnan(index)
                hit = ~assigned & (index >= threshold)
                column[hit] = target
                assigned |= hit
        column[masked] = self.n_classes + 1
        sums["class_m2"] = cells.sum_by_class(column, self.n_classes + 2, cells.weight)
        for kind, index in indices.items():
            good = ~masked & np.isfinite(index)
            weights = np.where(good, cells.weight, 0.0)
            sums[f"stat_weight_{kind}"] = cells.sum(weights)
            sums[f"stat_sum_{kind}"] = cells.sum(np.where(good, index, 0.0) * weights)
            sums[f"min_{kind}"] = cells.minimum(np.where(good, index, np.nan))
            sums[f"max_{kind}"] = cells.maximum(np.where(good, index, np.nan))
        return sums


def statistics_of(totals: Totals, kinds: tuple[str, ...]) -> dict[str, FloatArray]:
    """Coverage-weighted mean, min and max of each index (NaN where no valid cell)."""
    result: dict[str, FloatArray] = {}
    for kind in kinds:
        weight = totals.get(f"stat_weight_{kind}")
        total = totals.get(f"stat_sum_{kind}")
        with np.errstate(divide="ignore", invalid="ignore"):
            result[f"{kind}_mean"] = np.where(weight > 0, total / weight, np.nan)
        low = totals.get(f"min_{kind}")
        high = totals.get(f"max_{kind}")
        result[f"{kind}_min"] = np.where(np.isfinite(low), low, np.nan)
        result[f"{kind}_max"] = np.where(np.isfinite(high), high, np.nan)
    return result


def draw_factor(draws: Mapping[str, FloatArray], name: str, nominal: float) -> FloatArray:
    """Draws of a parameter (shape (D,)); the nominal value when it has no distribution."""
    value = draws.get(name)
    if value is None:
        return np.full(1, nominal)
    return value


def minimum_area_flags(
    eligible_ha: FloatArray, minimum_ha: float, inside_ha: FloatArray
) -> NDArray[np.bool_]:
    """Parcels whose eligible area is positive but below the methodology's minimum (a parcel
    with no eligible area at all credits nothing anyway and is not flagged)."""
    return (inside_ha > 0) & (eligible_ha > 0) & (eligible_ha < minimum_ha)


@dataclass(frozen=True)
class ClassBounds:
    """Plausibility bounds of a land-cover class table (per class, per hectare and year): a
    table outside them is refused with the bound and its source, never estimated."""

    removal_min: float
    removal_max: float
    removal_source: str
    ch4_min: float = 0.0
    ch4_max: float = 0.0
    ch4_source: str = ""


def check_classes(bounds: ClassBounds | None, classes: Any, source: str) -> None:
    """Refuse a class whose removal or methane factor lies outside ``bounds``."""
    from mrv.errors import ImplausibleValue

    if bounds is None or classes is None:
        return
    for item in classes:
        removal = item.removal_tco2e_per_ha_year
        if not bounds.removal_min <= removal <= bounds.removal_max:
            raise ImplausibleValue(
                input=f"{source} class {item.value} ({item.name})",
                name="removal_tco2e_per_ha_year",
                value=removal,
                low=bounds.removal_min,
                high=bounds.removal_max,
                source=bounds.removal_source,
            )
        methane = item.ch4_kg_per_ha_year
        if not bounds.ch4_min <= methane <= bounds.ch4_max:
            raise ImplausibleValue(
                input=f"{source} class {item.value} ({item.name})",
                name="ch4_kg_per_ha_year",
                value=methane,
                low=bounds.ch4_min,
                high=bounds.ch4_max,
                source=bounds.ch4_source or bounds.removal_source,
            )
