"""Sample upload files for the cooperative portal, generated on request (nothing binary in git).

All of it is synthetic and says so: six households of a made-up village, seven parcels inside
the real Anji county boundary (the seventh overlaps the first on purpose, to show how an overlap
is refused), one collection contract over the six, and a 10 m "vegetation index" GeoTIFF over
them whose values are invented (its metadata says SYNTHETIC). The place, south of the demo
villages, is away from the demo's own parcels, so the files import into the demo as they are.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import shapely

from registry import geo
from tanhui import spreadsheets
from tanhui.i18n import N_

ORIGIN_LON_LAT = (119.62, 30.50)  # Anji county, south of the demo villages
PARCEL_W_M, PARCEL_H_M, GAP_M = 160.0, 120.0, 20.0
CELL_M = 10.0
MARGIN_M = 200.0
CLEARED_M = 60.0  # the west 60 m of the first column of parcels is cleared ground
VILLAGE = "示例村（样例数据）"
COUNTERPARTY = "示例村股份经济合作社（样例数据）"
HOUSEHOLDS = ("王建国", "李秀英", "张国强", "刘桂芳", "陈志明", "杨海燕")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
SYNTHETIC_NOTE = "SYNTHETIC sample raster for the Tanhui demo: invented values, not observed data"


@dataclass(frozen=True)
class SampleFile:
    name: str
    media_type: str
    description: str  # English source, translated where shown


def national_id(serial: int) -> str:
    """A syntactically valid id (Anji area code, born 1 Jan 1970, check digit computed)."""
    body = f"33052319700101{800 + serial:03d}"
    total = sum(int(d) * w for d, w in zip(body, ID_WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


def _origin() -> Any:
    return geo.project([shapely.Point(*ORIGIN_LON_LAT)])[0]


def _boxes() -> list[shapely.Polygon]:
    """Six parcels in two rows of three (EPSG:4549), then one overlapping the first by half."""
    origin = _origin()
    boxes = []
    for index in range(6):
        x = origin.x + (index % 3) * (PARCEL_W_M + GAP_M)
        y = origin.y + (index // 3) * (PARCEL_H_M + GAP_M)
        boxes.append(shapely.box(x, y, x + PARCEL_W_M, y + PARCEL_H_M))
    x, y = origin.x + PARCEL_W_M / 2, origin.y - PARCEL_H_M / 2
    boxes.append(shapely.box(x, y, x + PARCEL_W_M, y + PARCEL_H_M))
    return boxes


def parcel_code(index: int) -> str:
    return f"SAMPLE-{index + 1:02d}"


def households_csv() -> str:
    buffer = io.StringIO()
    writer = spreadsheets.csv_writer(buffer, lineterminator="\n")
    writer.writerow(["name", "village", "national_id", "phone", "bank_account"])
    for index, name in enumerate(HOUSEHOLDS):
        writer.writerow(
            [name, VILLAGE, national_id(index), f"1390572{index:04d}", f"6228480{index:012d}"]
        )
    return buffer.getvalue()


def parcels_geojson() -> str:
    features = []
    for index, polygon in enumerate(_boxes()):
        holder = index if index < len(HOUSEHOLDS) else 0
        area_mu = round(float(geo.m2_to_mu(geo.area_m2(polygon))), 2)
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "code": parcel_code(index),
                    "land_type": "毛竹林",
                    "village": VILLAGE,
                    "cert_no": f"安林证（样例）第{9000 + index}号",
                    "area_mu": area_mu,
                    "national_id": national_id(holder),
                },
                "geometry": geo.to_geojson(
                    shapely.set_precision(geo.unproject([polygon])[0], 1e-7)
                ),
            }
        )
    return json.dumps(
        {"type": "FeatureCollection", "name": "sample_parcels_synthetic", "features": features},
        ensure_ascii=False,
        indent=1,
    )


def contracts_csv() -> str:
    buffer = io.StringIO()
    writer = spreadsheets.csv_writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "code",
            "counterparty",
            "start_date",
            "term_years",
            "rate_t_per_mu_year",
            "settlement_period_years",
            "household_share_pct",
            "price_rule",
            "fixed_price_cny_per_t",
            "parcels",
        ]
    )
    codes = " ".join(parcel_code(index) for index in range(6))
    writer.writerow(
        [
            "SAMPLE-C01",
            COUNTERPARTY,
            "2022-01-01",
            "30",
            "0.39",
            "3",
            "80",
            "fixed",
            "43.40",
            codes,
        ]
    )
    return buffer.getvalue()


@lru_cache(maxsize=1)
def index_geotiff() -> bytes:
    """A float32 vegetation index on a 10 m grid in EPSG:4549 covering the sample parcels."""
    import rasterio
    from rasterio.io import MemoryFile
    from rasterio.transform import Affine

    minx, miny, maxx, maxy = shapely.total_bounds(np.asarray(_boxes(), dtype=object))
    left = math.floor((minx - MARGIN_M) / CELL_M) * CELL_M
    top = math.ceil((maxy + MARGIN_M) / CELL_M) * CELL_M
    width = math.ceil((maxx + MARGIN_M - left) / CELL_M)
    height = math.ceil((top - (miny - MARGIN_M)) / CELL_M)
    rows, cols = np.mgrid[0:height, 0:width]
    values = 0.74 + 0.08 * np.sin(cols / 9.0) * np.cos(rows / 7.0)
    cleared = int((MARGIN_M + CLEARED_M) / CELL_M)
    values[:, :cleared] = 0.35  # cleared ground under the west edge of two parcels: not eligible
    data = values.astype("float32")[None, :, :]
    profile = {
        "driver": "GTiff",
        "height": height,
        "width": width,
        "count": 1,
        "dtype": "float32",
        "crs": geo.AREA_CRS,
        "transform": Affine(CELL_M, 0.0, left, 0.0, -CELL_M, top),
        "nodata": -9999.0,
        "compress": "deflate",
    }
    with MemoryFile() as memory:
        with memory.open(**profile) as dataset:
            dataset.write(data)
            dataset.update_tags(TIFFTAG_IMAGEDESCRIPTION=SYNTHETIC_NOTE, SYNTHETIC="yes")
            dataset.set_band_description(1, "vegetation index (synthetic)")
        with rasterio.Env():
            return bytes(memory.read())


FILES: dict[str, tuple[SampleFile, Any]] = {
    "households.csv": (
        SampleFile("households.csv", "text/csv", N_("Six households of a sample village")),
        households_csv,
    ),
    "parcels.geojson": (
        SampleFile(
            "parcels.geojson",
            "application/geo+json",
            N_("Seven parcels in Anji (the seventh overlaps the first)"),
        ),
        parcels_geojson,
    ),
    "contracts.csv": (
        SampleFile(
            "contracts.csv", "text/csv", N_("A 30-year collection contract over six parcels")
        ),
        contracts_csv,
    ),
    "index-synthetic.tif": (
        SampleFile(
            "index-synthetic.tif",
            "image/tiff",
            N_("A synthetic 10 m vegetation index raster over the parcels"),
        ),
        index_geotiff,
    ),
}


def content(name: str) -> tuple[SampleFile, bytes] | None:
    found = FILES.get(name)
    if found is None:
        return None
    described, make = found
    produced = make()
    return described, produced.encode("utf-8") if isinstance(produced, str) else produced
