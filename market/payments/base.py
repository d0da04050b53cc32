"""The interface every payment provider implements, and the choice of one by name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from market.models import Order, Payment, Provider


@dataclass(frozen=True)
class LineDescription:
    """What the buyer sees on a provider's checkout page for one order line."""

    name: str
    quantity_t: int
    price_fen_per_t: int


@dataclass(frozen=True)
class CheckoutStart:
    """What starting a checkout produced: the provider's id for it and where to send the buyer."""

    external_id: str | None
    checkout_url: str | None


class PaymentProvider(Protocol):
    name: Provider

    def start(
        self, order: Order, payment: Payment, lines: Sequence[LineDescription]
    ) -> CheckoutStart:
        """Open a checkout for ``payment`` (its ``amount_fen`` and ``expires_at`` are set)."""
        ...

    def refund(
        self, *, payment: Payment | None, amount_fen: int, key: str, reason: str
    ) -> str | None:
        """Send ``amount_fen`` back to the payer; the provider's refund id, if it has one.
        ``key`` is stable for this refund, so a retried request refunds once."""
        ...

    def cancel(self, payment: Payment) -> None:
        """Stop a checkout that is still open from being paid (best effort)."""
        ...


def provider_for(name: Provider) -> PaymentProvider:
    from market.payments.bank_transfer import BankTransferProvider
    from market.payments.sandbox import SandboxProvider
    from market.payments.stripe_checkout import StripeProvider

    if name == Provider.stripe:
        return StripeProvider()
    if name == Provider.bank_transfer:
        return BankTransferProvider()
    return SandboxProvider()
