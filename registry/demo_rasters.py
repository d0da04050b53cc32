"""The demo's rasters: deterministic GeoTIFFs over a project's registered parcels, so that every
demo batch is issued from an MRV run the platform performed (invariant 5) and anyone can re-run it.

Synthetic and said so. Bamboo (``bamboo-rate``): a precomputed vegetation index of 0.80 (dense
Moso canopy, above the methodology's 0.6 threshold) on 30 m cells, 0.30 on every fifth column of
every seventh row (roads, gaps: never eligible). Wetland (``wetland``): a land-cover raster of open
water (1) and reed marsh (2) in a fixed stripe pattern, with its class table. Cells are in
EPSG:4549 (the registry's own CRS), aligned to whole 30 m, with a 60 m margin around the parcels,
so that every parcel lies inside the raster. The same parcels give the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import shapely

CELL_M = 30.0
MARGIN_M = 60.0
BAMBOO_INDEX, GAP_INDEX = 0.80, 0.30
WATER, MARSH = 1, 2
WETLAND_CLASSES = (
    "value,name,removal_tco2e_per_ha_year,ch4_kg_per_ha_year\n"
    f"{WATER},open_water,0.0,235.0\n"
    f"{MARSH},reed_marsh,0.843,235.0\n"
)


def _grid(projected: list[Any]) -> tuple[float, float, int, int]:
    west, south, east, north = shapely.union_all(projected).bounds
    west = np.floor((west - MARGIN_M) / CELL_M) * CELL_M
    north = np.ceil((north + MARGIN_M) / CELL_M) * CELL_M
    width = int(np.ceil((east + MARGIN_M - west) / CELL_M))
    height = int(np.ceil((north - (south - MARGIN_M)) / CELL_M))
    return float(west), float(north), width, height


def _write(path: Path, array: np.ndarray[Any, Any], west: float, north: float) -> str:
    import rasterio
    from rasterio.transform import from_origin

    profile = {
        "driver": "GTiff",
        "height": array.shape[0],
        "width": array.shape[1],
        "count": 1,
        "dtype": str(array.dtype),
        "crs": "EPSG:4549",
        "transform": from_origin(west, north, CELL_M, CELL_M),
        "compress": "deflate",
    }
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(array[None, :, :])
    return str(path)


def bamboo(folder: Path, name: str, projected: list[Any]) -> dict[str, str]:
    """The ``index`` layer over ``projected`` parcels (EPSG:4549 shapes)."""
    west, north, width, height = _grid(projected)
    rows, cols = np.indices((height, width))
    values = np.where((rows % 7 == 0) & (cols % 5 == 0), GAP_INDEX, BAMBOO_INDEX)
    folder.mkdir(parents=True, exist_ok=True)
    return {"index": _write(folder / f"{name}-index.tif", values.astype("float32"), west, north)}


def wetland(folder: Path, name: str, projected: list[Any]) -> tuple[dict[str, str], str]:
    """The ``landcover`` layer (open water / reed marsh stripes) and its class table."""
    west, north, width, height = _grid(projected)
    rows, cols = np.indices((height, width))
    values = np.where((rows + cols) % 5 == 0, WATER, MARSH).astype("uint8")
    folder.mkdir(parents=True, exist_ok=True)
    classes = folder / f"{name}-classes.csv"
    classes.write_text(WETLAND_CLASSES, encoding="utf-8")
    return {"landcover": _write(folder / f"{name}-landcover.tif", values, west, north)}, str(
        classes
    )
