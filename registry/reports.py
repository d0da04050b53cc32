"""Reading an MRV report (schema ``tanhui.mrv.report/1``): the fields the registry relies on.

The registry stores the report whole, byte for byte as received (a JSON text), or a parsed object
in MRV's own canonical form (``mrv.report.Report.to_json``: the bytes ``tanhui mrv`` writes), with
the SHA-256 of exactly those bytes; the verifier signs that hash.
It reads the methodology, the monitoring period, the whole-tonne totals, the conservative
estimate and the parcels the report covers, and refuses a report where those are missing or
malformed. What a report *says* is never the basis of issuance by itself: only a report the
platform produced (an MRV run over the registered parcels) or the pooling job's own report is
(see :mod:`registry.service.measured`). Pure functions.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date
from typing import Any

from mrv.report import SCHEMA as MRV_SCHEMA
from mrv.report import Report
from tanhui.crypto import canonical_json, sha256_hex

REPORT_SCHEMA = MRV_SCHEMA  # "tanhui.mrv.report/1"
MAX_REPORT_BYTES = 32 * 1024 * 1024
MAX_TONNES = 10**12  # far above any project, far below BIGINT


class ReportError(ValueError):
    """The report cannot be accepted; the message names the field."""


@dataclass(frozen=True)
class ReportSummary:
    text: str  # what is stored
    sha256: str
    methodology_name: str
    methodology_version: str
    issuable_t: int
    buffer_t: int
    period_start: date | None
    period_end: date | None
    conservative_t: int  # floor of totals.conservative_net_tco2e (0 when negative or absent)
    parcels: tuple[ParcelRow, ...] = ()


@dataclass(frozen=True)
class ParcelRow:
    """One parcel of a report, as the registry's coverage check reads it."""

    id: str
    area_ha: float
    outside_raster_ha: float
    conservative_t: float


def _whole_tonnes(totals: dict[str, Any], name: str) -> int:
    value = totals.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TONNES:
        raise ReportError(f"totals.{name} must be a whole number of tonnes from 0 to 10^12")
    return value


def _date(value: Any, field: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ReportError(f"{field} is not an ISO date") from None


def read_report(report: dict[str, Any] | str) -> ReportSummary:
    if isinstance(report, str):
        text = report
        if len(text.encode("utf-8")) > MAX_REPORT_BYTES:
            raise ReportError("the report is larger than 32 MiB")
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ReportError(f"not JSON: {error}") from None
    else:
        data = report
        try:
            text = Report.build(report).to_json()
        except (TypeError, ValueError) as error:
            raise ReportError(f"not JSON: {error}") from None
    if not isinstance(data, dict):
        raise ReportError("the report must be a JSON object")
    if data.get("schema") != REPORT_SCHEMA:
        raise ReportError(f"schema must be {REPORT_SCHEMA!r}")
    methodology = data.get("methodology")
    if not isinstance(methodology, dict):
        raise ReportError("methodology is missing")
    name, version = methodology.get("name"), methodology.get("version")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise ReportError("methodology.name must be a text of 1 to 100 characters")
    if not isinstance(version, str) or not version.strip() or len(version) > 20:
        raise ReportError("methodology.version must be a text of 1 to 20 characters")
    totals = data.get("totals")
    if not isinstance(totals, dict):
        raise ReportError("totals is missing")
    issuable = _whole_tonnes(totals, "issuable_tco2e")
    buffer = _whole_tonnes(totals, "buffer_tco2e")
    conservative = totals.get("conservative_net_tco2e", 0)
    if isinstance(conservative, bool) or not isinstance(conservative, int | float):
        raise ReportError("totals.conservative_net_tco2e must be a number")
    if not math.isfinite(conservative):
        raise ReportError("totals.conservative_net_tco2e must be finite")
    conservative_t = max(0, min(MAX_TONNES, math.floor(conservative)))
    period = data.get("monitoring_period")
    start = end = None
    if isinstance(period, dict):
        start = _date(period.get("start"), "monitoring_period.start")
        end = _date(period.get("end"), "monitoring_period.end")
        if start and end and end < start:
            raise ReportError("monitoring_period.end is before its start")
    return ReportSummary(
        text=text,
        sha256=sha256_hex(text.encode("utf-8")),
        methodology_name=name.strip(),
        methodology_version=version.strip(),
        issuable_t=issuable,
        buffer_t=buffer,
        period_start=start,
        period_end=end,
        conservative_t=conservative_t,
        parcels=_parcel_rows(data.get("parcels")),
    )


def _parcel_rows(rows: Any) -> tuple[ParcelRow, ...]:
    if rows is None:
        return ()
    if not isinstance(rows, list):
        raise ReportError("parcels must be a list")
    result = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            raise ReportError(f"parcels[{index}] needs an id")
        numbers = {}
        for name in ("area_ha", "outside_raster_ha", "conservative_net_tco2e"):
            value = row.get(name, 0.0)
            if value is None:
                value = 0.0
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ReportError(f"parcels[{index}].{name} must be a number")
            numbers[name] = float(value)
        result.append(
            ParcelRow(
                id=row["id"],
                area_ha=numbers["area_ha"],
                outside_raster_ha=numbers["outside_raster_ha"],
                conservative_t=numbers["conservative_net_tco2e"],
            )
        )
    return tuple(result)


def certification_message(project_code: str, period_number: int, report_sha256: str) -> bytes:
    """What a verifier signs: canonical JSON naming the project, the period and the report hash."""
    return canonical_json(
        {
            "tanhui": "certification/1",
            "project": project_code,
            "monitoring_period": period_number,
            "report_sha256": report_sha256,
        }
    )
