"""Parcel geometry: GeoJSON in WGS84 at the edges, areas and overlaps in EPSG:4549.

EPSG:4549 is CGCS2000 / 3-degree Gauss-Kruger CM 120E, which fits Huzhou (≈ 119.2-120.5 E):
areas there are within a few parts in ten thousand of the true ellipsoidal area. Overlap checks
use a shapely STRtree over the projected polygons, queried with all new parcels at once, so
10,000 parcels against 100,000 take seconds (see ``bench/registry_overlap.py``). Pure functions:
no database, no files except the packaged district boundaries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

WGS84 = "EPSG:4326"
AREA_CRS = "EPSG:4549"
M2_PER_MU = Fraction(10_000, 15)  # 1 mu = 1/15 ha = 666.67 m²
CENTIMU_PER_MU = 100
OVERLAP_TOLERANCE_M2 = 100  # an overlap above 100 m² ...
OVERLAP_TOLERANCE_SHARE = Fraction(1, 1000)  # ... or above 0.1 % of the parcel's area is refused
MAX_VERTICES = 20_000  # per parcel: a limit on what one row of an import may cost
COORDINATE_DECIMALS = 7  # ≈ 1 cm in WGS84: what we keep of submitted coordinates
PUBLIC_SIMPLIFY_M = 25.0  # public explorer: simplified to 25 m, never the surveyed outline
DISTRICTS_FILE = Path(__file__).parent / "data" / "huzhou_districts.geojson"


class GeometryError(ValueError):
    """A geometry that cannot be a parcel; the message says why (shown per import row)."""


@lru_cache(maxsize=1)
def _to_area_crs() -> Transformer:
    return Transformer.from_crs(WGS84, AREA_CRS, always_xy=True)


@lru_cache(maxsize=1)
def _to_wgs84() -> Transformer:
    return Transformer.from_crs(AREA_CRS, WGS84, always_xy=True)


def project(geometries: Sequence[BaseGeometry] | np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """WGS84 geometries to EPSG:4549 (vectorised)."""
    transformer = _to_area_crs()
    array = np.asarray(geometries, dtype=object)
    return shapely.transform(  # type: ignore[no-any-return]
        array, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))
    )


def unproject(geometries: Sequence[BaseGeometry] | np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    transformer = _to_wgs84()
    array = np.asarray(geometries, dtype=object)
    return shapely.transform(  # type: ignore[no-any-return]
        array, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))
    )


def parse_polygon(geojson: dict[str, Any] | str) -> BaseGeometry:
    """A valid Polygon or MultiPolygon in WGS84 from GeoJSON, or :class:`GeometryError`."""
    try:
        data = json.loads(geojson) if isinstance(geojson, str) else geojson
        if isinstance(data, dict) and data.get("type") == "Feature":
            data = data.get("geometry")
        if not isinstance(data, dict):
            raise GeometryError("no geometry")
        geometry = shape(data)
    except GeometryError:
        raise
    except (
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        shapely.errors.GEOSException,
    ) as exc:
        raise GeometryError(f"not a GeoJSON geometry ({exc})") from None
    return check_polygon(geometry)


def check_polygon(geometry: BaseGeometry | None) -> BaseGeometry:
    if geometry is None or geometry.is_empty:
        raise GeometryError("empty geometry")
    if geometry.geom_type not in {"Polygon", "MultiPolygon"}:
        raise GeometryError(f"a parcel must be a polygon, not a {geometry.geom_type}")
    if shapely.get_num_coordinates(geometry) > MAX_VERTICES:
        raise GeometryError(f"more than {MAX_VERTICES} vertices")
    minx, miny, maxx, maxy = geometry.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise GeometryError("coordinates are not longitude/latitude in WGS84")
    if not geometry.is_valid:
        raise GeometryError(f"invalid polygon: {shapely.is_valid_reason(geometry)}")
    rounded = shapely.set_precision(geometry, 10**-COORDINATE_DECIMALS)
    if rounded.is_empty or rounded.geom_type not in {"Polygon", "MultiPolygon"}:
        raise GeometryError("the polygon vanishes at 1 cm precision")
    return rounded


def area_m2(projected: BaseGeometry) -> int:
    """Area of a projected (EPSG:4549) geometry in whole square metres, half up."""
    return int(Decimal(repr(projected.area)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def m2_to_mu(area: int | Fraction) -> Fraction:
    return Fraction(area) / M2_PER_MU


def to_geojson(geometry: BaseGeometry) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(mapping(geometry)))  # tuples to lists
    return result


def overlap_limit_m2(area: float) -> float:
    """The largest tolerated overlap of a parcel of ``area`` m² with other claimed ground."""
    return min(float(OVERLAP_TOLERANCE_M2), area * float(OVERLAP_TOLERANCE_SHARE))


@dataclass(frozen=True)
class Overlap:
    """New parcel ``new_index`` overlaps ``existing_index`` by ``area_m2``."""

    new_index: int
    existing_index: int
    area_m2: float


def find_overlaps(
    new: Sequence[BaseGeometry] | np.ndarray[Any, Any],
    existing: Sequence[BaseGeometry] | np.ndarray[Any, Any],
    *,
    check_among_new: bool = True,
) -> tuple[list[Overlap], list[Overlap]]:
    """Overlaps above tolerance between projected ``new`` parcels and ``existing`` ones.

    Returns (against existing, among the new ones: ``existing_index`` then names an earlier new
    parcel). The tolerance is :func:`overlap_limit_m2` of the new parcel's area. One STRtree
    query for all parcels, then the intersection areas of the candidate pairs, vectorised.
    """
    new_array = np.asarray(new, dtype=object)
    existing_array = np.asarray(existing, dtype=object)
    against: list[Overlap] = []
    if len(new_array) and len(existing_array):
        tree = shapely.STRtree(existing_array)
        pairs = tree.query(new_array, predicate="intersects")
        against = _measure(new_array, existing_array, pairs[0], pairs[1])
    among: list[Overlap] = []
    if check_among_new and len(new_array) > 1:
        tree = shapely.STRtree(new_array)
        pairs = tree.query(new_array, predicate="intersects")
        earlier = pairs[1] < pairs[0]
        among = _measure(new_array, new_array, pairs[0][earlier], pairs[1][earlier])
    return against, among


def _measure(
    new: np.ndarray[Any, Any],
    other: np.ndarray[Any, Any],
    new_index: np.ndarray[Any, Any],
    other_index: np.ndarray[Any, Any],
) -> list[Overlap]:
    if len(new_index) == 0:
        return []
    areas = shapely.area(shapely.intersection(new[new_index], other[other_index]))
    own = shapely.area(new[new_index])
    limits = np.minimum(float(OVERLAP_TOLERANCE_M2), own * float(OVERLAP_TOLERANCE_SHARE))
    over = areas > limits
    return [
        Overlap(int(n), int(o), float(a))
        for n, o, a in zip(new_index[over], other_index[over], areas[over], strict=True)
    ]


# --- districts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class District:
    adcode: str
    name_zh: str
    name_en: str
    geometry: BaseGeometry  # EPSG:4549


@lru_cache(maxsize=1)
def districts() -> tuple[District, ...]:
    """Huzhou's five districts and counties (real boundaries, MIT licence, see data/)."""
    data = json.loads(DISTRICTS_FILE.read_text("utf-8"))
    features = data["features"]
    shapes = project([shape(feature["geometry"]) for feature in features])
    return tuple(
        District(
            adcode=str(feature["properties"]["adcode"]),
            name_zh=str(feature["properties"]["name_zh"]),
            name_en=str(feature["properties"]["name_en"]),
            geometry=geometry,
        )
        for feature, geometry in zip(features, shapes, strict=True)
    )


def district_by_adcode(adcode: str | None) -> District | None:
    return next((item for item in districts() if item.adcode == adcode), None)


def locate_district(projected: BaseGeometry) -> str | None:
    """The adcode of the district holding most of the parcel; None outside Huzhou."""
    best: tuple[float, str] | None = None
    for district in districts():
        if not district.geometry.intersects(projected):
            continue
        shared = district.geometry.intersection(projected).area
        if best is None or shared > best[0]:
            best = (shared, district.adcode)
    return best[1] if best else None


def district_boundary_wgs84(adcode: str) -> BaseGeometry:
    district = district_by_adcode(adcode)
    if district is None:
        raise KeyError(adcode)
    return unproject([district.geometry])[0]


def public_outline(projected_parcels: Sequence[BaseGeometry]) -> dict[str, Any] | None:
    """The union of a project's parcels, simplified, in WGS84 with 6 decimals (≈ 0.1 m)."""
    if not projected_parcels:
        return None
    union = shapely.union_all(np.asarray(projected_parcels, dtype=object))
    simplified = union.simplify(PUBLIC_SIMPLIFY_M, preserve_topology=True)
    back = unproject([simplified])[0]
    back = shapely.set_precision(back, 1e-6)
    return to_geojson(back)
