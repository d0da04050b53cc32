"""HTTP routes of the market package (thin: parse, check permission, call the service).

Every mutating route accepts an ``Idempotency-Key``: a retry with the same key and body gets the
first answer (scoped to the caller's organisation and the route). The Stripe webhook needs no
key: Stripe's event ids make it idempotent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status

from market import presenters
from market.errors import InvalidOrder
from market.models import Provider, VerifiedBuyer
from market.schemas import (
    BankTransferConfirm,
    BuyerVerificationIn,
    BuyerVerificationPublic,
    CaseCreate,
    CaseOrderCreate,
    CasePublic,
    CertificateCheckPublic,
    CheckoutPublic,
    CompensationRowPublic,
    CooperativeStatementPublic,
    DepositIn,
    DepositPublic,
    EnterpriseStatementPublic,
    HoldRoomPublic,
    HouseholdEntryPublic,
    HouseholdStatementPublic,
    HouseholdTotalPublic,
    ListingCreate,
    ListingPublic,
    OrderCreate,
    OrderPublic,
    PaymentOutcomePublic,
    PaymentPublic,
    PriceIndexPublic,
    PricePointPublic,
    RefundPublic,
    RoundIn,
    RoundPublic,
    SaleRowPublic,
    StandardIn,
    StandardPublic,
    StatementLink,
    WebhookAnswer,
)
from market.service import (
    bank,
    buyers,
    compensation,
    funds,
    listings,
    orders,
    payments,
    price_index,
    statements,
    webhooks,
)
from registry import geo
from registry.service.actors import Actor
from tanhui.api import IdempotencyKey, problems, run_idempotent
from tanhui.auth import CurrentUser, SessionDep
from tanhui.db import utcnow
from tanhui.settings import get_settings

router = APIRouter(prefix="/market", tags=["market"])

# Request-body limits above the default (TANHUI_MAX_BODY_BYTES), by path prefix.
BODY_LIMITS: dict[str, int] = {}

MAX_SEARCH_OFFSET = 100_000  # deeper pages are no search; filters narrow it (and no overflow)
PDF_MEDIA_TYPE = "application/pdf"
SVG_MEDIA_TYPE = "image/svg+xml"


def current_actor(principal: CurrentUser) -> Actor:
    assert principal.user is not None
    return Actor.for_user(principal.user, principal.organisation)


ActorDep = Annotated[Actor, Depends(current_actor)]


def _idempotent(
    session: SessionDep,
    actor: Actor,
    key: str | None,
    route: str,
    payload: Any,
    work: Callable[[], Any],
    status_code: int = status.HTTP_201_CREATED,
) -> Any:
    """Run ``work()`` once per Idempotency-Key (scoped to the organisation and the route)."""
    scope = f"market:{route}:{actor.organisation_id or actor.ref}"
    return run_idempotent(
        session, scope=scope, key=key, payload=payload, work=work, status_code=status_code
    )


# --- listings ------------------------------------------------------------------------------


@router.get(
    "/listings",
    response_model=list[ListingPublic],
    responses=problems(422),
    summary="Search listings by credit type, district, vintage and price (cheapest first)",
)
def search_listings(
    session: SessionDep,
    type: Annotated[str | None, Query(max_length=16, description="bamboo, wetland")] = None,
    district: Annotated[str | None, Query(max_length=6, description="adcode")] = None,
    vintage: Annotated[int | None, Query(ge=1000, le=9999)] = None,
    min_price_fen: Annotated[int | None, Query(ge=0, le=listings.MAX_PRICE_FEN_PER_T)] = None,
    max_price_fen: Annotated[int | None, Query(ge=0, le=listings.MAX_PRICE_FEN_PER_T)] = None,
    project_id: uuid.UUID | None = None,
    seller_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=listings.MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_SEARCH_OFFSET)] = 0,
) -> Any:
    return presenters.search_public(
        session,
        listings.ListingQuery(
            credit_type=type,
            district_adcode=district,
            vintage=vintage,
            min_price_fen=min_price_fen,
            max_price_fen=max_price_fen,
            project_id=project_id,
            seller_id=seller_id,
            limit=limit,
            offset=offset,
        ),
    )


@router.get(
    "/listings/{listing_id}",
    response_model=ListingPublic,
    responses=problems(404),
    summary="One listing",
)
def get_listing(listing_id: uuid.UUID, session: SessionDep) -> Any:
    return presenters.listing_public(session, listings.get_listing(session, listing_id))


@router.post(
    "/listings",
    response_model=ListingPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 409, 422),
    summary="List credits of a batch at a price (they are held until sold or delisted)",
)
def create_listing(
    body: ListingCreate,
    actor: ActorDep,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    def work() -> dict[str, Any]:
        created = listings.create_listing(
            session,
            actor=actor,
            batch_id=body.batch_id,
            quantity_t=body.quantity_t,
            price_fen_per_t=body.price_fen_per_t,
            min_order_t=body.min_order_t,
            ends_at=body.ends_at,
            seller_id=body.seller_id,
        )
        return presenters.listing_public(session, created).model_dump(mode="json")

    return _idempotent(
        session, actor, idempotency_key, "listings", body.model_dump(mode="json"), work
    )


@router.post(
    "/listings/{listing_id}/delist",
    response_model=ListingPublic,
    responses=problems(401, 403, 404, 409),
    summary="Withdraw a listing (open tonnes are released at once)",
)
def delist(
    listing_id: uuid.UUID,
    actor: ActorDep,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    def work() -> dict[str, Any]:
        item = listings.delist(session, actor=actor, listing_id=listing_id)
        return presenters.listing_public(session, item).model_dump(mode="json")

    return _idempotent(
        session,
        actor,
        idempotency_key,
        "delist",
        {"listing": str(listing_id)},
        work,
        status.HTTP_200_OK,
    )


# --- orders and checkout -------------------------------------------------------------------


@router.post(
    "/orders",
    response_model=OrderPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 409, 422),
    summary="Order credits: the tonnes are held while you pay (30 minutes by default)",
)
def create_order(
    body: OrderCreate, actor: ActorDep, session: SessionDep, idempotency_key: IdempotencyKey = None
) -> Any:
    def work() -> dict[str, Any]:
        placed = orders.place_order(
            session,
            actor=actor,
            lines=[
                orders.LineRequest(listing_id=line.listing_id, quantity_t=line.quantity_t)
                for line in body.lines
            ],
            provider=body.provider,
            retire_on_purchase=body.retire_on_purchase,
            beneficiary=body.beneficiary,
            purpose=body.purpose,
        )
        presented = presenters.order_public(session, placed.order, lines=placed.lines, payments=[])
        return presented.model_dump(mode="json")

    return _idempotent(
        session, actor, idempotency_key, "orders", body.model_dump(mode="json"), work
    )


@router.get(
    "/orders",
    response_model=list[OrderPublic],
    responses=problems(401, 403),
    summary="Your organisation's orders, newest first",
)
def list_orders(actor: ActorDep, session: SessionDep) -> Any:
    if actor.organisation_id is None:
        return []
    return [
        presenters.order_public(session, order)
        for order in orders.orders_of(session, actor.organisation_id)
    ]


@router.get(
    "/orders/{order_id}",
    response_model=OrderPublic,
    responses=problems(401, 404),
    summary="One order with its lines, payments and certificates",
)
def get_order(order_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    return presenters.order_public(
        session, orders.get_order(session, actor=actor, order_id=order_id)
    )


def _checkout(session: SessionDep, order_id: uuid.UUID, payment: Any) -> CheckoutPublic:
    order = orders.get_order_unchecked(session, order_id)
    return CheckoutPublic(
        order_id=order.id,
        provider=str(order.provider),
        payment=PaymentPublic(
            id=payment.id,
            provider=str(payment.provider),
            status=str(payment.status),
            amount_fen=payment.amount_fen,
            external_id=payment.external_id,
            checkout_url=payment.checkout_url,
            expires_at=payment.expires_at,
        ),
        checkout_url=payment.checkout_url,
        bank_transfer=presenters.bank_instructions(order),
    )


@router.post(
    "/orders/{order_id}/checkout",
    response_model=CheckoutPublic,
    responses=problems(401, 404, 409, 502),
    summary="Start paying: a Stripe Checkout Session, bank-transfer details or the sandbox page",
)
def checkout(
    order_id: uuid.UUID,
    actor: ActorDep,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    def work() -> dict[str, Any]:
        payment = payments.start_checkout(session, actor=actor, order_id=order_id)
        return _checkout(session, order_id, payment).model_dump(mode="json")

    return _idempotent(
        session,
        actor,
        idempotency_key,
        "checkout",
        {"order": str(order_id)},
        work,
        status.HTTP_200_OK,
    )


@router.post(
    "/orders/{order_id}/cancel",
    response_model=OrderPublic,
    responses=problems(401, 404, 409),
    summary="Cancel an unpaid order (its tonnes are released)",
)
def cancel_order(
    order_id: uuid.UUID,
    actor: ActorDep,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    def work() -> dict[str, Any]:
        order = payments.cancel_order(session, actor=actor, order_id=order_id)
        return presenters.order_public(session, order).model_dump(mode="json")

    return _idempotent(
        session,
        actor,
        idempotency_key,
        "cancel",
        {"order": str(order_id)},
        work,
        status.HTTP_200_OK,
    )


@router.get(
    "/orders/{order_id}/receipt",
    response_class=Response,
    responses={
        200: {"content": {PDF_MEDIA_TYPE: {}}, "description": "the receipt"},
        **problems(401, 404),
    },
    summary="The order's receipt (PDF)",
)
def receipt(order_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Response:
    name, content = statements.receipt_pdf(session, actor=actor, order_id=order_id)
    return Response(
        content,
        media_type=PDF_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _outcome(session: SessionDep, outcome: payments.PaymentOutcome) -> dict[str, Any]:
    return PaymentOutcomePublic(
        outcome=outcome.outcome,
        order=presenters.order_public(session, outcome.order),
        refunded_fen=outcome.refunded_fen,
        outstanding_fen=outcome.outstanding_fen,
    ).model_dump(mode="json")


@router.post(
    "/sandbox/payments/{payment_id}/complete",
    response_model=PaymentOutcomePublic,
    responses=problems(401, 404, 409),
    summary="Sandbox: pay a checkout (drives the same fulfilment as a Stripe webhook)",
)
def sandbox_complete(
    payment_id: uuid.UUID,
    actor: ActorDep,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    return _idempotent(
        session,
        actor,
        idempotency_key,
        "sandbox-complete",
        {"payment": str(payment_id)},
        lambda: _outcome(
            session, payments.sandbox_complete(session, actor=actor, payment_id=payment_id)
        ),
        status.HTTP_200_OK,
    )


@router.post(
    "/sandbox/payments/{payment_id}/cancel",
    response_model=OrderPublic,
    responses=problems(401, 404, 409),
    summary="Sandbox: cancel a checkout (the order's tonnes are released)",
)
def sandbox_cancel(
    payment_id: uuid.UUID,
    actor: ActorDep,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    return _idempotent(
        session,
        actor,
        idempotency_key,
        "sandbox-cancel",
        {"payment": str(payment_id)},
        lambda: presenters.order_public(
            session, payments.sandbox_cancel(session, actor=actor, payment_id=payment_id)
        ).model_dump(mode="json"),
        status.HTTP_200_OK,
    )


@router.post(
    "/webhooks/stripe",
    response_model=WebhookAnswer,
    responses=problems(400),
    summary="Stripe's webhook: signed Checkout events fulfil, expire or fail orders",
)
async def stripe_webhook(request: Request) -> Any:
    payload = await request.body()
    event = webhooks.verify_stripe_event(payload, request.headers.get("stripe-signature"))
    outcome = await _run_in_session(request, event)
    return WebhookAnswer(received=True, outcome=outcome)


async def _run_in_session(request: Request, event: dict[str, Any]) -> str:
    """Handle the verified event in its own transaction (off the event loop)."""
    from starlette.concurrency import run_in_threadpool

    from tanhui.db import retrying

    engine = request.app.state.engine
    return await run_in_threadpool(
        retrying, engine, lambda session: webhooks.handle_stripe_event(session, event)
    )


# --- buyers: verification and the hold cap ------------------------------------------------


def _verification(record: VerifiedBuyer, name: str) -> BuyerVerificationPublic:
    return BuyerVerificationPublic(
        organisation_id=record.organisation_id,
        organisation_name=name,
        uscc=record.uscc,
        verified_by=record.verified_by,
        verified_at=record.verified_at,
    )


def _verification_public(
    session: SessionDep, organisation_id: uuid.UUID
) -> BuyerVerificationPublic:
    return _verification(*buyers.verification_of(session, organisation_id))


@router.get(
    "/holds",
    response_model=HoldRoomPublic,
    responses=problems(401, 403),
    summary="Tonnes your organisation holds unpaid, and its cap",
)
def hold_room(actor: ActorDep, session: SessionDep) -> Any:
    buyer_id = buyers.require_buyer(actor)
    room = buyers.hold_room(session, buyer_id, now=utcnow())
    return HoldRoomPublic(
        verified=buyers.is_verified(session, buyer_id),
        cap_t=room.cap_t,
        held_t=room.held_t,
        free_t=room.free_t,
    )


@router.get(
    "/buyers/verifications",
    response_model=list[BuyerVerificationPublic],
    responses=problems(401, 403),
    summary="Platform staff: organisations whose unified social credit code is verified",
)
def verified_buyers(actor: ActorDep, session: SessionDep) -> Any:
    return [
        _verification(record, name) for record, name in buyers.verified_buyers(session, actor=actor)
    ]


@router.post(
    "/buyers/{organisation_id}/verification",
    response_model=BuyerVerificationPublic,
    responses=problems(401, 403, 404, 409, 422),
    summary="Platform staff: confirm an organisation's unified social credit code (bank transfer)",
)
def verify_buyer(
    organisation_id: uuid.UUID,
    body: BuyerVerificationIn,
    actor: ActorDep,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    def work() -> dict[str, Any]:
        buyers.verify(session, actor=actor, organisation_id=organisation_id, code=body.uscc)
        return _verification_public(session, organisation_id).model_dump(mode="json")

    return _idempotent(
        session,
        actor,
        idempotency_key,
        "buyer-verify",
        {"organisation": str(organisation_id), **body.model_dump(mode="json")},
        work,
        status.HTTP_200_OK,
    )


@router.post(
    "/buyers/{organisation_id}/verification/revoke",
    response_model=BuyerVerificationPublic,
    responses=problems(401, 403, 404),
    summary="Platform staff: withdraw an organisation's verification (returns what it was)",
)
def revoke_buyer_verification(
    organisation_id: uuid.UUID,
    actor: ActorDep,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    def work() -> dict[str, Any]:
        revoked = _verification_public(session, organisation_id)
        buyers.revoke(session, actor=actor, organisation_id=organisation_id)
        return revoked.model_dump(mode="json")

    return _idempotent(
        session,
        actor,
        idempotency_key,
        "buyer-revoke",
        {"organisation": str(organisation_id)},
        work,
        status.HTTP_200_OK,
    )


# --- bank transfers ------------------------------------------------------------------------


@router.post(
    "/bank-transfers/confirm",
    response_model=PaymentOutcomePublic,
    responses=problems(401, 403, 404, 409, 422),
    summary="Finance: record money received by bank transfer (partial and excess handled)",
)
def confirm_bank_transfer(
    body: BankTransferConfirm,
    actor: ActorDep,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    return _idempotent(
        session,
        actor,
        idempotency_key,
        "bank-confirm",
        body.model_dump(mode="json"),
        lambda: _outcome(
            session,
            bank.confirm_bank_transfer(
                session,
                actor=actor,
                reference=body.reference,
                amount_fen=body.amount_fen,
                bank_reference=body.bank_reference,
                note=body.note,
            ),
        ),
        status.HTTP_200_OK,
    )


@router.get(
    "/bank-transfers",
    response_model=list[OrderPublic],
    responses=problems(401, 403),
    summary="Finance: bank-transfer orders awaiting (the rest of) their money",
)
def awaiting_transfers(actor: ActorDep, session: SessionDep) -> Any:
    return [
        presenters.order_public(session, order)
        for order in bank.awaiting_transfers(session, actor=actor)
    ]


@router.post(
    "/bank-transfers/{order_id}/refund",
    response_model=OrderPublic,
    responses=problems(401, 403, 404, 409),
    summary="Finance: give back what an unsettled bank-transfer order received, and close it",
)
def refund_bank_transfer(
    order_id: uuid.UUID,
    actor: ActorDep,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    def work() -> dict[str, Any]:
        bank.refund_bank_transfer(session, actor=actor, order_id=order_id)
        return presenters.order_public(
            session, orders.get_order_unchecked(session, order_id)
        ).model_dump(mode="json")

    return _idempotent(
        session,
        actor,
        idempotency_key,
        "bank-refund",
        {"order": str(order_id)},
        work,
        status.HTTP_200_OK,
    )


@router.get(
    "/orders/{order_id}/refunds",
    response_model=list[RefundPublic],
    responses=problems(401, 404),
    summary="Refunds of an order",
)
def order_refunds(order_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    order = orders.get_order(session, actor=actor, order_id=order_id)
    return [
        RefundPublic(
            id=item.id,
            order_id=item.order_id,
            provider=str(item.provider),
            amount_fen=item.amount_fen,
            reason=item.reason,
            external_id=item.external_id,
            created_at=item.created_at,
        )
        for item in payments.refunds_of(session, order.id)
    ]


# --- judicial cases ------------------------------------------------------------------------


@router.post(
    "/compensation/cases",
    response_model=CasePublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 409, 422),
    summary="Court (judicial restoration) or fund (ecological compensation): record a case",
)
def create_case(
    body: CaseCreate, actor: ActorDep, session: SessionDep, idempotency_key: IdempotencyKey = None
) -> Any:
    def work() -> dict[str, Any]:
        case = compensation.create_case(
            session,
            actor=actor,
            case_number=body.case_number,
            judgment_sha256=body.judgment_sha256,
            defendant_id=body.defendant_id,
            defendant_name=body.defendant_name,
            project_id=body.project_id,
            required_t=body.required_t,
            required_amount_fen=body.required_amount_fen,
            note=body.note,
        )
        return presenters.case_public(session, case).model_dump(mode="json")

    return _idempotent(session, actor, idempotency_key, "cases", body.model_dump(mode="json"), work)


@router.get(
    "/compensation/cases",
    response_model=list[CasePublic],
    responses=problems(401),
    summary="Judicial cases of your court, or against your organisation",
)
def list_cases(actor: ActorDep, session: SessionDep) -> Any:
    return [
        presenters.case_public(session, case)
        for case in compensation.cases_for(session, actor=actor)
    ]


@router.get(
    "/compensation/cases/{case_id}",
    response_model=CasePublic,
    responses=problems(401, 404),
    summary="One judicial case and its fulfilment",
)
def get_case(case_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    return presenters.case_public(
        session, compensation.get_case(session, actor=actor, case_id=case_id)
    )


@router.post(
    "/compensation/cases/{case_id}/orders",
    response_model=OrderPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 404, 409, 422),
    summary="Defendant: order the case's credits (retired for the court on settlement)",
)
def order_for_case(
    case_id: uuid.UUID,
    body: CaseOrderCreate,
    actor: ActorDep,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    def work() -> dict[str, Any]:
        placed = compensation.order_for_case(
            session, actor=actor, case_id=case_id, provider=body.provider
        )
        return presenters.order_public(session, placed).model_dump(mode="json")

    return _idempotent(
        session,
        actor,
        idempotency_key,
        "case-orders",
        {"case": str(case_id), **body.model_dump(mode="json")},
        work,
    )


@router.get(
    "/compensation/cases/{case_id}/verification",
    response_model=list[CertificateCheckPublic],
    responses=problems(401, 404),
    summary="Court: verify the certificates retired for a case",
)
def verify_case(case_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    return [
        CertificateCheckPublic(
            certificate_id=check.certificate_id,
            ok=check.ok,
            reason=check.reason,
            quantity_t=check.quantity_t,
            case_number=check.case_number,
            verify_url=presenters.verify_url(check.certificate_id),
        )
        for check in compensation.verify_case_certificates(session, actor=actor, case_id=case_id)
    ]


# --- compensation funds --------------------------------------------------------------------


def _standard(item: Any) -> StandardPublic:
    district = geo.district_by_adcode(item.district_adcode)
    return StandardPublic(
        id=item.id,
        fund_id=item.fund_id,
        year=item.year,
        land_type=item.land_type,
        district_adcode=item.district_adcode,
        district=district.name_zh if district else None,
        rate_fen_per_mu_year=item.rate_fen_per_mu_year,
    )


@router.post(
    "/compensation/standards",
    response_model=StandardPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 409, 422),
    summary="Fund: set a compensation standard (fen per mu per year by land type and district)",
)
def set_standard(
    body: StandardIn, actor: ActorDep, session: SessionDep, idempotency_key: IdempotencyKey = None
) -> Any:
    return _idempotent(
        session,
        actor,
        idempotency_key,
        "standards",
        body.model_dump(mode="json"),
        lambda: _standard(
            funds.set_standard(
                session,
                actor=actor,
                year=body.year,
                land_type=body.land_type,
                district_adcode=body.district_adcode,
                rate_fen_per_mu_year=body.rate_fen_per_mu_year,
            )
        ).model_dump(mode="json"),
    )


@router.get(
    "/compensation/standards",
    response_model=list[StandardPublic],
    responses=problems(401, 403),
    summary="Fund: your compensation standards",
)
def list_standards(actor: ActorDep, session: SessionDep) -> Any:
    return [_standard(item) for item in funds.standards_of(session, actor=actor)]


@router.post(
    "/compensation/deposits",
    response_model=DepositPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 404, 422),
    summary="Finance: record money a compensation fund paid in",
)
def record_deposit(
    body: DepositIn, actor: ActorDep, session: SessionDep, idempotency_key: IdempotencyKey = None
) -> Any:
    def work() -> dict[str, Any]:
        deposit = funds.record_deposit(
            session,
            actor=actor,
            fund_id=body.fund_id,
            amount_fen=body.amount_fen,
            bank_reference=body.bank_reference,
        )
        return DepositPublic(
            id=deposit.id,
            fund_id=deposit.fund_id,
            amount_fen=deposit.amount_fen,
            bank_reference=deposit.bank_reference,
            balance_fen=funds.fund_balance_fen(session, deposit.fund_id),
            created_at=deposit.created_at,
        ).model_dump(mode="json")

    return _idempotent(
        session, actor, idempotency_key, "deposits", body.model_dump(mode="json"), work
    )


@router.post(
    "/compensation/payout-rounds",
    response_model=RoundPublic,
    status_code=status.HTTP_201_CREATED,
    responses=problems(401, 403, 409, 422),
    summary="Fund: draft (or redraft) the payout round of a year over the eligible parcels",
)
def draft_round(
    body: RoundIn, actor: ActorDep, session: SessionDep, idempotency_key: IdempotencyKey = None
) -> Any:
    return _idempotent(
        session,
        actor,
        idempotency_key,
        "rounds",
        body.model_dump(mode="json"),
        lambda: presenters.round_public(
            session, funds.draft_round(session, actor=actor, year=body.year)
        ).model_dump(mode="json"),
    )


@router.get(
    "/compensation/payout-rounds",
    response_model=list[RoundPublic],
    responses=problems(401, 403),
    summary="Fund: your payout rounds",
)
def list_rounds(actor: ActorDep, session: SessionDep) -> Any:
    return [
        presenters.round_public(session, item) for item in funds.rounds_of(session, actor=actor)
    ]


@router.get(
    "/compensation/payout-rounds/{round_id}",
    response_model=RoundPublic,
    responses=problems(401, 404),
    summary="Fund: one payout round with its lines",
)
def get_round(round_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    return presenters.round_public(
        session, funds.get_round(session, actor=actor, round_id=round_id)
    )


@router.post(
    "/compensation/payout-rounds/{round_id}/pay",
    response_model=RoundPublic,
    responses=problems(401, 403, 404, 409),
    summary="Fund: pay a drafted round to cooperatives and households (all or nothing)",
)
def pay_round(
    round_id: uuid.UUID,
    actor: ActorDep,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    return _idempotent(
        session,
        actor,
        idempotency_key,
        "round-pay",
        {"round": str(round_id)},
        lambda: presenters.round_public(
            session, funds.pay_round(session, actor=actor, round_id=round_id)
        ).model_dump(mode="json"),
        status.HTTP_200_OK,
    )


# --- price index ---------------------------------------------------------------------------

FromDate = Annotated[date | None, Query(alias="from", description="first day (Asia/Shanghai)")]
ToDate = Annotated[date | None, Query(alias="to", description="last day (Asia/Shanghai)")]
TypeQuery = Annotated[str | None, Query(max_length=16, description="bamboo, wetland, residents")]


@router.get(
    "/price-index",
    response_model=PriceIndexPublic,
    response_model_by_alias=True,
    responses=problems(422),
    summary="Daily volume-weighted average price per credit type, from settled orders",
)
def get_price_index(
    session: SessionDep, type: TypeQuery = None, start: FromDate = None, end: ToDate = None
) -> Any:
    kind, first, last = price_index.check_range(type, start, end)
    points = price_index.price_index(session, credit_type=kind, start=first, end=last)
    return PriceIndexPublic(
        credit_type=kind,
        start=first,
        end=last,
        points=[
            PricePointPublic(
                day=point.day,
                credit_type=point.credit_type,
                vwap_fen_per_t=point.vwap_fen_per_t,
                volume_t=point.volume_t,
                amount_fen=point.amount_fen,
                orders=point.orders,
            )
            for point in points
        ],
    )


@router.get(
    "/price-index.svg",
    response_class=Response,
    responses={200: {"content": {SVG_MEDIA_TYPE: {}}, "description": "chart"}, **problems(422)},
    summary="The price index as an SVG chart",
)
def price_index_chart(
    request: Request,
    session: SessionDep,
    type: TypeQuery = None,
    start: FromDate = None,
    end: ToDate = None,
) -> Response:
    from tanhui.problems import request_locale

    kind, first, last = price_index.check_range(type, start, end)
    points = price_index.price_index(session, credit_type=kind, start=first, end=last)
    svg = price_index.chart_svg(points, start=first, end=last, locale=request_locale(request))
    return Response(svg, media_type=SVG_MEDIA_TYPE)


# --- statements ----------------------------------------------------------------------------


@router.get(
    "/statements/enterprise",
    response_model=EnterpriseStatementPublic,
    responses=problems(401, 422),
    summary="Your organisation's purchases: orders, certificates, totals",
)
def enterprise_statement(actor: ActorDep, session: SessionDep) -> Any:
    if actor.organisation_id is None:
        raise InvalidOrder()
    return presenters.enterprise_statement(session, actor.organisation_id)


@router.get(
    "/statements/cooperative",
    response_model=CooperativeStatementPublic,
    responses=problems(401, 403, 404),
    summary="Your cooperative's sales and what each household received",
)
def cooperative_statement(
    actor: ActorDep, session: SessionDep, cooperative_id: uuid.UUID | None = None
) -> Any:
    statement = statements.cooperative_statement(
        session, actor=actor, cooperative_id=cooperative_id
    )
    return CooperativeStatementPublic(
        cooperative_id=statement.cooperative_id,
        sold_t=statement.sold_t,
        revenue_fen=statement.revenue_fen,
        households_fen=statement.households_fen,
        rewards_fund_fen=statement.rewards_fund_fen,
        compensation_fen=statement.compensation_fen,
        sales=[SaleRowPublic(**row.__dict__) for row in statement.sales],
        households=[
            HouseholdTotalPublic(
                household_id=item.household_id,
                name=item.name,
                village=item.village,
                sales_fen=item.sales_fen,
                compensation_fen=item.compensation_fen,
                total_fen=item.total_fen,
            )
            for item in statement.households
        ],
        compensation=[CompensationRowPublic(**row.__dict__) for row in statement.compensation],
    )


def _household(statement: statements.HouseholdStatement) -> HouseholdStatementPublic:
    return HouseholdStatementPublic(
        household_id=statement.household_id,
        name=statement.name,
        village=statement.village,
        cooperative=statement.cooperative,
        total_fen=statement.total_fen,
        balance_fen=statement.balance_fen,
        entries=[HouseholdEntryPublic(**entry.__dict__) for entry in statement.entries],
    )


@router.get(
    "/statements/households/{household_id}",
    response_model=HouseholdStatementPublic,
    responses=problems(401, 404),
    summary="Cooperative: one household's statement",
)
def household_statement(household_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    return _household(
        statements.household_statement_for(session, actor=actor, household_id=household_id)
    )


@router.get(
    "/statements/households/{household_id}/link",
    response_model=StatementLink,
    responses=problems(401, 404),
    summary="Cooperative: the signed link to a household's own statement (for an SMS)",
)
def household_link(household_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Any:
    issued = statements.household_link(session, actor=actor, household_id=household_id)
    return StatementLink(
        household_id=household_id,
        url=f"{get_settings().base_url.rstrip('/')}/h/{issued.token}",
        expires_at=issued.expires_at,
    )


@router.get(
    "/statements/by-link/{token}",
    response_model=HouseholdStatementPublic,
    responses=problems(404, 410),
    summary="A household's own statement, by the signed link its cooperative gave it",
)
def household_by_link(token: str, session: SessionDep) -> Any:
    return _household(
        statements.household_statement(session, statements.household_from_token(token))
    )


__all__ = ["BODY_LIMITS", "Provider", "router"]
