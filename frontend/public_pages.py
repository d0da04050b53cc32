"""Public pages (no sign-in): home with live totals, the explorer and its map, project pages,
certificate verification and the methodology tables.

Only what the registry's public read model shows: organisations' names and registry facts, never
households or personal data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from shapely.geometry import shape
from sqlmodel import Session

from frontend import labels, maps, reports, stats
from frontend.templating import page_locale, render
from market.service import rewards_fund
from mrv.inclusive import BUILTIN_POINTS_RATES, BUILTIN_VERSIONS, SCENARIO_LABELS, UNIT_LABELS
from mrv.methodologies import all_methodologies
from registry import certificates as documents
from registry import geo
from registry.errors import InvalidSerial, RegistryNotFound
from registry.models import BlockState, MonitoringPeriod, PeriodStatus, Project, ProjectStatus
from registry.serials import ProjectType, SerialFormatError, block_serial
from registry.serials import parse as parse_serial
from registry.service import (
    contracts,
    issuance,
    keys,
    projects,
    public,
    retirements,
    reversals,
)
from registry.service.transfers import organisation_name
from tanhui.auth import OptionalPrincipal, SessionDep
from tanhui.cache import VersionedCache
from tanhui.crypto import unb64
from tanhui.i18n import N_, translate

router = APIRouter(include_in_schema=False)

CERTIFICATE_ID = re.compile(r"^[A-Za-z0-9-]{1,40}$")
VISIBLE_PERIODS = (
    PeriodStatus.submitted,
    PeriodStatus.certified,
    PeriodStatus.filed,
    PeriodStatus.issued,
)
FilterValue = Annotated[str, Query(max_length=20)]
MAX_CHECKED_BLOCKS = 200  # serial blocks cross-checked on one verification page


# --- home ----------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(request: Request, principal: OptionalPrincipal, session: SessionDep) -> Response:
    collection = public.public_projects(session)
    locale = page_locale(request, principal)
    return render(
        request,
        "public/home.html",
        {
            "totals": stats.totals(session),
            "project_count": len(collection["features"]),
            "map": _explorer_map(session, collection["features"], locale, "all"),
        },
        principal=principal,
    )


# --- explorer ------------------------------------------------------------------------------


_MAPS: VersionedCache[Any] = VersionedCache(max_entries=64)


def _explorer_map(
    session: Session, features: list[dict[str, Any]], locale: str, key: Hashable
) -> Any:
    """The projects' map, drawn once per version of the data, filter and language."""
    return _MAPS.get(session, (key, locale), lambda: _draw_explorer_map(features, locale))


def _draw_explorer_map(features: list[dict[str, Any]], locale: str) -> Any:
    shapes = []
    for feature in features:
        properties = feature["properties"]
        if not feature.get("geometry"):
            continue
        kind = properties["type"] if properties["type"] in labels.PROJECT_TYPE else "other"
        shapes.append(
            maps.Shape(
                geometry=shape(feature["geometry"]),
                kind=kind,
                label=f"{properties['code']} {properties['name']}",
                href=f"/projects/{properties['code']}",
            )
        )
    legend = [
        maps.LegendItem(kind, translate(text, locale))
        for kind, text in labels.PROJECT_TYPE.items()
        if kind != "residents"
    ]
    return maps.render(
        shapes,
        title=translate(N_("Carbon-sink projects in Huzhou"), locale),
        description=translate(
            N_("{count} projects drawn over the outlines of Huzhou's five districts and counties."),
            locale,
            count=len(shapes),
        ),
        district_name=labels.district_namer(locale),
        whole_city=True,
        legend=legend,
    )


@router.get("/explorer", response_class=HTMLResponse)
def explorer(
    request: Request,
    principal: OptionalPrincipal,
    session: SessionDep,
    type: FilterValue = "",
    district: FilterValue = "",
    status: FilterValue = "",
) -> Response:
    features = public.public_projects(session)["features"]
    chosen = [
        feature
        for feature in features
        if (not type or feature["properties"]["type"] == type)
        and (not district or feature["properties"]["district_adcode"] == district)
        and (not status or feature["properties"]["status"] == status)
    ]
    locale = page_locale(request, principal)
    return render(
        request,
        "public/explorer.html",
        {
            "projects": [feature["properties"] for feature in chosen],
            "map": _explorer_map(session, chosen, locale, (type, district, status)),
            "filters": {"type": type, "district": district, "status": status},
            "types": [item.value for item in ProjectType],
            "districts": [d.adcode for d in geo.districts()],
            "statuses": [s.value for s in ProjectStatus if s != ProjectStatus.draft],
            "issued_t": sum(p["properties"]["issued_t"] for p in chosen),
            "retired_t": sum(p["properties"]["retired_t"] for p in chosen),
        },
        principal=principal,
    )


# --- project pages -------------------------------------------------------------------------


@dataclass(frozen=True)
class PeriodView:
    period: MonitoringPeriod
    totals: dict[str, Any]
    verifier: str | None
    authority: str | None
    signature_ok: bool


def public_project(session: SessionDep, code: str) -> Project:
    project = projects.find_by_code(session, code[:12])
    if project is None or project.status in public.HIDDEN_STATUSES:
        raise RegistryNotFound(N_("No {what} {id}."), what="project", id=code[:12])
    return project


def period_views(session: SessionDep, project: Project) -> list[PeriodView]:
    views = []
    for period in projects.periods(session, project.id):
        if period.status not in VISIBLE_PERIODS:
            continue
        data = reports.load(period.report_json)
        views.append(
            PeriodView(
                period=period,
                totals=reports.as_dict(data.get("totals")),
                verifier=organisation_name(session, f"org:{period.verifier_id}")
                if period.verifier_id
                else None,
                authority=organisation_name(session, f"org:{period.authority_id}")
                if period.authority_id
                else None,
                signature_ok=projects.verify_certification(session, project, period),
            )
        )
    return views


@router.get("/projects/{code}", response_class=HTMLResponse)
def project_page(
    request: Request, code: str, principal: OptionalPrincipal, session: SessionDep
) -> Response:
    project = public_project(session, code)
    locale = page_locale(request, principal)
    batches = []
    certificate_ids: list[str] = []
    for batch in issuance.batches_of_project(session, project.id):
        located = public.locate(
            session,
            batch.serial_prefix,
            viewer=principal.organisation.id if principal and principal.organisation else None,
        )
        batches.append((batch, located.parts, located.truncated))
        certificate_ids += [p.certificate_id for p in located.parts if p.certificate_id]
    retired = []
    for certificate_id in dict.fromkeys(certificate_ids):
        certificate = retirements.get_certificate(session, certificate_id)
        retired.append(json.loads(certificate.payload_json))
    outline_map = None
    if project.outline_geojson:
        outline_map = maps.render(
            [
                maps.Shape(
                    geometry=shape(json.loads(project.outline_geojson)),
                    kind=project.type if project.type in labels.PROJECT_TYPE else "other",
                    label=f"{project.code} {project.name}",
                )
            ],
            title=translate(N_("Where project {code} lies"), locale, code=project.code),
            description=translate(
                N_("The project's parcels, simplified to 25 m, over the district outlines."),
                locale,
            ),
            district_name=labels.district_namer(locale),
        )
    totals = public.project_totals(session).get(project.id, (0, 0))
    return render(
        request,
        "public/project.html",
        {
            "project": project,
            "cooperative": organisation_name(session, f"org:{project.cooperative_id}"),
            "periods": period_views(session, project),
            "batches": batches,
            "retirements": retired,
            "reversals": reversals.confirmed_reversals_of(session, project.id),
            "map": outline_map,
            "issued_t": totals[0],
            "retired_t": totals[1],
            "parcel_count": projects.parcel_count(session, project.id),
            "household_share_bp": contracts.project_household_share_bp(session, project.id),
            "fund": rewards_fund.summary(session)
            if project.type == ProjectType.residents
            else None,
        },
        principal=principal,
    )


# --- certificate verification --------------------------------------------------------------


@dataclass(frozen=True)
class SerialCheck:
    first: str
    last: str
    ok: bool


def pinned_keys(session: SessionDep) -> dict[str, bytes]:
    """Every public key that signs here, by id (the platform's own included)."""
    found = {record.key_id: unb64(record.public_key) for record in keys.all_public_keys(session)}
    key_id, public_key = retirements.platform_key_public()
    found.setdefault(key_id, unb64(public_key))
    return found


def serial_checks(session: SessionDep, certificate_id: str, payload: dict[str, Any]) -> list[Any]:
    """Whether the registry still records each block of the certificate as retired by it."""
    checks = []
    for pair in (payload.get("serial_blocks") or [])[:MAX_CHECKED_BLOCKS]:
        first, last = str(pair[0]), str(pair[1])
        try:
            start, end = parse_serial(first), parse_serial(last)
            if start.prefix != end.prefix or start.first is None or end.last is None:
                raise SerialFormatError(first)
            located = public.locate(session, block_serial(start.prefix, start.first, end.last))
        except (InvalidSerial, RegistryNotFound, SerialFormatError):
            checks.append(SerialCheck(first, last, False))
            continue
        ok = bool(located.parts) and all(
            part.state == BlockState.retired and part.certificate_id == certificate_id
            for part in located.parts
        )
        checks.append(SerialCheck(first, last, ok))
    return checks


@router.get("/verify", response_class=HTMLResponse)
def verify_form(
    request: Request,
    principal: OptionalPrincipal,
    certificate: Annotated[str, Query(max_length=60)] = "",
) -> Response:
    wanted = certificate.strip()
    if wanted:
        if CERTIFICATE_ID.match(wanted):
            return RedirectResponse(f"/verify/{wanted.upper()}", status_code=303)
        return render(
            request,
            "public/verify.html",
            {"certificate_id": wanted, "result": None, "error": N_("Not a certificate number.")},
            principal=principal,
            status_code=422,
        )
    return render(
        request,
        "public/verify.html",
        {"certificate_id": "", "result": None, "error": None},
        principal=principal,
    )


@router.get("/verify/{certificate_id}", response_class=HTMLResponse)
def verify_certificate(
    request: Request, certificate_id: str, principal: OptionalPrincipal, session: SessionDep
) -> Response:
    wanted = certificate_id.strip().upper()
    found = None
    if CERTIFICATE_ID.match(wanted):
        try:
            found = retirements.get_certificate(session, wanted)
        except RegistryNotFound:
            found = None
    if found is None:
        return render(
            request,
            "public/verify.html",
            {
                "certificate_id": wanted[:60],
                "result": None,
                "error": N_("No certificate with this number is registered here."),
            },
            principal=principal,
            status_code=404,
        )
    document = retirements.certificate_document(session, found)
    result = documents.verify_document(document, pinned_keys(session))
    payload = document["payload"]
    return render(
        request,
        "public/verify.html",
        {
            "certificate_id": found.id,
            "result": result,
            "document": document,
            "payload": payload,
            "checks": serial_checks(session, found.id, payload) if result.ok else [],
            "error": None,
        },
        principal=principal,
    )


# --- methodologies -------------------------------------------------------------------------


@router.get("/methodologies", response_class=HTMLResponse)
def methodologies(request: Request, principal: OptionalPrincipal) -> Response:
    return render(
        request,
        "public/methodologies.html",
        {
            "methodologies": all_methodologies(),
            "factors": sorted(
                BUILTIN_VERSIONS, key=lambda f: (f.scenario.value, f.variant, f.valid_from)
            ),
            "points_rates": BUILTIN_POINTS_RATES,
            "scenario_labels": SCENARIO_LABELS,
            "unit_labels": UNIT_LABELS,
        },
        principal=principal,
    )
