"""HTTP routes of the registry package (thin: parse, check permission, call the service).

Every route acts for the caller's organisation; the services check roles (so the CLI and jobs
obey the same rules), and objects of other organisations answer 404.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    Path,
    Query,
    Response,
    UploadFile,
    status,
)

from registry import geo, importer
from registry.errors import InvalidImport
from registry.models import (
    Batch,
    Contract,
    Household,
    MonitoringPeriod,
    Parcel,
    Pledge,
    Project,
    ProjectStatus,
    Retirement,
    Reversal,
    Settlement,
)
from registry.pricing import format_cny
from registry.schemas import (
    AreaAcceptanceIn,
    AreaAcceptancePublic,
    AveragePricePublic,
    BatchPublic,
    CertificateDocument,
    CertifyIn,
    ContractCreate,
    ContractPublic,
    CreditsDecisionIn,
    DefaultIn,
    HoldingIn,
    HoldingPublic,
    HoldingsIn,
    HouseholdContactPublic,
    HouseholdCreate,
    HouseholdPublic,
    ImportReportPublic,
    IssueIn,
    MakeGoodIn,
    OrganisationKeyPublic,
    ParcelCreate,
    ParcelIdsIn,
    ParcelPublic,
    PeriodPublic,
    PeriodSubmit,
    PledgeIn,
    PledgePublic,
    PricesImported,
    ProjectCreate,
    ProjectPublic,
    PublicKeyIn,
    ReasonIn,
    RetireIn,
    RetirementPublic,
    ReturnIn,
    ReversalDecisionIn,
    ReversalIn,
    ReversalPublic,
    RowRejectionPublic,
    SerialPartPublic,
    SerialPublic,
    SettleIn,
    SettlementLinePublic,
    SettlementPublic,
    TransferIn,
    TransferPublic,
)
from registry.serials import block_serial
from registry.service import (
    contracts,
    households,
    imports,
    issuance,
    keys,
    parcels,
    pledges,
    projects,
    public,
    retirements,
    reversals,
    suspension,
    transfers,
)
from registry.service.actors import Actor
from registry.service.blocks import serial_pairs
from tanhui.api import IdempotencyKey, problems, run_idempotent
from tanhui.auth import CurrentUser, OptionalPrincipal, SessionDep
from tanhui.errors import InvalidInput
from tanhui.i18n import N_

router = APIRouter(prefix="/registry", tags=["registry"])

IMPORT_PATH = "/api/v1/registry/parcels/import"
MAX_IMPORT_BYTES = 64 * 1024 * 1024
MAX_PRICE_CSV_BYTES = 4 * 1024 * 1024
# Request-body limits above the default (TANHUI_MAX_BODY_BYTES), by route.
BODY_LIMITS: dict[str, int] = {
    IMPORT_PATH: MAX_IMPORT_BYTES + 64 * 1024,
    # monitoring periods carry the MRV report
    "/api/v1/registry/projects/{project_id}/periods": 40 * 1024 * 1024,
}


def current_actor(principal: CurrentUser) -> Actor:
    assert principal.user is not None
    return Actor.for_user(principal.user, principal.organisation)


ActorDep = Annotated[Actor, Depends(current_actor)]


def _own_org(actor: Actor, cooperative_id: uuid.UUID | None) -> uuid.UUID:
    chosen = cooperative_id or actor.organisation_id
    if chosen is None:
        raise InvalidInput(
            N_("Name the cooperative (cooperative_id)."),
            errors=[{"field": "cooperative_id", "message": "required"}],
        )
    return chosen


def _with_idempotency(
    session: SessionDep,
    actor: Actor,
    key: str | None,
    route: str,
    payload: Any,
    work: Callable[[], Any],
    status_code: int = status.HTTP_201_CREATED,
) -> Any:
    """Run ``work()`` once per Idempotency-Key (scoped to the organisation and the route)."""
    scope = f"registry:{route}:{actor.organisation_id or actor.ref}"
    return run_idempotent(
        session, scope=scope, key=key, payload=payload, work=work, status_code=status_code
    )


# --- presenters ----------------------------------------------------------------------------


def _household(household: Household) -> HouseholdPublic:
    return HouseholdPublic(
        id=household.id,
        cooperative_id=household.cooperative_id,
        name=household.name,
        village=household.village,
        has_phone=household.phone_sealed is not None,
        bank_account_last4=household.bank_account_last4,
        created_at=household.created_at,
    )


def _parcel(session: SessionDep, parcel: Parcel) -> ParcelPublic:
    held = parcels.holdings_of(session, [parcel.id])
    area = parcels.area_mu(parcel)
    return ParcelPublic(
        id=parcel.id,
        cooperative_id=parcel.cooperative_id,
        code=parcel.code,
        land_type=parcel.land_type,
        village=parcel.village,
        forest_right_cert=parcel.forest_right_cert,
        registered_area_mu=(
            f"{Decimal(parcel.registered_area_centimu) / 100:.2f}"
            if parcel.registered_area_centimu is not None
            else None
        ),
        area_m2=parcel.area_m2,
        area_mu=f"{Decimal(area.numerator) / Decimal(area.denominator):.4f}",
        district_adcode=parcel.district_adcode,
        geometry=json.loads(parcel.geometry_geojson),
        holdings=[HoldingIn(household_id=h.household_id, share_bp=h.share_bp) for h in held],
    )


def _contract(session: SessionDep, contract: Contract) -> ContractPublic:
    summary = contracts.summary(session, contract)
    return ContractPublic(
        id=contract.id,
        cooperative_id=contract.cooperative_id,
        code=contract.code,
        counterparty=contract.counterparty,
        start_date=contract.start_date,
        end_date=contracts.add_years(contract.start_date, contract.term_years),
        term_years=contract.term_years,
        rate_g_per_mu_year=contract.rate_g_per_mu_year,
        rate_t_per_mu_year=format(Decimal(contract.rate_g_per_mu_year) / 1_000_000, "f"),
        price_rule=contract.price_rule,
        fixed_price_fen_per_t=contract.fixed_price_fen_per_t,
        price_window_days=contract.price_window_days,
        settlement_period_years=contract.settlement_period_years,
        household_share_bp=contract.household_share_bp,
        status=contract.status,
        area_mu=summary.area_mu,
        parcel_count=summary.parcels,
        household_count=summary.households,
        terminated_at=contract.terminated_at,
        termination_reason=contract.termination_reason,
    )


def _settlement(session: SessionDep, settlement: Settlement) -> SettlementPublic:
    return SettlementPublic(
        id=settlement.id,
        contract_id=settlement.contract_id,
        sequence=settlement.sequence,
        period_start=settlement.period_start,
        period_end=settlement.period_end,
        settlement_date=settlement.settlement_date,
        price_fen_per_t=settlement.price_fen_per_t,
        price_window_first=settlement.price_window_first,
        price_window_last=settlement.price_window_last,
        area_mu=settlement.area_mu,
        amount_fen=settlement.amount_fen,
        amount_cny=format_cny(settlement.amount_fen),
        journal_entry_id=settlement.journal_entry_id,
        lines=[
            SettlementLinePublic(
                household_id=household.id,
                household_name=household.name,
                village=household.village,
                area_mu=line.area_mu,
                amount_fen=line.amount_fen,
            )
            for line, household in contracts.settlement_lines(session, settlement.id)
        ],
    )


def _project(session: SessionDep, project: Project) -> ProjectPublic:
    district = geo.district_by_adcode(project.district_adcode)
    return ProjectPublic(
        id=project.id,
        code=project.code,
        name=project.name,
        type=project.type,
        status=project.status,
        status_reason=project.status_reason,
        methodology_name=project.methodology_name,
        methodology_version=project.methodology_version,
        cooperative_id=project.cooperative_id,
        crediting_start=project.crediting_start,
        crediting_end=project.crediting_end,
        district_adcode=project.district_adcode,
        district=district.name_zh if district else None,
        description=project.description,
        buffer_exceeded=project.buffer_exceeded,
        reversal_debt_t=project.reversal_debt_t,
        parcel_count=projects.parcel_count(session, project.id),
        credits_decision=project.credits_decision,
        credits_decision_reason=project.credits_decision_reason,
        created_at=project.created_at,
        updated_at=project.updated_at,
    )


def _period(session: SessionDep, period: MonitoringPeriod, project: Project) -> PeriodPublic:
    return PeriodPublic(
        id=period.id,
        project_id=project.id,
        project_code=project.code,
        number=period.number,
        start=period.start,
        end=period.end,
        status=period.status,
        report_sha256=period.report_sha256,
        methodology_name=period.methodology_name,
        methodology_version=period.methodology_version,
        issuable_t=period.issuable_t,
        buffer_t=period.buffer_t,
        basis=str(period.basis),
        estimate_t=period.estimate_t,
        comments=period.comments,
        submitted_at=period.submitted_at,
        certification_message=projects.certification_message_for(project, period).decode(),
        verifier_id=period.verifier_id,
        certified_at=period.certified_at,
        certification_key_id=period.certification_key_id,
        certification_signature=period.certification_signature,
        signature_valid=projects.verify_certification(session, project, period),
        filed_at=period.filed_at,
        issued_at=period.issued_at,
    )


def _batch(session: SessionDep, batch: Batch) -> BatchPublic:
    project = issuance.project_of(session, batch)
    return BatchPublic(
        id=batch.id,
        project_code=project.code,
        serial_prefix=batch.serial_prefix,
        asset_code=batch.asset_code,
        vintage=batch.vintage,
        batch_no=batch.batch_no,
        quantity_t=batch.quantity_t,
        buffer_t=batch.buffer_t,
        serial_first=block_serial(batch.serial_prefix, 1, 1),
        serial_last=block_serial(batch.serial_prefix, batch.total_t, batch.total_t),
        issued_at=batch.issued_at,
    )


def _retirement(session: SessionDep, retirement: Retirement) -> RetirementPublic:
    batch = issuance.get_batch(session, retirement.batch_id)
    pairs = serial_pairs(batch, retirements.retired_blocks(session, retirement.id))
    return RetirementPublic(
        id=retirement.id,
        certificate_id=retirement.certificate_id,
        batch=batch.serial_prefix,
        quantity_t=retirement.quantity_t,
        beneficiary=retirement.beneficiary,
        purpose=retirement.purpose,
        case_number=retirement.case_number,
        retired_at=retirement.retired_at,
        serial_blocks=[list(pair) for pair in pairs],
    )


def _pledge(pledge: Pledge) -> PledgePublic:
    return PledgePublic.model_validate(pledge, from_attributes=True)


def _reversal(session: SessionDep, reversal: Reversal) -> ReversalPublic:
    project = projects.get_project_unchecked(session, reversal.project_id)
    return ReversalPublic(
        id=reversal.id,
        project_id=reversal.project_id,
        cause=reversal.cause,
        occurred_on=reversal.occurred_on,
        estimated_loss_t=reversal.estimated_loss_t,
        cancelled_own_buffer_t=reversal.cancelled_own_buffer_t,
        cancelled_pool_t=reversal.cancelled_pool_t,
        shortfall_t=reversal.shortfall_t,
        description=reversal.description,
        status=str(reversal.status),
        confirmed_at=reversal.confirmed_at,
        project_buffer_exceeded=project.buffer_exceeded,
        project_reversal_debt_t=project.reversal_debt_t,
        created_at=reversal.created_at,
    )


# --- households ----------------------------------------------------------------------------


@router.post(
    "/households",
    response_model=HouseholdPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 409, 422),
    summary="Register a farmer household (national id, phone and bank account are sealed)",
)
def create_household(body: HouseholdCreate, actor: ActorDep, session: SessionDep) -> Any:
    household = households.create_household(
        session,
        actor=actor,
        cooperative_id=_own_org(actor, None),
        name=body.name,
        village=body.village,
        national_id=body.national_id,
        phone=body.phone,
        bank_account=body.bank_account,
    )
    return _household(household)


@router.get(
    "/households",
    response_model=list[HouseholdPublic],
    responses=problems(401, 403, 404, 422),
    summary="The cooperative's households (no personal data)",
)
def list_households(
    actor: ActorDep,
    session: SessionDep,
    village: Annotated[str | None, Query(max_length=100)] = None,
    cooperative_id: uuid.UUID | None = None,
) -> Any:
    rows = households.list_households(
        session, actor=actor, cooperative_id=_own_org(actor, cooperative_id), village=village
    )
    return [_household(row) for row in rows]


@router.get(
    "/households/{household_id}",
    response_model=HouseholdPublic,
    responses=problems(401, 403, 404),
    summary="One household (no personal data)",
)
def read_household(household_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    return _household(households.get_household(session, actor=actor, household_id=household_id))


@router.post(
    "/households/{household_id}/personal-data",
    response_model=HouseholdContactPublic,
    responses=problems(401, 403, 404),
    summary="Unseal a household's personal data (cooperative owners only; audited)",
)
def reveal_household(household_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    contact = households.reveal(session, actor=actor, household_id=household_id)
    return HouseholdContactPublic(
        national_id=contact.national_id, phone=contact.phone, bank_account=contact.bank_account
    )


# --- parcels -------------------------------------------------------------------------------


@router.post(
    "/parcels",
    response_model=ParcelPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 409, 422),
    summary="Register a parcel (GeoJSON polygon in WGS84; area computed in EPSG:4549)",
)
def create_parcel(body: ParcelCreate, actor: ActorDep, session: SessionDep) -> Any:
    parcel = parcels.register_parcel(
        session,
        actor=actor,
        cooperative_id=_own_org(actor, None),
        code=body.code,
        geometry=body.geometry,
        land_type=body.land_type,
        village=body.village,
        forest_right_cert=body.forest_right_cert,
        registered_area_centimu=(
            int(body.registered_area_mu * 100) if body.registered_area_mu is not None else None
        ),
        holdings=[(h.household_id, h.share_bp) for h in body.holdings],
    )
    return _parcel(session, parcel)


@router.post(
    "/parcels/import",
    response_model=ImportReportPublic,
    responses=problems(401, 403, 404, 409, 413, 422),
    summary="Import parcels from GeoJSON, GeoPackage or zipped Shapefile with an attribute "
    "mapping; every rejected row is reported with its reason",
)
def import_parcels(
    actor: ActorDep,
    session: SessionDep,
    file: Annotated[UploadFile, File(description=".geojson, .gpkg or .zip (Shapefile)")],
    mapping: Annotated[str, Form(max_length=10_000, description="JSON: our field → attribute")],
    project_id: Annotated[uuid.UUID | None, Form()] = None,
    layer: Annotated[str | None, Form(max_length=200)] = None,
) -> Any:
    try:
        parsed = json.loads(mapping)
    except ValueError:
        raise InvalidImport(N_("The mapping must be a JSON object.")) from None
    if not isinstance(parsed, dict):
        raise InvalidImport(N_("The mapping must be a JSON object."))
    rules = imports.ImportMapping.from_dict(parsed)
    cooperative_id = _own_org(actor, None)
    imports.may_import(actor, cooperative_id)  # before the file is read: it is untrusted
    content = file.file.read(MAX_IMPORT_BYTES + 1)
    if len(content) > MAX_IMPORT_BYTES:
        raise InvalidImport(N_("The file is larger than {maximum} MiB."), maximum=64)
    try:
        with importer.uploaded_file(content, file.filename or "") as path:
            rows = importer.read_rows(path, layer=layer)
    except importer.ImportFileError as error:
        raise InvalidImport(
            error.message, errors=[{"field": "file", "message": "unreadable"}], **error.params
        ) from None
    report = imports.import_parcels(
        session,
        actor=actor,
        cooperative_id=cooperative_id,
        rows=rows,
        mapping=rules,
        project_id=project_id,
        source_name=file.filename or "",
    )
    return ImportReportPublic(
        rows=report.rows,
        imported=report.imported,
        rejected=[
            RowRejectionPublic(row=r.row, code=r.code, reason=r.reason) for r in report.rejected
        ],
        parcel_ids=report.parcel_ids,
        project_code=report.project_code,
    )


@router.post(
    "/area-acceptances",
    response_model=AreaAcceptancePublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 422),
    summary="Accept a parcel's registered area that differs from its measured polygon by more "
    "than the tolerance, with a reason (verifier; audited). Payments still use the smaller area",
)
def accept_area(body: AreaAcceptanceIn, actor: ActorDep, session: SessionDep) -> Any:
    row = parcels.accept_area(
        session,
        actor=actor,
        cooperative_id=body.cooperative_id,
        parcel_code=body.parcel_code,
        registered_area_centimu=int(body.registered_area_mu * 100),
        area_m2=body.area_m2,
        reason=body.reason,
    )
    return AreaAcceptancePublic(
        id=row.id,
        cooperative_id=row.cooperative_id,
        parcel_code=row.parcel_code,
        registered_area_mu=f"{Decimal(row.registered_area_centimu) / 100:.2f}",
        area_m2=row.area_m2,
        verifier_id=row.verifier_id,
        reason=row.reason,
        created_at=row.created_at,
    )


@router.get(
    "/parcels",
    response_model=list[ParcelPublic],
    responses=problems(401, 403, 404, 422),
    summary="The cooperative's parcels, by id order (after= for the next page)",
)
def list_parcels(
    actor: ActorDep,
    session: SessionDep,
    after: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    cooperative_id: uuid.UUID | None = None,
) -> Any:
    rows = parcels.list_parcels(
        session,
        actor=actor,
        cooperative_id=_own_org(actor, cooperative_id),
        after=after,
        limit=limit,
    )
    return [_parcel(session, row) for row in rows]


@router.get(
    "/parcels/{parcel_id}",
    response_model=ParcelPublic,
    responses=problems(401, 404),
    summary="One parcel",
)
def read_parcel(parcel_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    return _parcel(session, parcels.get_parcel(session, actor=actor, parcel_id=parcel_id))


@router.put(
    "/parcels/{parcel_id}/holdings",
    response_model=ParcelPublic,
    responses=problems(401, 403, 404, 422),
    summary="Set the households holding a parcel and their shares (sum 10000 bp)",
)
def set_holdings(
    parcel_id: uuid.UUID, body: HoldingsIn, actor: ActorDep, session: SessionDep
) -> Any:
    parcel = parcels.set_holdings(
        session,
        actor=actor,
        parcel_id=parcel_id,
        holdings=[(h.household_id, h.share_bp) for h in body.holdings],
    )
    return _parcel(session, parcel)


# --- contracts, prices, settlements --------------------------------------------------------


@router.post(
    "/contracts",
    response_model=ContractPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 409, 422),
    summary="Sign a collection contract (收储合同) over parcels",
)
def create_contract(body: ContractCreate, actor: ActorDep, session: SessionDep) -> Any:
    contract = contracts.create_contract(
        session,
        actor=actor,
        cooperative_id=_own_org(actor, None),
        code=body.code,
        counterparty=body.counterparty,
        start_date=body.start_date,
        term_years=body.term_years,
        rate_g_per_mu_year=body.rate_g_per_mu_year,
        settlement_period_years=body.settlement_period_years,
        household_share_bp=body.household_share_bp,
        parcel_ids=body.parcel_ids,
        price_rule=body.price_rule,
        fixed_price_fen_per_t=body.fixed_price_fen_per_t,
        price_window_days=body.price_window_days,
    )
    return _contract(session, contract)


@router.get(
    "/contracts",
    response_model=list[ContractPublic],
    responses=problems(401, 403, 404, 422),
    summary="The cooperative's collection contracts",
)
def list_contracts(
    actor: ActorDep, session: SessionDep, cooperative_id: uuid.UUID | None = None
) -> Any:
    rows = contracts.list_contracts(
        session, actor=actor, cooperative_id=_own_org(actor, cooperative_id)
    )
    return [_contract(session, row) for row in rows]


@router.get(
    "/contracts/{contract_id}",
    response_model=ContractPublic,
    responses=problems(401, 404),
    summary="One collection contract",
)
def read_contract(contract_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    return _contract(session, contracts.get_contract(session, actor=actor, contract_id=contract_id))


@router.post(
    "/contracts/{contract_id}/terminate",
    response_model=ContractPublic,
    responses=problems(401, 403, 404, 409, 422),
    summary="Terminate a collection contract, with a reason",
)
def terminate_contract(
    contract_id: uuid.UUID, body: ReasonIn, actor: ActorDep, session: SessionDep
) -> Any:
    contract = contracts.terminate_contract(
        session, actor=actor, contract_id=contract_id, reason=body.reason
    )
    return _contract(session, contract)


@router.post(
    "/contracts/{contract_id}/settlements",
    response_model=list[SettlementPublic],
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 409, 422),
    summary="Pay a settlement period (or every period due by a day) to the households",
)
def settle_contract(
    contract_id: uuid.UUID, body: SettleIn, actor: ActorDep, session: SessionDep
) -> Any:
    contract = contracts.get_contract(session, actor=actor, contract_id=contract_id)
    if body.sequence is not None:
        made = [
            contracts.settle(session, actor=actor, contract_id=contract.id, sequence=body.sequence)
        ]
    else:
        on = body.on or contracts.today()
        made = [
            contracts.settle(session, actor=actor, contract_id=contract.id, sequence=sequence)
            for sequence in contracts.unpaid_periods(session, contract, on)
        ]
    return [_settlement(session, item) for item in made]


@router.get(
    "/contracts/{contract_id}/settlements",
    response_model=list[SettlementPublic],
    responses=problems(401, 404),
    summary="A contract's settlements with every household's payment",
)
def list_settlements(contract_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    contract = contracts.get_contract(session, actor=actor, contract_id=contract_id)
    return [_settlement(session, item) for item in contracts.settlements_of(session, contract.id)]


@router.post(
    "/ets-prices",
    response_model=PricesImported,
    responses=problems(401, 403, 413, 422),
    summary="Import national ETS closing prices from CSV (date,close in CNY/t)",
)
def import_prices(
    actor: ActorDep,
    session: SessionDep,
    file: Annotated[UploadFile, File(description="CSV with a date and a close column")],
) -> Any:
    content = file.file.read(MAX_PRICE_CSV_BYTES + 1)
    if len(content) > MAX_PRICE_CSV_BYTES:
        raise InvalidImport(N_("The file is larger than {maximum} MiB."), maximum=4)
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidImport(N_("The CSV must be UTF-8.")) from None
    rows = contracts.import_ets_prices(
        session, actor=actor, csv_text=text, source=file.filename or "upload"
    )
    return PricesImported(rows=rows)


@router.get(
    "/ets-prices/average",
    response_model=AveragePricePublic,
    responses=problems(401, 409, 422),
    summary="The mean ETS close of the N trading days before a day (half up to the fen)",
)
def average_price(
    _actor: ActorDep,
    session: SessionDep,
    before: date,
    days: Annotated[int, Query(ge=1, le=250)] = 30,
) -> Any:
    found = contracts.average_price(session, before=before, days=days)
    return AveragePricePublic(
        price_fen_per_t=found.price_fen_per_t, first=found.first, last=found.last, days=found.days
    )


# --- projects ------------------------------------------------------------------------------


@router.post(
    "/projects",
    response_model=ProjectPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 409, 422),
    summary="Create a project (draft)",
)
def create_project(body: ProjectCreate, actor: ActorDep, session: SessionDep) -> Any:
    project = projects.create_project(
        session,
        actor=actor,
        cooperative_id=_own_org(actor, None),
        code=body.code,
        name=body.name,
        type=body.type,
        methodology_name=body.methodology_name,
        methodology_version=body.methodology_version,
        crediting_start=body.crediting_start,
        crediting_end=body.crediting_end,
        description=body.description,
    )
    return _project(session, project)


@router.get(
    "/projects",
    response_model=list[ProjectPublic],
    responses=problems(401),
    summary="Projects the caller may see (its own; all for verifiers and the authority)",
)
def list_projects(actor: ActorDep, session: SessionDep) -> Any:
    return [_project(session, p) for p in projects.list_projects(session, actor=actor)]


@router.get(
    "/projects/{project_id}",
    response_model=ProjectPublic,
    responses=problems(401, 404),
    summary="One project",
)
def read_project(project_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    return _project(session, projects.get_project(session, actor=actor, project_id=project_id))


@router.post(
    "/projects/{project_id}/parcels",
    response_model=ProjectPublic,
    responses=problems(401, 403, 404, 409, 422),
    summary="Add registered parcels to a draft project (overlaps with claimed ground refused)",
)
def add_parcels(
    project_id: uuid.UUID, body: ParcelIdsIn, actor: ActorDep, session: SessionDep
) -> Any:
    project = projects.add_parcels(
        session, actor=actor, project_id=project_id, parcel_ids=body.parcel_ids
    )
    return _project(session, project)


@router.delete(
    "/projects/{project_id}/parcels",
    response_model=ProjectPublic,
    responses=problems(401, 403, 404, 409, 422),
    summary="Remove parcels from a draft project",
)
def remove_parcels(
    project_id: uuid.UUID, body: ParcelIdsIn, actor: ActorDep, session: SessionDep
) -> Any:
    project = projects.remove_parcels(
        session, actor=actor, project_id=project_id, parcel_ids=body.parcel_ids
    )
    return _project(session, project)


@router.get(
    "/projects/{project_id}/parcels",
    response_model=list[ParcelPublic],
    responses=problems(401, 404),
    summary="A project's parcels",
)
def project_parcels(project_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    project = projects.get_project(session, actor=actor, project_id=project_id)
    return [_parcel(session, p) for p in projects.project_parcels(session, project.id)]


@router.post(
    "/projects/{project_id}/collect",
    response_model=ProjectPublic,
    responses=problems(401, 403, 404, 409),
    summary="draft → collected (every parcel under an active collection contract)",
)
def collect(project_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    return _project(session, projects.collect(session, actor=actor, project_id=project_id))


@router.post(
    "/projects/{project_id}/periods",
    response_model=PeriodPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 409, 413, 422),
    summary="collected/issued → submitted: a monitoring period with its MRV report",
)
def submit_period(
    project_id: uuid.UUID, body: PeriodSubmit, actor: ActorDep, session: SessionDep
) -> Any:
    if (body.report is None) == (body.report_json is None):
        raise InvalidInput(
            N_("Send the report as report (an object) or report_json (its text), not both."),
            errors=[{"field": "report", "message": "exactly one of report, report_json"}],
        )
    report: dict[str, Any] | str = body.report if body.report is not None else str(body.report_json)
    period = projects.submit_period(
        session, actor=actor, project_id=project_id, report=report, start=body.start, end=body.end
    )
    project = projects.get_project(session, actor=actor, project_id=project_id)
    return _period(session, period, project)


@router.get(
    "/projects/{project_id}/periods",
    response_model=list[PeriodPublic],
    responses=problems(401, 404),
    summary="A project's monitoring periods",
)
def list_periods(project_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    project = projects.get_project(session, actor=actor, project_id=project_id)
    return [_period(session, p, project) for p in projects.periods(session, project.id)]


@router.get(
    "/periods/{period_id}",
    response_model=PeriodPublic,
    responses=problems(401, 404),
    summary="One monitoring period (with the message the verifier signs)",
)
def read_period(period_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    period, project = projects.get_period(session, actor=actor, period_id=period_id)
    return _period(session, period, project)


@router.get(
    "/periods/{period_id}/report",
    responses={**problems(401, 404), 200: {"content": {"application/json": {}}}},
    summary="The MRV report exactly as stored (its SHA-256 is report_sha256)",
)
def read_report(period_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Response:
    period, _project_row = projects.get_period(session, actor=actor, period_id=period_id)
    return Response(period.report_json, media_type="application/json")


@router.post(
    "/periods/{period_id}/certify",
    response_model=PeriodPublic,
    responses=problems(401, 403, 404, 409, 422),
    summary="submitted → certified: the verifier signs the report hash (Ed25519)",
)
def certify(period_id: uuid.UUID, body: CertifyIn, actor: ActorDep, session: SessionDep) -> Any:
    period = projects.certify(session, actor=actor, period_id=period_id, signature=body.signature)
    _, project = projects.get_period(session, actor=actor, period_id=period.id)
    return _period(session, period, project)


@router.post(
    "/periods/{period_id}/return",
    response_model=PeriodPublic,
    responses=problems(401, 403, 404, 409, 422),
    summary="submitted → collected/draft: the verifier returns the report with comments",
)
def return_period(
    period_id: uuid.UUID, body: ReturnIn, actor: ActorDep, session: SessionDep
) -> Any:
    period = projects.return_period(
        session,
        actor=actor,
        period_id=period_id,
        comments=body.comments,
        to=ProjectStatus(body.to),
    )
    _, project = projects.get_period(session, actor=actor, period_id=period.id)
    return _period(session, period, project)


@router.post(
    "/periods/{period_id}/file",
    response_model=PeriodPublic,
    responses=problems(401, 403, 404, 409),
    summary="certified → filed: the authority registers the certified quantity (备案)",
)
def file_period(period_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    period = projects.file_period(session, actor=actor, period_id=period_id)
    _, project = projects.get_period(session, actor=actor, period_id=period.id)
    return _period(session, period, project)


@router.post(
    "/periods/{period_id}/issue",
    response_model=BatchPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 409, 422),
    summary="filed → issued: the authority issues a serial-numbered batch (buffer withheld)",
)
def issue(period_id: uuid.UUID, body: IssueIn, actor: ActorDep, session: SessionDep) -> Any:
    batch = issuance.issue(session, actor=actor, period_id=period_id, quantity_t=body.quantity_t)
    return _batch(session, batch)


@router.post(
    "/projects/{project_id}/suspend",
    response_model=ProjectPublic,
    responses=problems(401, 403, 404, 409, 422),
    summary="Suspend an active project, with a reason (authority)",
)
def suspend(project_id: uuid.UUID, body: ReasonIn, actor: ActorDep, session: SessionDep) -> Any:
    project = projects.suspend(session, actor=actor, project_id=project_id, reason=body.reason)
    return _project(session, project)


@router.post(
    "/projects/{project_id}/resume",
    response_model=ProjectPublic,
    responses=problems(401, 403, 404, 409, 422),
    summary="Resume a suspended project in the state it had (authority)",
)
def resume(project_id: uuid.UUID, body: ReasonIn, actor: ActorDep, session: SessionDep) -> Any:
    project = projects.resume(session, actor=actor, project_id=project_id, reason=body.reason)
    return _project(session, project)


@router.post(
    "/projects/{project_id}/terminate",
    response_model=ProjectPublic,
    responses=problems(401, 403, 404, 409, 422),
    summary="Terminate a project, with a reason (authority); its ground stays claimed for its"
    " crediting years",
)
def terminate(project_id: uuid.UUID, body: ReasonIn, actor: ActorDep, session: SessionDep) -> Any:
    project = projects.terminate(session, actor=actor, project_id=project_id, reason=body.reason)
    return _project(session, project)


@router.post(
    "/projects/{project_id}/credits-decision",
    response_model=ProjectPublic,
    responses=problems(401, 403, 404, 409, 422),
    summary="Decide on a terminated project's suspended credits: cancel or reinstate the unsold "
    "ones, with a reason (authority; audited)",
)
def decide_credits(
    project_id: uuid.UUID, body: CreditsDecisionIn, actor: ActorDep, session: SessionDep
) -> Any:
    project = suspension.decide(
        session, actor=actor, project_id=project_id, decision=body.decision, reason=body.reason
    )
    return _project(session, project)


@router.get(
    "/projects/{project_id}/batches",
    response_model=list[BatchPublic],
    responses=problems(401, 404),
    summary="A project's issued batches",
)
def project_batches(project_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    project = projects.get_project(session, actor=actor, project_id=project_id)
    return [_batch(session, b) for b in issuance.batches_of_project(session, project.id)]


@router.post(
    "/projects/{project_id}/reversals",
    response_model=ReversalPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 409, 422),
    summary="Cooperative or verifier: propose a loss on parcels (capped at their credited stock)",
)
def propose_reversal(
    project_id: uuid.UUID, body: ReversalIn, actor: ActorDep, session: SessionDep
) -> Any:
    reversal = reversals.propose_reversal(
        session,
        actor=actor,
        project_id=project_id,
        parcel_ids=body.parcel_ids,
        cause=body.cause,
        occurred_on=body.occurred_on,
        estimated_loss_t=body.estimated_loss_t,
        description=body.description,
    )
    return _reversal(session, reversal)


@router.get(
    "/projects/{project_id}/reversals",
    response_model=list[ReversalPublic],
    responses=problems(401, 404),
    summary="A project's loss events",
)
def list_reversals(project_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    project = projects.get_project(session, actor=actor, project_id=project_id)
    return [_reversal(session, r) for r in reversals.reversals_of(session, project.id)]


@router.post(
    "/reversals/{reversal_id}/confirm",
    response_model=ReversalPublic,
    responses=problems(401, 403, 404, 409),
    summary="Authority: confirm a proposed loss (its buffer cancelled; any excess owed)",
)
def confirm_reversal(reversal_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    reversal = reversals.confirm_reversal(session, actor=actor, reversal_id=reversal_id)
    return _reversal(session, reversal)


@router.post(
    "/reversals/{reversal_id}/reject",
    response_model=ReversalPublic,
    responses=problems(401, 403, 404, 409, 422),
    summary="Authority: reject a proposed loss (nothing cancelled)",
)
def reject_reversal(
    reversal_id: uuid.UUID, body: ReversalDecisionIn, actor: ActorDep, session: SessionDep
) -> Any:
    reversal = reversals.reject_reversal(
        session, actor=actor, reversal_id=reversal_id, reason=body.reason
    )
    return _reversal(session, reversal)


@router.post(
    "/projects/{project_id}/reversals/make-good",
    response_model=ProjectPublic,
    responses=problems(401, 403, 404, 409, 422),
    summary="Cooperative: cancel credits it holds to make good a loss beyond the buffer",
)
def make_good(project_id: uuid.UUID, body: MakeGoodIn, actor: ActorDep, session: SessionDep) -> Any:
    project = reversals.make_good(
        session,
        actor=actor,
        project_id=project_id,
        batch_id=body.batch_id,
        quantity_t=body.quantity_t,
    )
    return _project(session, project)


# --- keys ----------------------------------------------------------------------------------


def _key(record: Any) -> OrganisationKeyPublic:
    return OrganisationKeyPublic(
        key_id=record.key_id,
        organisation_id=record.organisation_id,
        public_key=record.public_key,
        platform_held=record.private_sealed is not None,
        created_at=record.created_at,
        revoked_at=record.revoked_at,
    )


@router.post(
    "/keys",
    response_model=OrganisationKeyPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 422),
    summary="Register your organisation's own Ed25519 public key (owners)",
)
def register_key(body: PublicKeyIn, actor: ActorDep, session: SessionDep) -> Any:
    record = keys.register_public_key(
        session, actor=actor, organisation_id=_own_org(actor, None), public_key=body.public_key
    )
    return _key(record)


@router.get(
    "/keys",
    response_model=list[OrganisationKeyPublic],
    responses=problems(401, 422),
    summary="Your organisation's signing keys (current and revoked)",
)
def list_keys(actor: ActorDep, session: SessionDep) -> Any:
    return [_key(r) for r in keys.organisation_keys(session, _own_org(actor, None))]


# --- credits -------------------------------------------------------------------------------


@router.get(
    "/batches/{batch_id}",
    response_model=BatchPublic,
    responses=problems(401, 404),
    summary="One batch",
)
def read_batch(batch_id: uuid.UUID, _actor: ActorDep, session: SessionDep) -> Any:
    return _batch(session, issuance.get_batch(session, batch_id))


@router.get(
    "/holdings",
    response_model=list[HoldingPublic],
    responses=problems(401, 403),
    summary="The credits your organisation holds, by batch and state",
)
def list_holdings(actor: ActorDep, session: SessionDep) -> Any:
    rows = issuance.holdings(session, actor.owner)
    return [
        HoldingPublic(
            batch_id=batch.id,
            batch=batch.serial_prefix,
            asset_code=batch.asset_code,
            project_code=issuance.project_of(session, batch).code,
            vintage=batch.vintage,
            state=state,
            quantity_t=quantity,
        )
        for batch, state, quantity in rows
    ]


@router.get(
    "/serials/{serial}",
    response_model=SerialPublic,
    responses=problems(404, 422),
    summary="Where the tonnes of a serial are: held, listed, pledged, retired (certificate); "
    "the holder and the lender only on the caller's own blocks",
)
def locate_serial(
    serial: Annotated[str, Path(max_length=100)],
    principal: OptionalPrincipal,
    session: SessionDep,
) -> Any:
    viewer = principal.organisation.id if principal and principal.organisation else None
    found = public.locate(session, serial, viewer=viewer)
    return SerialPublic(
        serial=found.serial,
        batch=found.batch,
        project_code=found.project_code,
        vintage=found.vintage,
        quantity_t=found.quantity_t,
        parts=[SerialPartPublic(**part.__dict__) for part in found.parts],
        truncated=found.truncated,
        project_standing=found.project_standing,
    )


@router.post(
    "/transfers",
    response_model=TransferPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 409, 422),
    summary="Transfer credits to another organisation (the highest serials of your blocks)",
)
def transfer(
    body: TransferIn,
    actor: ActorDep,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    def work() -> dict[str, Any]:
        pairs = transfers.transfer(
            session,
            actor=actor,
            batch_id=body.batch_id,
            to_organisation_id=body.to_organisation_id,
            quantity_t=body.quantity_t,
            reference=body.reference,
        )
        return TransferPublic(
            batch_id=body.batch_id,
            quantity_t=body.quantity_t,
            serial_blocks=[list(p) for p in pairs],
        ).model_dump(mode="json")

    return _with_idempotency(
        session, actor, idempotency_key, "transfers", body.model_dump(mode="json"), work
    )


@router.post(
    "/retirements",
    response_model=RetirementPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 409, 422),
    summary="Retire credits (the lowest serials first) for a beneficiary; signed certificate",
)
def retire(
    body: RetireIn,
    actor: ActorDep,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    def work() -> dict[str, Any]:
        retirement = retirements.retire(
            session,
            actor=actor,
            batch_id=body.batch_id,
            quantity_t=body.quantity_t,
            beneficiary=body.beneficiary,
            purpose=body.purpose,
            note=body.note,
        )
        return _retirement(session, retirement).model_dump(mode="json")

    return _with_idempotency(
        session, actor, idempotency_key, "retirements", body.model_dump(mode="json"), work
    )


@router.get(
    "/retirements",
    response_model=list[RetirementPublic],
    responses=problems(401, 403),
    summary="Your organisation's retirements",
)
def list_retirements(actor: ActorDep, session: SessionDep) -> Any:
    return [_retirement(session, r) for r in retirements.retirements_of(session, actor.owner)]


@router.get(
    "/certificates/{certificate_id}",
    response_model=CertificateDocument,
    responses=problems(401, 404, 422),
    summary="A retirement certificate (the signed document, as on the public explorer)",
)
def read_certificate(
    certificate_id: Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9-]+$")],
    _actor: ActorDep,
    session: SessionDep,
) -> Any:
    found = retirements.get_certificate(session, certificate_id)
    return retirements.certificate_document(session, found)


@router.get(
    "/certificates/{certificate_id}/pdf",
    response_class=Response,
    responses={**problems(401, 404, 422), 200: {"content": {"application/pdf": {}}}},
    summary="A retirement certificate as PDF (embeds the signed JSON)",
)
def read_certificate_pdf(
    certificate_id: Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9-]+$")],
    _actor: ActorDep,
    session: SessionDep,
) -> Response:
    found = retirements.get_certificate(session, certificate_id)
    return Response(
        retirements.certificate_pdf(session, found),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{found.id}.pdf"'},
    )


@router.post(
    "/pledges",
    response_model=PledgePublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 409, 422),
    summary="Pledge credits (batch_id + quantity_t) or a contract's proceeds to a lender",
)
def create_pledge(body: PledgeIn, actor: ActorDep, session: SessionDep) -> Any:
    if (body.contract_id is None) == (body.batch_id is None):
        raise InvalidInput(
            N_("Pledge either credits (batch_id and quantity_t) or a contract (contract_id)."),
        )
    if body.contract_id is not None:
        pledge = pledges.pledge_contract(
            session,
            actor=actor,
            contract_id=body.contract_id,
            lender_id=body.lender_id,
            loan_amount_fen=body.loan_amount_fen,
            interest_rate_bp=body.interest_rate_bp,
            matures_on=body.matures_on,
        )
    else:
        assert body.batch_id is not None
        if body.quantity_t is None:
            raise InvalidInput(
                N_("A pledge of credits states the quantity."),
                errors=[{"field": "quantity_t", "message": "required"}],
            )
        pledge = pledges.pledge_credits(
            session,
            actor=actor,
            batch_id=body.batch_id,
            quantity_t=body.quantity_t,
            lender_id=body.lender_id,
            loan_amount_fen=body.loan_amount_fen,
            interest_rate_bp=body.interest_rate_bp,
            matures_on=body.matures_on,
        )
    return _pledge(pledge)


@router.get(
    "/pledges",
    response_model=list[PledgePublic],
    responses=problems(401),
    summary="Pledges your organisation gave or holds as lender",
)
def list_pledges(actor: ActorDep, session: SessionDep) -> Any:
    return [_pledge(p) for p in pledges.pledges_of(session, actor=actor)]


@router.post(
    "/pledges/{pledge_id}/accept",
    response_model=PledgePublic,
    responses=problems(401, 403, 404, 409),
    summary="Accept a pledge's terms (the lender): the loan runs",
)
def accept_pledge(pledge_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    return _pledge(pledges.accept(session, actor=actor, pledge_id=pledge_id))


@router.post(
    "/pledges/{pledge_id}/default",
    response_model=PledgePublic,
    responses=problems(401, 403, 404, 409, 422),
    summary="Declare the borrower in default (the lender); it awaits confirmation",
)
def declare_pledge_default(
    pledge_id: uuid.UUID, body: DefaultIn, actor: ActorDep, session: SessionDep
) -> Any:
    return _pledge(
        pledges.declare_default(session, actor=actor, pledge_id=pledge_id, reason=body.reason)
    )


@router.post(
    "/pledges/{pledge_id}/default/confirm",
    response_model=PledgePublic,
    responses=problems(401, 403, 404, 409),
    summary="Confirm a declared default (the pledgor's cooperative or the platform)",
)
def confirm_pledge_default(pledge_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    return _pledge(pledges.confirm_default(session, actor=actor, pledge_id=pledge_id))


@router.post(
    "/pledges/{pledge_id}/release",
    response_model=PledgePublic,
    responses=problems(401, 403, 404, 409),
    summary="Release a pledge (the lender, when the loan is repaid)",
)
def release_pledge(pledge_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    return _pledge(pledges.release(session, actor=actor, pledge_id=pledge_id))


@router.post(
    "/pledges/{pledge_id}/enforce",
    response_model=PledgePublic,
    responses=problems(401, 403, 404, 409),
    summary="Enforce a pledge after maturity or a confirmed default: the credits become the"
    " lender's",
)
def enforce_pledge(pledge_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    return _pledge(pledges.enforce(session, actor=actor, pledge_id=pledge_id))
