"""The behaviours Tanhui credits, and the physical rules an event of each must satisfy.

A scenario is *what* a resident did (a bus ride, a walk, a drop-off at a recycling station). Its
factor (grams CO2e per unit) changes over time and lives in versioned tables
(:mod:`mrv.inclusive.factors`); what stays fixed for a scenario is its unit, the sub-types it is
reported by (``variant``: the material recycled, the kind of second-hand goods; the factor
versions say which variants exist) and the limits past which a report is physically
implausible.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tanhui.i18n import N_


class Scenario(StrEnum):
    bus = "bus"
    metro = "metro"
    bike = "bike"
    walk = "walk"
    recycling = "recycling"
    tableware = "tableware"
    tourism = "tourism"
    second_hand = "second_hand"


class Unit(StrEnum):
    passenger_km = "passenger_km"
    km = "km"
    steps = "steps"
    kg = "kg"
    order = "order"
    check_in = "check_in"
    item = "item"


# Units counted in whole numbers: a fraction of an order or a check-in is not physical.
WHOLE_UNITS = frozenset({Unit.steps, Unit.order, Unit.check_in, Unit.item})

UNIT_LABELS: dict[Unit, str] = {
    Unit.passenger_km: N_("passenger-km"),
    Unit.km: N_("km"),
    Unit.steps: N_("steps"),
    Unit.kg: N_("kg"),
    Unit.order: N_("order"),
    Unit.check_in: N_("check-in"),
    Unit.item: N_("item"),
}

SCENARIO_LABELS: dict[Scenario, str] = {
    Scenario.bus: N_("Bus ride"),
    Scenario.metro: N_("Metro ride"),
    Scenario.bike: N_("Shared bike"),
    Scenario.walk: N_("Walking"),
    Scenario.recycling: N_("Recycling"),
    Scenario.tableware: N_("No disposable tableware"),
    Scenario.tourism: N_("Low-carbon tourism check-in"),
    Scenario.second_hand: N_("Second-hand purchase"),
}

DAY_WINDOW = 0  # a dedup window of 0 seconds means "the resident's calendar day (Asia/Shanghai)"


@dataclass(frozen=True)
class ScenarioSpec:
    """What does not change between factor versions of a scenario.

    ``max_per_event``: the largest quantity one event may carry (a 150 km bus ride is not a
    ride in Huzhou). ``max_per_hour``: the fastest physically possible rate, checked when the
    partner reports the activity's duration (walking cadence, cycling speed).
    ``dedup_window_s``: two reports of this activity for the same resident less than this apart
    from two different partners are one act, 4 times this apart never are (0: the same calendar
    day); see
    :func:`mrv.inclusive.quantify.activity_keys`.
    """

    scenario: Scenario
    unit: Unit
    variant_name: str | None
    max_per_event: int
    max_per_hour: int | None
    dedup_window_s: int
    data_source: str

    @property
    def whole_units(self) -> bool:
        return self.unit in WHOLE_UNITS


SPECS: dict[Scenario, ScenarioSpec] = {
    spec.scenario: spec
    for spec in (
        ScenarioSpec(
            Scenario.bus,
            Unit.passenger_km,
            None,
            max_per_event=150,
            max_per_hour=90,
            dedup_window_s=180,
            data_source=N_("The operator's fare record (tap-in and tap-out) with the distance"),
        ),
        ScenarioSpec(
            Scenario.metro,
            Unit.passenger_km,
            None,
            max_per_event=100,
            max_per_hour=120,
            dedup_window_s=180,
            data_source=N_("The operator's gate record (entry and exit station) with the distance"),
        ),
        ScenarioSpec(
            Scenario.bike,
            Unit.km,
            None,
            max_per_event=60,
            max_per_hour=35,
            dedup_window_s=180,
            data_source=N_("The bike-share operator's trip record (unlock, lock, track length)"),
        ),
        ScenarioSpec(
            Scenario.walk,
            Unit.steps,
            None,
            max_per_event=60_000,
            max_per_hour=12_000,  # 200 steps a minute is a sprint, not a walk
            dedup_window_s=DAY_WINDOW,
            data_source=N_("A partner health platform's pedometer count, with the phone's consent"),
        ),
        ScenarioSpec(
            Scenario.recycling,
            Unit.kg,
            N_("material"),
            max_per_event=200,
            max_per_hour=None,
            dedup_window_s=900,
            data_source=N_("The weight on the recycling station's calibrated scale"),
        ),
        ScenarioSpec(
            Scenario.tableware,
            Unit.order,
            None,
            max_per_event=5,
            max_per_hour=None,
            dedup_window_s=300,
            data_source=N_("The food-delivery platform's or merchant's order record"),
        ),
        ScenarioSpec(
            Scenario.tourism,
            Unit.check_in,
            None,
            max_per_event=1,
            max_per_hour=None,
            dedup_window_s=1800,
            data_source=N_("The tourism site's check-in record"),
        ),
        ScenarioSpec(
            Scenario.second_hand,
            Unit.item,
            N_("category"),
            max_per_event=3,
            max_per_hour=None,
            dedup_window_s=300,
            data_source=N_("The second-hand platform's completed order"),
        ),
    )
}


_BY_NAME: dict[str, ScenarioSpec] = {scenario.value: spec for scenario, spec in SPECS.items()}


def spec_for(scenario: str) -> ScenarioSpec | None:
    """The spec of ``scenario``, or None for a name Tanhui does not credit."""
    return _BY_NAME.get(scenario)
