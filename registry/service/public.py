"""What the public explorer shows: projects, batches, retirements and where a serial is.

Only organisations' names and registry facts: never households, parcels' owners or any personal
data. Lists page with opaque keyset cursors (base64 of the last row's time and id).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import defer
from sqlmodel import Session, col, func, select

from registry import geo, ledger
from registry.errors import InvalidSerial, RegistryNotFound
from registry.models import (
    Batch,
    BlockState,
    Certificate,
    MonitoringPeriod,
    Pledge,
    Project,
    ProjectStatus,
    Retirement,
    SerialBlock,
)
from registry.serials import SerialFormatError, block_serial, parse
from registry.service import measured, suspension
from registry.service.blocks import serial_pairs
from registry.service.transfers import organisation_name
from tanhui.cache import VersionedCache
from tanhui.errors import InvalidInput
from tanhui.i18n import N_
from tanhui.models import Organisation

DEFAULT_PAGE = 100
MAX_PAGE = 500
MAX_SERIAL_PARTS = 1_000
HIDDEN_STATUSES = (ProjectStatus.draft,)


# --- cursors -------------------------------------------------------------------------------


def encode_cursor(moment: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([moment.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        moment, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(moment), uuid.UUID(row_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidInput(
            N_("The cursor is not one this API gave out."),
            errors=[{"field": "cursor", "message": "invalid"}],
        ) from None


def page_size(limit: int | None) -> int:
    return max(1, min(limit or DEFAULT_PAGE, MAX_PAGE))


# --- projects ------------------------------------------------------------------------------


def project_totals(session: Session) -> dict[uuid.UUID, tuple[int, int]]:
    """project → (issued tonnes to holders, retired tonnes)."""
    issued = dict(
        session.exec(
            select(Batch.project_id, func.sum(Batch.quantity_t)).group_by(col(Batch.project_id))
        ).all()
    )
    retired = dict(
        session.exec(
            select(Batch.project_id, func.sum(SerialBlock.last - SerialBlock.first + 1))
            .join(SerialBlock, col(SerialBlock.batch_id) == col(Batch.id))
            .where(col(SerialBlock.state) == BlockState.retired)
            .group_by(col(Batch.project_id))
        ).all()
    )
    return {
        project_id: (int(issued.get(project_id) or 0), int(retired.get(project_id) or 0))
        for project_id in set(issued) | set(retired)
    }


_PROJECTS: VersionedCache[dict[str, Any]] = VersionedCache(max_entries=8)


def public_projects(session: Session) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of every project past draft (simplified outlines).

    Read by every public page and the open API, so it is computed once per version of the
    data (:mod:`tanhui.cache`); callers must not change the collection they get."""
    return _PROJECTS.get(session, "projects", lambda: _public_projects(session))


def _public_projects(session: Session) -> dict[str, Any]:
    totals = project_totals(session)
    projects = session.exec(
        select(Project)
        .where(col(Project.status).not_in(HIDDEN_STATUSES))
        .order_by(col(Project.code))
    ).all()
    cooperatives = {
        org.id: org.name
        for org in session.exec(
            select(Organisation).where(
                col(Organisation.id).in_({p.cooperative_id for p in projects})
            )
        ).all()
    }
    features = []
    for project in projects:
        issued, retired = totals.get(project.id, (0, 0))
        district = geo.district_by_adcode(project.district_adcode)
        features.append(
            {
                "type": "Feature",
                "id": project.code,
                "geometry": json.loads(project.outline_geojson)
                if project.outline_geojson
                else None,
                "properties": {
                    "code": project.code,
                    "type": str(project.type),
                    "status": str(project.status),
                    "district": district.name_zh if district else None,
                    "issued_t": issued,
                    "retired_t": retired,
                    "name": project.name,
                    "district_adcode": project.district_adcode,
                    "district_en": district.name_en if district else None,
                    "methodology": f"{project.methodology_name} {project.methodology_version}",
                    "cooperative": cooperatives.get(project.cooperative_id),
                    "buffer_exceeded": project.buffer_exceeded,
                    "description": project.description,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


# --- batches -------------------------------------------------------------------------------


def public_batches(
    session: Session, *, cursor: str | None, limit: int | None
) -> tuple[list[dict[str, Any]], str | None]:
    size = page_size(limit)
    query = (
        select(Batch, Project)
        .join(Project, col(Project.id) == col(Batch.project_id))
        .order_by(col(Batch.issued_at), col(Batch.id))
    )
    if cursor:
        moment, row_id = decode_cursor(cursor)
        query = query.where(
            (col(Batch.issued_at) > moment)
            | ((col(Batch.issued_at) == moment) & (col(Batch.id) > row_id))
        )
    rows = session.exec(query.limit(size + 1)).all()
    periods = _periods_of([batch for batch, _project in rows[:size]], session)
    items = [
        {
            "project_code": project.code,
            "type": str(project.type),
            "basis": str(periods[batch.period_id].basis),
            "estimate_t": periods[batch.period_id].estimate_t,
            "report_sha256": periods[batch.period_id].report_sha256,
            "vintage": batch.vintage,
            "serial_first": block_serial(batch.serial_prefix, 1, 1),
            "serial_last": block_serial(batch.serial_prefix, batch.total_t, batch.total_t),
            "quantity_t": batch.total_t,
            "issued_to_holder_t": batch.quantity_t,
            "buffer_t": batch.buffer_t,
            "batch": batch.serial_prefix,
            "issued_at": batch.issued_at.isoformat(timespec="seconds"),
        }
        for batch, project in rows[:size]
    ]
    next_cursor = None
    if len(rows) > size:
        last = rows[size - 1][0]
        next_cursor = encode_cursor(last.issued_at, last.id)
    return items, next_cursor


def _periods_of(batches: list[Batch], session: Session) -> dict[Any, MonitoringPeriod]:
    ids = [batch.period_id for batch in batches]
    if not ids:
        return {}
    query = select(MonitoringPeriod).where(col(MonitoringPeriod.id).in_(ids))
    query = query.options(defer(MonitoringPeriod.report_json))  # type: ignore[arg-type]
    return {period.id: period for period in session.exec(query).all()}


def batch_provenance(session: Session, prefix: str) -> dict[str, Any]:
    """The MRV run a batch came from: report hash, input hashes, parcels covered, estimate and
    buffer, so that anyone can check issued + buffer <= the conservative estimate."""
    batch = session.exec(select(Batch).where(col(Batch.serial_prefix) == prefix.upper())).first()
    if batch is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="batch", id=prefix)
    period = session.get(MonitoringPeriod, batch.period_id)
    project = session.get(Project, batch.project_id)
    assert period is not None and project is not None
    report = json.loads(period.report_json)
    provenance = report.get("provenance") if isinstance(report, dict) else None
    raw_inputs = provenance.get("inputs", []) if isinstance(provenance, dict) else []
    inputs = [
        {"name": str(item.get("name", "")), "sha256": str(item.get("sha256", ""))}
        for item in raw_inputs
        if isinstance(item, dict)
    ]
    covered = measured.coverage_of(period)
    return {
        "batch": batch.serial_prefix,
        "project_code": project.code,
        "issued_to_holder_t": batch.quantity_t,
        "buffer_t": batch.buffer_t,
        "basis": str(period.basis),
        "estimate_t": period.estimate_t,
        "min_buffer_share": period.min_buffer_share_bp / measured.BASIS_POINTS,
        "within_estimate": period.estimate_t is not None
        and batch.quantity_t + batch.buffer_t <= period.estimate_t,
        "report_sha256": period.report_sha256,
        "report_url": f"/api/v1/public/batches/{batch.serial_prefix}/report",
        "mrv_run_id": str(period.mrv_run_id) if period.mrv_run_id else None,
        "methodology": f"{period.methodology_name} {period.methodology_version}",
        "monitoring_period": [period.start.isoformat(), period.end.isoformat()],
        "inputs": inputs,
        "parcels": [
            {
                "code": item["code"],
                "geometry_sha256": item["geometry_sha256"],
                "area_ha": item["area_ha"],
                "outside_raster_ha": item["outside_raster_ha"],
                "conservative_tco2e": item["conservative_tco2e"],
            }
            for item in covered
        ],
    }


def batch_report(session: Session, prefix: str) -> str:
    """The report a batch was issued from, byte for byte (its SHA-256 is report_sha256)."""
    batch = session.exec(select(Batch).where(col(Batch.serial_prefix) == prefix.upper())).first()
    if batch is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="batch", id=prefix)
    period = session.get(MonitoringPeriod, batch.period_id)
    assert period is not None
    return period.report_json


# --- retirements ---------------------------------------------------------------------------


def public_retirements(
    session: Session, *, cursor: str | None, limit: int | None
) -> tuple[list[dict[str, Any]], str | None]:
    size = page_size(limit)
    query = (
        select(Retirement, Batch)
        .join(Batch, col(Batch.id) == col(Retirement.batch_id))
        .order_by(col(Retirement.retired_at), col(Retirement.id))
    )
    if cursor:
        moment, row_id = decode_cursor(cursor)
        query = query.where(
            (col(Retirement.retired_at) > moment)
            | ((col(Retirement.retired_at) == moment) & (col(Retirement.id) > row_id))
        )
    rows = session.exec(query.limit(size + 1)).all()
    page = rows[:size]
    blocks: dict[uuid.UUID, list[SerialBlock]] = {}
    if page:
        for block in session.exec(
            select(SerialBlock)
            .where(col(SerialBlock.retirement_id).in_([r.id for r, _ in page]))
            .where(col(SerialBlock.state) == BlockState.retired)
        ).all():
            assert block.retirement_id is not None
            blocks.setdefault(block.retirement_id, []).append(block)
    items = [
        {
            "certificate_id": retirement.certificate_id,
            "quantity_t": retirement.quantity_t,
            "beneficiary": retirement.beneficiary,
            "purpose": str(retirement.purpose),
            "retired_at": retirement.retired_at.isoformat(timespec="seconds"),
            "serial_blocks": [list(p) for p in serial_pairs(batch, blocks.get(retirement.id, []))],
            "batch": batch.serial_prefix,
            "case_number": retirement.case_number,
        }
        for retirement, batch in page
    ]
    next_cursor = None
    if len(rows) > size:
        last = rows[size - 1][0]
        next_cursor = encode_cursor(last.retired_at, last.id)
    return items, next_cursor


# --- serials -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SerialPart:
    serial: str
    quantity_t: int
    state: BlockState
    # Who holds the block and which lender holds its pledge: shown to the holder alone (and the
    # buffer pool, which is no one's); to everyone else ``None`` (issue 16).
    holder: str | None  # an organisation's name, "buffer pool"; never a person
    pledged_to: str | None
    listing: str | None
    certificate_id: str | None


@dataclass(frozen=True)
class SerialLocation:
    serial: str
    batch: str
    project_code: str
    vintage: int
    quantity_t: int
    parts: list[SerialPart]
    # More than MAX_SERIAL_PARTS blocks lie in the range: ``parts`` stops at the last one listed
    # (ask again from the serial after it).
    truncated: bool = False
    # a terminated project: its status and what the authority decided (suspension.standing)
    project_standing: dict[str, Any] | None = None


def locate(session: Session, serial: str, *, viewer: uuid.UUID | None = None) -> SerialLocation:
    """Where the tonnes of a serial (one tonne, a block, or a whole batch) are now: project,
    batch, state and certificate for anyone; the holder and the lender only on the blocks the
    ``viewer`` organisation holds (which organisations hold how much, and which bank lends on
    them, is theirs to tell)."""
    own = f"org:{viewer}" if viewer is not None else None
    buffer_pool = f"system:{ledger.BUFFER_POOL}"
    try:
        parsed = parse(serial)
    except SerialFormatError:
        raise InvalidSerial(
            N_("{serial} is not a serial number of this registry."), serial=serial[:80]
        ) from None
    batch = session.exec(select(Batch).where(col(Batch.serial_prefix) == parsed.prefix)).first()
    if batch is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="batch", id=parsed.prefix)
    first = parsed.first or 1
    last = parsed.last or batch.total_t
    if last > batch.total_t:
        raise RegistryNotFound(
            N_("Batch {batch} has serials 1 to {total}."),
            batch=batch.serial_prefix,
            total=batch.total_t,
        )
    blocks = session.exec(
        select(SerialBlock)
        .where(col(SerialBlock.batch_id) == batch.id)
        .where(col(SerialBlock.last) >= first)
        .where(col(SerialBlock.first) <= last)
        .order_by(col(SerialBlock.first))
        .limit(MAX_SERIAL_PARTS + 1)
    ).all()
    truncated = len(blocks) > MAX_SERIAL_PARTS
    blocks = blocks[:MAX_SERIAL_PARTS]
    certificates = _certificates(session, [b.retirement_id for b in blocks if b.retirement_id])
    lenders = _lenders(session, [b.pledge_id for b in blocks if b.pledge_id and b.holder == own])
    names = {
        holder: organisation_name(session, holder)
        for holder in {own, buffer_pool} & {block.holder for block in blocks}
        if holder is not None
    }
    parts = []
    for block in blocks:
        a, b = max(block.first, first), min(block.last, last)
        parts.append(
            SerialPart(
                serial=block_serial(batch.serial_prefix, a, b),
                quantity_t=b - a + 1,
                state=block.state,
                holder=names.get(block.holder),
                pledged_to=lenders.get(block.pledge_id) if block.pledge_id else None,
                listing=block.listing_ref if block.state == BlockState.listed else None,
                certificate_id=(
                    certificates.get(block.retirement_id) if block.retirement_id else None
                ),
            )
        )
    project = session.get(Project, batch.project_id)
    assert project is not None
    return SerialLocation(
        serial=block_serial(batch.serial_prefix, first, last),
        batch=batch.serial_prefix,
        project_code=project.code,
        vintage=batch.vintage,
        quantity_t=last - first + 1,
        parts=parts,
        truncated=truncated,
        project_standing=suspension.standing(project),
    )


def _certificates(session: Session, retirement_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not retirement_ids:
        return {}
    return dict(
        session.exec(
            select(Certificate.retirement_id, Certificate.id).where(
                col(Certificate.retirement_id).in_(set(retirement_ids))
            )
        ).all()
    )


def _lenders(session: Session, pledge_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not pledge_ids:
        return {}
    return dict(
        session.exec(
            select(Pledge.id, Organisation.name)
            .join(Organisation, col(Organisation.id) == col(Pledge.lender_id))
            .where(col(Pledge.id).in_(set(pledge_ids)))
        ).all()
    )
