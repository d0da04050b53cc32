"""Small synthetic rasters and parcels for the mrv tests (written to tmp dirs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas
import numpy as np
import rasterio
from rasterio.transform import from_origin

LANDSAT = "landsat8-l8-2015"


def write_raster(
    path: Path,
    array: np.ndarray[Any, Any],
    *,
    crs: str = "EPSG:32650",
    origin: tuple[float, float] = (500_000.0, 3_400_000.0),
    size: tuple[float, float] = (10.0, 10.0),
    nodata: float | None = None,
    **extra: Any,
) -> str:
    data = array if array.ndim == 3 else array[None, :, :]
    profile = {
        "driver": "GTiff",
        "height": data.shape[1],
        "width": data.shape[2],
        "count": data.shape[0],
        "dtype": str(data.dtype),
        "crs": crs,
        "transform": from_origin(origin[0], origin[1], size[0], size[1]),
        "nodata": nodata,
        **extra,
    }
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(data)
    return str(path)


def frame(geometries: list[Any], crs: str = "EPSG:32650", ids: list[str] | None = None) -> Any:
    names = ids or [f"P{index}" for index in range(len(geometries))]
    return geopandas.GeoDataFrame({"id": names}, geometry=geometries, crs=crs)


def landsat(shared_data: Path, band: str) -> str:
    return str(shared_data / LANDSAT / f"l8_{band}.tif")
