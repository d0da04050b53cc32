"""``wetland`` 1.0: area by class x removal factor, minus CH4 x GWP100, per class.

Classes come from a land-cover raster with a class table (CSV ``value,name,
removal_tco2e_per_ha_year,ch4_kg_per_ha_year``; unlisted values are "other" with zero removal
and zero methane), or from indices: open water where MNDWI >= the water threshold, vegetated
marsh where NDVI >= the marsh threshold (and not water), other elsewhere. Methane is netted, not
hidden: under Tier 1 defaults it can outweigh the soil gain, and the net is then negative.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mrv.methodologies.base import (
    CREDITING_SOURCE,
    EARLIEST_START,
    MAX_CREDITING_YEARS,
    MIN_CREDITING_YEARS,
    Applicability,
    ClassBounds,
    ClassKernel,
    Evaluation,
    FloatArray,
    Inputs,
    IntArray,
    ParcelGeometry,
    draw_factor,
    index_layers,
    qa_layers,
    require,
    statistics_of,
)
from mrv.params import ParameterSet, ParameterSpec, Uncertainty
from mrv.zonal import Totals

NAME = "wetland"
VERSION = "1.0"
KG_PER_T = 1000.0

_CH4_SOURCE = (
    "IPCC 2013 Wetlands Supplement ch. 5, rewetted inland mineral soils, temperate: 235 kg "
    "CH4/ha/yr (verify; applied to open water too, the conservative choice)"
)
PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec(
        name="gwp100_ch4",
        value=27.0,
        unit="tCO2e/t CH4",
        source="IPCC AR6 WG1 ch. 7, GWP100 of non-fossil methane",
        minimum=0.0,
        maximum=100.0,
    ),
    ParameterSpec(
        name="water_mndwi_threshold",
        value=0.5,
        unit="MNDWI",
        source="MNDWI = (G - SWIR1)/(G + SWIR1); water > 0.5 (DOMAIN.md)",
        minimum=-1.0,
        maximum=1.0,
    ),
    ParameterSpec(
        name="marsh_ndvi_threshold",
        value=0.3,
        unit="NDVI",
        source="(verify) vegetated marsh: NDVI >= 0.3 outside open water",
        minimum=-1.0,
        maximum=1.0,
    ),
    ParameterSpec(
        name="water_removal_tco2e_per_ha_year",
        value=0.0,
        unit="tCO2e/ha/yr",
        source="open water: no soil carbon gain credited (conservative)",
        minimum=-100.0,
        maximum=100.0,
    ),
    ParameterSpec(
        name="water_ch4_kg_per_ha_year",
        value=235.0,
        unit="kg CH4/ha/yr",
        source=_CH4_SOURCE,
        minimum=0.0,
        maximum=10_000.0,
    ),
    ParameterSpec(
        name="marsh_removal_tco2e_per_ha_year",
        value=0.23 * 44.0 / 12.0,
        unit="tCO2e/ha/yr",
        source=(
            "IPCC 2013 Wetlands Supplement ch. 3, rewetted organic soils, temperate nutrient-poor:"
            " -0.23 tCO2-C/ha/yr = 0.843 tCO2/ha/yr removal (verify against the primary table)"
        ),
        minimum=-100.0,
        maximum=100.0,
    ),
    ParameterSpec(
        name="marsh_ch4_kg_per_ha_year",
        value=235.0,
        unit="kg CH4/ha/yr",
        source=_CH4_SOURCE,
        minimum=0.0,
        maximum=10_000.0,
    ),
    ParameterSpec(
        name="removal_factor_multiplier",
        value=1.0,
        unit="x",
        source="(verify) +/-50 % (1 sd) on every class's removal factor, Tier 1 spread",
        uncertainty=Uncertainty(kind="normal", relative_sd=0.5),
        minimum=0.0,
        maximum=10.0,
    ),
    ParameterSpec(
        name="ch4_factor_multiplier",
        value=1.0,
        unit="x",
        source="(verify) +/-50 % (1 sd) on every class's CH4 factor, Tier 1 spread",
        uncertainty=Uncertainty(kind="normal", relative_sd=0.5),
        minimum=0.0,
        maximum=10.0,
    ),
    ParameterSpec(
        name="baseline_tco2e_per_ha_year",
        value=0.0,
        unit="tCO2e/ha/yr",
        source="(verify) project-specific baseline; 0 by default",
        minimum=-100.0,
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
)


APPLICABILITY = Applicability(
    land_types=("wetland",),
    land_source=(
        "IPCC 2013 Wetlands Supplement, inland wetlands (shared/docs/DOMAIN.md, Wetland); the "
        "bamboo methodologies exclude wetland, and this one credits no forest"
    ),
    min_crediting_years=MIN_CREDITING_YEARS,
    max_crediting_years=MAX_CREDITING_YEARS,
    earliest_start=EARLIEST_START,
    crediting_source=CREDITING_SOURCE,
)


# A class table is refused outside these (a typo or an inflation, never an estimate).
CLASS_BOUNDS = ClassBounds(
    removal_min=-50.0,
    removal_max=10.0,
    removal_source=(
        "wetland 1.0 bound: IPCC 2013 Wetlands Supplement, rewetted soils remove about"
        " 0.84 tCO2/ha/yr (ch. 3); 10 leaves room for the highest coastal burial rates (verify)"
    ),
    ch4_min=0.0,
    ch4_max=1_000.0,
    ch4_source=(
        "wetland 1.0 bound: IPCC 2013 Wetlands Supplement ch. 5 default 235 kg CH4/ha/yr,"
        " ch. 3 up to 216 kg CH4-C (288 kg CH4)/ha/yr; about 3.5x the highest default (verify)"
    ),
)


class Wetland:
    name = NAME
    version = VERSION
    class_bounds = CLASS_BOUNDS
    title = "Wetland: area by class x removal factor, minus CH4 x GWP100"
    parameters = PARAMETERS
    applicability = APPLICABILITY

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
        needed = index_layers("mndwi", "") + index_layers("ndvi", "")
        needed = tuple(dict.fromkeys(needed))
        require(NAME, inputs.layers, needed)
        return ClassKernel(
            continuous=needed,
            categorical=(),
            qa=qa,
            rules=(
                (1, "mndwi", params["water_mndwi_threshold"]),
                (2, "ndvi", params["marsh_ndvi_threshold"]),
            ),
            n_classes=2,
            statistics=("mndwi", "ndvi"),
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
            removal = np.array([0.0, *(item.removal_tco2e_per_ha_year for item in classes)])
            methane = np.array([0.0, *(item.ch4_kg_per_ha_year for item in classes)])
            kinds: tuple[str, ...] = ()
        else:
            keys = ["other", "1", "2"]
            names = {"other": "other", "1": "open_water", "2": "vegetated_marsh"}
            removal = np.array(
                [
                    0.0,
                    params["water_removal_tco2e_per_ha_year"],
                    params["marsh_removal_tco2e_per_ha_year"],
                ]
            )
            methane = np.array(
                [0.0, params["water_ch4_kg_per_ha_year"], params["marsh_ch4_kg_per_ha_year"]]
            )
            kinds = ("mndwi", "ndvi")
        n_classes = len(keys)
        area = geometry.hectares(totals, totals.get("class_m2", n_classes + 1))
        by_class = area[:, :n_classes]
        masked_ha = area[:, n_classes]
        wetland = (removal != 0) | (methane != 0)
        eligible = by_class[:, wetland].sum(axis=1)
        gwp = params["gwp100_ch4"]
        removals = (by_class @ removal) * years
        emissions = (by_class @ methane) * gwp / KG_PER_T * years
        baseline_rate = params["baseline_tco2e_per_ha_year"]
        leakage_share = params["leakage_share"]
        baseline = eligible * baseline_rate * years
        leakage = np.maximum(removals, 0.0) * leakage_share

        def simulate(
            block: IntArray, draws: Mapping[str, FloatArray], rng: np.random.Generator
        ) -> FloatArray:
            rf = draw_factor(draws, "removal_factor_multiplier", 1.0)
            mf = draw_factor(draws, "ch4_factor_multiplier", 1.0)
            base = draw_factor(draws, "baseline_tco2e_per_ha_year", baseline_rate)
            leak = draw_factor(draws, "leakage_share", leakage_share)
            gross = removals[block][:, None] * rf[None, :]
            net: FloatArray = (
                gross
                - np.maximum(gross, 0.0) * leak[None, :]
                - emissions[block][:, None] * mf[None, :]
                - (eligible[block] * years)[:, None] * base[None, :]
            )
            return net

        return Evaluation(
            class_keys=keys,
            class_names=names,
            area_by_class_ha=by_class,
            eligible_area_ha=eligible,
            masked_ha=masked_ha,
            removals=removals,
            emissions=emissions,
            baseline=baseline,
            leakage=leakage,
            statistics=statistics_of(totals, kinds),
            simulate=simulate,
            flags=[[] for _ in range(removals.size)],
            extra={
                "classes": [
                    {
                        "key": key,
                        "name": names[key],
                        "removal_tco2e_per_ha_year": float(removal[column]),
                        "ch4_kg_per_ha_year": float(methane[column]),
                    }
                    for column, key in enumerate(keys)
                ]
            },
        )
