"""Areas and coverage-weighted means against independent exact computations on real data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import shapely
from exactextract import exact_extract
from pyproj import Geod
from shapely import box

from mrv import estimate
from mrv.io import Grid
from mrv.zonal import geographic_row_areas
from tests.mrv.helpers import frame, landsat, write_raster

THRESHOLD = 0.3
# Landsat-8 MTL reflectance factors of bands 4 and 5 (the same for both in this scene).
SCALE, OFFSET = 2.0e-5, -0.1


def _parcels(crs: str) -> Any:
    rng = np.random.default_rng(2015)
    shapes = []
    for _ in range(60):
        x, y = rng.uniform(452_000, 471_800), rng.uniform(3_390_000, 3_409_200)
        shapes.append(shapely.Point(x, y).buffer(rng.uniform(15, 700), quad_segs=5))
    # The special cases the issue lists.
    shapes.append(box(452_400, 3_400_000, 452_700, 3_400_400))  # straddles the west edge
    shapes.append(box(460_010, 3_400_010, 460_025, 3_400_022))  # smaller than one 30 m cell
    outer = box(462_000, 3_395_000, 463_000, 3_396_000)
    hole = box(462_300, 3_395_300, 462_650, 3_395_610)
    shapes.append(
        shapely.MultiPolygon([outer.difference(hole), box(463_500, 3_395_000, 463_620, 3_395_100)])
    )
    return frame(shapes, crs=crs)


def _indicator_rasters(shared_data: Path, tmp_path: Path) -> tuple[str, str, str]:
    """NDVI (masked where the QA band flags cloud), bamboo indicator, all-ones; as GeoTIFFs."""
    with rasterio.open(landsat(shared_data, "B4")) as dataset:
        red = dataset.read(1).astype(np.float64) * SCALE + OFFSET
        profile = dataset.profile
    with rasterio.open(landsat(shared_data, "B5")) as dataset:
        nir = dataset.read(1).astype(np.float64) * SCALE + OFFSET
    with rasterio.open(landsat(shared_data, "BQA")) as dataset:
        qa = dataset.read(1).astype(np.int64)
    masked = (((qa >> 14) & 3) >= 2) | ((qa & 1) == 1)
    ndvi = (nir - red) / (nir + red)
    profile.update(dtype="float64", nodata=-9999.0)
    paths = []
    for name, array in (
        ("ndvi", np.where(masked, -9999.0, ndvi)),
        ("bamboo", np.where(masked, 0.0, (ndvi >= THRESHOLD).astype(np.float64))),
        ("ones", np.ones_like(ndvi)),
    ):
        path = tmp_path / f"{name}.tif"
        with rasterio.open(path, "w", **profile) as dataset:
            dataset.write(array, 1)
        paths.append(str(path))
    return paths[0], paths[1], paths[2]


def _run(shared_data: Path, parcels: Any) -> dict[str, Any]:
    return estimate(
        parcels,
        {
            "red": landsat(shared_data, "B4"),
            "nir": landsat(shared_data, "B5"),
            "qa": landsat(shared_data, "BQA"),
        },
        "bamboo-rate",
        {
            "parameters": {"index_threshold": THRESHOLD, "minimum_eligible_area_ha": 0.0},
            "area": {"crs": "EPSG:32616"},
            "monte_carlo": {"draws": 50},
        },
        mtl=str(shared_data / "landsat8-l8-2015" / "l8_MTL.txt"),
    ).as_dict()


def test_area_by_class_and_mean_match_exactextract_on_landsat(
    shared_data: Path, tmp_path: Path
) -> None:
    parcels = _parcels("EPSG:32616")
    report = _run(shared_data, parcels)
    ndvi, bamboo, ones = _indicator_rasters(shared_data, tmp_path)
    truth = exact_extract(ndvi, parcels, ["mean"], output="pandas")
    eligible = exact_extract(bamboo, parcels, ["sum"], output="pandas")
    covered = exact_extract(ones, parcels, ["sum"], output="pandas")
    with rasterio.open(ones) as dataset:
        footprint = box(*dataset.bounds)
    compared = 0
    for index, row in enumerate(report["parcels"]):
        inside_ha = (
            shapely.area(shapely.intersection(parcels.geometry.iloc[index], footprint)) / 1e4
        )
        assert row["area_ha"] == pytest.approx(parcels.geometry.iloc[index].area / 1e4, rel=1e-9)
        assert row["area_ha"] - row["outside_raster_ha"] == pytest.approx(
            inside_ha, rel=1e-6, abs=1e-8
        )
        if covered["sum"].iloc[index] == 0:
            assert "outside_raster" in row["flags"]
            continue
        expected = inside_ha * eligible["sum"].iloc[index] / covered["sum"].iloc[index]
        assert row["area_by_class_ha"]["1"] == pytest.approx(expected, rel=1e-6, abs=1e-12)
        mean = truth["mean"].iloc[index]
        if np.isfinite(mean):
            assert row["index"]["ndvi_mean"] == pytest.approx(mean, rel=1e-6)
            compared += 1
    assert compared > 50
    flags = {row["id"]: row["flags"] for row in report["parcels"]}
    assert "partly_outside_raster" in flags["P60"]
    assert report["parcels"][61]["area_ha"] == pytest.approx(15 * 12 / 1e4, rel=1e-12)
    hole = report["parcels"][62]
    assert hole["area_ha"] == pytest.approx((1000 * 1000 - 350 * 310 + 120 * 100) / 1e4)
    classes = hole["area_by_class_ha"]
    assert sum(classes.values()) + hole["masked_ha"] == pytest.approx(hole["area_ha"], rel=1e-9)


def test_wgs84_parcels_on_a_utm_raster_give_the_same_result(shared_data: Path) -> None:
    parcels = _parcels("EPSG:32616")
    in_utm = _run(shared_data, parcels)
    in_degrees = _run(shared_data, parcels.to_crs("EPSG:4326"))
    for utm_row, degree_row in zip(in_utm["parcels"], in_degrees["parcels"], strict=True):
        assert degree_row["area_ha"] == pytest.approx(utm_row["area_ha"], rel=1e-6)
        for key, value in utm_row["area_by_class_ha"].items():
            assert degree_row["area_by_class_ha"][key] == pytest.approx(value, rel=1e-5, abs=1e-6)
        if utm_row["index"]["ndvi_mean"] is not None:
            assert degree_row["index"]["ndvi_mean"] == pytest.approx(
                utm_row["index"]["ndvi_mean"], rel=1e-5
            )


def test_default_area_crs_is_the_local_utm_zone(shared_data: Path) -> None:
    parcels = _parcels("EPSG:32616").to_crs("EPSG:4326")
    report = estimate(
        parcels,
        {"red": landsat(shared_data, "B4"), "nir": landsat(shared_data, "B5")},
        "bamboo-rate",
        {"monte_carlo": {"draws": 20}},
    ).as_dict()
    assert report["provenance"]["area_crs"] == "EPSG:32616"
    assert {row["area_crs"] for row in report["parcels"]} == {"EPSG:32616"}


def test_geographic_raster_gives_true_ground_areas(tmp_path: Path) -> None:
    """A lon/lat land-cover raster near Huzhou: class areas equal the areas of the parcel cut
    by each class's cells, measured independently in the parcel's UTM zone (EPSG:32650)."""
    size = 0.0005
    west, north = 119.60, 30.70
    classes = np.zeros((200, 200), dtype=np.uint8)
    classes[:, 60:140] = 1
    classes[100:, 100:] = 2
    path = write_raster(
        tmp_path / "landcover.tif",
        classes,
        crs="EPSG:4326",
        origin=(west, north),
        size=(size, size),
    )
    table = tmp_path / "classes.csv"
    table.write_text(
        "value,name,removal_tco2e_per_ha_year,ch4_kg_per_ha_year\n1,marsh,1.0,100\n2,water,0,200\n",
        "utf-8",
    )
    parcel = shapely.Polygon(
        [(119.615, 30.695), (119.66, 30.69), (119.668, 30.64), (119.62, 30.65)]
    )
    report = estimate(
        frame([parcel], crs="EPSG:4326"),
        {"landcover": path},
        "wetland",
        {"monte_carlo": {"draws": 20}},
        classes=str(table),
    ).as_dict()
    row = report["parcels"][0]
    assert row["area_crs"] == "EPSG:32650"
    from pyproj import Transformer

    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32650", always_xy=True)

    def utm_area(geometry: Any) -> float:
        dense = shapely.segmentize(geometry, 0.0001)
        return (
            shapely.area(
                shapely.transform(
                    dense, lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1]))
                )
            )
            / 1e4
        )

    def region(value: int) -> Any:
        cells = [
            box(
                west + col * size,
                north - (row + 1) * size,
                west + (col + 1) * size,
                north - row * size,
            )
            for row, col in zip(*np.nonzero(classes == value), strict=True)
        ]
        return shapely.union_all(cells)

    assert row["area_ha"] == pytest.approx(utm_area(parcel), rel=1e-9)
    geod = Geod(ellps="WGS84")

    def ground_area(geometry: Any) -> float:
        dense = shapely.segmentize(geometry, 0.0001)
        return sum(abs(geod.geometry_area_perimeter(part)[0]) for part in shapely.get_parts(dense))

    # Shares of true (ellipsoidal) ground area; the total is the area CRS's, as documented.
    whole = ground_area(parcel)
    for value in (1, 2):
        share = ground_area(shapely.intersection(parcel, region(value))) / whole
        assert row["area_by_class_ha"][str(value)] == pytest.approx(
            row["area_ha"] * share, rel=1e-6
        )


def test_geographic_cell_areas_match_geodesic_areas() -> None:
    grid = Grid(
        crs_wkt="",
        transform=(0.25, 0.0, 100.0, 0.0, -0.25, 60.0),
        height=240,
        width=4,
        reference="",
    )
    areas = geographic_row_areas(grid, 6378137.0, 6356752.314245179)
    geod = Geod(ellps="WGS84")
    for row in (0, 120, 239):
        top = 60.0 - 0.25 * row
        # A parallel is not a geodesic: densify the cell's edges along the parallels.
        lons = np.linspace(100.0, 100.25, 200)
        lon_ring = np.concatenate([lons, lons[::-1]])
        lat_ring = np.concatenate([np.full(200, top - 0.25), np.full(200, top)])
        expected = abs(geod.polygon_area_perimeter(lon_ring, lat_ring)[0])
        assert areas[row] == pytest.approx(expected, rel=1e-6)
