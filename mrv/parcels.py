"""Parcels: ids, geometry repair, true ground areas, and their shapes in the raster's CRS.

Areas are computed in an area CRS: the one configured (e.g. EPSG:4549 for Huzhou) or, by
default, each parcel's local UTM zone, never in degrees and never far from the projection's
zone. Geometries are densified before any reprojection so that long edges follow the curve they
become in the other CRS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from mrv.errors import InvalidGeometry, InvalidParcels, UndefinedCrs
from mrv.io import Grid

FloatArray = NDArray[np.float64]
M2_PER_HA = 10_000.0
# Longest edge kept when reprojecting: about 50 m, short enough that no projection in use
# bends it by more than a millimetre.
DENSIFY_DEGREES = 0.0005
DENSIFY_METRES = 50.0
MAX_PARCELS = 1_000_000
POLYGONAL = {"Polygon", "MultiPolygon"}


@dataclass
class PreparedParcels:
    ids: list[str]
    raster_geometries: NDArray[np.object_]  # in the raster's CRS
    wgs84_geometries: NDArray[np.object_]  # for the map
    area_ha: FloatArray
    inside_ha: FloatArray
    area_crs: list[str]  # per parcel
    repaired: NDArray[np.bool_]
    source_crs: str


def utm_for(lon: float, lat: float) -> str:
    zone = min(max(int((lon + 180.0) // 6.0) + 1, 1), 60)
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"


def _crs(value: Any, name: str) -> Any:
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        return CRS.from_user_input(value)
    except CRSError as error:
        raise UndefinedCrs(input=name, reason=f"({error})") from error


def reproject(geometries: NDArray[np.object_], source: Any, target: Any) -> NDArray[np.object_]:
    """Densify, then transform every vertex (pyproj, always x=lon/easting first)."""
    from pyproj import Transformer

    if source.equals(target):
        return geometries
    step = DENSIFY_DEGREES if source.is_geographic else DENSIFY_METRES
    dense = shapely.segmentize(geometries, step)
    transformer = Transformer.from_crs(source, target, always_xy=True)

    def move(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return np.asarray(shapely.transform(dense, move), dtype=object)


def prepare(
    frame: Any,
    *,
    id_column: str,
    name: str,
    grid: Grid,
    area_crs: str,
) -> PreparedParcels:
    import geopandas

    if not isinstance(frame, geopandas.GeoDataFrame):
        raise InvalidParcels(input=name, reason="not a GeoDataFrame")
    if len(frame) == 0:
        raise InvalidParcels(input=name, reason="no parcels")
    if len(frame) > MAX_PARCELS:
        raise InvalidParcels(input=name, reason=f"more than {MAX_PARCELS} parcels")
    if id_column not in frame.columns:
        raise InvalidParcels(
            input=name,
            reason=f"no id column {id_column!r} (columns: {', '.join(map(str, frame.columns))})",
        )
    if frame.crs is None:
        raise UndefinedCrs(input=name)
    source = _crs(frame.crs, name)
    raw_ids = frame[id_column]
    if raw_ids.isna().any():
        raise InvalidParcels(input=name, reason=f"empty values in id column {id_column!r}")
    ids = [str(value) for value in raw_ids.tolist()]
    seen: set[str] = set()
    for parcel_id in ids:
        if parcel_id in seen:
            raise InvalidParcels(input=name, reason=f"parcel id {parcel_id!r} appears twice")
        seen.add(parcel_id)
    geometries = np.asarray(frame.geometry.values, dtype=object)
    repaired = np.zeros(len(ids), dtype=bool)
    for index, geometry in enumerate(geometries):
        if geometry is None or geometry.is_empty:
            raise InvalidGeometry(input=name, parcel=ids[index], reason="no geometry")
        if geometry.geom_type in POLYGONAL and geometry.is_valid:
            continue
        reason = shapely.is_valid_reason(geometry)
        fixed = shapely.make_valid(geometry)
        parts = [part for part in shapely.get_parts(fixed) if part.geom_type in POLYGONAL]
        fixed = shapely.union_all(parts) if parts else None
        if fixed is None or fixed.is_empty or fixed.area == 0 or fixed.geom_type not in POLYGONAL:
            raise InvalidGeometry(
                input=name,
                parcel=ids[index],
                reason=f"{geometry.geom_type} ({reason}), not repairable to a polygon",
            )
        geometries[index] = fixed
        repaired[index] = True
    from pyproj import CRS

    wgs84 = CRS.from_epsg(4326)
    raster = _crs(grid.crs_wkt, grid.reference)
    wgs84_geometries = reproject(geometries, source, wgs84)
    raster_geometries = reproject(geometries, source, raster)
    # The area CRS of each parcel.
    if area_crs == "auto":
        centres = shapely.centroid(wgs84_geometries)
        codes = [utm_for(point.x, point.y) for point in centres]
    else:
        _crs(area_crs, f"area CRS {area_crs}")
        codes = [area_crs] * len(ids)
    area_ha = np.zeros(len(ids))
    inside_ha = np.zeros(len(ids))
    footprint = _footprint(grid)
    shapely.prepare(footprint)
    within = shapely.within(raster_geometries, footprint)
    clipped = np.asarray(raster_geometries, dtype=object).copy()
    partial = np.flatnonzero(~within)
    if partial.size:
        clipped[partial] = shapely.intersection(raster_geometries[partial], footprint)
    for code in sorted(set(codes)):
        members = np.array([index for index, item in enumerate(codes) if item == code])
        target = _crs(code, f"area CRS {code}")
        if target.is_geographic:
            raise UndefinedCrs(input=f"area CRS {code}", reason="(degrees cannot measure area)")
        in_area = reproject(geometries[members], source, target)
        area_ha[members] = shapely.area(in_area) / M2_PER_HA
        inside = np.where(within[members], area_ha[members], 0.0)
        cut = members[~within[members]]
        if cut.size:
            inside[~within[members]] = (
                shapely.area(reproject(clipped[cut], raster, target)) / M2_PER_HA
            )
        inside_ha[members] = np.minimum(inside, area_ha[members])
    return PreparedParcels(
        ids=ids,
        raster_geometries=raster_geometries,
        wgs84_geometries=wgs84_geometries,
        area_ha=area_ha,
        inside_ha=inside_ha,
        area_crs=codes,
        repaired=repaired,
        source_crs=source.to_string(),
    )


def _footprint(grid: Grid) -> Any:
    a, b, c, d, e, f = grid.transform
    corners = [(0, 0), (grid.width, 0), (grid.width, grid.height), (0, grid.height)]
    return shapely.Polygon([(a * col + b * row + c, d * col + e * row + f) for col, row in corners])
