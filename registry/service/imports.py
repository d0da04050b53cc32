"""Parcel import from a file with an attribute mapping: every bad row is reported, the rest
import (in the caller's transaction, so a crash imports nothing)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from sqlmodel import Session, col, select

from registry import geo
from registry.errors import InvalidImport, InvalidParcel
from registry.importer import SourceRow
from registry.models import Household, LandType, Project, ProjectParcel
from registry.service import ground
from registry.service import parcels as parcel_service
from registry.service import projects as project_service
from registry.service.actors import Actor, ensure_own, require
from registry.service.households import NATIONAL_ID_CONTEXT
from tanhui import audit, pii
from tanhui.errors import DomainError
from tanhui.i18n import N_
from tanhui.models import OrgKind

MAPPABLE_FIELDS = (
    "code",
    "land_type",
    "village",
    "forest_right_cert",
    "registered_area_mu",
    "household_national_id",
    "household_share_pct",
)


@dataclass(frozen=True)
class ImportMapping:
    """Which source attribute holds each of our fields (``code`` is required)."""

    code: str
    land_type: str | None = None
    village: str | None = None
    forest_right_cert: str | None = None
    registered_area_mu: str | None = None
    household_national_id: str | None = None
    household_share_pct: str | None = None
    default_land_type: LandType | None = None
    default_village: str = ""
    land_type_values: dict[str, LandType] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ImportMapping:
        """``{"code": "PARCEL_NO", "land_type": "DLMC", ..., "default_land_type": "bamboo",
        "land_type_values": {"竹林地": "bamboo"}}``"""
        known = set(MAPPABLE_FIELDS) | {"default_land_type", "default_village", "land_type_values"}
        unknown = set(raw) - known
        if unknown:
            raise InvalidImport(
                N_("Unknown mapping keys: {keys}."), keys=", ".join(sorted(map(str, unknown)))
            )
        if not isinstance(raw.get("code"), str) or not raw["code"]:
            raise InvalidImport(N_("The mapping must name the attribute holding the parcel code."))
        for name in MAPPABLE_FIELDS:
            if raw.get(name) is not None and not isinstance(raw[name], str):
                raise InvalidImport(N_("Mapping {key} must be an attribute name."), key=name)
        try:
            values = {
                str(key): LandType(value)
                for key, value in (raw.get("land_type_values") or {}).items()
            }
            default = raw.get("default_land_type")
            default_type = LandType(default) if default else None
        except (ValueError, AttributeError):
            raise InvalidImport(N_("Land types are bamboo, wetland or other.")) from None
        if default_type is None and not raw.get("land_type"):
            raise InvalidImport(N_("Map land_type or give default_land_type."))
        return cls(
            code=raw["code"],
            land_type=raw.get("land_type"),
            village=raw.get("village"),
            forest_right_cert=raw.get("forest_right_cert"),
            registered_area_mu=raw.get("registered_area_mu"),
            household_national_id=raw.get("household_national_id"),
            household_share_pct=raw.get("household_share_pct"),
            default_land_type=default_type,
            default_village=str(raw.get("default_village") or ""),
            land_type_values=values,
        )

    def check_columns(self, columns: set[str]) -> None:
        missing = [
            source
            for name in MAPPABLE_FIELDS
            if (source := getattr(self, name)) is not None and source not in columns
        ]
        if missing:
            raise InvalidImport(
                N_("The file has no attribute {names}; it has {columns}."),
                names=", ".join(missing),
                columns=", ".join(sorted(columns)) or "none",
            )


@dataclass(frozen=True)
class RowRejection:
    row: int
    code: str | None
    reason: str


@dataclass
class ImportReport:
    rows: int
    imported: int
    rejected: list[RowRejection]
    parcel_ids: list[uuid.UUID]
    project_code: str | None = None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def may_import(actor: Actor, cooperative_id: uuid.UUID) -> None:
    """The actor may import parcels for the cooperative (checked before a file is read)."""
    require(actor, OrgKind.cooperative, action="Importing parcels")
    ensure_own(actor, cooperative_id, what="cooperative", object_id=cooperative_id)


def import_parcels(
    session: Session,
    *,
    actor: Actor,
    cooperative_id: uuid.UUID,
    rows: Sequence[SourceRow],
    mapping: ImportMapping,
    project_id: uuid.UUID | None = None,
    source_name: str = "",
) -> ImportReport:
    """Import ``rows``; into ``project_id`` (a draft) when given, with the overlap check."""
    may_import(actor, cooperative_id)
    project = None
    if project_id is not None:
        project = project_service.get_project(session, actor=actor, project_id=project_id)
        project_service.ensure_draft(project, action="import parcels")
    if rows:
        mapping.check_columns(set(rows[0].attributes))
    rejected: list[RowRejection] = []
    prepared: list[tuple[SourceRow, parcel_service.PreparedParcel]] = []
    households = _households_by_national_id(session, cooperative_id, rows, mapping)
    seen_codes: set[str] = set()
    for row in rows:
        code = _text(row.attributes.get(mapping.code))
        try:
            item = _prepare_row(row, mapping, households)
        except (InvalidParcel, DomainError) as error:
            rejected.append(RowRejection(row.number, code, str(error)))
            continue
        if item.code in seen_codes:
            rejected.append(
                RowRejection(row.number, item.code, "the code appears twice in the file")
            )
            continue
        seen_codes.add(item.code)
        prepared.append((row, item))
    taken = parcel_service.existing_codes(session, cooperative_id, [p.code for _, p in prepared])
    ground.lock(session)  # certificate numbers: the unique index backs the check below
    certs = parcel_service.registered_certs(
        session, [p.forest_right_cert for _, p in prepared if p.forest_right_cert]
    )
    kept: list[tuple[SourceRow, parcel_service.PreparedParcel]] = []
    for row, item in prepared:
        reason = _refusal(session, cooperative_id, item, taken, certs)
        if reason is not None:
            rejected.append(RowRejection(row.number, item.code, reason))
            continue
        if item.forest_right_cert:
            certs[item.forest_right_cert] = item.code
        kept.append((row, item))
    if project is not None and kept:
        ground.lock(session)
        kept = _drop_overlapping(session, kept, rejected, project)
    parcels = [parcel_service.insert(session, cooperative_id, item) for _, item in kept]
    session.flush()
    if project is not None:
        ground.record(session, project, parcels)
        for parcel in parcels:
            session.add(ProjectParcel(project_id=project.id, parcel_id=parcel.id))
        session.flush()
        project_service.refresh_outline(session, project)
    report = ImportReport(
        rows=len(rows),
        imported=len(parcels),
        rejected=sorted(rejected, key=lambda item: item.row),
        parcel_ids=[parcel.id for parcel in parcels],
        project_code=project.code if project else None,
    )
    audit.record(
        session,
        actor=actor.ref,
        action="parcels.imported",
        subject_type="organisation",
        subject_id=cooperative_id,
        payload={
            "source": source_name[:200],
            "rows": report.rows,
            "imported": report.imported,
            "rejected": len(report.rejected),
            "project": report.project_code,
        },
    )
    return report


def _refusal(
    session: Session,
    cooperative_id: uuid.UUID,
    item: parcel_service.PreparedParcel,
    taken_codes: set[str],
    certs: dict[str, str],
) -> str | None:
    """Why a prepared row cannot be registered (code, certificate, area), or None."""
    if item.code in taken_codes:
        return "the code is already registered"
    if item.forest_right_cert and item.forest_right_cert in certs:
        return f"forest-right certificate {item.forest_right_cert} is already registered"
    try:
        parcel_service.check_area(
            session,
            cooperative_id,
            code=item.code,
            registered_centimu=item.registered_area_centimu,
            area_m2=item.area_m2,
        )
    except DomainError as error:
        return str(error)
    return None


def _households_by_national_id(
    session: Session, cooperative_id: uuid.UUID, rows: Sequence[SourceRow], mapping: ImportMapping
) -> dict[str, uuid.UUID]:
    """Blind index → household id, for every national id named in the file."""
    if mapping.household_national_id is None:
        return {}
    indexes: set[str] = set()
    for row in rows:
        raw = _text(row.attributes.get(mapping.household_national_id))
        if raw is None:
            continue
        try:
            value = pii.normalise_national_id(raw)
        except DomainError:
            continue
        indexes.add(pii.blind_index(value, context=NATIONAL_ID_CONTEXT))
    found: dict[str, uuid.UUID] = {}
    chunked = sorted(indexes)
    for start in range(0, len(chunked), 1000):
        for household_id, index in session.exec(
            select(Household.id, Household.national_id_index)
            .where(col(Household.cooperative_id) == cooperative_id)
            .where(col(Household.national_id_index).in_(chunked[start : start + 1000]))
        ).all():
            found[index] = household_id
    return found


def _prepare_row(
    row: SourceRow, mapping: ImportMapping, households: dict[str, uuid.UUID]
) -> parcel_service.PreparedParcel:
    attributes = row.attributes
    code = _text(attributes.get(mapping.code))
    if code is None:
        raise InvalidParcel(N_("The row has no parcel code."))
    raw_type = _text(attributes.get(mapping.land_type)) if mapping.land_type else None
    if raw_type is None:
        if mapping.default_land_type is None:
            raise InvalidParcel(N_("The row has no land type."))
        land_type = mapping.default_land_type
    else:
        land_type = mapping.land_type_values.get(raw_type) or parcel_service.land_type_from(
            raw_type
        )
    village = (
        _text(attributes.get(mapping.village)) if mapping.village else None
    ) or mapping.default_village
    holdings: list[tuple[uuid.UUID, int]] = []
    if mapping.household_national_id:
        raw_id = _text(attributes.get(mapping.household_national_id))
        if raw_id is not None:
            index = pii.blind_index(pii.normalise_national_id(raw_id), context=NATIONAL_ID_CONTEXT)
            household_id = households.get(index)
            if household_id is None:
                raise InvalidParcel(N_("No registered household has the national id in this row."))
            holdings.append((household_id, parcel_service.FULL_SHARE_BP))
    if holdings and mapping.household_share_pct:
        share = _text(attributes.get(mapping.household_share_pct))
        if share is not None and share not in {"100", "100.0"}:
            raise InvalidParcel(
                N_("A row names one household; its share must be 100 % (add others by API).")
            )
    geometry = row.geometry
    if geometry is None:
        raise InvalidParcel(N_("The row has no geometry."))
    return parcel_service.prepare(
        code=code,
        geometry=geometry,
        land_type=land_type,
        village=village,
        forest_right_cert=(
            _text(attributes.get(mapping.forest_right_cert)) if mapping.forest_right_cert else None
        ),
        registered_area_centimu=(
            parcel_service.centimu_from(attributes.get(mapping.registered_area_mu))
            if mapping.registered_area_mu
            else None
        ),
        holdings=holdings,
    )


def _drop_overlapping(
    session: Session,
    kept: list[tuple[SourceRow, parcel_service.PreparedParcel]],
    rejected: list[RowRejection],
    project: Project,
) -> list[tuple[SourceRow, parcel_service.PreparedParcel]]:
    """Reject rows overlapping live projects' parcels or ground claimed for the project's years,
    then rows overlapping an earlier accepted row."""
    projected = np.asarray([item.projected for _, item in kept], dtype=object)
    bounds = shapely.total_bounds(projected)
    claimed = parcel_service.claimed_ground(
        session, (float(bounds[0]), float(bounds[1]), float(bounds[2]), float(bounds[3]))
    )
    against, _ = geo.find_overlaps(
        projected, [item.geometry for item in claimed], check_among_new=False
    )
    bad: dict[int, str] = {}
    for hit in sorted(against, key=lambda h: -h.area_m2):
        other = claimed[hit.existing_index]
        bad.setdefault(
            hit.new_index,
            f"overlaps parcel {other.parcel_code} of project {other.project_code}"
            f" by {hit.area_m2:.0f} m²",
        )
    for found in ground.conflicts(
        session,
        list(projected),
        starts_on=project.crediting_start,
        ends_on=project.crediting_end,
        project_id=project.id,
    ):
        bad.setdefault(
            found.index,
            f"overlaps ground that project {found.project_code} claims for"
            f" {found.starts_on.year}-{found.ends_on.year} (parcel {found.parcel_code},"
            f" batch {found.batch or '-'}) by {found.area_m2:.0f} m²",
        )
    survivors = [index for index in range(len(kept)) if index not in bad]
    _, among = geo.find_overlaps(projected[survivors], [], check_among_new=True)
    for hit in sorted(among, key=lambda h: h.new_index):
        later, earlier = survivors[hit.new_index], survivors[hit.existing_index]
        if earlier in bad or later in bad:
            continue
        bad[later] = f"overlaps parcel {kept[earlier][1].code} of this file by {hit.area_m2:.0f} m²"
    for index, reason in bad.items():
        row, item = kept[index]
        rejected.append(RowRejection(row.number, item.code, reason))
    return [pair for index, pair in enumerate(kept) if index not in bad]
