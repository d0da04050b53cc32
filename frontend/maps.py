"""SVG maps drawn on the server: the real Huzhou district outlines and shapes over them.

Drawn in EPSG:4549 (CGCS2000 / 3-degree Gauss-Kruger CM 120E, the registry's area CRS), north
up, as hand-written SVG: no plotting library and no script, so the maps work without JavaScript
and under the strict Content-Security-Policy. Shapes that would be smaller than a few pixels get
a dot so they stay visible and clickable; each shape may link to a page and carries a ``<title>``
(its tooltip and accessible name). The colour ramp of choropleths is MRV's own (``mrv.svgmap``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from html import escape
from typing import Any

import numpy as np
import shapely
from markupsafe import Markup
from shapely.geometry.base import BaseGeometry

from mrv.svgmap import NEGATIVE, NO_DATA, RAMP
from registry import geo

WIDTH_PX = 800
MARGIN_PX = 12
MIN_VIEW_M = 600.0  # a map never shows less than 600 m across
PAD_SHARE = 0.15  # room around the shapes when the map zooms to them
MARKER_BELOW_PX = 6.0  # shapes smaller than this across get a dot
MAX_DISTRICT_POINTS_PX = 1.0  # district outlines are simplified to about a pixel
SAME_CLASS_SHARE = 0.005  # a choropleth whose values differ less than this has one class
_ids = itertools.count(1)


@dataclass(frozen=True)
class Shape:
    """One thing on the map, in WGS84."""

    geometry: BaseGeometry
    kind: str  # CSS class: bamboo, wetland, other, imported, refused, claimed, parcel ...
    label: str = ""  # tooltip and accessible name (already translated)
    href: str | None = None
    fill: str | None = None  # an explicit colour (choropleth); else the class decides


@dataclass(frozen=True)
class LegendItem:
    kind: str
    text: str
    fill: str | None = None


@dataclass
class Frame:
    minx: float
    miny: float
    maxx: float
    maxy: float
    width_px: int = WIDTH_PX
    scale: float = field(init=False)
    height_px: int = field(init=False)

    def __post_init__(self) -> None:
        span_x = max(self.maxx - self.minx, 1.0)
        span_y = max(self.maxy - self.miny, 1.0)
        self.scale = (self.width_px - 2 * MARGIN_PX) / span_x
        self.height_px = round(span_y * self.scale) + 2 * MARGIN_PX

    def to_px(self, coords: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        x = MARGIN_PX + (coords[:, 0] - self.minx) * self.scale
        y = MARGIN_PX + (self.maxy - coords[:, 1]) * self.scale
        return np.column_stack([x, y])

    @property
    def box(self) -> BaseGeometry:
        return shapely.box(self.minx, self.miny, self.maxx, self.maxy)


def _path(geometry: BaseGeometry, frame: Frame) -> str:
    parts = []
    for polygon in shapely.get_parts(geometry):
        if polygon.geom_type != "Polygon" or polygon.is_empty:
            continue
        for ring in [polygon.exterior, *polygon.interiors]:
            coords = frame.to_px(np.asarray(ring.coords))
            parts.append("M" + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords) + "Z")
    return " ".join(parts)


@lru_cache(maxsize=8)
def _districts_simplified(tolerance_m: int) -> tuple[tuple[str, BaseGeometry], ...]:
    return tuple(
        (district.adcode, district.geometry.simplify(tolerance_m, preserve_topology=True))
        for district in geo.districts()
    )


def huzhou_bounds() -> tuple[float, float, float, float]:
    minx, miny, maxx, maxy = shapely.total_bounds(
        np.asarray([district.geometry for district in geo.districts()], dtype=object)
    )
    return float(minx), float(miny), float(maxx), float(maxy)


def _frame_for(projected: Sequence[BaseGeometry], whole_city: bool, width_px: int) -> Frame:
    if whole_city or not projected:
        minx, miny, maxx, maxy = huzhou_bounds()
        return Frame(minx, miny, maxx, maxy, width_px)
    minx, miny, maxx, maxy = (float(v) for v in shapely.total_bounds(np.asarray(projected)))
    span = max(maxx - minx, maxy - miny, MIN_VIEW_M)
    pad = span * PAD_SHARE
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    half_x = max(maxx - minx, span * 0.75) / 2 + pad
    half_y = max(maxy - miny, span * 0.5) / 2 + pad
    return Frame(cx - half_x, cy - half_y, cx + half_x, cy + half_y, width_px)


def render(
    shapes: Sequence[Shape],
    *,
    title: str,
    description: str = "",
    district_name: Callable[[str], str] = lambda adcode: adcode,
    whole_city: bool = False,
    legend: Sequence[LegendItem] = (),
    width_px: int = WIDTH_PX,
) -> Markup:
    """An inline SVG of ``shapes`` over the districts (the whole city, or zoomed to the shapes)."""
    projected = list(geo.project([shape.geometry for shape in shapes])) if shapes else []
    frame = _frame_for(projected, whole_city, width_px)
    tolerance = max(1, int(MAX_DISTRICT_POINTS_PX / frame.scale))
    view = frame.box
    uid = f"map{next(_ids)}"
    lines = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="map" role="img" '
        f'viewBox="0 0 {frame.width_px} {frame.height_px}" '
        f'width="{frame.width_px}" height="{frame.height_px}" '
        f'aria-labelledby="{uid}-t{" " + uid + "-d" if description else ""}">',
        f'<title id="{uid}-t">{escape(title)}</title>',
    ]
    if description:
        lines.append(f'<desc id="{uid}-d">{escape(description)}</desc>')
    lines.append(f'<rect class="map-sea" width="{frame.width_px}" height="{frame.height_px}"/>')
    lines.append('<g class="map-districts">')
    labels = []
    for adcode, outline in _districts_simplified(tolerance):
        if not outline.intersects(view):
            continue
        shown = outline if whole_city else outline.intersection(view.buffer(frame.scale**-1 * 4))
        name = escape(district_name(adcode))
        lines.append(f'<path d="{_path(shown, frame)}"><title>{name}</title></path>')
        point = shown.representative_point() if not shown.is_empty else None
        if point is not None and view.contains(point):
            x, y = frame.to_px(np.asarray([[point.x, point.y]]))[0]
            labels.append(f'<text x="{x:.1f}" y="{y:.1f}">{name}</text>')
    lines.append("</g>")
    lines.append('<g class="map-shapes">')
    for shape, geometry in zip(shapes, projected, strict=True):
        lines.extend(_shape(shape, geometry, frame))
    lines.append("</g>")
    lines.append('<g class="map-labels" aria-hidden="true">' + "".join(labels) + "</g>")
    bar = _scale_bar(frame)
    if bar:
        lines.append(bar)
    lines.append("</svg>")
    svg = "\n".join(lines)
    if legend:
        items = []
        for item in legend:
            paint = f'fill="{escape(item.fill)}"' if item.fill else f'class="{escape(item.kind)}"'
            items.append(
                f'<li><svg width="14" height="14" aria-hidden="true"><rect width="14" height="14" '
                f"{paint}/></svg>{escape(item.text)}</li>"
            )
        svg += f'\n<ul class="map-legend">{"".join(items)}</ul>'
    return Markup(f'<figure class="map-figure">{svg}</figure>')  # noqa: S704 - built from escaped parts


def _shape(shape: Shape, geometry: BaseGeometry, frame: Frame) -> list[str]:
    minx, miny, maxx, maxy = geometry.bounds
    size_px = max(maxx - minx, maxy - miny) * frame.scale
    fill = f' fill="{escape(shape.fill)}"' if shape.fill else ""
    parts = [f'<path class="{escape(shape.kind)}"{fill} d="{_path(geometry, frame)}"/>']
    if size_px < MARKER_BELOW_PX:
        point = geometry.representative_point()
        x, y = frame.to_px(np.asarray([[point.x, point.y]]))[0]
        parts.append(
            f'<circle class="marker {escape(shape.kind)}"{fill} cx="{x:.1f}" cy="{y:.1f}" r="5"/>'
        )
    title = f"<title>{escape(shape.label)}</title>" if shape.label else ""
    inner = title + "".join(parts)
    if shape.href:
        return [f'<a href="{escape(shape.href)}" aria-label="{escape(shape.label)}">{inner}</a>']
    return [f"<g>{inner}</g>"]


def _scale_bar(frame: Frame) -> str:
    """A scale bar of a round length about a fifth of the map's width."""
    target_m = (frame.width_px / 5) / frame.scale
    if target_m <= 0:
        return ""
    power = 10 ** math.floor(math.log10(target_m))
    length_m = max(step * power for step in (1, 2, 5) if step * power <= target_m)
    length_px = length_m * frame.scale
    text = f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m:g} m"
    x, y = MARGIN_PX + 4, frame.height_px - MARGIN_PX - 4
    return (
        f'<g class="map-scale" aria-hidden="true"><path d="M{x},{y - 6} V{y} H{x + length_px:.1f}'
        f' V{y - 6}"/><text x="{x + length_px + 6:.1f}" y="{y}">{text}</text></g>'
    )


# --- choropleth of an MRV report -----------------------------------------------------------


def ramp_colour(value: float, low: float, high: float) -> str:
    """MRV's classes: net emitters red, no data grey, else five viridis steps low..high."""
    if not math.isfinite(value):
        return NO_DATA
    if value < 0:
        return NEGATIVE
    if _one_class(low, high):
        return RAMP[-1]
    position = (value - low) / (high - low)
    return RAMP[min(len(RAMP) - 1, int(position * len(RAMP)))]


def _one_class(low: float, high: float) -> bool:
    """Values within 0.5 % of each other (or a single value) make one class, not five."""
    return high - low <= SAME_CLASS_SHARE * max(abs(high), abs(low), 1e-9)


def ramp_legend(low: float, high: float, unit: str, negative_text: str) -> list[LegendItem]:
    if _one_class(low, high):
        return [
            LegendItem("ramp", f"{low:.2f} {unit}", RAMP[-1]),
            LegendItem("ramp", negative_text, NEGATIVE),
        ]
    step = (high - low) / len(RAMP)
    items = []
    for index, colour in enumerate(RAMP):
        lower = low + step * index
        upper = low + step * (index + 1)
        items.append(LegendItem("ramp", f"{lower:.2f}–{upper:.2f} {unit}", colour))
    items.append(LegendItem("ramp", negative_text, NEGATIVE))
    return items
