"""``bamboo-stock-change`` 1.0 (Tier 2/3): biomass from an index, carbon stock change.

Per pixel AGB = a + b x index (t dry matter/ha), fitted by least squares on field plots (the
index sampled at each plot on the end epoch) or given as parameters; or a precomputed biomass
raster (``agb``, ``start:agb``). BGB = root-to-shoot x AGB; C = carbon fraction x (AGB + BGB);
removals = sum over cells of coverage x area x (C_end - C_start) x 44/12. A cell masked (nodata or
QA) in either epoch counts for nothing (conservative); its share is reported. Baseline = valid
area x baseline rate x years; leakage = leakage share x removals. The model is linear, so the
parcel result needs only coverage-weighted sums of the index, and the Monte Carlo redraws the
coefficients (from the fit's covariance) and a per-parcel model residual without re-reading
pixels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mrv.errors import InvalidTable
from mrv.methodologies.base import (
    BAMBOO_APPLICABILITY,
    CO2_PER_C,
    MASKED_SAMPLE,
    MINIMUM_AREA_SOURCE,
    Evaluation,
    FloatArray,
    Inputs,
    IntArray,
    ParcelGeometry,
    draw_factor,
    index_layers,
    index_values,
    masked_by_qa,
    minimum_area_flags,
    qa_layers,
    require,
)
from mrv.params import ParameterSet, ParameterSpec, Uncertainty
from mrv.zonal import CellData, Totals

NAME = "bamboo-stock-change"
VERSION = "1.0"
MIN_PLOTS = 3
EPOCHS = ("start:", "")

PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec(
        name="carbon_fraction",
        value=0.47,
        unit="tC/t dry matter",
        source="IPCC default 0.47; Moso organs 0.389-0.534 (DOMAIN.md, verify)",
        uncertainty=Uncertainty(kind="uniform", low=0.389, high=0.534),
        minimum=0.3,
        maximum=0.6,
    ),
    ParameterSpec(
        name="root_to_shoot",
        value=0.25,
        unit="t BGB/t AGB",
        source="(verify) default with a range, as DOMAIN.md asks; project-specific if measured",
        uncertainty=Uncertainty(kind="uniform", low=0.2, high=0.3),
        minimum=0.0,
        maximum=2.0,
    ),
    ParameterSpec(
        name="agb_intercept_t_per_ha",
        value=-20.0,
        unit="t/ha",
        source=(
            "(verify) illustrative NDVI model, used only without field plots: with 160 x index it "
            "gives ~108 t/ha at NDVI 0.8, i.e. ~63 MgC/ha with roots, below Wang et al.'s 70-85"
        ),
        minimum=-1000.0,
        maximum=1000.0,
    ),
    ParameterSpec(
        name="agb_slope_t_per_ha",
        value=160.0,
        unit="t/ha per index unit",
        source="(verify) illustrative, see agb_intercept_t_per_ha",
        uncertainty=Uncertainty(kind="normal", relative_sd=0.1),
        minimum=-10_000.0,
        maximum=10_000.0,
    ),
    ParameterSpec(
        name="agb_residual_se_t_per_ha",
        value=9.8,
        unit="t/ha",
        source=(
            "Xu et al. 2013 regression RMSE 4.1-4.6 MgC/ha / carbon fraction 0.47 (used without "
            "field plots; with plots the fit's residual standard error replaces it)"
        ),
        minimum=0.0,
        maximum=1000.0,
    ),
    ParameterSpec(
        name="residual_correlation_cells",
        value=25.0,
        unit="cells",
        source=(
            "(verify) cells sharing one model error (spatial autocorrelation): a parcel's mean "
            "residual has sd = residual se x sqrt(this / cells)"
        ),
        minimum=1.0,
        maximum=1e9,
    ),
    ParameterSpec(
        name="baseline_tco2e_per_ha_year",
        value=0.0,
        unit="tCO2e/ha/yr",
        source="(verify) project-specific baseline removals; 0 by default",
        minimum=0.0,
        maximum=100.0,
    ),
    ParameterSpec(
        name="leakage_share",
        value=0.0,
        unit="share of removals",
        source="(verify) project-specific; 0 by default",
        minimum=0.0,
        maximum=1.0,
    ),
    ParameterSpec(
        name="minimum_eligible_area_ha",
        value=0.0667,
        unit="ha",
        source=MINIMUM_AREA_SOURCE,
        minimum=0.0,
        maximum=1000.0,
    ),
)


@dataclass(frozen=True)
class Calibration:
    """Least-squares line AGB = intercept + slope x index over the field plots."""

    intercept: float
    slope: float
    covariance: tuple[tuple[float, float], tuple[float, float]]
    rmse: float  # sqrt(SSR / n)
    residual_se: float  # sqrt(SSR / (n - 2)), the spread used in the Monte Carlo
    r_squared: float
    plots_used: tuple[str, ...]
    plots_excluded: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": "agb_t_per_ha = intercept + slope * index",
            "intercept": self.intercept,
            "slope": self.slope,
            "covariance": [list(row) for row in self.covariance],
            "rmse": self.rmse,
            "residual_se": self.residual_se,
            "r_squared": self.r_squared,
            "n": len(self.plots_used),
            "plots_used": list(self.plots_used),
            "plots_excluded": list(self.plots_excluded),
        }


def fit_line(
    x: FloatArray, y: FloatArray, ids: tuple[str, ...], *, source: str = "plots"
) -> Calibration:
    """Ordinary least squares of y on x, dropping plots where x is NaN (outside or masked)."""
    good = np.isfinite(x) & np.isfinite(y)
    used = tuple(plot for plot, ok in zip(ids, good.tolist(), strict=True) if ok)
    excluded = tuple(plot for plot, ok in zip(ids, good.tolist(), strict=True) if not ok)
    xs, ys = x[good], y[good]
    n = xs.size
    if n < MIN_PLOTS:
        raise InvalidTable(
            input=source,
            reason=f"{n} usable field plots (inside the raster, not masked); at least {MIN_PLOTS}",
        )
    design = np.column_stack([np.ones(n), xs])
    gram = design.T @ design
    if abs(np.linalg.det(gram)) < 1e-12 * max(1.0, float(np.abs(gram).max()) ** 2):
        raise InvalidTable(input=source, reason="the plots' index values do not vary")
    coefficients = np.linalg.solve(gram, design.T @ ys)
    residuals = ys - design @ coefficients
    ssr = float(residuals @ residuals)
    residual_se = float(np.sqrt(ssr / (n - 2))) if n > 2 else 0.0
    covariance = np.linalg.inv(gram) * residual_se**2
    total = float(((ys - ys.mean()) ** 2).sum())
    return Calibration(
        intercept=float(coefficients[0]),
        slope=float(coefficients[1]),
        covariance=(
            (float(covariance[0, 0]), float(covariance[0, 1])),
            (float(covariance[1, 0]), float(covariance[1, 1])),
        ),
        rmse=float(np.sqrt(ssr / n)),
        residual_se=residual_se,
        r_squared=1.0 - ssr / total if total > 0 else 0.0,
        plots_used=used,
        plots_excluded=excluded,
    )


@dataclass(frozen=True)
class StockChangeKernel:
    continuous: tuple[str, ...]
    categorical: tuple[str, ...]
    qa: tuple[str, ...]
    kind: str

    def accumulate(self, cells: CellData) -> dict[str, FloatArray]:
        masked = masked_by_qa(cells, self.qa)
        start = index_values(self.kind, "start:", cells.values)
        end = index_values(self.kind, "", cells.values)
        good = ~masked & np.isfinite(start) & np.isfinite(end)
        weight = np.where(good, cells.weight, 0.0)
        start0 = np.where(good, start, 0.0)
        end0 = np.where(good, end, 0.0)
        return {
            "valid_m2": cells.sum(weight),
            "sum_start": cells.sum(start0 * weight),
            "sum_end": cells.sum(end0 * weight),
            "min_start": cells.minimum(np.where(good, start, np.nan)),
            "max_start": cells.maximum(np.where(good, start, np.nan)),
            "min_end": cells.minimum(np.where(good, end, np.nan)),
            "max_end": cells.maximum(np.where(good, end, np.nan)),
        }


class BambooStockChange:
    name = NAME
    version = VERSION
    title = "Bamboo, Tier 2/3: biomass model from an index, carbon stock change between epochs"
    parameters = PARAMETERS
    applicability = BAMBOO_APPLICABILITY

    def index_kind(self, inputs: Inputs) -> str:
        if "agb" in inputs.layers and "start:agb" in inputs.layers:
            return "agb"
        if "index" in inputs.layers and "start:index" in inputs.layers:
            return "precomputed"
        bands = ("red", "nir", "blue")
        if all(f"{epoch}{band}" in inputs.layers for epoch in EPOCHS for band in bands):
            return "evi"
        return "ndvi"

    def kernel(self, params: ParameterSet, inputs: Inputs) -> StockChangeKernel:
        kind = self.index_kind(inputs)
        needed = index_layers(kind, "start:") + index_layers(kind, "")
        require(NAME, inputs.layers, needed)
        return StockChangeKernel(
            continuous=needed,
            categorical=(),
            qa=qa_layers(inputs.layers, EPOCHS),
            kind=kind,
        )

    def plot_layers(self, params: ParameterSet, inputs: Inputs) -> tuple[str, ...]:
        if inputs.plots is None or self.index_kind(inputs) == "agb":
            return ()
        return index_layers(self.index_kind(inputs), "")

    def calibration(self, params: ParameterSet, inputs: Inputs) -> Calibration | None:
        if inputs.plots is None or self.index_kind(inputs) == "agb":
            return None
        samples = dict(inputs.plot_samples or {})
        x = index_values(self.index_kind(inputs), "", samples)
        masked = samples.get(MASKED_SAMPLE)
        if masked is not None:
            x = np.where(masked > 0, np.nan, x)
        return fit_line(
            x, inputs.plots.agb_t_per_ha, inputs.plots.plot_id, source=inputs.plots.path
        )

    def evaluate(
        self,
        totals: Totals,
        geometry: ParcelGeometry,
        params: ParameterSet,
        inputs: Inputs,
    ) -> Evaluation:
        years = params.settings.years
        kind = self.index_kind(inputs)
        calibration = self.calibration(params, inputs)
        if kind == "agb":
            intercept, slope, residual_se = 0.0, 1.0, 0.0
            covariance = np.zeros((2, 2))
        elif calibration is not None:
            intercept, slope = calibration.intercept, calibration.slope
            residual_se = calibration.residual_se
            covariance = np.array(calibration.covariance)
        else:
            intercept = params["agb_intercept_t_per_ha"]
            slope = params["agb_slope_t_per_ha"]
            residual_se = params["agb_residual_se_t_per_ha"]
            covariance = np.zeros((2, 2))
        valid_m2 = totals.get("valid_m2")
        covered = totals.get("covered_m2")
        valid_ha = geometry.hectares(totals, valid_m2)
        masked_ha = geometry.hectares(totals, covered - valid_m2)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_start = np.where(valid_m2 > 0, totals.get("sum_start") / valid_m2, np.nan)
            mean_end = np.where(valid_m2 > 0, totals.get("sum_end") / valid_m2, np.nan)
        delta_index = np.nan_to_num(mean_end - mean_start)
        cf = params["carbon_fraction"]
        rs = params["root_to_shoot"]
        minimum = params["minimum_eligible_area_ha"]
        too_small = minimum_area_flags(valid_ha, minimum, geometry.inside_ha)
        credited = np.where(too_small, 0.0, 1.0)
        removals = valid_ha * credited * cf * (1.0 + rs) * slope * delta_index * CO2_PER_C
        baseline = valid_ha * credited * params["baseline_tco2e_per_ha_year"] * years
        leakage = np.maximum(removals, 0.0) * params["leakage_share"]
        # Cells (in pixel units) behind each parcel's mean, for the residual's spread.
        cells = totals.get("pixel_coverage") * np.where(covered > 0, valid_m2 / covered, 0.0)
        correlation = params["residual_correlation_cells"]
        with np.errstate(divide="ignore", invalid="ignore"):
            residual_sd = np.where(
                cells > 0, residual_se * np.sqrt(np.minimum(1.0, correlation / cells)), 0.0
            )
        baseline_rate = params["baseline_tco2e_per_ha_year"]
        leakage_share = params["leakage_share"]
        coefficient_sd = np.sqrt(max(float(covariance[1, 1]), 0.0))

        def simulate(
            block: IntArray, draws: Mapping[str, FloatArray], rng: np.random.Generator
        ) -> FloatArray:
            cf_d = draw_factor(draws, "carbon_fraction", cf)
            rs_d = draw_factor(draws, "root_to_shoot", rs)
            if calibration is not None:
                slope_d = draws["calibration_slope"]
            else:
                slope_d = draw_factor(draws, "agb_slope_t_per_ha", slope)
            base_d = draw_factor(draws, "baseline_tco2e_per_ha_year", baseline_rate)
            leak_d = draw_factor(draws, "leakage_share", leakage_share)
            count = max(cf_d.size, rs_d.size, slope_d.size, base_d.size, leak_d.size)
            noise = rng.standard_normal((block.size, 2, count))
            sd = residual_sd[block][:, None]
            delta_agb = (
                slope_d[None, :] * delta_index[block][:, None]
                + (noise[:, 1, :] - noise[:, 0, :]) * sd
            )
            area = (valid_ha * credited)[block][:, None]
            gross = area * cf_d[None, :] * (1.0 + rs_d[None, :]) * delta_agb * CO2_PER_C
            leak = np.maximum(gross, 0.0) * leak_d[None, :]
            net: FloatArray = gross - leak - area * base_d[None, :] * years
            return net

        statistics = {
            "index_start_mean": mean_start,
            "index_end_mean": mean_end,
            "agb_start_mean_t_per_ha": intercept + slope * mean_start,
            "agb_end_mean_t_per_ha": intercept + slope * mean_end,
            "index_start_min": _finite(totals.get("min_start")),
            "index_start_max": _finite(totals.get("max_start")),
            "index_end_min": _finite(totals.get("min_end")),
            "index_end_max": _finite(totals.get("max_end")),
        }
        extra: dict[str, Any] = {
            "index": kind,
            "biomass_model": {
                "intercept": intercept,
                "slope": slope,
                "residual_se": residual_se,
                "slope_sd": coefficient_sd,
                "source": (
                    "precomputed biomass rasters"
                    if kind == "agb"
                    else "field plots (least squares)"
                    if calibration is not None
                    else "parameters"
                ),
            },
        }
        if calibration is not None:
            extra["calibration"] = calibration.as_dict()
        flags = [["below_minimum_area"] if flag else [] for flag in too_small.tolist()]
        return Evaluation(
            class_keys=["valid"],
            class_names={"valid": "unmasked in both epochs"},
            area_by_class_ha=valid_ha[:, None],
            eligible_area_ha=valid_ha * credited,
            masked_ha=masked_ha,
            removals=removals,
            emissions=np.zeros_like(removals),
            baseline=baseline,
            leakage=leakage,
            statistics=statistics,
            simulate=simulate,
            flags=flags,
            extra=extra,
            shared_normal=(
                {"calibration_slope": (slope, coefficient_sd)} if calibration is not None else {}
            ),
        )


def _finite(values: FloatArray) -> FloatArray:
    return np.where(np.isfinite(values), values, np.nan)
