"""The behaviour methodologies (``mrv.inclusive``): published factors, versions, plausibility,
activity fingerprints. Pure functions: no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrv.inclusive import (
    BUILTIN_VERSIONS,
    DEFAULT_TABLE,
    FactorStatus,
    FactorTable,
    FactorTableError,
    FactorVersion,
    Problem,
    Report,
    Scenario,
    Timing,
    Unit,
    activity_keys,
    quantify,
    timing,
)

AT = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def test_published_factors_are_the_cited_figures() -> None:
    figures = {(v.scenario.value, v.variant, v.version): v.grams_per_unit for v in BUILTIN_VERSIONS}
    assert figures[("bus", "", "1.0")] == Decimal("26.9")  # Shenzhen 2021, per passenger-km
    assert figures[("metro", "", "1.0")] == Decimal("46.7")  # Shenzhen 2021
    assert figures[("metro", "", "2.0")] == Decimal("78.4")  # Wuhan 2025
    assert figures[("bike", "", "1.0")] == Decimal("93.3")  # Wuhan 2025
    assert figures[("walk", "", "1.0")] * 500 == Decimal("8.2")  # Luzhou: 8.2 g per 500 steps
    assert figures[("recycling", "textile", "1.0")] == 1280  # Luzhou used clothes
    assert figures[("second_hand", "phone", "1.0")] == 51_900  # CCEA 2023
    for version in BUILTIN_VERSIONS:
        assert version.source and version.baseline and version.data_source
        if version.grams_per_unit == 0:
            assert version.status == FactorStatus.participation


def test_the_version_in_force_is_chosen_by_the_local_day() -> None:
    last_old = datetime(2026, 6, 30, 15, 59, 59, tzinfo=UTC)  # 23:59:59 in Huzhou
    first_new = last_old + timedelta(seconds=1)
    old = quantify(Report("metro", "", Decimal(10), last_old))
    new = quantify(Report("metro", "", Decimal(10), first_new))
    assert not isinstance(old, Problem) and not isinstance(new, Problem)
    assert (old.version.version, old.grams) == ("1.0", 467)
    assert (new.version.version, new.grams) == ("2.0", 784)
    before_start = quantify(Report("bus", "", Decimal(1), datetime(2025, 12, 31, tzinfo=UTC)))
    assert before_start is Problem.no_factor


def test_a_table_refuses_contradictions() -> None:
    bus = BUILTIN_VERSIONS[0]
    with pytest.raises(FactorTableError):
        FactorTable([bus, bus])
    with pytest.raises(FactorTableError):  # a new unit is a new scenario
        FactorTable([FactorVersion(**{**bus.__dict__, "unit": Unit.km, "version": "9"})])
    with pytest.raises(FactorTableError):  # a zero factor must say it claims nothing
        FactorTable([FactorVersion(**{**bus.__dict__, "grams_per_unit": Decimal(0)})])
    with pytest.raises(FactorTableError):  # recycling is reported by material
        FactorTable(
            [
                FactorVersion(
                    Scenario.recycling,
                    "",
                    "1",
                    Unit.kg,
                    Decimal(1),
                    baseline="b",
                    source="s",
                    valid_from=date(2026, 1, 1),
                    daily_cap=Decimal(1),
                )
            ]
        )


@pytest.mark.parametrize(
    ("scenario", "quantity", "duration_s", "expected"),
    [
        ("walk", "12000", 3600, True),  # 200 steps a minute
        ("walk", "12001", 3600, False),
        ("bike", "35", 3600, True),
        ("bike", "10", 600, False),  # 60 km/h on a shared bike
        ("bus", "150", None, True),
        ("bus", "150.001", None, False),
        ("bus", "0", None, False),
        ("bus", "-3", None, False),
        ("tableware", "1.5", None, False),
        ("tourism", "2", None, False),
        ("walk", "100", 0, False),
    ],
)
def test_plausibility(scenario: str, quantity: str, duration_s: int | None, expected: bool) -> None:
    result = quantify(Report(scenario, "", Decimal(quantity), AT, duration_s))
    assert (result is not Problem.implausible) == expected


def test_timing_limits() -> None:
    now = AT
    assert timing(now - timedelta(days=7), now) is Timing.ok
    assert timing(now - timedelta(days=7, seconds=1), now) is Timing.too_old
    assert timing(now + timedelta(minutes=5), now) is Timing.ok
    assert timing(now + timedelta(minutes=5, seconds=1), now) is Timing.in_future


@settings(deadline=None)
@given(
    offset=st.integers(min_value=0, max_value=10**7),
    gap=st.integers(min_value=0, max_value=179),
)
def test_reports_closer_than_the_radius_share_a_fingerprint(offset: int, gap: int) -> None:
    first = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=offset)
    second = first + timedelta(seconds=gap)
    assert set(activity_keys("r", "bus", "", first)) & set(activity_keys("r", "bus", "", second))
    assert not set(activity_keys("r", "bus", "", first)) & set(
        activity_keys("r", "metro", "", second)
    )
    assert not set(activity_keys("r", "bus", "", first)) & set(
        activity_keys("other", "bus", "", second)
    )


@settings(deadline=None)
@given(
    offset=st.integers(min_value=0, max_value=10**7),
    gap=st.integers(min_value=720, max_value=10**5),
)
def test_reports_four_radii_apart_never_do(offset: int, gap: int) -> None:
    first = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=offset)
    second = first + timedelta(seconds=gap)
    assert not set(activity_keys("r", "bus", "", first)) & set(
        activity_keys("r", "bus", "", second)
    )


@settings(deadline=None)
@given(
    milli=st.integers(min_value=1, max_value=150_000),
)
def test_grams_and_points_round_down_and_never_exceed_the_exact_figure(milli: int) -> None:
    quantity = Decimal(milli) / 1000
    result = quantify(Report("bus", "", quantity, AT))
    assert not isinstance(result, Problem)
    exact = quantity * Decimal("26.9")
    assert result.grams <= exact < result.grams + 1
    assert result.points == result.grams * 100 // 1000


def test_default_table_lists_every_scenario() -> None:
    assert {v.scenario for v in DEFAULT_TABLE.versions()} == set(Scenario)
