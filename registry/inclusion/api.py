"""HTTP routes of carbon inclusion under ``/api/v1/points`` (thin: parse, check permission, call
the service). Partners integrate against ``POST /points/events``; its shapes hold exactly."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, status
from sqlmodel import Session

from mrv.inclusive import FactorStatus
from registry.inclusion.errors import UnknownPartner, UnknownResident
from registry.inclusion.models import (
    InclusionPartner,
    InclusionPartnerKey,
    InclusionPool,
    PartnerKeyKind,
)
from registry.inclusion.schemas import (
    MAX_EVENTS_PER_BATCH,
    BatchResult,
    CitizenCardLink,
    EventBatchIn,
    EventResult,
    FactorVersionCreate,
    MethodologyItem,
    MethodologyTable,
    PartnerCreate,
    PartnerCreated,
    PartnerKeyCreate,
    PartnerKeyCreated,
    PartnerKeyPublic,
    PartnerPublic,
    PartnerUpdate,
    PointsBalance,
    PointsRatePublic,
    PoolCreate,
    PoolPublic,
    ReceiptPage,
    ReceiptPublic,
    ResidentBalances,
)
from registry.inclusion.service import (
    ingest,
    methodologies,
    partners,
    pooling,
    receipts,
    residents,
)
from tanhui.api import client_ip, problems
from tanhui.auth import (
    CurrentPrincipal,
    CurrentResident,
    CurrentUser,
    MissingPermission,
    PlatformAdmin,
    Principal,
    SessionDep,
)
from tanhui.i18n import N_
from tanhui.models import Role

router = APIRouter(prefix="/points", tags=["carbon inclusion"])

# A full batch of 1,000 events with long identifiers stays well under 1 MiB; no override needed.
BODY_LIMITS: dict[str, int] = {}


async def raw_body(request: Request) -> bytes:
    """The request body exactly as received: the signature covers these bytes."""
    return await request.body()


_EVENTS_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": EventBatchIn.model_json_schema()}},
    },
    "parameters": [],
}


@router.post(
    "/events",
    response_model=BatchResult,
    responses=problems(401, 413, 422),
    summary=f"Report a signed batch of up to {MAX_EVENTS_PER_BATCH} residents' behaviours",
    description=(
        "Headers `X-Tanhui-Partner: PARTNER_ID` and `X-Tanhui-Signature: t=<unix seconds>,"
        'v1=<hex HMAC-SHA256 of "{t}.{raw body}" keyed with the partner secret>` (300 s '
        "tolerance; a signature is accepted once). Each event is accepted or rejected on its "
        "own; results come in the order received."
    ),
    openapi_extra=_EVENTS_DOC,
)
def post_events(
    request: Request,
    body: Annotated[bytes, Depends(raw_body)],
    x_tanhui_partner: Annotated[str | None, Header()] = None,
    x_tanhui_signature: Annotated[str | None, Header()] = None,
) -> Any:
    result = ingest.ingest_with_retries(
        request.app.state.engine,
        partner_ref=x_tanhui_partner,
        signature=x_tanhui_signature,
        body=body,
    )
    return BatchResult(
        batch_id=result.batch_id,
        accepted=result.accepted,
        rejected=result.rejected,
        results=[
            EventResult(
                partner_event_id=outcome.partner_event_id,
                status="accepted" if outcome.accepted else "rejected",
                reason=outcome.reason,
                grams=outcome.grams,
                points=outcome.points,
                receipt_id=outcome.receipt_id,
            )
            for outcome in result.outcomes
        ],
    )


# --- residents -----------------------------------------------------------------------------


def _resident_for(session: Session, principal: Principal, resident_id: uuid.UUID) -> Any:
    """The resident themself or a platform admin; anyone else is told it does not exist."""
    allowed = principal.is_platform_admin or (
        principal.resident is not None and principal.resident.id == resident_id
    )
    if not allowed:
        raise UnknownResident(N_("No resident {resident_id}."), resident_id=str(resident_id))
    return residents.get_resident(session, resident_id)


@router.get(
    "/residents/{resident_id}",
    response_model=ResidentBalances,
    responses=problems(401, 404),
    summary="A resident's points (balance and available) and reductions",
)
def resident_balances(
    resident_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> Any:
    resident = _resident_for(session, principal, resident_id)
    view = residents.balances(session, resident)
    return ResidentBalances(
        id=resident.id,
        points=PointsBalance(balance=view.points_balance, available=view.points_available),
        reductions_g=view.reductions_g,
        pooled_g=view.pooled_g,
        receipts=view.receipts,
        citizen_card_linked=view.citizen_card_linked,
    )


def receipt_public(receipt: receipts.Receipt) -> ReceiptPublic:
    event = receipt.event
    version = receipt.version
    return ReceiptPublic(
        id=event.id,
        partner=receipt.partner_name,
        partner_event_id=event.partner_event_id,
        scenario=event.scenario,
        variant=event.variant,
        quantity=receipt.quantity,
        unit=receipt.unit,
        occurred_at=event.occurred_at,
        received_at=event.received_at,
        grams=event.grams,
        points=event.points,
        methodology_version=event.factor_version,
        grams_per_unit=event.grams_per_unit,
        baseline=version.baseline if version else "",
        source=version.source if version else "",
        data_source=version.data_source if version else "",
        status=version.status.value if version else FactorStatus.published.value,
        points_rate_version=event.points_rate_version,
        points_per_kg=event.points_per_kg,
        bonus_points=receipt.bonus_points,
        journal_entry_id=event.journal_entry_id,
    )


@router.get(
    "/residents/{resident_id}/receipts",
    response_model=ReceiptPage,
    responses=problems(401, 404),
    summary="A resident's carbon receipts, newest first (cursor pages)",
)
def resident_receipts(
    resident_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=receipts.MAX_PAGE_SIZE)] = receipts.PAGE_SIZE,
) -> Any:
    resident = _resident_for(session, principal, resident_id)
    page = receipts.list_receipts(session, resident.id, cursor=cursor, limit=limit)
    return ReceiptPage(
        items=[receipt_public(item) for item in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/receipts/{receipt_id}",
    response_model=ReceiptPublic,
    responses=problems(401, 403, 404),
    summary="One carbon receipt (its resident or a platform admin)",
)
def get_receipt(receipt_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep) -> Any:
    owner = None if principal.is_platform_admin else principal.resident
    if owner is None and not principal.is_platform_admin:
        raise MissingPermission(N_("This is for residents signed in with their phone."))
    return receipt_public(
        receipts.get_receipt(session, receipt_id, resident_id=owner.id if owner else None)
    )


@router.put(
    "/me/citizen-card",
    response_model=ResidentBalances,
    responses=problems(401, 403, 422, 429),
    summary="Link the signed-in resident's citizen card on its issuer's attestation",
)
def link_card(
    body: CitizenCardLink, request: Request, principal: CurrentResident, session: SessionDep
) -> Any:
    assert principal.resident is not None
    residents.link_citizen_card(
        session,
        principal.resident,
        body.number,
        issuer=body.issuer,
        attestation=body.attestation,
        ip=client_ip(request),
        actor=principal.actor,
    )
    return resident_balances(principal.resident.id, principal, session)


@router.delete(
    "/me/citizen-card",
    response_model=ResidentBalances,
    responses=problems(401, 403),
    summary="Unlink the signed-in resident's citizen card",
)
def unlink_card(principal: CurrentResident, session: SessionDep) -> Any:
    assert principal.resident is not None
    residents.unlink_citizen_card(session, principal.resident, actor=principal.actor)
    return resident_balances(principal.resident.id, principal, session)


# --- methodologies -------------------------------------------------------------------------


def methodology_table(session: Session) -> MethodologyTable:
    table = methodologies.factor_table(session)
    return MethodologyTable(
        items=[
            MethodologyItem(
                scenario=row.version.scenario.value,
                variant=row.version.variant,
                version=row.version.version,
                unit=row.version.unit.value,
                grams_per_unit=float(row.version.grams_per_unit),
                valid_from=row.version.valid_from,
                valid_to=row.valid_to,
                source=row.version.source,
                baseline=row.version.baseline,
                data_source=row.version.data_source,
                daily_cap=float(row.version.daily_cap),
                status=row.version.status.value,
                bonus_points_per_unit=row.version.bonus_points_per_unit,
                notes=row.version.notes,
            )
            for row in methodologies.methodology_rows(table)
        ],
        points_rates=[
            PointsRatePublic(
                version=rate.version,
                points_per_kg=rate.points_per_kg,
                valid_from=rate.valid_from,
                notes=rate.notes,
            )
            for rate in table.points_rates()
        ],
    )


@router.get(
    "/methodologies",
    response_model=MethodologyTable,
    summary="The public factor tables of every scenario, with their history and sources",
)
def list_methodologies(session: SessionDep) -> Any:
    return methodology_table(session)


@router.post(
    "/methodologies",
    response_model=MethodologyTable,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 409, 422),
    summary="Add a factor version taking effect on a future day (platform admin)",
)
def add_methodology_version(
    body: FactorVersionCreate, admin: PlatformAdmin, session: SessionDep
) -> Any:
    methodologies.add_version(
        session,
        scenario=body.scenario,
        variant=body.variant,
        version=body.version,
        grams_per_unit=body.grams_per_unit,
        baseline=body.baseline,
        source=body.source,
        valid_from=body.valid_from,
        daily_cap=body.daily_cap,
        participation=body.participation,
        bonus_points_per_unit=body.bonus_points_per_unit,
        notes=body.notes,
        actor=admin.actor,
    )
    return methodology_table(session)


# --- partners ------------------------------------------------------------------------------


def key_public(key: InclusionPartnerKey) -> PartnerKeyPublic:
    return PartnerKeyPublic(
        id=key.id,
        kind=str(key.kind),
        prefix=key.prefix,
        public_key=key.public_key,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


def partner_public(session: Session, partner: InclusionPartner) -> PartnerPublic:
    organisation = partners.organisation_of(session, partner)
    return PartnerPublic(
        id=partner.id,
        organisation_id=organisation.id,
        name=organisation.name,
        scenarios=partner.scenario_list,
        active=partner.active,
        issues_citizen_cards=partner.issues_citizen_cards,
        created_at=partner.created_at,
        keys=[key_public(key) for key in partners.keys_of(session, partner.id)],
    )


def _manageable(session: Session, principal: Principal, partner_id: uuid.UUID) -> InclusionPartner:
    """A platform admin, or an owner of the partner's own organisation, may manage its keys."""
    partner = partners.get_partner(session, partner_id)
    if principal.is_platform_admin:
        return partner
    if principal.organisation_id == partner.organisation_id and principal.role == Role.owner:
        return partner
    raise UnknownPartner(N_("No data partner {partner_id}."), partner_id=str(partner_id))


@router.post(
    "/partners",
    response_model=PartnerCreated,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 409, 422),
    summary="Register a data partner for some scenarios (platform admin); returns its secret",
)
def create_partner(body: PartnerCreate, admin: PlatformAdmin, session: SessionDep) -> Any:
    created = partners.create_partner(
        session, name=body.name, scenarios=body.scenarios, actor=admin.actor
    )
    return PartnerCreated(partner=partner_public(session, created.partner), secret=created.secret)


@router.get(
    "/partners",
    response_model=list[PartnerPublic],
    responses=problems(401, 403),
    summary="Every data partner with its scenarios and keys (platform admin)",
)
def list_partners(_admin: PlatformAdmin, session: SessionDep) -> Any:
    return [partner_public(session, partner) for partner, _org in partners.list_partners(session)]


@router.get(
    "/partners/{partner_id}",
    response_model=PartnerPublic,
    responses=problems(401, 403, 404),
    summary="A data partner (platform admin or the partner's owners)",
)
def get_partner(partner_id: uuid.UUID, principal: CurrentUser, session: SessionDep) -> Any:
    return partner_public(session, _manageable(session, principal, partner_id))


@router.patch(
    "/partners/{partner_id}",
    response_model=PartnerPublic,
    responses=problems(401, 403, 404, 422),
    summary="Change a partner's scenarios, suspend it, or make it a citizen-card issuer (admin)",
)
def update_partner(
    partner_id: uuid.UUID, body: PartnerUpdate, admin: PlatformAdmin, session: SessionDep
) -> Any:
    partner = partners.update_partner(
        session,
        partners.get_partner(session, partner_id),
        scenarios=body.scenarios,
        active=body.active,
        issues_citizen_cards=body.issues_citizen_cards,
        actor=admin.actor,
    )
    return partner_public(session, partner)


@router.post(
    "/partners/{partner_id}/keys",
    response_model=PartnerKeyCreated,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 422),
    summary="Add a signing key: a new HMAC secret (shown once) or an Ed25519 public key",
)
def add_partner_key(
    partner_id: uuid.UUID, body: PartnerKeyCreate, principal: CurrentUser, session: SessionDep
) -> Any:
    partner = _manageable(session, principal, partner_id)
    created = partners.add_key(
        session,
        partner,
        kind=PartnerKeyKind(body.kind),
        public_key=body.public_key,
        actor=principal.actor,
    )
    return PartnerKeyCreated(key=key_public(created.key), secret=created.secret)


@router.delete(
    "/partners/{partner_id}/keys/{key_id}",
    response_model=PartnerKeyPublic,
    responses=problems(401, 403, 404, 409),
    summary="Revoke a partner's signing key (another must remain active)",
)
def revoke_partner_key(
    partner_id: uuid.UUID, key_id: uuid.UUID, principal: CurrentUser, session: SessionDep
) -> Any:
    partner = _manageable(session, principal, partner_id)
    return key_public(partners.revoke_key(session, partner, key_id, actor=principal.actor))


# --- pooling -------------------------------------------------------------------------------


def pool_public(pool: InclusionPool) -> PoolPublic:
    return PoolPublic(
        id=pool.id,
        month=pool.month,
        residents=pool.residents,
        pooled_g=pool.pooled_g,
        carried_in_g=pool.carried_in_g,
        tonnes=pool.tonnes,
        carried_out_g=pool.carried_out_g,
        status=str(pool.status),
        serial_first=pool.serial_first,
        serial_last=pool.serial_last,
    )


@router.get(
    "/pools",
    response_model=list[PoolPublic],
    summary="Monthly pools of residents' reductions (public): grams, tonnes, remainder, serials",
)
def list_pools(session: SessionDep) -> Any:
    return [pool_public(pool) for pool in pooling.list_pools(session)]


@router.post(
    "/pools",
    response_model=PoolPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 409),
    summary="Pool a month into the residents' project and submit it (platform admin)",
)
def create_pool(body: PoolCreate, admin: PlatformAdmin, session: SessionDep) -> Any:
    pooling.settle_pools(session)
    pool = pooling.pool_month(session, month=body.month, actor=admin.actor)
    if pool.tonnes:
        pooling.submit_pool(session, pool, project_code=body.project_code)
    return pool_public(pool)
