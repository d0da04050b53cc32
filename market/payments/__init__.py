"""Payment providers behind one interface (:class:`~market.payments.base.PaymentProvider`):
Stripe Checkout, bank transfer (对公转账) and the local sandbox. Choosing one is a setting and a
per-order choice; fulfilment is the same code path for all (``market.service.payments``)."""

from market.payments.base import CheckoutStart, LineDescription, PaymentProvider, provider_for

__all__ = ["CheckoutStart", "LineDescription", "PaymentProvider", "provider_for"]
