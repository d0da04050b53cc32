"""Stripe Checkout: one Checkout Session per checkout, fulfilled only from webhooks.

The session is ``mode=payment`` in CNY with the payment methods of
``TANHUI_STRIPE_PAYMENT_METHOD_TYPES`` (``card``, ``wechat_pay``), expires with the order's hold
(``expires_at``), names the order in ``metadata`` and ``client_reference_id``, and is created with
an idempotency key derived from the order (so a retried request never opens a second session).
``TANHUI_STRIPE_API_BASE`` points the SDK elsewhere (the tests' local double).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import stripe

from market.errors import PaymentProviderFailed
from market.models import Order, Payment, Provider
from market.payments.base import CheckoutStart, LineDescription
from tanhui.i18n import N_
from tanhui.settings import get_settings

NETWORK_RETRIES = 2
PRODUCT_NAME_LIMIT = 250


def client() -> stripe.StripeClient:
    settings = get_settings()
    if settings.stripe_secret_key is None:
        raise PaymentProviderFailed(N_("Stripe is not configured (TANHUI_STRIPE_SECRET_KEY)."))
    base_addresses: dict[str, str] = {}
    if settings.stripe_api_base:
        base_addresses["api"] = settings.stripe_api_base.rstrip("/")
    return stripe.StripeClient(
        settings.stripe_secret_key.get_secret_value(),
        base_addresses=base_addresses,  # type: ignore[arg-type]
        max_network_retries=NETWORK_RETRIES,
    )


def _failed(error: stripe.StripeError) -> PaymentProviderFailed:
    return PaymentProviderFailed(
        N_("Stripe answered: {message}"),
        message=str(error.user_message or error)[:300],
        stripe_code=getattr(error, "code", None),
    )


class StripeProvider:
    name = Provider.stripe

    def start(
        self, order: Order, payment: Payment, lines: Sequence[LineDescription]
    ) -> CheckoutStart:
        settings = get_settings()
        base = settings.base_url.rstrip("/")
        methods = list(settings.stripe_payment_method_types)
        params: dict[str, Any] = {
            "mode": "payment",
            "currency": "cny",
            "payment_method_types": methods,
            "line_items": [
                {
                    "quantity": line.quantity_t,
                    "price_data": {
                        "currency": "cny",
                        "unit_amount": line.price_fen_per_t,
                        "product_data": {"name": line.name[:PRODUCT_NAME_LIMIT]},
                    },
                }
                for line in lines
            ],
            "expires_at": int(payment.expires_at.timestamp()),
            "client_reference_id": str(order.id),
            "metadata": {"order_id": str(order.id), "order_number": order.number},
            "payment_intent_data": {
                "metadata": {"order_id": str(order.id), "order_number": order.number}
            },
            "success_url": f"{base}/market/orders/{order.id}?checkout=success",
            "cancel_url": f"{base}/market/orders/{order.id}?checkout=cancelled",
        }
        if "wechat_pay" in methods:
            params["payment_method_options"] = {"wechat_pay": {"client": "web"}}
        try:
            created = client().v1.checkout.sessions.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": f"tanhui-checkout-{order.id}-{payment.id}"},
            )
        except stripe.StripeError as error:
            raise _failed(error) from error
        return CheckoutStart(external_id=str(created.id), checkout_url=created.url)

    def refund(
        self, *, payment: Payment | None, amount_fen: int, key: str, reason: str
    ) -> str | None:
        if payment is None or not (payment.payment_intent or payment.external_id):
            raise PaymentProviderFailed(N_("There is no Stripe payment to refund."))
        try:
            intent = payment.payment_intent
            if intent is None and payment.external_id is not None:
                session = client().v1.checkout.sessions.retrieve(payment.external_id)
                intent = str(session.payment_intent) if session.payment_intent else None
            if intent is None:
                raise PaymentProviderFailed(N_("There is no Stripe payment to refund."))
            refund = client().v1.refunds.create(
                params={
                    "payment_intent": intent,
                    "amount": amount_fen,
                    "reason": "requested_by_customer",
                    "metadata": {"tanhui_reason": reason, "tanhui_key": key},
                },
                options={"idempotency_key": f"tanhui-refund-{key}"},
            )
        except stripe.StripeError as error:
            raise _failed(error) from error
        return str(refund.id)

    def cancel(self, payment: Payment) -> None:
        if payment.external_id is None:
            return
        try:
            client().v1.checkout.sessions.expire(payment.external_id)
        except stripe.StripeError:
            return  # already complete or expired: the webhooks will tell
