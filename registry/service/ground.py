"""Ground claims: no ground is credited twice for the same years, whatever becomes of a project.

When a parcel joins a project, the project claims the parcel's ground (its outline in
EPSG:4549, as it was then) for the project's crediting period, in a row of its own
(:class:`registry.models.GroundClaim`). Suspension and termination leave the row in place, so a
terminated project's years stay claimed: the same hillside may join another project only for
years the first never claimed. Only taking a parcel out of a draft (nothing issued yet) gives its
ground back. The same check runs again at issuance, over the monitoring period's dates.

Overlap tolerance is the parcels' one (:func:`registry.geo.overlap_limit_m2`). Claims are
written under one transaction-scoped lock (PostgreSQL advisory lock; SQLite writes are serial),
so two projects cannot both claim the same ground at the same moment.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlmodel import Session, col, select

from registry import geo
from registry.errors import GroundAlreadyClaimed
from registry.models import Batch, GroundClaim, MonitoringPeriod, Parcel, Project
from tanhui.i18n import N_

CLAIM_LOCK_KEY = 0x7461_6E68_7569_0001  # "tanhui" + 1: the advisory lock of ground claims


@dataclass(frozen=True)
class ClaimConflict:
    """New ground number ``index`` overlaps ground claimed by ``project_code`` for these years."""

    index: int
    project_code: str
    project_status: str
    parcel_code: str
    batch: str | None  # the earlier project's batch crediting those years, if any was issued
    starts_on: date
    ends_on: date
    area_m2: float


def lock(session: Session) -> None:
    """Serialise claim writers until the transaction ends (PostgreSQL; SQLite is serial)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CLAIM_LOCK_KEY})


def conflicts(
    session: Session,
    projected: Sequence[BaseGeometry],
    *,
    starts_on: date,
    ends_on: date,
    project_id: uuid.UUID | None,
) -> list[ClaimConflict]:
    """Claims of other projects, whatever their status, overlapping ``projected`` ground over
    ``starts_on``..``ends_on`` by more than the tolerance; the largest overlap first."""
    if not projected:
        return []
    new = np.asarray(projected, dtype=object)
    minx, miny, maxx, maxy = (float(v) for v in shapely.total_bounds(new))
    query = (
        select(GroundClaim, Project.code, Project.status, Parcel.code)
        .join(Project, col(Project.id) == col(GroundClaim.project_id))
        .join(Parcel, col(Parcel.id) == col(GroundClaim.parcel_id))
        .where(col(GroundClaim.starts_on) <= ends_on)
        .where(col(GroundClaim.ends_on) >= starts_on)
        .where(col(GroundClaim.max_x) >= minx)
        .where(col(GroundClaim.min_x) <= maxx)
        .where(col(GroundClaim.max_y) >= miny)
        .where(col(GroundClaim.min_y) <= maxy)
    )
    if project_id is not None:
        query = query.where(col(GroundClaim.project_id) != project_id)
    rows = session.exec(query).all()
    if not rows:
        return []
    shapes = shapely.from_wkb(np.asarray([row[0].geometry_wkb for row in rows], dtype=object))
    against, _ = geo.find_overlaps(new, shapes, check_among_new=False)
    found: list[ClaimConflict] = []
    for hit in sorted(against, key=lambda h: (h.new_index, -h.area_m2)):
        claim, project_code, project_status, parcel_code = rows[hit.existing_index]
        first = max(claim.starts_on, starts_on)
        last = min(claim.ends_on, ends_on)
        found.append(
            ClaimConflict(
                index=hit.new_index,
                project_code=project_code,
                project_status=str(project_status),
                parcel_code=parcel_code,
                batch=_batch_over(session, claim.project_id, first, last),
                starts_on=first,
                ends_on=last,
                area_m2=hit.area_m2,
            )
        )
    return found


def _batch_over(session: Session, project_id: uuid.UUID, first: date, last: date) -> str | None:
    """The latest batch of the project whose monitoring period meets ``first``..``last``."""
    return session.exec(
        select(Batch.serial_prefix)
        .join(MonitoringPeriod, col(MonitoringPeriod.id) == col(Batch.period_id))
        .where(col(Batch.project_id) == project_id)
        .where(col(MonitoringPeriod.start) <= last)
        .where(col(MonitoringPeriod.end) >= first)
        .order_by(col(Batch.batch_no).desc())
    ).first()


def refuse(found: Sequence[ClaimConflict], codes: Sequence[str]) -> None:
    """Raise :class:`GroundAlreadyClaimed` naming the earlier project, batch and overlap."""
    if not found:
        return
    first = found[0]
    raise GroundAlreadyClaimed(
        N_(
            "Parcel {parcel} overlaps ground that project {other_project} ({other_status}) claims"
            " for {first_year}–{last_year} (parcel {other_parcel}, batch {other_batch}) by"
            " {overlap_m2} m²; the same ground cannot be credited twice for the same years."
        ),
        parcel=codes[first.index],
        other_project=first.project_code,
        other_status=first.project_status,
        other_parcel=first.parcel_code,
        other_batch=first.batch or "-",
        first_year=first.starts_on.year,
        last_year=first.ends_on.year,
        overlap_m2=round(first.area_m2, 1),
        conflicts=[
            {
                "parcel": codes[item.index],
                "other_project": item.project_code,
                "other_parcel": item.parcel_code,
                "other_batch": item.batch,
                "from": item.starts_on.isoformat(),
                "to": item.ends_on.isoformat(),
                "overlap_m2": round(item.area_m2, 1),
            }
            for item in found[:50]
        ],
    )


def record(session: Session, project: Project, parcels: Sequence[Parcel]) -> None:
    """Write the project's claims on ``parcels`` for its crediting period (after the checks)."""
    for parcel in parcels:
        session.add(
            GroundClaim(
                project_id=project.id,
                parcel_id=parcel.id,
                starts_on=project.crediting_start,
                ends_on=project.crediting_end,
                geometry_wkb=parcel.geometry_wkb,
                min_x=parcel.min_x,
                min_y=parcel.min_y,
                max_x=parcel.max_x,
                max_y=parcel.max_y,
            )
        )
    session.flush()


def claim(session: Session, project: Project, parcels: Sequence[Parcel]) -> None:
    """Check then record the project's claims on ``parcels``; refuse ground claimed before."""
    if not parcels:
        return
    lock(session)
    projected = list(shapely.from_wkb(np.asarray([p.geometry_wkb for p in parcels], dtype=object)))
    refuse(
        conflicts(
            session,
            projected,
            starts_on=project.crediting_start,
            ends_on=project.crediting_end,
            project_id=project.id,
        ),
        [p.code for p in parcels],
    )
    record(session, project, parcels)


def release(session: Session, project_id: uuid.UUID, parcel_ids: Sequence[uuid.UUID]) -> None:
    """Give back a draft's claims on parcels taken out of it (nothing was issued on them)."""
    ids = list(parcel_ids)
    for start in range(0, len(ids), 1000):
        for row in session.exec(
            select(GroundClaim)
            .where(col(GroundClaim.project_id) == project_id)
            .where(col(GroundClaim.parcel_id).in_(ids[start : start + 1000]))
        ).all():
            session.delete(row)
    session.flush()


def check_issuance(session: Session, project: Project, starts_on: date, ends_on: date) -> None:
    """Before a batch: the project's claimed ground is nobody else's over the period's dates."""
    lock(session)
    own = session.exec(
        select(GroundClaim, Parcel.code)
        .join(Parcel, col(Parcel.id) == col(GroundClaim.parcel_id))
        .where(col(GroundClaim.project_id) == project.id)
        .order_by(col(Parcel.code))
    ).all()
    if not own:
        return
    projected = list(
        shapely.from_wkb(np.asarray([row[0].geometry_wkb for row in own], dtype=object))
    )
    refuse(
        conflicts(session, projected, starts_on=starts_on, ends_on=ends_on, project_id=project.id),
        [row[1] for row in own],
    )
