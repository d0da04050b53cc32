"""Seeded Monte Carlo over parameter distributions and model residuals; conservativeness.

Parameters with a distribution are drawn once per draw and shared by every parcel (a wrong
default rate is wrong everywhere); per-parcel terms (model residuals) are drawn per parcel.
Parcels are simulated in fixed blocks, each with its own child of the seed, so the result does
not depend on how the work was split and is the same on every run with the same seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from mrv.methodologies.base import Evaluation
from mrv.params import UNCERTAINTY_BAND_ALLOWANCE, ParameterSet

FloatArray = NDArray[np.float64]
PARCEL_BLOCK = 1024
LOW_QUANTILE = 0.05
HIGH_QUANTILE = 0.95
ROUND_DECIMALS = 6  # tonnes are rounded to a micro-tonne before floor/ceil


@dataclass
class Simulation:
    mean: FloatArray
    p05: FloatArray
    p95: FloatArray
    total_mean: float
    total_p05: float
    total_p95: float


def shared_draws(
    params: ParameterSet,
    extra_normal: Mapping[str, tuple[float, float]],
    draws: int,
    rng: np.random.Generator,
) -> dict[str, FloatArray]:
    result: dict[str, FloatArray] = {}
    for name in sorted(params.specs):
        spec = params.specs[name]
        uncertainty = spec.uncertainty
        if uncertainty is None:
            continue
        if uncertainty.kind == "uniform":
            values = rng.uniform(uncertainty.low, uncertainty.high, draws)
        else:
            sd = uncertainty.sd or abs(spec.value) * uncertainty.relative_sd
            values = spec.value + sd * rng.standard_normal(draws)
        result[name] = np.clip(values, spec.minimum, spec.maximum)
    for name in sorted(extra_normal):
        mean, sd = extra_normal[name]
        result[name] = mean + sd * rng.standard_normal(draws)
    return result


def simulate(evaluation: Evaluation, params: ParameterSet) -> Simulation:
    settings = params.settings
    count = evaluation.removals.size
    root = np.random.SeedSequence(settings.seed)
    n_blocks = (count + PARCEL_BLOCK - 1) // PARCEL_BLOCK
    children = root.spawn(n_blocks + 1)
    draws = shared_draws(
        params, evaluation.shared_normal, settings.draws, np.random.default_rng(children[0])
    )
    mean = np.zeros(count)
    low = np.zeros(count)
    high = np.zeros(count)
    total = np.zeros(settings.draws)
    for block_number in range(n_blocks):
        block = np.arange(
            block_number * PARCEL_BLOCK, min(count, (block_number + 1) * PARCEL_BLOCK)
        )
        rng = np.random.default_rng(children[block_number + 1])
        net = evaluation.simulate(block, draws, rng)
        if net.shape[1] != settings.draws:  # nothing uncertain: every draw is the nominal value
            net = np.broadcast_to(net[:, :1], (block.size, settings.draws))
        mean[block] = net.mean(axis=1)
        quantiles = np.quantile(net, [LOW_QUANTILE, HIGH_QUANTILE], axis=1)
        low[block] = quantiles[0]
        high[block] = quantiles[1]
        total += net.sum(axis=0)
    total_quantiles = np.quantile(total, [LOW_QUANTILE, HIGH_QUANTILE])
    return Simulation(
        mean=mean,
        p05=low,
        p95=high,
        total_mean=float(total.mean()),
        total_p05=float(total_quantiles[0]),
        total_p95=float(total_quantiles[1]),
    )


def conservative(net: float, mean: float, p05: float, p95: float, rule: str) -> float:
    """The credited net under the configured rule (never above the nominal net)."""
    if rule == "lower-bound" or net <= 0:
        return min(net, p05)
    half_width = (p95 - p05) / 2.0
    relative = half_width / abs(mean) if mean else math.inf
    deduction = max(0.0, relative - UNCERTAINTY_BAND_ALLOWANCE)
    return net * max(0.0, 1.0 - deduction)


def buffer_whole_tonnes(conservative_net: float, share: float) -> int:
    """Tonnes withheld for non-permanence, rounded up."""
    return math.ceil(round(max(conservative_net, 0.0) * share, ROUND_DECIMALS))


def issuable_whole_tonnes(conservative_net: float, buffer_tonnes: float) -> int:
    """floor(conservative net - buffer), never negative."""
    return max(0, math.floor(round(conservative_net - buffer_tonnes, ROUND_DECIMALS)))
