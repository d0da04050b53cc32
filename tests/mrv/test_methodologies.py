"""Methodology arithmetic against hand-worked examples on small synthetic rasters.

Grid: 100 x 100 cells of 10 m (0.01 ha each) in EPSG:32650 (Huzhou's UTM zone); the parcel is
cells rows 0-39 x cols 0-49, i.e. exactly 20 ha.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyproj import Transformer
from shapely import box

from mrv import estimate
from mrv.methodologies.bamboo_stock_change import fit_line
from mrv.params import period_years
from tests.mrv.helpers import frame, write_raster

WEST, NORTH = 500_000.0, 3_400_000.0
PARCEL = box(WEST, NORTH - 400, WEST + 500, NORTH)  # 50 x 40 cells = 20 ha
CERTAIN = {"relative_sd": 0.0}


def _index(tmp_path: Path, name: str, values: np.ndarray) -> str:
    return write_raster(tmp_path / f"{name}.tif", values.astype(np.float64), origin=(WEST, NORTH))


def test_bamboo_rate_hand_worked(tmp_path: Path) -> None:
    index = np.full((100, 100), 0.2)
    index[:, :30] = 0.8  # 30 of the parcel's 50 columns are bamboo: 30 x 40 cells = 12 ha
    report = estimate(
        frame([PARCEL]),
        {"index": _index(tmp_path, "ndvi", index)},
        "bamboo-rate",
        {
            "uncertainty": {"rate_tco2e_per_ha_year": CERTAIN},
            "monitoring_period": {"start": "2021-01-01", "end": "2023-12-31"},
        },
    ).as_dict()
    parcel = report["parcels"][0]
    assert parcel["area_ha"] == pytest.approx(20.0)
    assert parcel["eligible_area_ha"] == pytest.approx(12.0)
    assert parcel["area_by_class_ha"] == pytest.approx({"1": 12.0, "other": 8.0})
    # 12 ha x 5.85 t/ha/yr x 3 yr = 210.6 t; buffer 20 % (default risk scores) = 42.12 t.
    assert parcel["removals_tco2e"] == pytest.approx(210.6)
    assert parcel["conservative_net_tco2e"] == pytest.approx(210.6)
    assert parcel["buffer_tco2e"] == pytest.approx(42.12)
    assert parcel["issuable_tco2e"] == 168
    totals = report["totals"]
    assert totals["buffer_share"] == pytest.approx(0.2)
    assert totals["buffer_tco2e"] == 43  # whole tonnes, rounded up
    assert totals["issuable_tco2e"] == 167  # floor(210.6 - 43)
    assert report["monitoring_period"]["years"] == 3.0


def test_bamboo_rate_uncertainty_makes_the_credit_smaller(tmp_path: Path) -> None:
    index = np.full((100, 100), 0.8)
    report = estimate(
        frame([PARCEL]), {"index": _index(tmp_path, "ndvi", index)}, "bamboo-rate"
    ).as_dict()
    totals = report["totals"]
    net = 20.0 * 5.85 * 3.0
    assert totals["net_tco2e"] == pytest.approx(net)
    low, high = totals["uncertainty"]["p05"], totals["uncertainty"]["p95"]
    # Normal rate with a 20 % relative sd: the 90 % interval is about +/-1.645 x 20 %.
    assert low == pytest.approx(net * (1 - 1.645 * 0.2), rel=0.05)
    assert high == pytest.approx(net * (1 + 1.645 * 0.2), rel=0.05)
    assert totals["conservative_net_tco2e"] == pytest.approx(low)
    assert totals["issuable_tco2e"] + totals["buffer_tco2e"] <= low


def test_risk_scores_set_the_buffer(tmp_path: Path) -> None:
    index = np.full((100, 100), 0.8)
    report = estimate(
        frame([PARCEL]),
        {"index": _index(tmp_path, "ndvi", index)},
        "bamboo-rate",
        {"risk": {"fire": 3, "pest": 3, "typhoon": 3, "harvest": 3}},
    ).as_dict()
    assert report["totals"]["buffer_share"] == pytest.approx(0.4)  # 10 % + 12 x 2.5 %


def test_wetland_with_a_class_table_nets_methane(tmp_path: Path) -> None:
    classes = np.full((100, 100), 7, dtype=np.uint8)  # 7 is not in the table: "other"
    classes[:, :20] = 1  # 20 x 40 cells = 8 ha marsh
    classes[:, 20:35] = 2  # 15 x 40 cells = 6 ha water
    raster = write_raster(tmp_path / "lc.tif", classes, origin=(WEST, NORTH), nodata=255)
    table = tmp_path / "classes.csv"
    table.write_text(
        "value,name,removal_tco2e_per_ha_year,ch4_kg_per_ha_year\n1,marsh,1.0,100\n2,water,0,200\n",
        "utf-8",
    )
    report = estimate(
        frame([PARCEL]),
        {"landcover": raster},
        "wetland",
        {
            "monitoring_period": {"start": "2022-01-01", "end": "2022-12-31"},
            "uncertainty": {"removal_factor_multiplier": CERTAIN, "ch4_factor_multiplier": CERTAIN},
        },
        classes=str(table),
    ).as_dict()
    parcel = report["parcels"][0]
    assert parcel["area_by_class_ha"] == pytest.approx({"1": 8.0, "2": 6.0, "other": 6.0})
    # removals 8 ha x 1.0 = 8 t; CH4 (8 x 100 + 6 x 200) kg = 2 t CH4 x 27 = 54 tCO2e.
    assert parcel["removals_tco2e"] == pytest.approx(8.0)
    assert parcel["emissions_tco2e"] == pytest.approx(54.0)
    assert parcel["net_tco2e"] == pytest.approx(-46.0)
    assert "net_negative" in parcel["flags"]
    assert parcel["issuable_tco2e"] == 0
    assert report["totals"]["issuable_tco2e"] == 0
    assert report["totals"]["buffer_tco2e"] == 0


def _plots(tmp_path: Path, cells: list[tuple[int, int, float]]) -> str:
    to_wgs84 = Transformer.from_crs("EPSG:32650", "EPSG:4326", always_xy=True)
    lines = ["plot_id,lon,lat,agb_t_per_ha"]
    for number, (row, col, agb) in enumerate(cells):
        lon, lat = to_wgs84.transform(WEST + 10 * col + 5, NORTH - 10 * row - 5)
        lines.append(f"F{number},{lon:.9f},{lat:.9f},{agb}")
    path = tmp_path / "plots.csv"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return str(path)


def test_stock_change_with_field_plot_calibration(tmp_path: Path) -> None:
    start = np.full((100, 100), 0.5)
    end = np.full((100, 100), 0.6)
    end[:, 50:] = 0.7
    plots = _plots(tmp_path, [(60, 10, 80.0), (70, 20, 84.0), (60, 60, 100.0), (70, 70, 96.0)])
    report = estimate(
        frame([PARCEL]),
        {"start:index": _index(tmp_path, "start", start), "index": _index(tmp_path, "end", end)},
        "bamboo-stock-change",
        {"uncertainty": {"carbon_fraction": CERTAIN, "root_to_shoot": CERTAIN}},
        plots=plots,
    ).as_dict()
    calibration = report["methodology"]["calibration"]
    # Least squares through (0.6, 82 +/- 2) and (0.7, 98 +/- 2): slope 160, intercept -14.
    assert calibration["slope"] == pytest.approx(160.0)
    assert calibration["intercept"] == pytest.approx(-14.0)
    assert calibration["rmse"] == pytest.approx(2.0)  # sqrt(16 / 4)
    assert calibration["residual_se"] == pytest.approx(np.sqrt(8.0))  # sqrt(16 / 2)
    assert calibration["n"] == 4
    # dAGB = 160 x 0.1 = 16 t/ha; C = 0.47 x 1.25 x 16 = 9.4 tC/ha; x 44/12 x 20 ha.
    parcel = report["parcels"][0]
    assert parcel["removals_tco2e"] == pytest.approx(9.4 * 44 / 12 * 20)
    assert parcel["index"]["agb_start_mean_t_per_ha"] == pytest.approx(-14 + 160 * 0.5)


def test_fit_line_excludes_plots_without_a_value() -> None:
    x = np.array([0.1, 0.2, np.nan, 0.3, 0.4])
    y = np.array([10.0, 20.0, 99.0, 30.0, 40.0])
    fit = fit_line(x, y, ("a", "b", "c", "d", "e"))
    assert fit.slope == pytest.approx(100.0)
    assert fit.intercept == pytest.approx(0.0, abs=1e-9)
    assert fit.plots_excluded == ("c",)
    assert fit.rmse == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(
    ("start", "end", "years"),
    [("2021-01-01", "2023-12-31", 3.0), ("2024-01-01", "2024-06-30", 182 / 366)],
)
def test_period_years(start: str, end: str, years: float) -> None:
    import datetime as dt

    assert period_years(dt.date.fromisoformat(start), dt.date.fromisoformat(end)) == pytest.approx(
        years
    )


def test_landsat_masked_share_is_reported(shared_data: Path) -> None:
    from tests.mrv.helpers import landsat

    # A block over the scene's cloud (QA cloud confidence high) in the south-east.
    parcels = frame([box(452_475, 3_390_555, 471_285, 3_408_645)], crs="EPSG:32616")
    report: dict[str, Any] = estimate(
        parcels,
        {
            "red": landsat(shared_data, "B4"),
            "nir": landsat(shared_data, "B5"),
            "qa": landsat(shared_data, "BQA"),
        },
        "bamboo-rate",
        {"monte_carlo": {"draws": 20}},
        mtl=str(shared_data / "landsat8-l8-2015" / "l8_MTL.txt"),
    ).as_dict()
    parcel = report["parcels"][0]
    import rasterio

    with rasterio.open(landsat(shared_data, "BQA")) as dataset:
        qa = dataset.read(1).astype(np.int64)
    expected = ((((qa >> 14) & 3) >= 2) | ((qa & 1) == 1)).mean()
    assert parcel["masked_share"] == pytest.approx(expected, rel=1e-9)
