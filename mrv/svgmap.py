"""An SVG map of the parcels coloured by net tCO2e/ha, with a legend, over a district boundary.

Hand-written SVG (no plotting library): deterministic bytes for the same report. The map is
drawn in the parcels' area CRS (metres), north up.
"""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np
import shapely

from mrv.parcels import reproject

WIDTH_PX = 800
MARGIN_PX = 20
LEGEND_HEIGHT_PX = 70
# A colour-blind-safe sequential ramp (viridis stops) and a red for net emitters.
RAMP = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")
NEGATIVE = "#d7301f"
NO_DATA = "#bdbdbd"


def _colour(value: float, low: float, high: float) -> str:
    if not np.isfinite(value):
        return NO_DATA
    if value < 0:
        return NEGATIVE
    if high <= low:
        return RAMP[-1]
    position = (value - low) / (high - low)
    return RAMP[min(len(RAMP) - 1, int(position * len(RAMP)))]


def _path(geometry: Any, to_px: Any) -> str:
    parts = []
    for polygon in shapely.get_parts(geometry):
        for ring in [polygon.exterior, *polygon.interiors]:
            coords = to_px(np.asarray(ring.coords))
            points = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(f"M{points}Z")
    return " ".join(parts)


def render(report: Any, geometries: Any, boundary: Any = None, *, title: str = "") -> str:
    """SVG text. ``geometries``: the parcels in EPSG:4326 (report order); ``boundary``: a
    GeoDataFrame of districts (any CRS) or None."""
    from pyproj import CRS

    data = report.as_dict() if hasattr(report, "as_dict") else report
    rows = data["parcels"]
    area_crs = rows[0]["area_crs"] if rows else "EPSG:3857"
    target = CRS.from_user_input(area_crs)
    wgs84 = CRS.from_epsg(4326)
    shapes = reproject(np.asarray(geometries, dtype=object), wgs84, target)
    outlines = np.zeros(0, dtype=object)
    names: list[str] = []
    note = ""
    if boundary is not None and len(boundary):
        # Only the districts near the parcels (a boundary elsewhere would shrink them to a dot).
        source = CRS.from_user_input(boundary.crs or 4326)
        districts = reproject(np.asarray(boundary.geometry.values, dtype=object), source, wgs84)
        minx, miny, maxx, maxy = shapely.total_bounds(np.asarray(geometries, dtype=object))
        near = shapely.intersects(districts, shapely.box(minx, miny, maxx, maxy).buffer(0.05))
        label_column = next(
            (column for column in ("name_en", "name", "name_zh") if column in boundary.columns),
            None,
        )
        labels = [str(value) for value in boundary[label_column]] if label_column else []
        names = [label for label, keep in zip(labels, near.tolist(), strict=False) if keep]
        outlines = reproject(districts[near], wgs84, target)
        if not near.any():
            note = "; the boundary given does not reach the parcels"
    everything = np.concatenate([shapes, outlines]) if outlines.size else shapes
    minx, miny, maxx, maxy = shapely.total_bounds(everything)
    span_x = max(maxx - minx, 1.0)
    span_y = max(maxy - miny, 1.0)
    scale = (WIDTH_PX - 2 * MARGIN_PX) / span_x
    height_px = round(span_y * scale) + 2 * MARGIN_PX + LEGEND_HEIGHT_PX

    def to_px(coords: Any) -> Any:
        x = MARGIN_PX + (coords[:, 0] - minx) * scale
        y = MARGIN_PX + (maxy - coords[:, 1]) * scale
        return np.column_stack([x, y])

    per_ha = np.array(
        [row["net_tco2e"] / row["area_ha"] if row["area_ha"] > 0 else np.nan for row in rows]
    )
    positive = per_ha[np.isfinite(per_ha) & (per_ha >= 0)]
    low = float(positive.min()) if positive.size else 0.0
    high = float(positive.max()) if positive.size else 0.0
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH_PX}" height="{height_px}" '
        f'viewBox="0 0 {WIDTH_PX} {height_px}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title or 'Parcels by net tCO2e/ha')}</title>",
        f'<rect width="{WIDTH_PX}" height="{height_px}" fill="#ffffff"/>',
    ]
    lines.append('<g id="boundary" fill="#f7f7f7" stroke="#636363" stroke-width="1">')
    for index, outline in enumerate(outlines):
        label = escape(names[index]) if index < len(names) else ""
        lines.append(f'<path d="{_path(outline, to_px)}"><title>{label}</title></path>')
    lines.append("</g>")
    lines.append('<g id="parcels" stroke="#252525" stroke-width="0.5" fill-rule="evenodd">')
    for row, shape, value in zip(rows, shapes, per_ha.tolist(), strict=True):
        colour = _colour(value, low, high)
        tip = escape(f"{row['id']}: {value:.2f} tCO2e/ha") if np.isfinite(value) else ""
        lines.append(f'<path d="{_path(shape, to_px)}" fill="{colour}"><title>{tip}</title></path>')
    lines.append("</g>")
    # Legend: the ramp's classes with their bounds, and the colour of net emitters.
    top = height_px - LEGEND_HEIGHT_PX + 10
    lines.append(f'<g id="legend" transform="translate({MARGIN_PX},{top})">')
    lines.append('<text x="0" y="0">net tCO2e/ha over the monitoring period</text>')
    step = (high - low) / len(RAMP) if high > low else 0.0
    for index, colour in enumerate(RAMP):
        x = index * 110
        lines.append(f'<rect x="{x}" y="8" width="24" height="14" fill="{colour}"/>')
        lower = low + step * index
        upper = low + step * (index + 1) if step else high
        lines.append(f'<text x="{x + 28}" y="20">{lower:.2f}-{upper:.2f}</text>')
    x = len(RAMP) * 110
    lines.append(f'<rect x="{x}" y="8" width="24" height="14" fill="{NEGATIVE}"/>')
    lines.append(f'<text x="{x + 28}" y="20">&lt; 0</text>')
    lines.append(
        f'<text x="0" y="44">{len(rows)} parcels; CRS {escape(area_crs)}; '
        f"scale 1 px = {1 / scale:.1f} m{escape(note)}</text>"
    )
    lines.append("</g>")
    lines.append("</svg>")
    return "\n".join(lines) + "\n"
