"""The cooperative portal under ``/coop``: households, contracts and settlements, parcels and
their import, projects through their lifecycle, MRV runs on uploaded rasters, pledges.

Every page is for users of a cooperative (viewers read; members and owners act); the registry's
services check roles again and answer 404 for another organisation's objects. Forms post plain
HTML; a refused form comes back with the message next to the field, in the reader's language.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import shapely
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from shapely.geometry import shape
from sqlmodel import Session
from starlette.datastructures import UploadFile as StarletteUpload

from frontend import csv_import, fields, maps, mrv_jobs, reports, samples
from frontend.access import actor_of, may_act, require_face
from frontend.forms import refusal_errors
from frontend.labels import district_namer
from frontend.templating import page_locale, render
from mrv.methodologies import get as get_methodology
from registry import geo, importer
from registry.errors import InvalidImport, ParcelOverlap, RegistryNotFound
from registry.models import (
    LandType,
    MrvRun,
    Parcel,
    PeriodStatus,
    Project,
    ProjectStatus,
    ProjectType,
)
from registry.service import (
    contracts,
    households,
    imports,
    issuance,
    mrv_runs,
    parcels,
    pledges,
    projects,
)
from registry.service.actors import Actor
from tanhui import identity, uploads
from tanhui.auth import Principal, SessionDep, get_engine
from tanhui.errors import DomainError, NotFound
from tanhui.i18n import N_, translate
from tanhui.models import OrgKind, Role
from wallet import service as wallet

router = APIRouter(prefix="/coop", include_in_schema=False)

Coop = Annotated[Principal, Depends(require_face(OrgKind.cooperative))]
CoopMember = Annotated[Principal, Depends(require_face(OrgKind.cooperative, minimum=Role.member))]

MAX_PARCEL_FILE_BYTES = 64 * 1024 * 1024
MAX_RASTER_BYTES = 256 * 1024 * 1024  # all rasters of one run together
MAX_CLASS_TABLE_BYTES = 256 * 1024
RASTER_SLOTS = 4
RASTER_LAYERS = ("index", "red", "nir", "green", "swir1", "blue", "qa", "agb", "landcover")
MAP_PARCELS = 3_000  # parcels drawn on one map
LIST_PARCELS = 500  # parcels listed on one page
UPLOAD_CHUNK = 1024 * 1024
# Request-body limits above the default (TANHUI_MAX_BODY_BYTES), by route.
BODY_LIMITS: dict[str, int] = {
    "/coop/parcels/import": MAX_PARCEL_FILE_BYTES + 64 * 1024,
    "/coop/households/import": csv_import.MAX_CSV_BYTES + 64 * 1024,
    "/coop/contracts/import": csv_import.MAX_CSV_BYTES + 64 * 1024,
    "/coop/projects/{project_id}/mrv": MAX_RASTER_BYTES + MAX_CLASS_TABLE_BYTES + 64 * 1024,
}


def _coop_id(principal: Principal) -> uuid.UUID:
    assert principal.organisation is not None
    return principal.organisation.id


# --- dashboard -----------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def dashboard(request: Request, principal: Coop, session: SessionDep) -> Response:
    actor = actor_of(principal)
    coop_id = _coop_id(principal)
    listed = projects.list_projects(session, actor=actor)
    return render(
        request,
        "coop/dashboard.html",
        {
            "projects": listed,
            "household_count": len(
                households.list_households(session, actor=actor, cooperative_id=coop_id)
            ),
            "contracts": contracts.list_contracts(session, actor=actor, cooperative_id=coop_id),
            "holdings": issuance.holdings(session, actor.owner),
            "cny": _cny_balance(session, f"org:{coop_id}"),
            "samples": [described for described, _ in samples.FILES.values()],
            "may_act": may_act(principal),
        },
        principal=principal,
    )


def _cny_balance(session: Session, owner: str) -> int:
    account = wallet.find_account(session, asset=wallet.ASSET_CNY, owner=owner)
    return wallet.get_balance(session, account.id).balance if account else 0


@router.get("/samples/{name}")
def sample_file(name: str, principal: Coop) -> Response:
    found = samples.content(name)
    if found is None:
        raise NotFound(N_("No sample file {name}."), name=name[:60])
    described, body = found
    return Response(
        body,
        media_type=described.media_type,
        headers={"Content-Disposition": f'attachment; filename="{described.name}"'},
    )


# --- households ----------------------------------------------------------------------------


def _households_page(
    request: Request,
    principal: Principal,
    session: Session,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    report: csv_import.CsvReport | None = None,
    village: str = "",
    status_code: int = 200,
) -> Response:
    actor = actor_of(principal)
    listed = households.list_households(
        session, actor=actor, cooperative_id=_coop_id(principal), village=village or None
    )
    return render(
        request,
        "coop/households.html",
        {
            "households": listed,
            "village": village,
            "errors": errors or {},
            "form": form or {},
            "report": report,
            "may_act": may_act(principal),
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/households", response_class=HTMLResponse)
def households_page(
    request: Request, principal: Coop, session: SessionDep, village: str = ""
) -> Response:
    return _households_page(request, principal, session, village=village[:100])


@router.post("/households", response_class=HTMLResponse)
def add_household(
    request: Request,
    principal: CoopMember,
    session: SessionDep,
    name: Annotated[str, Form(max_length=100)] = "",
    village: Annotated[str, Form(max_length=100)] = "",
    national_id: Annotated[str, Form(max_length=32)] = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    bank_account: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    try:
        households.create_household(
            session,
            actor=actor_of(principal),
            cooperative_id=_coop_id(principal),
            name=name,
            village=village,
            national_id=national_id,
            phone=phone or None,
            bank_account=bank_account or None,
        )
    except DomainError as error:
        return _households_page(
            request,
            principal,
            session,
            errors=refusal_errors(session, request, principal, error),
            form={"name": name, "village": village, "phone": phone},
            status_code=error.status,
        )
    return RedirectResponse("/coop/households", status_code=303)


@router.post("/households/import", response_class=HTMLResponse)
async def import_households(
    request: Request,
    principal: CoopMember,
    session: SessionDep,
    file: Annotated[UploadFile, File()],
) -> Response:
    return await _import_csv(
        request,
        principal,
        session,
        file,
        run_import=csv_import.import_households,
        page=_households_page,
        field="households_file",
    )


async def _import_csv(
    request: Request,
    principal: Principal,
    session: Session,
    file: UploadFile,
    *,
    run_import: Callable[..., Any],
    page: Callable[..., Response],
    field: str,
) -> Response:
    """Import an uploaded CSV with ``run_import``: the page shows the import report, or the
    refusal of the whole file next to its field."""
    content = await file.read(csv_import.MAX_CSV_BYTES + 1)
    try:
        report = run_import(
            session,
            actor=actor_of(principal),
            cooperative_id=_coop_id(principal),
            content=content,
            locale=page_locale(request, principal),
        )
    except DomainError as error:
        errors = refusal_errors(session, request, principal, error)
        return page(
            request,
            principal,
            session,
            errors={field: errors.get("_form", next(iter(errors.values())))},
            status_code=error.status,
        )
    return page(request, principal, session, report=report)


@router.get("/households/{household_id}", response_class=HTMLResponse)
def household_statement(
    request: Request, household_id: uuid.UUID, principal: Coop, session: SessionDep
) -> Response:
    """A household's revenue statement: collection payments and shares of sales, in CNY."""
    actor = actor_of(principal)
    household = households.get_household(session, actor=actor, household_id=household_id)
    payments = []
    for contract in contracts.list_contracts(
        session, actor=actor, cooperative_id=_coop_id(principal)
    ):
        for settlement in contracts.settlements_of(session, contract.id):
            for line, holder in contracts.settlement_lines(session, settlement.id):
                if holder.id == household.id:
                    payments.append((contract, settlement, line))
    account = wallet.find_account(
        session, asset=wallet.ASSET_CNY, owner=households.household_owner(household.id)
    )
    postings = wallet.list_postings(session, account.id, limit=200).items if account else []
    balance = wallet.get_balance(session, account.id) if account else None
    return render(
        request,
        "coop/household.html",
        {
            "household": household,
            "payments": payments,
            "postings": [p for p in postings if p.layer == "posted"] if postings else [],
            "balance": balance,
        },
        principal=principal,
    )


# --- contracts and settlements -------------------------------------------------------------


def _contracts_page(
    request: Request,
    principal: Principal,
    session: Session,
    *,
    errors: dict[str, str] | None = None,
    report: csv_import.CsvReport | None = None,
    status_code: int = 200,
) -> Response:
    actor = actor_of(principal)
    listed = contracts.list_contracts(session, actor=actor, cooperative_id=_coop_id(principal))
    today = contracts.today()
    return render(
        request,
        "coop/contracts.html",
        {
            "contracts": [
                (c, contracts.summary(session, c), contracts.unpaid_periods(session, c, today))
                for c in listed
            ],
            "errors": errors or {},
            "report": report,
            "may_act": may_act(principal),
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/contracts", response_class=HTMLResponse)
def contracts_page(request: Request, principal: Coop, session: SessionDep) -> Response:
    return _contracts_page(request, principal, session)


@router.post("/contracts/import", response_class=HTMLResponse)
async def import_contracts(
    request: Request,
    principal: CoopMember,
    session: SessionDep,
    file: Annotated[UploadFile, File()],
) -> Response:
    return await _import_csv(
        request,
        principal,
        session,
        file,
        run_import=csv_import.import_contracts,
        page=_contracts_page,
        field="contracts_file",
    )


def _contract_page(
    request: Request,
    principal: Principal,
    session: Session,
    contract_id: uuid.UUID,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    actor = actor_of(principal)
    contract = contracts.get_contract(session, actor=actor, contract_id=contract_id)
    settled = [
        (settlement, contracts.settlement_lines(session, settlement.id))
        for settlement in contracts.settlements_of(session, contract.id)
    ]
    unpaid = contracts.unpaid_periods(session, contract, contracts.today())
    plan = None
    plan_error = None
    if unpaid:
        try:
            plan = contracts.plan_settlement(session, contract, unpaid[0])
        except DomainError as error:
            plan_error = translate(error.message, page_locale(request, principal), **error.params)
    return render(
        request,
        "coop/contract.html",
        {
            "contract": contract,
            "summary": contracts.summary(session, contract),
            "settled": settled,
            "unpaid": unpaid,
            "plan": plan,
            "plan_error": plan_error,
            "periods": contract.term_years // contract.settlement_period_years,
            "errors": errors or {},
            "may_act": may_act(principal),
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/contracts/{contract_id}", response_class=HTMLResponse)
def contract_page(
    request: Request, contract_id: uuid.UUID, principal: Coop, session: SessionDep
) -> Response:
    return _contract_page(request, principal, session, contract_id)


@router.post("/contracts/{contract_id}/settle", response_class=HTMLResponse)
def settle_contract(
    request: Request,
    contract_id: uuid.UUID,
    principal: CoopMember,
    session: SessionDep,
    sequence: Annotated[str, Form(max_length=6)] = "",
) -> Response:
    try:
        contracts.settle(
            session,
            actor=actor_of(principal),
            contract_id=contract_id,
            sequence=fields.whole(sequence, "sequence", minimum=1),
        )
    except (RegistryNotFound, NotFound):
        raise
    except DomainError as error:
        return _contract_page(
            request,
            principal,
            session,
            contract_id,
            errors=refusal_errors(session, request, principal, error),
            status_code=error.status,
        )
    return RedirectResponse(f"/coop/contracts/{contract_id}", status_code=303)


# --- parcels -------------------------------------------------------------------------------


def _all_parcels(session: Session, actor: Actor, coop_id: uuid.UUID) -> list[Parcel]:
    return parcels.list_parcels(session, actor=actor, cooperative_id=coop_id, limit=MAP_PARCELS)


def _parcel_shapes(items: list[Parcel], kind: str) -> list[maps.Shape]:
    return [
        maps.Shape(
            geometry=shape(json.loads(parcel.geometry_geojson)),
            kind=kind,
            label=f"{parcel.code} · {float(geo.m2_to_mu(parcel.area_m2)):.1f} mu",
        )
        for parcel in items
    ]


def _parcels_map(items: list[Parcel], kind: str, title: str, locale: str) -> Any:
    """``items`` drawn over the district outlines, or None when there is nothing to draw."""
    if not items:
        return None
    return maps.render(
        _parcel_shapes(items, kind),
        title=title,
        description=translate(
            N_("{count} parcels over the district outlines."), locale, count=len(items)
        ),
        district_name=district_namer(locale),
    )


def _draft_projects(session: Session, actor: Actor) -> list[Project]:
    return [
        project
        for project in projects.list_projects(session, actor=actor)
        if project.status == ProjectStatus.draft
    ]


DEFAULT_MAPPING = {
    "code": "code",
    "land_type": "land_type",
    "village": "village",
    "forest_right_cert": "cert_no",
    "registered_area_mu": "area_mu",
    "household_national_id": "national_id",
}


def _parcels_page(
    request: Request,
    principal: Principal,
    session: Session,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    actor = actor_of(principal)
    items = _all_parcels(session, actor, _coop_id(principal))
    locale = page_locale(request, principal)
    parcel_map = _parcels_map(
        items, "parcel", translate(N_("The cooperative's parcels"), locale), locale
    )
    return render(
        request,
        "coop/parcels.html",
        {
            "parcels": items[:LIST_PARCELS],
            "parcel_count": len(items),
            "map": parcel_map,
            "drafts": _draft_projects(session, actor),
            "land_types": [item.value for item in LandType],
            "errors": errors or {},
            "form": form or {**DEFAULT_MAPPING, "default_land_type": "bamboo"},
            "may_act": may_act(principal),
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/parcels", response_class=HTMLResponse)
def parcels_page(request: Request, principal: Coop, session: SessionDep) -> Response:
    return _parcels_page(request, principal, session)


@router.post("/parcels/import", response_class=HTMLResponse)
async def import_parcels(
    request: Request,
    principal: CoopMember,
    session: SessionDep,
    file: Annotated[UploadFile, File()],
    code: Annotated[str, Form(max_length=100)] = "code",
    land_type: Annotated[str, Form(max_length=100)] = "",
    default_land_type: Annotated[str, Form(max_length=16)] = "",
    village: Annotated[str, Form(max_length=100)] = "",
    default_village: Annotated[str, Form(max_length=100)] = "",
    forest_right_cert: Annotated[str, Form(max_length=100)] = "",
    registered_area_mu: Annotated[str, Form(max_length=100)] = "",
    household_national_id: Annotated[str, Form(max_length=100)] = "",
    layer: Annotated[str, Form(max_length=200)] = "",
    project_id: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    form = {
        "code": code,
        "land_type": land_type,
        "default_land_type": default_land_type,
        "village": village,
        "default_village": default_village,
        "forest_right_cert": forest_right_cert,
        "registered_area_mu": registered_area_mu,
        "household_national_id": household_national_id,
        "layer": layer,
        "project_id": project_id,
    }
    actor = actor_of(principal)
    locale = page_locale(request, principal)
    content = await file.read(MAX_PARCEL_FILE_BYTES + 1)
    try:
        if len(content) > MAX_PARCEL_FILE_BYTES:
            raise fields.invalid("file", N_("The file is larger than {maximum} MiB."), maximum=64)
        raw_mapping: dict[str, Any] = {
            key: value.strip()
            for key, value in form.items()
            if key in imports.MAPPABLE_FIELDS and value.strip()
        }
        if default_land_type:
            raw_mapping["default_land_type"] = default_land_type
        if default_village.strip():
            raw_mapping["default_village"] = default_village.strip()
        mapping = imports.ImportMapping.from_dict(raw_mapping)
        chosen_project = fields.identifier(project_id, "project_id") if project_id else None
        imports.may_import(actor, _coop_id(principal))  # before the untrusted file is read
        try:
            with importer.uploaded_file(content, file.filename or "") as path:
                rows = importer.read_rows(path, layer=layer.strip() or None)
        except importer.ImportFileError as error:
            raise InvalidImport(
                error.message, errors=[{"field": "file", "message": "unreadable"}], **error.params
            ) from None
        report = imports.import_parcels(
            session,
            actor=actor,
            cooperative_id=_coop_id(principal),
            rows=rows,
            mapping=mapping,
            project_id=chosen_project,
            source_name=file.filename or "",
        )
    except DomainError as error:
        return _parcels_page(
            request,
            principal,
            session,
            errors=refusal_errors(session, request, principal, error),
            form=form,
            status_code=error.status,
        )
    return render(
        request,
        "coop/import_report.html",
        {
            "report": report,
            "filename": file.filename or "",
            "map": _import_map(session, rows, report, mapping.code, locale),
        },
        principal=principal,
    )


def _claimed_shapes(claimed: list[parcels.ClaimedParcel], locale: str) -> list[maps.Shape]:
    """Ground already claimed by projects, drawn grey under a map of parcels."""
    if not claimed:
        return []
    back = geo.unproject([item.geometry for item in claimed])
    return [
        maps.Shape(
            geometry=geometry,
            kind="claimed",
            label=translate(
                N_("Parcel {parcel} of project {project}"),
                locale,
                parcel=item.parcel_code,
                project=item.project_code,
            ),
        )
        for item, geometry in zip(claimed, back, strict=True)
    ]


def _import_map(
    session: Session,
    rows: list[importer.SourceRow],
    report: imports.ImportReport,
    code_attribute: str,
    locale: str,
) -> Any:
    """Imported parcels green, refused rows red, the claimed ground they met grey."""
    refused = {item.row: item for item in report.rejected}
    shown: list[maps.Shape] = []
    for row in rows:
        if row.geometry is None or row.geometry.is_empty:
            continue
        geometry = row.geometry
        if geometry.geom_type not in {"Polygon", "MultiPolygon"}:
            continue
        problem = refused.get(row.number)
        code = str(row.attributes.get(code_attribute) or "")
        if problem is not None:
            shown.append(
                maps.Shape(
                    geometry=geometry,
                    kind="refused",
                    label=translate(
                        N_("Row {row} ({code}) refused: {reason}"),
                        locale,
                        row=problem.row,
                        code=problem.code or code,
                        reason=problem.reason,
                    ),
                )
            )
        else:
            shown.append(maps.Shape(geometry=geometry, kind="imported", label=code))
    if not shown:
        return None
    projected = geo.project([item.geometry for item in shown])
    minx, miny, maxx, maxy = (float(v) for v in shapely.total_bounds(projected))
    claimed = parcels.claimed_ground(session, (minx, miny, maxx, maxy))
    new_ids = set(report.parcel_ids)
    others = [item for item in claimed if item.parcel_id not in new_ids][:MAP_PARCELS]
    shown = _claimed_shapes(others, locale) + shown
    return maps.render(
        shown,
        title=translate(N_("What the import did"), locale),
        description=translate(
            N_(
                "{imported} parcels imported (green), {refused} rows refused (red), ground"
                " already claimed by projects (grey)."
            ),
            locale,
            imported=report.imported,
            refused=len(report.rejected),
        ),
        district_name=district_namer(locale),
        legend=[
            maps.LegendItem("imported", translate(N_("Imported"), locale)),
            maps.LegendItem("refused", translate(N_("Refused"), locale)),
            maps.LegendItem("claimed", translate(N_("Already claimed by a project"), locale)),
        ],
    )


# --- projects ------------------------------------------------------------------------------


METHODOLOGY_FOR_TYPE = {ProjectType.bamboo: "bamboo-rate", ProjectType.wetland: "wetland"}


def _new_project_page(
    request: Request,
    principal: Principal,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    from mrv.methodologies import all_methodologies

    return render(
        request,
        "coop/project_new.html",
        {
            "errors": errors or {},
            "form": form or {"type": "bamboo", "methodology": "bamboo-rate@1.0"},
            "types": [ProjectType.bamboo.value, ProjectType.wetland.value],
            "methodologies": [f"{m.name}@{m.version}" for m in all_methodologies()],
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/projects/new", response_class=HTMLResponse)
def new_project(request: Request, principal: CoopMember) -> Response:
    return _new_project_page(request, principal)


@router.post("/projects", response_class=HTMLResponse)
def create_project(
    request: Request,
    principal: CoopMember,
    session: SessionDep,
    code: Annotated[str, Form(max_length=12)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    type: Annotated[str, Form(max_length=16)] = "",
    methodology: Annotated[str, Form(max_length=120)] = "",
    crediting_start: Annotated[str, Form(max_length=10)] = "",
    crediting_end: Annotated[str, Form(max_length=10)] = "",
    description: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    form = {
        "code": code,
        "name": name,
        "type": type,
        "methodology": methodology,
        "crediting_start": crediting_start,
        "crediting_end": crediting_end,
        "description": description,
    }
    try:
        name_part, _, version = methodology.partition("@")
        chosen = get_methodology(name_part, version or None) if name_part else None
        if chosen is None:
            raise fields.invalid("methodology", N_("Choose one of the options."))
        project = projects.create_project(
            session,
            actor=actor_of(principal),
            cooperative_id=_coop_id(principal),
            code=code,
            name=name,
            type=fields.choice(ProjectType, type, "type"),
            methodology_name=chosen.name,
            methodology_version=chosen.version,
            crediting_start=fields.required_date(crediting_start, "crediting_start"),
            crediting_end=fields.required_date(crediting_end, "crediting_end"),
            description=description,
        )
    except DomainError as error:
        errors = refusal_errors(session, request, principal, error)
        if error.code == "registry/duplicate-code":
            errors = {"code": errors.get("_form", "")}
        return _new_project_page(
            request, principal, errors=errors, form=form, status_code=error.status
        )
    return RedirectResponse(f"/coop/projects/{project.id}", status_code=303)


def _project_page(
    request: Request,
    principal: Principal,
    session: Session,
    project_id: uuid.UUID,
    *,
    errors: dict[str, str] | None = None,
    overlap_map: Any = None,
    status_code: int = 200,
) -> Response:
    actor = actor_of(principal)
    locale = page_locale(request, principal)
    project = projects.get_project(session, actor=actor, project_id=project_id)
    included = projects.project_parcels(session, project.id)
    included_ids = {parcel.id for parcel in included}
    candidates = []
    if project.status == ProjectStatus.draft:
        candidates = [
            p for p in _all_parcels(session, actor, _coop_id(principal)) if p.id not in included_ids
        ][:LIST_PARCELS]
    project_map = _parcels_map(
        included,
        project.type if project.type in METHODOLOGY_FOR_TYPE else "parcel",
        translate(N_("Parcels of project {code}"), locale, code=project.code),
        locale,
    )
    return render(
        request,
        "coop/project.html",
        {
            "project": project,
            "parcels": included[:LIST_PARCELS],
            "parcel_count": len(included),
            "area_mu": sum((parcels.area_mu(p) for p in included), start=0) if included else 0,
            "candidates": candidates,
            "uncontracted": projects.uncontracted_parcels(session, project.id)
            if project.status == ProjectStatus.draft
            else [],
            "periods": projects.periods(session, project.id),
            "batches": issuance.batches_of_project(session, project.id),
            "map": project_map,
            "overlap_map": overlap_map,
            "errors": errors or {},
            "may_act": may_act(principal),
            "can_run_mrv": project.status in {ProjectStatus.collected, ProjectStatus.issued},
            "runs": [
                mrv_jobs.JobStatus.of(run)
                for run in mrv_runs.runs_of_project(session, actor=actor, project_id=project.id)
            ],
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/projects/{project_id}", response_class=HTMLResponse)
def project_page(
    request: Request, project_id: uuid.UUID, principal: Coop, session: SessionDep
) -> Response:
    return _project_page(request, principal, session, project_id)


@router.post("/projects/{project_id}/parcels", response_class=HTMLResponse)
async def add_parcels(
    request: Request, project_id: uuid.UUID, principal: CoopMember, session: SessionDep
) -> Response:
    submitted = await request.form()
    raw_ids = [str(value) for value in submitted.getlist("parcel_id")][
        : projects.MAX_PARCELS_PER_CALL
    ]
    locale = page_locale(request, principal)
    try:
        wanted = [fields.identifier(value, "parcel_id") for value in raw_ids]
        if not wanted:
            raise fields.invalid("parcel_id", N_("Choose at least one parcel."))
        projects.add_parcels(
            session, actor=actor_of(principal), project_id=project_id, parcel_ids=wanted
        )
    except ParcelOverlap as error:
        errors = refusal_errors(session, request, principal, error)
        overlap_map = _overlap_map(session, actor_of(principal), wanted, error, locale)
        return _project_page(
            request,
            principal,
            session,
            project_id,
            errors={"parcel_id": errors["_form"]},
            overlap_map=overlap_map,
            status_code=error.status,
        )
    except (RegistryNotFound, NotFound):
        raise
    except DomainError as error:
        return _project_page(
            request,
            principal,
            session,
            project_id,
            errors=refusal_errors(session, request, principal, error),
            status_code=error.status,
        )
    return RedirectResponse(f"/coop/projects/{project_id}", status_code=303)


def _overlap_map(
    session: Session,
    actor: Actor,
    wanted: list[uuid.UUID],
    error: ParcelOverlap,
    locale: str,
) -> Any:
    """The parcels that were refused (red) and the claimed ground they overlap (grey)."""
    overlaps = error.params.get("overlaps") or []
    refused_codes = {item["parcel"] for item in overlaps}
    chosen = [parcels.get_parcel(session, actor=actor, parcel_id=pid) for pid in wanted]
    shown = [
        maps.Shape(
            geometry=shape(json.loads(parcel.geometry_geojson)),
            kind="refused" if parcel.code in refused_codes else "imported",
            label=parcel.code,
        )
        for parcel in chosen
    ]
    if not shown:
        return None
    projected = geo.project([item.geometry for item in shown])
    bounds = tuple(float(v) for v in shapely.total_bounds(projected))
    claimed = parcels.claimed_ground(session, bounds)  # type: ignore[arg-type]
    shown = _claimed_shapes(claimed, locale) + shown
    return maps.render(
        shown,
        title=translate(N_("Why the parcels were refused"), locale),
        description=translate(
            N_("Refused parcels (red) overlap ground already claimed by a project (grey)."), locale
        ),
        district_name=district_namer(locale),
        legend=[
            maps.LegendItem("refused", translate(N_("Refused"), locale)),
            maps.LegendItem("claimed", translate(N_("Already claimed by a project"), locale)),
            maps.LegendItem("imported", translate(N_("No overlap"), locale)),
        ],
    )


@router.post("/projects/{project_id}/collect", response_class=HTMLResponse)
def collect_project(
    request: Request, project_id: uuid.UUID, principal: CoopMember, session: SessionDep
) -> Response:
    try:
        projects.collect(session, actor=actor_of(principal), project_id=project_id)
    except (RegistryNotFound, NotFound):
        raise
    except DomainError as error:
        return _project_page(
            request,
            principal,
            session,
            project_id,
            errors={"collect": refusal_errors(session, request, principal, error)["_form"]},
            status_code=error.status,
        )
    return RedirectResponse(f"/coop/projects/{project_id}", status_code=303)


# --- MRV runs ------------------------------------------------------------------------------


def _default_period(session: Session, project: Project) -> tuple[date, date]:
    earlier = [
        p
        for p in projects.periods(session, project.id)
        if p.status not in {PeriodStatus.returned, PeriodStatus.withdrawn}
    ]
    start = earlier[-1].end + timedelta(days=1) if earlier else project.crediting_start
    end = contracts.add_years(start, 3) - timedelta(days=1)
    return start, min(end, project.crediting_end)


def _mrv_form(
    request: Request,
    principal: Principal,
    session: Session,
    project: Project,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    start, end = _default_period(session, project)
    return render(
        request,
        "coop/mrv_form.html",
        {
            "project": project,
            "errors": errors or {},
            "form": form
            or {
                "period_start": start.isoformat(),
                "period_end": end.isoformat(),
                "layer_1": "index",
            },
            "slots": range(1, RASTER_SLOTS + 1),
            "layers": RASTER_LAYERS,
            "parcel_count": projects.parcel_count(session, project.id),
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/projects/{project_id}/mrv", response_class=HTMLResponse)
def mrv_form(
    request: Request, project_id: uuid.UUID, principal: CoopMember, session: SessionDep
) -> Response:
    project = projects.get_project(session, actor=actor_of(principal), project_id=project_id)
    return _mrv_form(request, principal, session, project)


async def _save_upload(upload: StarletteUpload, target: Path, budget: int) -> int:
    """Stream an upload to ``target``; returns its size, refusing past ``budget`` bytes."""
    written = 0
    with target.open("wb") as handle:
        while chunk := await upload.read(UPLOAD_CHUNK):
            written += len(chunk)
            if written > budget:
                raise fields.invalid(
                    "raster_1",
                    N_("The rasters together exceed {maximum} MiB."),
                    maximum=MAX_RASTER_BYTES // (1024 * 1024),
                )
            handle.write(chunk)
    return written


@router.post("/projects/{project_id}/mrv", response_class=HTMLResponse)
async def start_mrv(
    request: Request, project_id: uuid.UUID, principal: CoopMember, session: SessionDep
) -> Response:
    actor = actor_of(principal)
    project = projects.get_project(session, actor=actor, project_id=project_id)
    submitted = await request.form()
    form = {key: str(value) for key, value in submitted.items() if isinstance(value, str)}
    run_id = None
    try:
        if project.status not in {ProjectStatus.collected, ProjectStatus.issued}:
            raise fields.invalid(
                "_form",
                N_("Project {code} is {status}; an MRV run needs a collected or issued project."),
                code=project.code,
                status=str(project.status),
            )
        start = fields.required_date(form.get("period_start", ""), "period_start")
        end = fields.required_date(form.get("period_end", ""), "period_end")
        if end <= start:
            raise fields.invalid(
                "period_end", N_("The monitoring period must end after it starts.")
            )
        given: list[tuple[int, str, StarletteUpload]] = []
        for slot in range(1, RASTER_SLOTS + 1):
            upload = submitted.get(f"raster_{slot}")
            layer = form.get(f"layer_{slot}", "")
            if not isinstance(upload, StarletteUpload) or not upload.filename:
                continue
            if layer not in RASTER_LAYERS:
                raise fields.invalid(f"layer_{slot}", N_("Choose one of the options."))
            if any(name == layer for _, name, _ in given):
                raise fields.invalid(f"layer_{slot}", N_("Each layer can be given once."))
            given.append((slot, layer, upload))
        if not given:
            raise fields.invalid("raster_1", N_("Upload at least one raster (GeoTIFF)."))
        included = projects.project_parcels(session, project.id)
        if not included:
            raise fields.invalid("_form", N_("Project {code} has no parcels."), code=project.code)
        frame = mrv_runs.parcels_frame(session, project.id)
        west, south, east, north = (float(value) for value in frame.total_bounds)
        run_id = mrv_jobs.prepare_inputs()
        budget = MAX_RASTER_BYTES
        rasters: dict[str, str] = {}
        for slot, layer, upload in given:
            target = mrv_jobs.input_path(run_id, f"{layer}.tif")
            budget -= await _save_upload(upload, target, budget)
            try:  # by its bytes, GTiff only, and what it would cost, before any work
                facts = uploads.check_raster(target)
                uploads.check_overlap(facts, (west, south, east, north))
            except uploads.RefusedFile as refused:
                raise fields.invalid(f"raster_{slot}", refused.message, **refused.params) from None
            rasters[layer] = str(target)
        classes_path = None
        table = submitted.get("classes")
        if isinstance(table, StarletteUpload) and table.filename:
            classes_path = mrv_jobs.input_path(run_id, "classes.csv")
            await _save_upload(table, classes_path, MAX_CLASS_TABLE_BYTES)
        run = mrv_runs.start_run(
            session,
            actor=actor,
            project_id=project.id,
            period_start=start,
            period_end=end,
            layers=rasters,
            run_id=run_id,
        )
    except DomainError as error:
        if run_id is not None:
            mrv_jobs.discard_inputs(run_id)
        return _mrv_form(
            request,
            principal,
            session,
            project,
            errors=refusal_errors(session, request, principal, error),
            form=form,
            status_code=error.status,
        )
    session.commit()  # the background thread's own transactions must see the run
    mrv_jobs.start(
        get_engine(request),
        run,
        parcels=frame,
        rasters=rasters,
        classes=str(classes_path) if classes_path else None,
        scheduler=request.app.state.settings.mrv_scheduler,
        budget_s=request.app.state.settings.mrv_time_budget_s,
    )
    return RedirectResponse(f"/coop/mrv/{run.id.hex}", status_code=303)


def _run(
    session: Session, principal: Principal, job_id: str, *, with_report: bool = False
) -> MrvRun:
    run_id = mrv_jobs.run_id_of(job_id)
    if run_id is None:
        raise NotFound(N_("No {what} {id}."), what="MRV run", id=job_id[:40])
    return mrv_runs.get_run(
        session, actor=actor_of(principal), run_id=run_id, with_report=with_report
    )


@router.get("/mrv/{job_id}/status")
def mrv_status(job_id: str, principal: Coop, request: Request, session: SessionDep) -> JSONResponse:
    status = mrv_jobs.JobStatus.of(_run(session, principal, job_id))
    locale = page_locale(request, principal)
    text = (
        translate(
            N_("{done} of {total} raster chunks measured"),
            locale,
            done=status.done,
            total=status.total,
        )
        if status.total
        else translate(N_("Waiting to start"), locale)
    )
    return JSONResponse(
        {"state": status.state, "done": status.done, "total": status.total, "text": text},
        headers={"Cache-Control": "no-store"},
    )


def _report_view(
    request: Request, principal: Principal, session: Session, project: Project, report_json: str
) -> reports.ReportView:
    """An MRV report as the cooperative reads it, drawn over the project's parcels."""
    return reports.view(
        report_json,
        reports.outlines_of(projects.project_parcels(session, project.id)),
        page_locale(request, principal),
    )


def _mrv_job_page(
    request: Request,
    principal: Principal,
    session: Session,
    run: MrvRun,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    status = mrv_jobs.JobStatus.of(run)
    project = projects.get_project(session, actor=actor_of(principal), project_id=run.project_id)
    report_view = None
    if run.report_json is not None and status.state in {"done", "submitted"}:
        report_view = _report_view(request, principal, session, project, run.report_json)
    return render(
        request,
        "coop/mrv_job.html",
        {
            "job": status,
            "project": project,
            "report": report_view,
            "can_cancel": status.state in {"queued", "running"} and may_act(principal),
            "can_submit": not errors
            and status.state == "done"
            and project.status in {ProjectStatus.collected, ProjectStatus.issued}
            and may_act(principal),
            "errors": errors or {},
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/mrv/{job_id}", response_class=HTMLResponse)
def mrv_job(request: Request, job_id: str, principal: Coop, session: SessionDep) -> Response:
    return _mrv_job_page(
        request, principal, session, _run(session, principal, job_id, with_report=True)
    )


@router.post("/mrv/{job_id}/submit", response_class=HTMLResponse)
def submit_mrv(
    request: Request, job_id: str, principal: CoopMember, session: SessionDep
) -> Response:
    run = _run(session, principal, job_id)
    try:
        mrv_runs.submit_run(session, actor=actor_of(principal), run_id=run.id)
    except DomainError as error:
        errors = refusal_errors(session, request, principal, error)
        run = _run(session, principal, job_id, with_report=True)
        return _mrv_job_page(
            request, principal, session, run, errors=errors, status_code=error.status
        )
    return RedirectResponse(f"/coop/projects/{run.project_id}", status_code=303)


@router.post("/mrv/{job_id}/cancel", response_class=HTMLResponse)
def cancel_mrv(
    request: Request, job_id: str, principal: CoopMember, session: SessionDep
) -> Response:
    run = _run(session, principal, job_id)
    try:
        mrv_runs.cancel_run(session, actor=actor_of(principal), run_id=run.id)
    except DomainError as error:
        errors = refusal_errors(session, request, principal, error)
        run = _run(session, principal, job_id, with_report=True)
        return _mrv_job_page(
            request, principal, session, run, errors=errors, status_code=error.status
        )
    return RedirectResponse(f"/coop/mrv/{job_id}", status_code=303)


@router.get("/periods/{period_id}", response_class=HTMLResponse)
def period_page(
    request: Request, period_id: uuid.UUID, principal: Coop, session: SessionDep
) -> Response:
    period, project = projects.get_period(session, actor=actor_of(principal), period_id=period_id)
    return render(
        request,
        "coop/period.html",
        {
            "period": period,
            "project": project,
            "report": _report_view(request, principal, session, project, period.report_json),
        },
        principal=principal,
    )


# --- pledges -------------------------------------------------------------------------------


def _pledges_page(
    request: Request,
    principal: Principal,
    session: Session,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    actor = actor_of(principal)
    coop_id = _coop_id(principal)
    organisations = {o.id: o.name for o in identity.list_organisations(session)}
    return render(
        request,
        "coop/pledges.html",
        {
            "pledges": pledges.pledges_of(session, actor=actor),
            "own_holder": actor.owner,
            "organisations": organisations,
            "lenders": [(oid, name) for oid, name in organisations.items() if oid != coop_id],
            "holdings": [
                (batch, state, quantity)
                for batch, state, quantity in issuance.holdings(session, actor.owner)
                if str(state) == "held"
            ],
            "batches": {b.id: b for b, _, _ in issuance.holdings(session, actor.owner)},
            "contracts": contracts.list_contracts(session, actor=actor, cooperative_id=coop_id),
            "errors": errors or {},
            "form": form or {},
            "may_act": may_act(principal),
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/pledges", response_class=HTMLResponse)
def pledges_page(request: Request, principal: Coop, session: SessionDep) -> Response:
    return _pledges_page(request, principal, session)


@router.post("/pledges/credits", response_class=HTMLResponse)
def pledge_credits(
    request: Request,
    principal: CoopMember,
    session: SessionDep,
    batch_id: Annotated[str, Form(max_length=40)] = "",
    quantity_t: Annotated[str, Form(max_length=20)] = "",
    lender_id: Annotated[str, Form(max_length=40)] = "",
    loan_amount: Annotated[str, Form(max_length=30)] = "",
    interest_rate: Annotated[str, Form(max_length=10)] = "",
    matures_on: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    form = {
        "batch_id": batch_id,
        "quantity_t": quantity_t,
        "lender_id": lender_id,
        "loan_amount": loan_amount,
        "interest_rate": interest_rate,
        "matures_on": matures_on,
    }
    try:
        pledges.pledge_credits(
            session,
            actor=actor_of(principal),
            batch_id=fields.identifier(batch_id, "batch_id"),
            quantity_t=fields.whole(quantity_t, "quantity_t", minimum=1),
            lender_id=fields.identifier(lender_id, "lender_id"),
            loan_amount_fen=fields.fen(loan_amount, "loan_amount"),
            interest_rate_bp=fields.basis_points(interest_rate, "interest_rate"),
            matures_on=fields.required_date(matures_on, "matures_on"),
        )
    except DomainError as error:
        return _pledges_page(
            request,
            principal,
            session,
            errors=refusal_errors(session, request, principal, error),
            form=form,
            status_code=error.status,
        )
    return RedirectResponse("/coop/pledges", status_code=303)


@router.post("/pledges/contract", response_class=HTMLResponse)
def pledge_contract(
    request: Request,
    principal: CoopMember,
    session: SessionDep,
    contract_id: Annotated[str, Form(max_length=40)] = "",
    lender_id: Annotated[str, Form(max_length=40)] = "",
    loan_amount: Annotated[str, Form(max_length=30)] = "",
    interest_rate: Annotated[str, Form(max_length=10)] = "",
    matures_on: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    form = {
        "contract_id": contract_id,
        "contract_lender_id": lender_id,
        "contract_loan_amount": loan_amount,
        "contract_interest_rate": interest_rate,
        "contract_matures_on": matures_on,
    }
    try:
        pledges.pledge_contract(
            session,
            actor=actor_of(principal),
            contract_id=fields.identifier(contract_id, "contract_id"),
            lender_id=fields.identifier(lender_id, "contract_lender_id"),
            loan_amount_fen=fields.fen(loan_amount, "contract_loan_amount"),
            interest_rate_bp=fields.basis_points(interest_rate, "contract_interest_rate"),
            matures_on=fields.required_date(matures_on, "contract_matures_on"),
        )
    except DomainError as error:
        return _pledges_page(
            request,
            principal,
            session,
            errors=refusal_errors(session, request, principal, error),
            form=form,
            status_code=error.status,
        )
    return RedirectResponse("/coop/pledges", status_code=303)


def _pledge_step(
    request: Request,
    principal: Principal,
    session: Session,
    step: Callable[[], object],
) -> Response:
    try:
        step()
    except DomainError as error:
        return _pledges_page(
            request,
            principal,
            session,
            errors=refusal_errors(session, request, principal, error),
            status_code=error.status,
        )
    return RedirectResponse("/coop/pledges", status_code=303)


@router.post("/pledges/{pledge_id}/withdraw", response_class=HTMLResponse)
def withdraw_pledge(
    request: Request, pledge_id: uuid.UUID, principal: CoopMember, session: SessionDep
) -> Response:
    """The pledgor takes back an offer the lender has not accepted."""
    actor = actor_of(principal)
    return _pledge_step(
        request,
        principal,
        session,
        lambda: pledges.release(session, actor=actor, pledge_id=pledge_id),
    )


@router.post("/pledges/{pledge_id}/confirm-default", response_class=HTMLResponse)
def confirm_pledge_default(
    request: Request, pledge_id: uuid.UUID, principal: CoopMember, session: SessionDep
) -> Response:
    """The pledgor's cooperative confirms the default its lender declared."""
    actor = actor_of(principal)
    return _pledge_step(
        request,
        principal,
        session,
        lambda: pledges.confirm_default(session, actor=actor, pledge_id=pledge_id),
    )
