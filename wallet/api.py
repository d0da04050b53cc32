"""HTTP routes of the wallet package (thin: parse, check permission, call the service).

Platform administrators and platform services (members of the platform organisation) open
accounts and post entries; an organisation (or a resident) may read its own accounts, and other
accounts answer 404 as if they did not exist.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, NoReturn

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlmodel import Session

from tanhui.api import IdempotencyKey, problems
from tanhui.auth import CurrentPrincipal, MissingPermission, Principal, SessionDep, require_user
from tanhui.i18n import N_
from tanhui.models import ROLE_RANK, OrgKind, Role
from tanhui.problems import request_locale
from wallet import service
from wallet.errors import HoldExpired, HoldLapsed, UnknownAccount
from wallet.models import Account, EntryKind, Hold, HoldStatus, JournalEntry, Layer
from wallet.schemas import (
    AccountCreate,
    AccountFreeze,
    AccountPublic,
    BatchCreate,
    BatchPublic,
    BatchResultPublic,
    EntryCreate,
    EntryPublic,
    HoldCapture,
    HoldCreate,
    HoldPublic,
    PostingPagePublic,
    PostingPublic,
    TransferPublic,
)

router = APIRouter(prefix="/wallet", tags=["wallet"])

# Request-body limits above the default (TANHUI_MAX_BODY_BYTES), by path prefix: a batch of
# 1,000 entries with metadata can exceed 1 MiB.
BODY_LIMITS: dict[str, int] = {"/api/v1/wallet/entries/batch": 16 * 1024 * 1024}

CSV_MEDIA_TYPE = "text/csv"
CSV_DEFAULT_ROWS = 10_000


def require_ledger_operator(principal: Annotated[Principal, Depends(require_user)]) -> Principal:
    """Platform administrators, and members of the platform organisation (platform services)."""
    if principal.is_platform_admin:
        return principal
    organisation, role = principal.organisation, principal.role
    if (
        organisation is not None
        and organisation.kind == OrgKind.platform
        and role is not None
        and ROLE_RANK[role] >= ROLE_RANK[Role.member]
    ):
        return principal
    raise MissingPermission(N_("Only platform administrators and platform services may do this."))


LedgerOperator = Annotated[Principal, Depends(require_ledger_operator)]


def _reads_every_account(principal: Principal) -> bool:
    """Platform administrators and anyone in the platform organisation."""
    organisation = principal.organisation
    return principal.is_platform_admin or (
        organisation is not None and organisation.kind == OrgKind.platform
    )


def _scope(principal: Principal) -> str:
    """Idempotency keys are unique per organisation; administrators without one share the
    ``platform-api`` scope (apart from the keys the platform's own services use inside)."""
    if principal.organisation_id is not None:
        return f"org:{principal.organisation_id}"
    return "platform-api"


def _readable_account(session: Session, principal: Principal, account_id: uuid.UUID) -> Account:
    account = service.get_account(session, account_id)
    if _reads_every_account(principal):
        return account
    owners = set()
    if principal.organisation_id is not None:
        owners.add(f"org:{principal.organisation_id}")
    if principal.resident is not None:
        owners.add(f"resident:{principal.resident.id}")
    if account.owner not in owners:
        raise UnknownAccount(N_("No account {account_id}."), account_id=str(account_id))
    return account


def _account_public(session: Session, account: Account) -> AccountPublic:
    balance = service.get_balance(session, account.id)
    lapsed = service.lapsed_hold_debits(session, account.id) if balance.pending_debits else 0
    return AccountPublic(
        id=account.id,
        asset=account.asset,
        owner=account.owner,
        purpose=account.purpose,
        floor=account.floor,
        balance=balance.balance,
        available=balance.available + lapsed,
        lapsed_hold_debits=lapsed,
        posted_debits=balance.posted_debits,
        posted_credits=balance.posted_credits,
        pending_debits=balance.pending_debits,
        pending_credits=balance.pending_credits,
        frozen=account.frozen,
        shards=account.shards,
        created_at=account.created_at,
    )


_STATUS_OF_KIND = {EntryKind.transfer: "posted", EntryKind.hold: "pending"}


def _entry_public(session: Session, entry: JournalEntry) -> EntryPublic:
    kind = EntryKind(entry.kind)
    layer = Layer.pending if kind == EntryKind.hold else Layer.posted
    return EntryPublic(
        id=entry.id,
        status=_STATUS_OF_KIND.get(kind, kind.value),
        kind=kind.value,
        code=entry.code,
        transfers=[
            TransferPublic(
                debit_account_id=t.debit_account_id,
                credit_account_id=t.credit_account_id,
                amount=t.amount,
            )
            for t in service.transfers_of(session, entry.id, layer=layer)
        ],
        metadata=json.loads(entry.metadata_json),
        idempotency_key=entry.idempotency_key,
        reverses=entry.reverses_id,
        hold_id=entry.hold_id,
        created_at=entry.created_at,
        hash=entry.hash,
    )


def _hold_public(record: Hold) -> HoldPublic:
    shown = "expired" if service.is_expired(record) else str(record.status)
    return HoldPublic(
        id=record.id,
        status=shown,
        debit_account_id=record.debit_account_id,
        credit_account_id=record.credit_account_id,
        asset=record.asset,
        amount=record.amount,
        captured_amount=record.captured_amount,
        code=record.code,
        expires_at=record.expires_at,
        entry_id=record.entry_id,
        resolved_entry_id=record.resolved_entry_id,
        resolved_at=record.resolved_at,
        created_at=record.created_at,
    )


def _transfers(body: EntryCreate) -> list[service.Transfer]:
    return [
        service.Transfer(t.debit_account_id, t.credit_account_id, t.amount) for t in body.transfers
    ]


@router.post(
    "/accounts",
    response_model=AccountPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 409, 422),
    summary="Open an account (floor null: an unbounded system account)",
)
def open_account(body: AccountCreate, principal: LedgerOperator, session: SessionDep) -> Any:
    owner = service.resolve_owner(session, body.owner)
    account = service.open_account(
        session,
        asset=body.asset,
        owner=owner,
        purpose=body.purpose,
        floor=body.floor,
        shards=body.shards,
        actor=principal.actor,
    )
    return _account_public(session, account)


@router.get(
    "/accounts/{account_id}",
    response_model=AccountPublic,
    responses=problems(401, 404),
    summary="An account with its balance and available funds",
)
def read_account(account_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep) -> Any:
    return _account_public(session, _readable_account(session, principal, account_id))


@router.post(
    "/accounts/{account_id}/freeze",
    response_model=AccountPublic,
    responses=problems(401, 403, 404, 422),
    summary="Freeze an account (no debits) or unfreeze it",
)
def freeze_account(
    account_id: uuid.UUID, body: AccountFreeze, principal: LedgerOperator, session: SessionDep
) -> Any:
    account = service.set_frozen(session, account_id, frozen=body.frozen, actor=principal.actor)
    return _account_public(session, account)


@router.get(
    "/accounts/{account_id}/postings",
    response_model=PostingPagePublic,
    responses={
        **problems(401, 404, 422),
        200: {"content": {CSV_MEDIA_TYPE: {}}, "description": "a page of postings (JSON or CSV)"},
    },
    summary="An account's postings, oldest first, by cursor (CSV with Accept: text/csv)",
)
def list_postings(
    account_id: uuid.UUID,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int | None, Query(ge=1, le=service.MAX_CSV_ROWS)] = None,
) -> Any:
    _readable_account(session, principal, account_id)
    if CSV_MEDIA_TYPE in request.headers.get("accept", ""):
        page = service.list_postings(
            session,
            account_id,
            cursor=cursor,
            limit=limit or CSV_DEFAULT_ROWS,
            max_limit=service.MAX_CSV_ROWS,
        )
        headers = {"Content-Disposition": f'attachment; filename="postings-{account_id}.csv"'}
        if page.next_cursor:
            headers["X-Next-Cursor"] = page.next_cursor
        return Response(
            service.postings_csv(page.items),
            media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8",
            headers=headers,
        )
    page = service.list_postings(
        session, account_id, cursor=cursor, limit=limit or service.DEFAULT_PAGE_SIZE
    )
    return PostingPagePublic(
        items=[PostingPublic(**line.__dict__) for line in page.items],
        next_cursor=page.next_cursor,
    )


@router.post(
    "/entries",
    response_model=EntryPublic,
    status_code=status.HTTP_201_CREATED,
    responses={
        **problems(401, 403, 404, 409, 422),
        200: {"model": EntryPublic, "description": "the entry made earlier with this key"},
    },
    summary="Post a journal entry: all its transfers apply atomically, or none",
)
def post_entry(
    body: EntryCreate,
    response: Response,
    principal: LedgerOperator,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    result = service.submit_entry(
        session,
        code=body.code,
        transfers=_transfers(body),
        idempotency_key=idempotency_key,
        scope=_scope(principal),
        metadata=body.metadata,
        reverses=body.reverses,
    )
    assert result.entry is not None
    if result.duplicate:
        response.status_code = status.HTTP_200_OK
    return _entry_public(session, result.entry)


@router.post(
    "/entries/batch",
    response_model=BatchPublic,
    responses=problems(401, 403, 413, 422),
    summary="Post up to 1,000 entries in one transaction, each applied or rejected on its own",
)
def post_batch(
    body: BatchCreate, request: Request, principal: LedgerOperator, session: SessionDep
) -> Any:
    results = service.post_entries(
        session,
        [
            service.EntryRequest(
                code=item.code,
                transfers=_transfers(item),
                idempotency_key=item.idempotency_key,
                metadata=item.metadata,
                reverses=item.reverses,
            )
            for item in body.entries
        ],
        scope=_scope(principal),
    )
    locale = request_locale(request)
    public = [
        BatchResultPublic(
            index=result.index,
            status=result.status,
            id=result.entry.id if result.entry is not None else None,
            error=result.error.to_problem(locale) if result.error is not None else None,
        )
        for result in results
    ]
    return BatchPublic(
        posted=sum(1 for r in public if r.status == "posted"),
        duplicates=sum(1 for r in public if r.status == "duplicate"),
        rejected=sum(1 for r in public if r.status == "rejected"),
        results=public,
    )


@router.get(
    "/entries/{entry_id}",
    response_model=EntryPublic,
    responses=problems(401, 403, 404),
    summary="A journal entry",
)
def read_entry(entry_id: uuid.UUID, _operator: LedgerOperator, session: SessionDep) -> Any:
    return _entry_public(session, service.get_entry(session, entry_id))


@router.post(
    "/holds",
    response_model=HoldPublic,
    status_code=status.HTTP_201_CREATED,
    responses={
        **problems(401, 403, 404, 409, 422),
        200: {"model": HoldPublic, "description": "the hold made earlier with this key"},
    },
    summary="Reserve funds until captured, voided or expired",
)
def create_hold(
    body: HoldCreate,
    response: Response,
    principal: LedgerOperator,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    record, duplicate = service.submit_hold(
        session,
        debit_account_id=body.debit_account_id,
        credit_account_id=body.credit_account_id,
        amount=body.amount,
        expires_at=body.expires_at,
        code=body.code,
        idempotency_key=idempotency_key,
        scope=_scope(principal),
        metadata=body.metadata,
    )
    if duplicate:
        response.status_code = status.HTTP_200_OK
    return _hold_public(record)


@router.get(
    "/holds/{hold_id}",
    response_model=HoldPublic,
    responses=problems(401, 403, 404),
    summary="A hold and its state",
)
def read_hold(hold_id: uuid.UUID, _operator: LedgerOperator, session: SessionDep) -> Any:
    return _hold_public(service.get_hold(session, hold_id))


@router.post(
    "/holds/{hold_id}/capture",
    response_model=HoldPublic,
    responses=problems(401, 403, 404, 409, 422),
    summary="Post all or part of a hold (the rest is released)",
)
def capture_hold(
    hold_id: uuid.UUID,
    _operator: LedgerOperator,
    session: SessionDep,
    body: HoldCapture | None = None,
) -> Any:
    try:
        service.capture_hold(session, hold_id, amount=body.amount if body else None)
    except HoldExpired as error:
        _release_lapsed(session, hold_id, error)
    return _hold_public(service.get_hold(session, hold_id))


@router.post(
    "/holds/{hold_id}/void",
    response_model=HoldPublic,
    responses=problems(401, 403, 404, 409),
    summary="Release a hold",
)
def void_hold(hold_id: uuid.UUID, _operator: LedgerOperator, session: SessionDep) -> Any:
    try:
        return _hold_public(service.void_hold(session, hold_id))
    except HoldExpired as error:
        _release_lapsed(session, hold_id, error)


def _release_lapsed(session: Session, hold_id: uuid.UUID, error: HoldExpired) -> NoReturn:
    """An expired hold is refused; one still reserving funds releases them now (the lazy path),
    and the refusal keeps that release."""
    if service.get_hold(session, hold_id).status == HoldStatus.expired:
        raise error
    service.expire_hold(session, hold_id)
    raise HoldLapsed(error.message, **error.params) from error
