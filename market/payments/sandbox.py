"""The sandbox: a local checkout page (``/market/sandbox/{payment}``) with "pay" and "cancel".

Used by ``tanhui demo`` and whenever no Stripe key is set (never in production). Paying there
drives the same fulfilment as a Stripe webhook (``market.service.payments.record_payment``).
"""

from __future__ import annotations

from collections.abc import Sequence

from market.models import Order, Payment, Provider
from market.payments.base import CheckoutStart, LineDescription
from tanhui.settings import get_settings


class SandboxProvider:
    name = Provider.sandbox

    def start(
        self, order: Order, payment: Payment, lines: Sequence[LineDescription]
    ) -> CheckoutStart:
        base = get_settings().base_url.rstrip("/")
        return CheckoutStart(
            external_id=f"sbx_{payment.id.hex}",
            checkout_url=f"{base}/market/sandbox/{payment.id}",
        )

    def refund(
        self, *, payment: Payment | None, amount_fen: int, key: str, reason: str
    ) -> str | None:
        return f"sbx_re_{key}"[:255]

    def cancel(self, payment: Payment) -> None:
        return None
