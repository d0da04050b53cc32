"""The market's pages: browse and buy (cart, retire-on-purchase, checkout through the configured
provider), orders, certificates and receipts, API tokens; the sandbox checkout page; the
cooperative's sales; platform finance (bank transfers, fund deposits); the public price index;
a household's own statement by its signed link.

Plain HTML forms that work without JavaScript; the cart lives in a signed cookie. Every page
calls the same service functions as the API.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeSerializer
from markupsafe import Markup

from frontend import fields
from frontend.access import actor_of, may_act, require_role, sign_in_redirect
from frontend.forms import errors_by_field, refusal_errors
from frontend.navigation import ORGANISATION_LINKS, PUBLIC_LINKS
from frontend.templating import DISPLAY_TZ, page_locale, render
from market import presenters
from market.models import Provider
from market.payments.bank_transfer import platform_account
from market.schemas import MAX_PRICE_FEN_PER_T
from market.service import (
    bank,
    buyers,
    compensation,
    funds,
    listings,
    orders,
    payments,
    price_index,
)
from market.service import statements as statement_service
from registry import geo
from registry.models import RetirementPurpose
from registry.service import contracts, issuance
from registry.service.actors import Actor
from registry.service.retirements import CASE_PURPOSES
from tanhui import identity
from tanhui.auth import MissingPermission, OptionalPrincipal, Principal, SessionDep
from tanhui.errors import DomainError, InvalidInput
from tanhui.i18n import N_
from tanhui.models import OrgKind, Role
from tanhui.settings import get_settings

router = APIRouter(include_in_schema=False)

CART_COOKIE = "tanhui_cart"
CART_SALT = "tanhui.cart"
MAX_CART_LINES = orders.MAX_LINES

PUBLIC_LINKS.append(("/market", N_("Carbon market")))
PUBLIC_LINKS.append(("/price-index", N_("Price index")))
ORGANISATION_LINKS[OrgKind.enterprise] += [
    ("/market/cart", N_("Cart")),
    ("/market/orders", N_("My orders")),
    ("/market/cases", N_("Judicial cases")),
    ("/market/tokens", N_("API tokens")),
]
ORGANISATION_LINKS[OrgKind.cooperative] += [("/market/sales", N_("Listings and sales"))]
ORGANISATION_LINKS[OrgKind.platform] += [("/market/finance", N_("Finance"))]

CREDIT_TYPES = {
    "bamboo": N_("Bamboo forest sink"),
    "wetland": N_("Wetland sink"),
    "residents": N_("Residents' pooled reductions"),
}
ORDER_STATUS = {
    "awaiting_payment": N_("Awaiting payment"),
    "processing": N_("Payment processing"),
    "settled": N_("Settled"),
    "expired": N_("Expired"),
    "cancelled": N_("Cancelled"),
    "failed": N_("Payment failed"),
    "refunded": N_("Refunded"),
}
LISTING_STATUS = {
    "active": N_("On sale"),
    "closed": N_("Delisted"),
    "sold_out": N_("Sold out"),
    "ended": N_("Ended"),
}
PROVIDERS = {
    "stripe": N_("Card or WeChat Pay (Stripe)"),
    "bank_transfer": N_("Bank transfer (对公转账)"),
    "sandbox": N_("Sandbox (demo payment)"),
}
PURPOSES = {
    "annual_neutrality": N_("Annual carbon neutrality"),
    "event_neutrality": N_("Event carbon neutrality"),
    "product_footprint": N_("Product footprint offset"),
    "ecological_compensation": N_("Ecological compensation"),
    "judicial_restoration": N_("Judicial ecological restoration"),
}
BUYER_PURPOSES = [p for p in PURPOSES if RetirementPurpose(p) not in CASE_PURPOSES]
OUTCOMES = {
    "settled": N_("Paid and settled."),
    "partial": N_("Part of the amount was recorded; the rest is still due."),
    "refunded": N_("The money arrived after the tonnes were sold: it is refunded."),
    "already_settled": N_("The order was settled already; the extra money is refunded."),
    "duplicate": N_("This payment was recorded before."),
}
LABELS = {
    "credit_types": CREDIT_TYPES,
    "order_status": ORDER_STATUS,
    "listing_status": LISTING_STATUS,
    "providers": PROVIDERS,
    "purposes": PURPOSES,
}


# --- access --------------------------------------------------------------------------------


def face(*kinds: OrgKind, minimum: Role = Role.viewer) -> Any:
    """A dependency: a signed-in user of an organisation of ``kinds`` (any kind if none)."""

    def dependency(request: Request, principal: OptionalPrincipal) -> Principal:
        if principal is None:
            raise sign_in_redirect(request)
        organisation = principal.organisation
        if principal.user is None or organisation is None:
            raise MissingPermission(N_("This needs an organisation or platform account."))
        if kinds and organisation.kind not in kinds:
            raise MissingPermission(
                N_("This is for organisations of kind {kinds}."),
                kinds=", ".join(kind.value for kind in kinds),
            )
        require_role(principal, minimum)
        return principal

    return dependency


Member = Annotated[Principal, Depends(face())]
Seller = Annotated[Principal, Depends(face(OrgKind.cooperative, OrgKind.platform))]
Finance = Annotated[Principal, Depends(face(OrgKind.platform, minimum=Role.member))]


def _context(**values: Any) -> dict[str, Any]:
    return {"labels": LABELS, **values}


def _end_of_day(value: str) -> datetime:
    """The last day of a sale (``YYYY-MM-DD``) → the moment it ends: midnight after it in
    Asia/Shanghai."""
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(
            N_("Give the date as YYYY-MM-DD."),
            errors=[{"field": "ends_at", "message": "YYYY-MM-DD"}],
        ) from None
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=DISPLAY_TZ).astimezone(UTC)


# --- the cart (a signed cookie) --------------------------------------------------------------


def _cart_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(get_settings().secret_key_value, salt=CART_SALT)


def read_cart(request: Request) -> dict[str, int]:
    raw = request.cookies.get(CART_COOKIE)
    if not raw:
        return {}
    try:
        value = _cart_serializer().loads(raw)
    except BadSignature:
        return {}
    if not isinstance(value, dict):
        return {}
    cart: dict[str, int] = {}
    for key, quantity in list(value.items())[:MAX_CART_LINES]:
        if isinstance(key, str) and isinstance(quantity, int) and quantity > 0:
            cart[key] = quantity
    return cart


def write_cart(response: Response, cart: dict[str, int]) -> None:
    if not cart:
        response.delete_cookie(CART_COOKIE, path="/market")
        return
    response.set_cookie(
        CART_COOKIE,
        _cart_serializer().dumps(cart),
        httponly=True,
        samesite="lax",
        secure=get_settings().base_url.startswith("https://"),
        path="/market",
        max_age=7 * 24 * 3600,
    )


# --- browse --------------------------------------------------------------------------------


@router.get("/market", response_class=HTMLResponse)
def browse(
    request: Request,
    session: SessionDep,
    principal: OptionalPrincipal,
    type: str = "",
    district: str = "",
    vintage: str = "",
    min_price: str = "",
    max_price: str = "",
) -> Response:
    errors: dict[str, str] = {}
    query = listings.ListingQuery(credit_type=type or None, district_adcode=district or None)
    locale = page_locale(request, principal)
    try:
        query = listings.ListingQuery(
            credit_type=type or None,
            district_adcode=district or None,
            vintage=fields.whole(vintage, "vintage", minimum=1) if vintage.strip() else None,
            min_price_fen=fields.fen(min_price, "min_price") if min_price.strip() else None,
            max_price_fen=fields.fen(max_price, "max_price") if max_price.strip() else None,
            limit=100,
        )
    except DomainError as error:
        errors = errors_by_field(error, locale)
    found = presenters.search_public(session, query)
    return render(
        request,
        "market/browse.html",
        _context(
            listings=found,
            districts=geo.districts(),
            form={
                "type": type,
                "district": district,
                "vintage": vintage,
                "min_price": min_price,
                "max_price": max_price,
            },
            errors=errors,
            cart_size=len(read_cart(request)),
        ),
        principal=principal,
    )


@router.get("/market/listings/{listing_id}", response_class=HTMLResponse)
def listing_page(
    listing_id: uuid.UUID, request: Request, session: SessionDep, principal: OptionalPrincipal
) -> Response:
    item = listings.get_listing(session, listing_id)
    shown = presenters.listing_public(session, item)
    return render(
        request,
        "market/listing.html",
        _context(
            listing=shown,
            household_share_bp=contracts.project_household_share_bp(session, item.project_id),
        ),
        principal=principal,
    )


@router.post("/market/cart", response_class=HTMLResponse)
def add_to_cart(
    request: Request,
    principal: Member,
    session: SessionDep,
    listing_id: Annotated[str, Form(max_length=40)] = "",
    quantity_t: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    cart = read_cart(request)
    try:
        wanted = fields.identifier(listing_id, "listing_id")
        quantity = fields.whole(quantity_t, "quantity_t", minimum=1)
        listings.get_listing(session, wanted)
    except DomainError as error:
        return _cart_page(
            request,
            principal,
            session,
            cart,
            errors_by_field(error, page_locale(request, principal)),
            status_code=error.status,
        )
    key = str(wanted)
    if key not in cart and len(cart) >= MAX_CART_LINES:
        key = next(iter(cart))
    cart[key] = quantity
    response = RedirectResponse("/market/cart", status_code=303)
    write_cart(response, cart)
    return response


@router.post("/market/cart/remove", response_class=HTMLResponse)
def remove_from_cart(
    request: Request, principal: Member, listing_id: Annotated[str, Form(max_length=40)] = ""
) -> Response:
    cart = read_cart(request)
    cart.pop(listing_id.strip(), None)
    response = RedirectResponse("/market/cart", status_code=303)
    write_cart(response, cart)
    return response


@router.get("/market/cart", response_class=HTMLResponse)
def cart_page(request: Request, principal: Member, session: SessionDep) -> Response:
    return _cart_page(request, principal, session, read_cart(request), {})


def _cart_page(
    request: Request,
    principal: Principal,
    session: SessionDep,
    cart: dict[str, int],
    errors: dict[str, str],
    *,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    items = []
    for key, quantity in cart.items():
        try:
            item = listings.get_listing(session, uuid.UUID(key))
        except (ValueError, DomainError):
            continue
        items.append((presenters.listing_public(session, item), quantity))
    total = sum(item.price_fen_per_t * quantity for item, quantity in items)
    providers = orders.available_providers()
    return render(
        request,
        "market/cart.html",
        _context(
            items=items,
            total_fen=total,
            errors=errors,
            form=form or {"provider": orders.default_provider().value},
            providers=[p.value for p in providers],
            purposes=BUYER_PURPOSES,
        ),
        principal=principal,
        status_code=status_code,
    )


@router.post("/market/checkout", response_class=HTMLResponse)
def checkout(
    request: Request,
    principal: Member,
    session: SessionDep,
    provider: Annotated[str, Form(max_length=20)] = "",
    retire_on_purchase: Annotated[str, Form(max_length=5)] = "",
    beneficiary: Annotated[str, Form(max_length=200)] = "",
    purpose: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Turn the cart into an order, then open its checkout and go there."""
    cart = read_cart(request)
    form = {
        "provider": provider,
        "retire_on_purchase": retire_on_purchase,
        "beneficiary": beneficiary,
        "purpose": purpose,
    }
    actor = actor_of(principal)
    try:
        if not cart:
            raise InvalidInput(N_("The cart is empty."))
        chosen = _provider(provider)
        retire = retire_on_purchase == "on"
        reason = _purpose(purpose) if retire and purpose else None
        placed = orders.create_order(
            session,
            actor=actor,
            lines=[
                orders.LineRequest(listing_id=uuid.UUID(key), quantity_t=quantity)
                for key, quantity in cart.items()
            ],
            provider=chosen,
            retire_on_purchase=retire,
            beneficiary=beneficiary,
            purpose=reason,
        )
    except DomainError as error:
        return _cart_page(
            request,
            principal,
            session,
            cart,
            refusal_errors(session, request, principal, error),
            form=form,
            status_code=error.status,
        )
    order_id = placed.id
    session.commit()  # the tonnes are held from here on, whatever the provider answers
    return _go_pay(session, actor, order_id, clear_cart=True)


def _go_pay(
    session: SessionDep, actor: Actor, order_id: uuid.UUID, *, clear_cart: bool
) -> Response:
    try:
        payment = payments.start_checkout(session, actor=actor, order_id=order_id)
        target = payment.checkout_url or f"/market/orders/{order_id}"
    except DomainError:
        session.rollback()
        target = f"/market/orders/{order_id}?checkout=failed"
    if target.startswith(get_settings().base_url.rstrip("/")):
        target = target[len(get_settings().base_url.rstrip("/")) :] or "/"
    response = RedirectResponse(target, status_code=303)
    if clear_cart:
        write_cart(response, {})
    return response


def _provider(value: str) -> Provider:
    try:
        return orders.check_provider(Provider(value) if value else None)
    except ValueError:
        raise InvalidInput(
            N_("Choose one of the options."), errors=[{"field": "provider", "message": "invalid"}]
        ) from None


def _purpose(value: str) -> RetirementPurpose:
    if value not in BUYER_PURPOSES:
        raise InvalidInput(
            N_("Choose the purpose of the retirement."),
            errors=[{"field": "purpose", "message": "required"}],
        )
    return RetirementPurpose(value)


# --- orders --------------------------------------------------------------------------------


@router.get("/market/orders", response_class=HTMLResponse)
def orders_page(request: Request, principal: Member, session: SessionDep) -> Response:
    assert principal.organisation is not None
    statement = presenters.enterprise_statement(session, principal.organisation.id)
    return render(
        request,
        "market/orders.html",
        _context(statement=statement),
        principal=principal,
    )


@router.get("/market/orders/{order_id}", response_class=HTMLResponse)
def order_page(
    order_id: uuid.UUID,
    request: Request,
    principal: Member,
    session: SessionDep,
    checkout: str = "",
) -> Response:
    order = orders.get_order(session, actor=actor_of(principal), order_id=order_id)
    return render(
        request,
        "market/order.html",
        _context(
            order=presenters.order_public(session, order),
            refunds=payments.refunds_of(session, order.id),
            checkout=checkout,
            verify=presenters.verify_url,
        ),
        principal=principal,
    )


@router.post("/market/orders/{order_id}/pay", response_class=HTMLResponse)
def pay_order(order_id: uuid.UUID, principal: Member, session: SessionDep) -> Response:
    return _go_pay(session, actor_of(principal), order_id, clear_cart=False)


@router.post("/market/orders/{order_id}/cancel", response_class=HTMLResponse)
def cancel_order(order_id: uuid.UUID, principal: Member, session: SessionDep) -> Response:
    payments.cancel_order(session, actor=actor_of(principal), order_id=order_id)
    return RedirectResponse(f"/market/orders/{order_id}", status_code=303)


@router.get("/market/orders/{order_id}/receipt.pdf")
def receipt_pdf(order_id: uuid.UUID, principal: Member, session: SessionDep) -> Response:
    name, content = statement_service.receipt_pdf(
        session, actor=actor_of(principal), order_id=order_id
    )
    return Response(
        content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- the sandbox checkout page ---------------------------------------------------------------


@router.get("/market/sandbox/{payment_id}", response_class=HTMLResponse)
def sandbox_page(
    payment_id: uuid.UUID, request: Request, principal: Member, session: SessionDep
) -> Response:
    payment = payments.get_sandbox_payment(
        session, actor=actor_of(principal), payment_id=payment_id
    )
    order = orders.get_order_unchecked(session, payment.order_id)
    return render(
        request,
        "market/sandbox.html",
        _context(payment=payment, order=presenters.order_public(session, order)),
        principal=principal,
    )


@router.post("/market/sandbox/{payment_id}/pay", response_class=HTMLResponse)
def sandbox_pay(payment_id: uuid.UUID, principal: Member, session: SessionDep) -> Response:
    outcome = payments.sandbox_complete(session, actor=actor_of(principal), payment_id=payment_id)
    return RedirectResponse(
        f"/market/orders/{outcome.order.id}?checkout={outcome.outcome}", status_code=303
    )


@router.post("/market/sandbox/{payment_id}/cancel", response_class=HTMLResponse)
def sandbox_cancel(payment_id: uuid.UUID, principal: Member, session: SessionDep) -> Response:
    order = payments.sandbox_cancel(session, actor=actor_of(principal), payment_id=payment_id)
    return RedirectResponse(f"/market/orders/{order.id}?checkout=cancelled", status_code=303)


# --- judicial cases, the defendant's side ---------------------------------------------------


def _defendant_cases_page(
    request: Request,
    principal: Principal,
    session: SessionDep,
    error: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """The cases in which the enterprise is the defendant (a court sees its own elsewhere)."""
    actor = actor_of(principal)
    cases = [
        presenters.case_public(session, case)
        for case in compensation.cases_for(session, actor=actor)
        if case.defendant_id == actor.organisation_id
    ]
    return render(
        request,
        "market/cases.html",
        _context(cases=cases, error=error),
        principal=principal,
        status_code=status_code,
    )


@router.get("/market/cases", response_class=HTMLResponse)
def defendant_cases(request: Request, principal: Member, session: SessionDep) -> Response:
    return _defendant_cases_page(request, principal, session)


@router.post("/market/cases/{case_id}/pay", response_class=HTMLResponse)
def pay_case(
    case_id: uuid.UUID,
    request: Request,
    principal: Member,
    session: SessionDep,
    provider: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    actor = actor_of(principal)
    try:
        placed = compensation.order_for_case(
            session, actor=actor, case_id=case_id, provider=_provider(provider)
        )
    except DomainError as error:
        errors = refusal_errors(session, request, principal, error)
        return _defendant_cases_page(request, principal, session, errors, error.status)
    order_id = placed.id
    session.commit()
    return _go_pay(session, actor, order_id, clear_cart=False)


# --- API tokens ----------------------------------------------------------------------------


@router.get("/market/tokens", response_class=HTMLResponse)
def tokens_page(request: Request, principal: Member, session: SessionDep) -> Response:
    assert principal.user is not None
    return render(
        request,
        "market/tokens.html",
        _context(tokens=identity.list_api_tokens(session, user=principal.user), created=None),
        principal=principal,
    )


@router.post("/market/tokens", response_class=HTMLResponse)
def create_token(
    request: Request,
    principal: Member,
    session: SessionDep,
    name: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    assert principal.user is not None
    created = identity.create_api_token(session, user=principal.user, name=name or "api")
    return render(
        request,
        "market/tokens.html",
        _context(
            tokens=identity.list_api_tokens(session, user=principal.user), created=created.token
        ),
        principal=principal,
        status_code=201,
    )


@router.post("/market/tokens/{token_id}/revoke", response_class=HTMLResponse)
def revoke_token(token_id: uuid.UUID, principal: Member, session: SessionDep) -> Response:
    assert principal.user is not None
    identity.revoke_api_token(session, user=principal.user, token_id=token_id)
    return RedirectResponse("/market/tokens", status_code=303)


# --- the cooperative's listings and sales ---------------------------------------------------


@router.get("/market/sales", response_class=HTMLResponse)
def sales_page(request: Request, principal: Seller, session: SessionDep) -> Response:
    return _sales_page(request, principal, session, {}, {})


def _sales_page(
    request: Request,
    principal: Principal,
    session: SessionDep,
    errors: dict[str, str],
    form: dict[str, str],
    status_code: int = 200,
) -> Response:
    assert principal.organisation is not None
    actor = actor_of(principal)
    owner = f"org:{principal.organisation.id}"
    holdings = [
        (batch, quantity)
        for batch, state, quantity in issuance.holdings(session, owner)
        if str(state) == "held" and quantity > 0
    ]
    mine = presenters.listings_public(
        session, listings.listings_of_seller(session, principal.organisation.id)
    )
    statement = None
    if principal.organisation.kind == OrgKind.cooperative:
        statement = statement_service.cooperative_statement(session, actor=actor)
    return render(
        request,
        "market/sales.html",
        _context(
            holdings=holdings,
            listings=mine,
            statement=statement,
            errors=errors,
            form=form,
            may_act=may_act(principal),
        ),
        principal=principal,
        status_code=status_code,
    )


@router.post("/market/sales/listings", response_class=HTMLResponse)
def create_listing(
    request: Request,
    principal: Seller,
    session: SessionDep,
    batch_id: Annotated[str, Form(max_length=40)] = "",
    quantity_t: Annotated[str, Form(max_length=20)] = "",
    price: Annotated[str, Form(max_length=20)] = "",
    min_order_t: Annotated[str, Form(max_length=20)] = "1",
    ends_on: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    form = {
        "batch_id": batch_id,
        "quantity_t": quantity_t,
        "price": price,
        "min_order_t": min_order_t,
        "ends_on": ends_on,
    }
    try:
        listings.create_listing(
            session,
            actor=actor_of(principal),
            batch_id=fields.identifier(batch_id, "batch_id"),
            quantity_t=fields.whole(quantity_t, "quantity_t", minimum=1),
            price_fen_per_t=fields.fen(price, "price", maximum=MAX_PRICE_FEN_PER_T),
            min_order_t=fields.whole(min_order_t or "1", "min_order_t", minimum=1),
            ends_at=_end_of_day(ends_on) if ends_on.strip() else None,
        )
    except DomainError as error:
        return _sales_page(
            request,
            principal,
            session,
            refusal_errors(session, request, principal, error),
            form,
            status_code=error.status,
        )
    return RedirectResponse("/market/sales", status_code=303)


@router.post("/market/sales/listings/{listing_id}/delist", response_class=HTMLResponse)
def delist(listing_id: uuid.UUID, principal: Seller, session: SessionDep) -> Response:
    listings.delist(session, actor=actor_of(principal), listing_id=listing_id)
    return RedirectResponse("/market/sales", status_code=303)


@router.get("/market/sales/households/{household_id}", response_class=HTMLResponse)
def household_for_coop(
    household_id: uuid.UUID, request: Request, principal: Seller, session: SessionDep
) -> Response:
    actor = actor_of(principal)
    statement = statement_service.household_statement_for(
        session, actor=actor, household_id=household_id
    )
    issued = statement_service.household_link(session, actor=actor, household_id=household_id)
    link = f"{get_settings().base_url.rstrip('/')}/h/{issued.token}"
    return render(
        request,
        "market/household.html",
        _context(statement=statement, link=link, link_expires=issued.expires_at, public=False),
        principal=principal,
    )


@router.get("/h/{token}", response_class=HTMLResponse)
def household_by_link(
    token: str, request: Request, session: SessionDep, principal: OptionalPrincipal
) -> Response:
    statement = statement_service.household_statement(
        session, statement_service.household_from_token(token)
    )
    return render(
        request,
        "market/household.html",
        _context(statement=statement, link=None, public=True),
        principal=principal,
    )


# --- platform finance ----------------------------------------------------------------------


@router.get("/market/finance", response_class=HTMLResponse)
def finance_page(request: Request, principal: Finance, session: SessionDep) -> Response:
    return _finance_page(request, principal, session, {}, {}, None)


def _finance_page(
    request: Request,
    principal: Principal,
    session: SessionDep,
    errors: dict[str, str],
    form: dict[str, str],
    message: str | None,
    status_code: int = 200,
) -> Response:
    actor = actor_of(principal)
    waiting = [
        presenters.order_public(session, order)
        for order in bank.awaiting_transfers(session, actor=actor)
    ]
    fund_orgs = identity.list_organisations(session, kind=OrgKind.compensation_fund)
    verified = buyers.verified_buyers(session, actor=actor)
    done = {record.organisation_id for record, _name in verified}
    candidates = [
        organisation
        for organisation in identity.list_organisations(session)
        if organisation.kind != OrgKind.platform and organisation.id not in done
    ]
    return render(
        request,
        "market/finance.html",
        _context(
            waiting=waiting,
            verified=verified,
            candidates=candidates,
            funds=[(fund, funds.fund_balance_fen(session, fund.id)) for fund in fund_orgs],
            account=platform_account(),
            errors=errors,
            form=form,
            message=message,
        ),
        principal=principal,
        status_code=status_code,
    )


@router.post("/market/finance/confirm", response_class=HTMLResponse)
def confirm_transfer(
    request: Request,
    principal: Finance,
    session: SessionDep,
    reference: Annotated[str, Form(max_length=40)] = "",
    amount: Annotated[str, Form(max_length=20)] = "",
    bank_reference: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    form = {"reference": reference, "amount": amount, "bank_reference": bank_reference}
    locale = page_locale(request, principal)
    try:
        outcome = bank.confirm_bank_transfer(
            session,
            actor=actor_of(principal),
            reference=reference,
            amount_fen=fields.fen(amount, "amount"),
            bank_reference=bank_reference,
        )
    except DomainError as error:
        errors = refusal_errors(session, request, principal, error)
        return _finance_page(request, principal, session, errors, form, None, error.status)
    from tanhui.i18n import translate

    message = f"{outcome.order.number}: {translate(OUTCOMES[outcome.outcome], locale)}"
    return _finance_page(request, principal, session, {}, {}, message)


@router.post("/market/finance/buyers", response_class=HTMLResponse)
def verify_buyer(
    request: Request,
    principal: Finance,
    session: SessionDep,
    organisation_id: Annotated[str, Form(max_length=40)] = "",
    uscc: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Staff confirm a buyer's unified social credit code, read off its business licence."""
    form = {"organisation_id": organisation_id, "uscc": uscc}
    try:
        buyers.verify(
            session,
            actor=actor_of(principal),
            organisation_id=fields.identifier(organisation_id, "organisation_id"),
            code=uscc,
        )
    except DomainError as error:
        errors = refusal_errors(session, request, principal, error)
        return _finance_page(request, principal, session, errors, form, None, error.status)
    return RedirectResponse("/market/finance#buyers", status_code=303)


@router.post("/market/finance/buyers/{organisation_id}/revoke", response_class=HTMLResponse)
def revoke_buyer(
    request: Request, organisation_id: uuid.UUID, principal: Finance, session: SessionDep
) -> Response:
    try:
        buyers.revoke(session, actor=actor_of(principal), organisation_id=organisation_id)
    except DomainError as error:
        errors = refusal_errors(session, request, principal, error)
        return _finance_page(request, principal, session, errors, {}, None, error.status)
    return RedirectResponse("/market/finance#buyers", status_code=303)


@router.post("/market/finance/deposits", response_class=HTMLResponse)
def fund_deposit(
    request: Request,
    principal: Finance,
    session: SessionDep,
    fund_id: Annotated[str, Form(max_length=40)] = "",
    deposit_amount: Annotated[str, Form(max_length=20)] = "",
    deposit_reference: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    form = {
        "fund_id": fund_id,
        "deposit_amount": deposit_amount,
        "deposit_reference": deposit_reference,
    }
    try:
        funds.record_deposit(
            session,
            actor=actor_of(principal),
            fund_id=fields.identifier(fund_id, "fund_id"),
            amount_fen=fields.fen(deposit_amount, "deposit_amount"),
            bank_reference=deposit_reference,
        )
    except DomainError as error:
        errors = refusal_errors(
            session, request, principal, error, renamed={"amount_fen": "deposit_amount"}
        )
        return _finance_page(request, principal, session, errors, form, None, error.status)
    return RedirectResponse("/market/finance", status_code=303)


# --- the public price index ----------------------------------------------------------------


@router.get("/price-index", response_class=HTMLResponse)
def price_index_page(
    request: Request,
    session: SessionDep,
    principal: OptionalPrincipal,
    type: str = "",
    start: str = "",
    end: str = "",
) -> Response:
    locale = page_locale(request, principal)
    errors: dict[str, str] = {}
    try:
        first = date.fromisoformat(start) if start else None
        last = date.fromisoformat(end) if end else None
        kind, first_day, last_day = price_index.check_range(type or None, first, last)
    except (ValueError, DomainError) as error:
        if isinstance(error, DomainError):
            errors = errors_by_field(error, locale)
        else:
            errors = {"_form": N_("Enter a date like 2024-12-31.")}
        kind, first_day, last_day = price_index.check_range(None, None, None)
    points = price_index.price_index(session, credit_type=kind, start=first_day, end=last_day)
    chart = price_index.chart_svg(points, start=first_day, end=last_day, locale=locale)
    return render(
        request,
        "market/price_index.html",
        _context(
            points=list(reversed(points)),
            chart=Markup(chart),  # noqa: S704 - drawn by us, every text escaped
            form={"type": type, "start": start, "end": end},
            start=first_day,
            end=last_day,
            errors=errors,
            json_url="/api/v1/market/price-index?"
            + "&".join(
                part
                for part in (
                    f"type={kind}" if kind else "",
                    f"from={first_day.isoformat()}",
                    f"to={last_day.isoformat()}",
                )
                if part
            ),
        ),
        principal=principal,
    )


__all__ = ["router"]
