"""Measured issuance (invariant 5): what a monitoring period may be issued from, and how much.

A period's basis is ``measured`` when its report is the one an MRV run of the platform produced
over the project's parcels as registered (the run recorded each parcel's id, code and geometry
SHA-256 when it started; the report must cover exactly those, each inside the raster or with the
area outside it stated), ``pooled`` when it is the pooling job's own report of residents'
accepted receipts (RES), and ``uploaded`` otherwise: a report from outside is kept as evidence
attached to the period, never issued from.

Issuing ``q`` tonnes withholds ``b`` = the report's buffer scaled to ``q`` (rounded up), but at
least the methodology's minimum share of ``q + b``; ``q + b`` never exceeds the conservative
estimate of the run, in whole tonnes rounded down.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from sqlmodel import Session, col, select

from mrv.params import BUFFER_FLOOR
from registry.errors import ExceedsEstimate, IncompleteCoverage, NotMeasured
from registry.models import (
    MonitoringPeriod,
    Parcel,
    PeriodBasis,
    Project,
    ProjectParcel,
    ProjectType,
)
from registry.reports import ReportSummary
from tanhui.i18n import N_

BASIS_POINTS = 10_000
# Sinks can be reversed (fire, pests, typhoon, harvest): never less than the risk tool's floor
# (10 %, mrv.params.BUFFER_FLOOR). Residents' reductions are emissions avoided, not stored
# carbon: nothing to reverse, no minimum share.
SINK_MIN_BUFFER_BP = round(BUFFER_FLOOR * BASIS_POINTS)
AREA_TOLERANCE_HA = 1e-6  # a report's outside-raster area is stated to 10 significant digits


@dataclass(frozen=True)
class Basis:
    """What :func:`registry.service.projects.submit_period` records for a period's basis."""

    kind: PeriodBasis
    estimate_t: int | None = None
    min_buffer_share_bp: int = 0
    mrv_run_id: Any = None
    coverage: list[dict[str, Any]] | None = None


UPLOADED = Basis(kind=PeriodBasis.uploaded)


def geometry_sha256(parcel: Parcel) -> str:
    """The hash of a parcel's registered geometry (its stored WKB, EPSG:4549)."""
    return hashlib.sha256(parcel.geometry_wkb).hexdigest()


def registered_parcels(session: Session, project: Project) -> list[dict[str, Any]]:
    """The project's parcels as registered: what an MRV run is started on and recorded with."""
    parcels = session.exec(
        select(Parcel)
        .join(ProjectParcel, col(ProjectParcel.parcel_id) == col(Parcel.id))
        .where(col(ProjectParcel.project_id) == project.id)
        .order_by(col(Parcel.code))
    ).all()
    return [
        {"id": str(parcel.id), "code": parcel.code, "geometry_sha256": geometry_sha256(parcel)}
        for parcel in parcels
    ]


def min_buffer_share_bp(project: Project) -> int:
    return 0 if project.type == ProjectType.residents else SINK_MIN_BUFFER_BP


def measured_basis(
    session: Session,
    project: Project,
    summary: ReportSummary,
    *,
    run_id: Any,
    run_parcels: list[dict[str, Any]],
) -> Basis:
    """The basis of a period submitted from a platform run, after the coverage check.

    ``run_parcels`` are the parcels (id, code, geometry hash) the run was started on; they must
    still be the project's registered parcels, and the report must have one row for each.
    """
    registered = registered_parcels(session, project)
    if not registered:
        raise IncompleteCoverage(N_("Project {code} has no parcels."), code=project.code)
    now = {item["code"]: item for item in registered}
    then = {item["code"]: item for item in run_parcels}
    changed = sorted(code for code in set(now) | set(then) if now.get(code) != then.get(code))
    if changed:
        raise IncompleteCoverage(
            N_(
                "The MRV run was made on parcels that are no longer the registered ones of"
                " project {code}: {parcels}."
            ),
            code=project.code,
            parcels=", ".join(changed[:20]),
        )
    rows = {row.id: row for row in summary.parcels}
    missing = sorted(set(now) - set(rows))
    extra = sorted(set(rows) - set(now))
    if missing or extra or len(summary.parcels) != len(rows):
        raise IncompleteCoverage(
            N_(
                "The report must cover every registered parcel of project {code} once;"
                " missing: {missing}; not registered: {extra}."
            ),
            code=project.code,
            missing=", ".join(missing[:20]) or "-",
            extra=", ".join(extra[:20]) or "-",
        )
    coverage = []
    for code, item in sorted(now.items()):
        row = rows[code]
        outside = max(0.0, row.outside_raster_ha)
        if outside > row.area_ha + AREA_TOLERANCE_HA:
            raise IncompleteCoverage(
                N_("Parcel {parcel}: the area outside the raster exceeds the parcel's area."),
                parcel=code,
            )
        coverage.append(
            {
                **item,
                "area_ha": row.area_ha,
                "outside_raster_ha": outside,
                "conservative_tco2e": row.conservative_t,
            }
        )
    return Basis(
        kind=PeriodBasis.measured,
        estimate_t=summary.conservative_t,
        min_buffer_share_bp=min_buffer_share_bp(project),
        mrv_run_id=run_id,
        coverage=coverage,
    )


def pooled_basis(summary: ReportSummary) -> Basis:
    """The pooling job's report: its tonnes are residents' accepted receipts, counted."""
    return Basis(
        kind=PeriodBasis.pooled,
        estimate_t=summary.issuable_t + summary.buffer_t,
        min_buffer_share_bp=0,
    )


def coverage_of(period: MonitoringPeriod) -> list[dict[str, Any]]:
    if not period.coverage_json:
        return []
    loaded: list[dict[str, Any]] = json.loads(period.coverage_json)
    return loaded


def buffer_for(period: MonitoringPeriod, quantity_t: int) -> int:
    """Tonnes withheld when ``quantity_t`` are issued: the report's buffer scaled (rounded up),
    at least the minimum share of quantity + buffer (so ``b >= q * s / (1 - s)``)."""
    if period.issuable_t <= 0 or quantity_t >= period.issuable_t:
        scaled = period.buffer_t
    else:
        fraction = Fraction(period.buffer_t * quantity_t, period.issuable_t)
        scaled = math.ceil(fraction)
    share = Fraction(period.min_buffer_share_bp, BASIS_POINTS)
    minimum = math.ceil(quantity_t * share / (1 - share)) if share < 1 else quantity_t
    return max(scaled, minimum)


def check_issuable(period: MonitoringPeriod, project: Project, quantity_t: int) -> int:
    """The buffer to withhold for ``quantity_t``; refuses what invariant 5 forbids."""
    if period.basis not in {PeriodBasis.measured, PeriodBasis.pooled} or period.estimate_t is None:
        raise NotMeasured(
            N_(
                "Period {number} of project {code} rests on an uploaded report: credits are"
                " issued only from an MRV run the platform performed on the project's registered"
                " parcels (or, for residents, the pooling job's report)."
            ),
            number=period.number,
            code=project.code,
            rule="invariant-5",
        )
    buffer = buffer_for(period, quantity_t)
    if quantity_t + buffer > period.estimate_t:
        raise ExceedsEstimate(
            N_(
                "Issuing {quantity} t with a buffer of {buffer} t exceeds the conservative"
                " estimate of {estimate} t measured for period {number} of project {code}."
            ),
            quantity=quantity_t,
            buffer=buffer,
            estimate=period.estimate_t,
            number=period.number,
            code=project.code,
            rule="invariant-5",
        )
    return buffer
