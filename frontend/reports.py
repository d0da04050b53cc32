"""An MRV report as people review it: totals, parameters, uncertainty, parcels and their map.

The report is MRV's JSON (``tanhui.mrv.report/1``) as the registry stores it; the parcels'
outlines come from the registry (the report names parcels by code and carries no geometry).
Reports written by hand or by other tools may lack fields: every lookup tolerates that.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from frontend import maps
from frontend.labels import district_namer
from tanhui.i18n import N_, translate

MAX_PARCEL_ROWS = 200  # the page lists the parcels with the largest area; the JSON has them all


@dataclass(frozen=True)
class ReportView:
    data: dict[str, Any]
    totals: dict[str, Any]
    methodology: dict[str, Any]
    parameters: list[dict[str, Any]]
    period: dict[str, Any]
    uncertainty: dict[str, Any]
    buffer: dict[str, Any]
    parcels: list[dict[str, Any]]
    parcel_count: int
    flagged: dict[str, int]
    map: Markup | None


def load(report: str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(report, str):
        parsed = json.loads(report)
        return parsed if isinstance(parsed, dict) else {}
    return dict(report)


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def view(
    report: str | Mapping[str, Any],
    outlines: Mapping[str, BaseGeometry] | None,
    locale: str,
) -> ReportView:
    """Everything a report page shows; ``outlines``: parcel code → WGS84 geometry."""
    data = load(report)
    methodology = as_dict(data.get("methodology"))
    parameters = [
        {"name": name, **as_dict(spec)}
        for name, spec in sorted(as_dict(methodology.get("parameters")).items())
    ]
    rows = [row for row in data.get("parcels") or [] if isinstance(row, dict)]
    flagged: dict[str, int] = {}
    for row in rows:
        for flag in row.get("flags") or []:
            flagged[str(flag)] = flagged.get(str(flag), 0) + 1
    largest = sorted(rows, key=lambda row: -float(row.get("area_ha") or 0))[:MAX_PARCEL_ROWS]
    return ReportView(
        data=data,
        totals=as_dict(data.get("totals")),
        methodology=methodology,
        parameters=parameters,
        period=as_dict(data.get("monitoring_period")),
        uncertainty=as_dict(data.get("uncertainty")),
        buffer=as_dict(data.get("buffer")),
        parcels=largest,
        parcel_count=len(rows),
        flagged=flagged,
        map=report_map(rows, outlines or {}, locale),
    )


def _per_ha(row: Mapping[str, Any]) -> float:
    area = float(row.get("area_ha") or 0)
    net = row.get("net_tco2e")
    if area <= 0 or net is None:
        return math.nan
    return float(net) / area


def report_map(
    rows: list[dict[str, Any]], outlines: Mapping[str, BaseGeometry], locale: str
) -> Markup | None:
    """The parcels coloured by net tCO2e/ha (MRV's classes) over the district outlines; a
    report without per-parcel rows gets the project's parcels drawn plain."""
    drawn = [(row, outlines[str(row.get("id"))]) for row in rows if str(row.get("id")) in outlines]
    district_name = district_namer(locale)
    if not drawn:
        if not outlines:
            return None
        return maps.render(
            [maps.Shape(geometry, "parcel", code) for code, geometry in outlines.items()],
            title=translate(N_("The project's parcels"), locale),
            description=translate(
                N_("The report has no per-parcel figures; the project's {count} parcels."),
                locale,
                count=len(outlines),
            ),
            district_name=district_name,
        )
    values = [_per_ha(row) for row, _ in drawn]
    positive = [value for value in values if math.isfinite(value) and value >= 0]
    low, high = (min(positive), max(positive)) if positive else (0.0, 0.0)
    unit = translate(N_("tCO2e/ha"), locale)
    shapes = [
        maps.Shape(
            geometry=geometry,
            kind="mrv",
            label=f"{row.get('id')}: {value:.2f} {unit}"
            if math.isfinite(value)
            else str(row["id"]),
            fill=maps.ramp_colour(value, low, high),
        )
        for (row, geometry), value in zip(drawn, values, strict=True)
    ]
    return maps.render(
        shapes,
        title=translate(N_("Parcels by net removals per hectare"), locale),
        description=translate(
            N_("{count} parcels coloured by net tCO2e per hectare over the monitoring period."),
            locale,
            count=len(shapes),
        ),
        district_name=district_name,
        legend=maps.ramp_legend(low, high, unit, translate(N_("net emitter (below 0)"), locale)),
    )


def outlines_of(parcels: list[Any]) -> dict[str, BaseGeometry]:
    """Registry parcels (with ``code`` and ``geometry_geojson``) → code → WGS84 geometry."""
    return {parcel.code: shape(json.loads(parcel.geometry_geojson)) for parcel in parcels}
