"""``bamboo-rate`` 1.0 (Tier 1, the scheme Anji uses today).

Eligible area = the parcel's ground area on cells classified bamboo (index >= threshold, or a
land-cover class listed in the class table with a positive removal), weighted by exact coverage.
Removals = eligible area x rate x years (with a land-cover table, each class's own rate).
Baseline = eligible area x baseline rate x years; leakage = leakage share x removals.
Cloud-masked or nodata cells are never eligible (conservative); the report gives their share.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mrv.methodologies.base import (
    BAMBOO_APPLICABILITY,
    MINIMUM_AREA_SOURCE,
    ClassBounds,
    ClassKernel,
    Evaluation,
    FloatArray,
    Inputs,
    IntArray,
    ParcelGeometry,
    draw_factor,
    index_layers,
    minimum_area_flags,
    qa_layers,
    require,
    statistics_of,
)
from mrv.params import ParameterSet, ParameterSpec, Uncertainty
from mrv.zonal import Totals

NAME = "bamboo-rate"
VERSION = "1.0"

PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec(
        name="rate_tco2e_per_ha_year",
        value=5.85,
        unit="tCO2e/ha/yr",
        source=(
            "Anji bamboo collection centre (2021): 0.39 tCO2/mu/yr = 5.85 t/ha/yr; spread "
            "(verify) from published Moso rates 2.0-5.85 t/ha/yr (Xu et al. 2017, Forests 8:371)"
        ),
        uncertainty=Uncertainty(kind="normal", relative_sd=0.2),
        minimum=0.0,
        maximum=100.0,
    ),
    ParameterSpec(
        name="index_threshold",
        value=0.6,
        unit="index (NDVI unless an index raster is given)",
        source=(
            "(verify) dense evergreen Moso canopy; an NDVI threshold is a Tier 1 proxy for CCER "
            "AR-CM-005's canopy closure >= 0.20"
        ),
        minimum=-1.0,
        maximum=1.0,
    ),
    ParameterSpec(
        name="baseline_tco2e_per_ha_year",
        value=0.0,
        unit="tCO2e/ha/yr",
        source="Anji scheme: no baseline deduction (verify per project)",
        minimum=0.0,
        maximum=100.0,
    ),
    ParameterSpec(
        name="leakage_share",
        value=0.0,
        unit="share of removals",
        source="Anji scheme: no leakage deduction (verify per project)",
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


# A class table is refused outside these (a typo or an inflation, never an estimate).
CLASS_BOUNDS = ClassBounds(
    removal_min=-20.0,
    removal_max=20.0,
    removal_source=(
        "bamboo-rate 1.0 bound: 3.4x the Anji scheme's 5.85 tCO2e/ha/yr, the highest published Moso"
        " rate (Xu et al. 2017, Forests 8:371: 2.2); losses down to the same magnitude (verify)"
    ),
    ch4_min=0.0,
    ch4_max=0.0,
    ch4_source="bamboo-rate 1.0 credits no methane: a bamboo class table has none",
)


class BambooRate:
    name = NAME
    version = VERSION
    class_bounds = CLASS_BOUNDS
    title = "Bamboo, Tier 1: eligible area x default rate x years"
    parameters = PARAMETERS
    applicability = BAMBOO_APPLICABILITY

    def index_kind(self, inputs: Inputs) -> str:
        if "index" in inputs.layers:
            return "precomputed"
        if "blue" in inputs.layers and "red" in inputs.layers and "nir" in inputs.layers:
            return "evi"
        return "ndvi"

    def kernel(self, params: ParameterSet, inputs: Inputs) -> ClassKernel:
        qa = qa_layers(inputs.layers, ("",))
        if inputs.classes is not None:
            require(NAME, inputs.layers, ("landcover",))
            return ClassKernel(
                continuous=(),
                categorical=("landcover",),
                qa=qa,
                class_values=tuple(item.value for item in inputs.classes),
                n_classes=len(inputs.classes),
            )
        kind = self.index_kind(inputs)
        needed = index_layers(kind, "")
        require(NAME, inputs.layers, needed)
        return ClassKernel(
            continuous=needed,
            categorical=(),
            qa=qa,
            rules=((1, kind, params["index_threshold"]),),
            n_classes=1,
            statistics=(kind,),
        )

    def plot_layers(self, params: ParameterSet, inputs: Inputs) -> tuple[str, ...]:
        return ()

    def evaluate(
        self,
        totals: Totals,
        geometry: ParcelGeometry,
        params: ParameterSet,
        inputs: Inputs,
    ) -> Evaluation:
        years = params.settings.years
        if inputs.classes is not None:
            classes = inputs.classes
            keys = ["other", *(str(item.value) for item in classes)]
            names = {"other": "other", **{str(item.value): item.name for item in classes}}
            rates = np.array([0.0, *(item.removal_tco2e_per_ha_year for item in classes)])
            statistics_kinds: tuple[str, ...] = ()
        else:
            keys = ["other", "1"]
            names = {"other": "other", "1": "bamboo"}
            rates = np.array([0.0, params["rate_tco2e_per_ha_year"]])
            statistics_kinds = (self.index_kind(inputs),)
        n_classes = len(keys)
        class_m2 = totals.get("class_m2", n_classes + 1)
        area = geometry.hectares(totals, class_m2)
        by_class = area[:, :n_classes]
        masked_ha = area[:, n_classes]
        eligible_columns = rates > 0
        eligible = by_class[:, eligible_columns].sum(axis=1)
        minimum = params["minimum_eligible_area_ha"]
        too_small = minimum_area_flags(eligible, minimum, geometry.inside_ha)
        credited = np.where(too_small, 0.0, 1.0)
        # Removals per parcel with the nominal rate(s); the class table's rates scale with the
        # same multiplier as the default rate in the simulation.
        per_year = (by_class * rates[None, :]).sum(axis=1) * credited
        removals = per_year * years
        baseline = eligible * credited * params["baseline_tco2e_per_ha_year"] * years
        leakage = removals * params["leakage_share"]
        nominal_rate = params["rate_tco2e_per_ha_year"]

        def simulate(
            block: IntArray, draws: Mapping[str, FloatArray], rng: np.random.Generator
        ) -> FloatArray:
            rate = draw_factor(draws, "rate_tco2e_per_ha_year", nominal_rate)
            # The class table's rates, if any, move with the same relative draw.
            factor = rate / nominal_rate if nominal_rate > 0 else np.zeros_like(rate)
            base = draw_factor(draws, "baseline_tco2e_per_ha_year", baseline_rate)
            leak = draw_factor(draws, "leakage_share", leakage_share)
            gross = removals[block][:, None] * factor[None, :]
            base_t = (eligible[block] * credited[block] * years)[:, None] * base[None, :]
            net: FloatArray = gross * (1.0 - leak[None, :]) - base_t
            return net

        baseline_rate = params["baseline_tco2e_per_ha_year"]
        leakage_share = params["leakage_share"]
        flags = [["below_minimum_area"] if flag else [] for flag in too_small.tolist()]
        return Evaluation(
            class_keys=keys,
            class_names=names,
            area_by_class_ha=by_class,
            eligible_area_ha=eligible,
            masked_ha=masked_ha,
            removals=removals,
            emissions=np.zeros_like(removals),
            baseline=baseline,
            leakage=leakage,
            statistics=statistics_of(totals, statistics_kinds),
            simulate=simulate,
            flags=flags,
        )
