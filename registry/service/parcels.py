"""Parcels: registration, household shares, and the overlap check against claimed ground.

Claimed ground is every parcel of a project that is not terminated (a draft project claims its
ground too, so two drafts cannot race to certification on the same hillside). A parcel whose
overlap with a parcel of another such project, or with another parcel of its own project,
exceeds 100 m² or 0.1 % of its area is refused, naming the other project and the overlap.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlmodel import Session, col, select

from registry import geo
from registry.errors import (
    AreaMismatch,
    DuplicateCode,
    ForestRightInUse,
    InvalidParcel,
    ParcelOverlap,
    RegistryNotFound,
)
from registry.models import (
    AreaAcceptance,
    Household,
    LandType,
    Parcel,
    ParcelHolding,
    Project,
    ProjectParcel,
    ProjectStatus,
)
from registry.service import ground
from registry.service.actors import Actor, ensure_own, require
from tanhui import audit
from tanhui.errors import InvalidInput
from tanhui.i18n import N_
from tanhui.models import OrgKind, Role
from tanhui.settings import get_settings

FULL_SHARE_BP = 10_000
MAX_CODE_LENGTH = 64
MAX_CERT_LENGTH = 64
MAX_PARCELS_PER_REQUEST = 20_000
MAX_REGISTERED_MU = 10_000_000  # a parcel larger than 6,667 km² is a typo
LAND_TYPE_ALIASES = {
    "bamboo": LandType.bamboo,
    "竹林": LandType.bamboo,
    "毛竹": LandType.bamboo,
    "毛竹林": LandType.bamboo,
    "wetland": LandType.wetland,
    "湿地": LandType.wetland,
    "other": LandType.other,
    "其他": LandType.other,
}
INACTIVE_PROJECT_STATUSES = (ProjectStatus.terminated,)


BRACKETS = str.maketrans(
    {
        **dict.fromkeys("[{〔【〖〘〚〈《「『⦅", "("),
        **dict.fromkeys("]}〕】〗〙〛〉》」』⦆", ")"),
        **dict.fromkeys("‐‑‒–—―−﹣~〜", "-"),
        **dict.fromkeys("·・･•。｡", "."),
        **dict.fromkeys("、，", ","),
        **dict.fromkeys("\"'‘’“”`´", ""),
    }
)


def normalise_cert(raw: str | None) -> str | None:
    """A forest-right certificate number (林权证号) as it is compared and stored.

    NFKC (full-width digits, letters and brackets become ASCII), every bracket variant becomes
    ``(``/``)``, dashes ``-``, dots ``.``, quotes go, and so do spaces; letters are upper case.
    ``浙（2019）安吉林证第012001号`` and ``浙(2019) 安吉林证第012001号`` are one certificate.
    """
    if raw is None:
        return None
    value = unicodedata.normalize("NFKC", str(raw)).translate(BRACKETS)
    value = re.sub(r"\s+", "", value).upper()
    if not value or value in {"NONE", "NAN", "NULL"}:
        return None
    if len(value) > MAX_CERT_LENGTH:
        raise InvalidParcel(
            N_("A forest-right certificate number has at most {maximum} characters."),
            maximum=MAX_CERT_LENGTH,
        )
    return value


def registered_certs(session: Session, certs: Iterable[str]) -> dict[str, str]:
    """Normalised certificate → code of the parcel registered with it, for those taken."""
    wanted = sorted(set(certs))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), 1000):
        for cert, code in session.exec(
            select(Parcel.forest_right_cert, Parcel.code).where(
                col(Parcel.forest_right_cert).in_(wanted[start : start + 1000])
            )
        ).all():
            if cert is not None:
                found[cert] = code
    return found


def refuse_registered_cert(session: Session, cert: str | None) -> None:
    """A certificate number sits under one parcel ever (terminated contracts included)."""
    if cert is not None and registered_certs(session, [cert]):
        raise ForestRightInUse(
            N_("Forest-right certificate {certificate} is already registered."),
            certificate=cert,
        )


# --- registered area against the measured polygon -------------------------------------------


def area_tolerance_bp() -> int:
    return get_settings().registry_area_tolerance_bp


def area_differs(registered_centimu: int | None, area_m2: int) -> bool:
    """The registered area differs from the measured one by more than the tolerance."""
    if registered_centimu is None:
        return False
    measured = geo.m2_to_mu(area_m2)
    registered = Fraction(registered_centimu, geo.CENTIMU_PER_MU)
    return abs(registered - measured) * 10_000 > measured * area_tolerance_bp()


def area_accepted(
    session: Session, cooperative_id: uuid.UUID, code: str, registered_centimu: int, area_m2: int
) -> bool:
    return (
        session.exec(
            select(AreaAcceptance.id)
            .where(col(AreaAcceptance.cooperative_id) == cooperative_id)
            .where(col(AreaAcceptance.parcel_code) == code)
            .where(col(AreaAcceptance.registered_area_centimu) == registered_centimu)
            .where(col(AreaAcceptance.area_m2) == area_m2)
        ).first()
        is not None
    )


def check_area(
    session: Session,
    cooperative_id: uuid.UUID,
    *,
    code: str,
    registered_centimu: int | None,
    area_m2: int,
) -> None:
    """Refuse a registered area over the tolerance off the polygon, unless a verifier accepted
    exactly this difference for this parcel."""
    if registered_centimu is None or not area_differs(registered_centimu, area_m2):
        return
    if area_accepted(session, cooperative_id, code, registered_centimu, area_m2):
        return
    measured = geo.m2_to_mu(area_m2)
    raise AreaMismatch(
        N_(
            "Parcel {code}: the registered area {registered_mu} mu differs from the measured"
            " {measured_mu} mu ({area_m2} m²) by more than {tolerance} %; a verifier must"
            " accept the difference with a reason."
        ),
        code=code,
        registered_mu=f"{Decimal(registered_centimu) / 100:.2f}",
        measured_mu=f"{Decimal(measured.numerator) / Decimal(measured.denominator):.2f}",
        area_m2=area_m2,
        tolerance=f"{Decimal(area_tolerance_bp()) / 100:g}",
    )


def accept_area(
    session: Session,
    *,
    actor: Actor,
    cooperative_id: uuid.UUID,
    parcel_code: str,
    registered_area_centimu: int,
    area_m2: int,
    reason: str,
) -> AreaAcceptance:
    """A verifier accepts a registered area that differs from the measured polygon (audited)."""
    require(actor, OrgKind.verifier, action="Accepting an area difference", admin=False)
    assert actor.organisation_id is not None
    if not reason.strip():
        raise InvalidInput(
            N_("A reason is required."), errors=[{"field": "reason", "message": "required"}]
        )
    code = str(parcel_code).strip()
    if not code or len(code) > MAX_CODE_LENGTH or registered_area_centimu <= 0 or area_m2 <= 0:
        raise InvalidInput(N_("Give the parcel code, its registered area and its measured area."))
    existing = session.exec(
        select(AreaAcceptance)
        .where(col(AreaAcceptance.cooperative_id) == cooperative_id)
        .where(col(AreaAcceptance.parcel_code) == code)
        .where(col(AreaAcceptance.registered_area_centimu) == registered_area_centimu)
        .where(col(AreaAcceptance.area_m2) == area_m2)
    ).first()
    if existing is not None:
        return existing
    acceptance = AreaAcceptance(
        cooperative_id=cooperative_id,
        parcel_code=code,
        registered_area_centimu=registered_area_centimu,
        area_m2=area_m2,
        verifier_id=actor.organisation_id,
        accepted_by=actor.ref,
        reason=reason.strip()[:2000],
    )
    session.add(acceptance)
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action="parcel.area_accepted",
        subject_type="organisation",
        subject_id=cooperative_id,
        payload={
            "parcel": code,
            "registered_area_centimu": registered_area_centimu,
            "area_m2": area_m2,
            "reason": acceptance.reason,
        },
    )
    return acceptance


def unreconciled_parcels(session: Session, *, actor: Actor, limit: int = 200) -> list[Parcel]:
    """Parcels whose registered area is off the polygon with no acceptance (for verifiers)."""
    require(actor, OrgKind.verifier, minimum=Role.viewer, action="Reviewing parcel areas")
    rows = session.exec(
        select(Parcel)
        .where(col(Parcel.registered_area_centimu).is_not(None))
        .order_by(col(Parcel.created_at).desc())
        .limit(20_000)
    ).all()
    found: list[Parcel] = []
    for parcel in rows:
        assert parcel.registered_area_centimu is not None
        if area_differs(parcel.registered_area_centimu, parcel.area_m2) and not area_accepted(
            session,
            parcel.cooperative_id,
            parcel.code,
            parcel.registered_area_centimu,
            parcel.area_m2,
        ):
            found.append(parcel)
            if len(found) >= limit:
                break
    return found


def land_type_from(raw: object) -> LandType:
    value = str(raw).strip().lower() if raw is not None else ""
    found = LAND_TYPE_ALIASES.get(value) or LAND_TYPE_ALIASES.get(str(raw).strip())
    if found is None:
        raise InvalidParcel(
            N_("Unknown land type {value}: use bamboo, wetland or other."), value=str(raw)
        )
    return found


def centimu_from(raw: object) -> int | None:
    """A registered area in mu (number or text) → hundredths of a mu, half up."""
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):  # NaN from a data frame
        return None
    text = str(raw).strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidParcel(N_("The area {value} is not a number of mu."), value=text) from None
    if not value.is_finite() or not 0 < value <= MAX_REGISTERED_MU:
        raise InvalidParcel(N_("The area {value} is not a number of mu."), value=text)
    return int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class PreparedParcel:
    """A parcel checked and measured, ready to insert."""

    code: str
    land_type: LandType
    village: str
    forest_right_cert: str | None
    registered_area_centimu: int | None
    geometry: BaseGeometry  # WGS84
    projected: BaseGeometry  # EPSG:4549
    area_m2: int
    district_adcode: str | None
    holdings: list[tuple[uuid.UUID, int]] = field(default_factory=list)


def prepare(
    *,
    code: str,
    geometry: dict[str, Any] | BaseGeometry,
    land_type: LandType | str,
    village: str = "",
    forest_right_cert: str | None = None,
    registered_area_centimu: int | None = None,
    holdings: Sequence[tuple[uuid.UUID, int]] = (),
    projected: BaseGeometry | None = None,
) -> PreparedParcel:
    """Validate and measure one parcel (no database); raises InvalidParcel with the reason."""
    code = str(code).strip()
    if not code or len(code) > MAX_CODE_LENGTH:
        raise InvalidParcel(
            N_("A parcel needs a code of 1 to {maximum} characters."), maximum=MAX_CODE_LENGTH
        )
    try:
        shape = (
            geo.check_polygon(geometry)
            if isinstance(geometry, BaseGeometry)
            else geo.parse_polygon(geometry)
        )
    except geo.GeometryError as error:
        raise InvalidParcel(N_("Parcel {code}: {reason}."), code=code, reason=str(error)) from None
    if projected is None:
        projected = geo.project([shape])[0]
    assert projected is not None
    area = geo.area_m2(projected)
    if area <= 0:
        raise InvalidParcel(N_("Parcel {code} has no area."), code=code)
    if registered_area_centimu is not None and registered_area_centimu <= 0:
        raise InvalidParcel(N_("Parcel {code}: the registered area must be positive."), code=code)
    check_shares(holdings, code=code)
    return PreparedParcel(
        code=code,
        land_type=land_type if isinstance(land_type, LandType) else land_type_from(land_type),
        village=village.strip()[:100],
        forest_right_cert=normalise_cert(forest_right_cert),
        registered_area_centimu=registered_area_centimu,
        geometry=shape,
        projected=projected,
        area_m2=area,
        district_adcode=geo.locate_district(projected),
        holdings=list(holdings),
    )


def check_shares(holdings: Sequence[tuple[uuid.UUID, int]], *, code: str) -> None:
    if not holdings:
        return
    households = [household for household, _ in holdings]
    if len(set(households)) != len(households):
        raise InvalidParcel(N_("Parcel {code} names a household twice."), code=code)
    if any(share <= 0 for _, share in holdings) or sum(s for _, s in holdings) != FULL_SHARE_BP:
        raise InvalidParcel(
            N_("The household shares of parcel {code} must be positive and sum to 100 %."),
            code=code,
        )


def _check_households(
    session: Session, cooperative_id: uuid.UUID, household_ids: Iterable[uuid.UUID]
) -> None:
    wanted = set(household_ids)
    if not wanted:
        return
    found = set(
        session.exec(
            select(Household.id)
            .where(col(Household.id).in_(wanted))
            .where(col(Household.cooperative_id) == cooperative_id)
        ).all()
    )
    missing = wanted - found
    if missing:
        raise RegistryNotFound(
            N_("No {what} {id}."), what="household", id=", ".join(sorted(map(str, missing)))
        )


def insert(session: Session, cooperative_id: uuid.UUID, prepared: PreparedParcel) -> Parcel:
    minx, miny, maxx, maxy = prepared.projected.bounds
    parcel = Parcel(
        cooperative_id=cooperative_id,
        code=prepared.code,
        land_type=prepared.land_type,
        village=prepared.village,
        forest_right_cert=prepared.forest_right_cert,
        registered_area_centimu=prepared.registered_area_centimu,
        area_m2=prepared.area_m2,
        district_adcode=prepared.district_adcode,
        geometry_geojson=json.dumps(geo.to_geojson(prepared.geometry), separators=(",", ":")),
        geometry_wkb=shapely.to_wkb(prepared.projected),
        min_x=minx,
        min_y=miny,
        max_x=maxx,
        max_y=maxy,
    )
    session.add(parcel)
    for household_id, share in prepared.holdings:
        session.add(ParcelHolding(parcel_id=parcel.id, household_id=household_id, share_bp=share))
    return parcel


def existing_codes(session: Session, cooperative_id: uuid.UUID, codes: Iterable[str]) -> set[str]:
    wanted = list(set(codes))
    found: set[str] = set()
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        found.update(
            session.exec(
                select(Parcel.code)
                .where(col(Parcel.cooperative_id) == cooperative_id)
                .where(col(Parcel.code).in_(chunk))
            ).all()
        )
    return found


def register_parcel(
    session: Session,
    *,
    actor: Actor,
    cooperative_id: uuid.UUID,
    code: str,
    geometry: dict[str, Any],
    land_type: LandType | str,
    village: str = "",
    forest_right_cert: str | None = None,
    registered_area_centimu: int | None = None,
    holdings: Sequence[tuple[uuid.UUID, int]] = (),
) -> Parcel:
    require(actor, OrgKind.cooperative, action="Registering a parcel")
    ensure_own(actor, cooperative_id, what="cooperative", object_id=cooperative_id)
    prepared = prepare(
        code=code,
        geometry=geometry,
        land_type=land_type,
        village=village,
        forest_right_cert=forest_right_cert,
        registered_area_centimu=registered_area_centimu,
        holdings=holdings,
    )
    _check_households(session, cooperative_id, (h for h, _ in prepared.holdings))
    if existing_codes(session, cooperative_id, [prepared.code]):
        raise DuplicateCode(N_("The parcel code {code} is already registered."), code=code)
    check_area(
        session,
        cooperative_id,
        code=prepared.code,
        registered_centimu=prepared.registered_area_centimu,
        area_m2=prepared.area_m2,
    )
    ground.lock(session)  # the unique index backs this check; the lock keeps it a clean 409
    refuse_registered_cert(session, prepared.forest_right_cert)
    parcel = insert(session, cooperative_id, prepared)
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action="parcel.registered",
        subject_type="parcel",
        subject_id=parcel.id,
        payload={"code": parcel.code, "area_m2": parcel.area_m2, "land_type": parcel.land_type},
    )
    return parcel


def set_holdings(
    session: Session,
    *,
    actor: Actor,
    parcel_id: uuid.UUID,
    holdings: Sequence[tuple[uuid.UUID, int]],
) -> Parcel:
    """Replace the households' shares of a parcel."""
    parcel = get_parcel(session, actor=actor, parcel_id=parcel_id)
    require(actor, OrgKind.cooperative, action="Changing household shares")
    check_shares(holdings, code=parcel.code)
    if not holdings:
        raise InvalidParcel(N_("Parcel {code} needs at least one household."), code=parcel.code)
    _check_households(session, parcel.cooperative_id, (h for h, _ in holdings))
    for old in session.exec(
        select(ParcelHolding).where(col(ParcelHolding.parcel_id) == parcel.id)
    ).all():
        session.delete(old)
    session.flush()
    for household_id, share in holdings:
        session.add(ParcelHolding(parcel_id=parcel.id, household_id=household_id, share_bp=share))
    session.flush()
    audit.record(
        session,
        actor=actor.ref,
        action="parcel.holdings_set",
        subject_type="parcel",
        subject_id=parcel.id,
        payload={"holdings": [[str(h), s] for h, s in holdings]},
    )
    return parcel


def get_parcel(session: Session, *, actor: Actor, parcel_id: uuid.UUID) -> Parcel:
    parcel = session.get(Parcel, parcel_id)
    if parcel is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="parcel", id=str(parcel_id))
    # verifiers and authorities read the parcels of the projects they review
    if actor.org_kind not in {OrgKind.verifier, OrgKind.authority}:
        ensure_own(actor, parcel.cooperative_id, what="parcel", object_id=parcel_id)
    return parcel


def list_parcels(
    session: Session,
    *,
    actor: Actor,
    cooperative_id: uuid.UUID,
    after: uuid.UUID | None = None,
    limit: int = 500,
) -> list[Parcel]:
    require(actor, OrgKind.cooperative, minimum=Role.viewer, action="Listing parcels")
    ensure_own(actor, cooperative_id, what="cooperative", object_id=cooperative_id)
    query = select(Parcel).where(col(Parcel.cooperative_id) == cooperative_id)
    if after is not None:
        query = query.where(col(Parcel.id) > after)
    return list(session.exec(query.order_by(col(Parcel.id)).limit(min(limit, 5_000))).all())


def holdings_of(session: Session, parcel_ids: Sequence[uuid.UUID]) -> list[ParcelHolding]:
    rows: list[ParcelHolding] = []
    ids = list(parcel_ids)
    for start in range(0, len(ids), 1000):
        rows.extend(
            session.exec(
                select(ParcelHolding).where(
                    col(ParcelHolding.parcel_id).in_(ids[start : start + 1000])
                )
            ).all()
        )
    return rows


def area_mu(parcel: Parcel) -> Fraction:
    """The area contracts, compensation rounds and revenue splits pay on: the smaller of the
    registered (certificate) area and the measured polygon, so a typed area never pays more
    than the ground there is."""
    measured = geo.m2_to_mu(parcel.area_m2)
    if parcel.registered_area_centimu is not None:
        return min(Fraction(parcel.registered_area_centimu, geo.CENTIMU_PER_MU), measured)
    return measured


# --- overlaps ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OverlapFinding:
    """New parcel number ``index`` overlaps ``other_parcel`` (of ``other_project``)."""

    index: int
    other_parcel_code: str
    other_project_code: str | None  # None: another new parcel of the same request
    area_m2: float

    def message(self) -> str:
        return (
            f"overlaps parcel {self.other_parcel_code} of project "
            f"{self.other_project_code or 'being added'} by {self.area_m2:.0f} m²"
        )


@dataclass(frozen=True)
class ClaimedParcel:
    parcel_id: uuid.UUID
    parcel_code: str
    project_code: str
    geometry: BaseGeometry


def claimed_ground(
    session: Session,
    bounds: tuple[float, float, float, float],
    *,
    exclude_parcels: Iterable[uuid.UUID] = (),
) -> list[ClaimedParcel]:
    """Parcels of projects that are not terminated whose bounding box meets ``bounds``."""
    minx, miny, maxx, maxy = bounds
    query = (
        select(Parcel.id, Parcel.code, Parcel.geometry_wkb, Project.code)
        .join(ProjectParcel, col(ProjectParcel.parcel_id) == col(Parcel.id))
        .join(Project, col(Project.id) == col(ProjectParcel.project_id))
        .where(col(Project.status).not_in(INACTIVE_PROJECT_STATUSES))
        .where(col(Parcel.max_x) >= minx)
        .where(col(Parcel.min_x) <= maxx)
        .where(col(Parcel.max_y) >= miny)
        .where(col(Parcel.min_y) <= maxy)
    )
    excluded = set(exclude_parcels)
    rows = [row for row in session.exec(query).all() if row[0] not in excluded]
    if not rows:
        return []
    shapes = shapely.from_wkb(np.asarray([row[2] for row in rows], dtype=object))
    return [
        ClaimedParcel(row[0], row[1], row[3], shape)
        for row, shape in zip(rows, shapes, strict=True)
    ]


def find_overlaps(
    session: Session,
    projected: Sequence[BaseGeometry],
    *,
    exclude_parcels: Iterable[uuid.UUID] = (),
    new_codes: Sequence[str] | None = None,
) -> list[OverlapFinding]:
    """Every new parcel (projected) that overlaps claimed ground or an earlier new parcel."""
    if not projected:
        return []
    bounds = shapely.total_bounds(np.asarray(projected, dtype=object))
    claimed = claimed_ground(
        session,
        (float(bounds[0]), float(bounds[1]), float(bounds[2]), float(bounds[3])),
        exclude_parcels=exclude_parcels,
    )
    against, among = geo.find_overlaps(projected, [item.geometry for item in claimed])
    findings = [
        OverlapFinding(
            index=hit.new_index,
            other_parcel_code=claimed[hit.existing_index].parcel_code,
            other_project_code=claimed[hit.existing_index].project_code,
            area_m2=hit.area_m2,
        )
        for hit in against
    ]
    codes = list(new_codes) if new_codes is not None else [str(i) for i in range(len(projected))]
    findings += [
        OverlapFinding(
            index=hit.new_index,
            other_parcel_code=codes[hit.existing_index],
            other_project_code=None,
            area_m2=hit.area_m2,
        )
        for hit in among
    ]
    return sorted(findings, key=lambda item: (item.index, -item.area_m2))


def refuse_overlaps(findings: Sequence[OverlapFinding], codes: Sequence[str]) -> None:
    if not findings:
        return
    first = findings[0]
    raise ParcelOverlap(
        N_(
            "Parcel {parcel} overlaps parcel {other_parcel} of project {other_project}"
            " by {overlap_m2} m²."
        ),
        parcel=codes[first.index],
        other_parcel=first.other_parcel_code,
        other_project=first.other_project_code or "-",
        overlap_m2=round(first.area_m2, 1),
        overlaps=[
            {
                "parcel": codes[item.index],
                "other_parcel": item.other_parcel_code,
                "other_project": item.other_project_code,
                "overlap_m2": round(item.area_m2, 1),
            }
            for item in findings[:50]
        ],
    )


def parse_holdings(raw: Sequence[dict[str, Any]] | None) -> list[tuple[uuid.UUID, int]]:
    """API form ``[{"household_id": ..., "share_bp": 6000}]`` → tuples."""
    result: list[tuple[uuid.UUID, int]] = []
    for item in raw or []:
        try:
            result.append((uuid.UUID(str(item["household_id"])), int(item["share_bp"])))
        except (KeyError, ValueError, TypeError):
            raise InvalidInput(N_("Each holding needs a household_id and a share_bp.")) from None
    return result
