"""Bank transfer (对公转账), how most Chinese enterprises pay.

The order page shows the platform's account (``TANHUI_MARKET_BANK_ACCOUNT``) and the order number
as the unique reference to write on the transfer. Platform finance confirms the amount that
arrived (``POST /api/v1/market/bank-transfers/confirm``); partial and excess amounts are handled
by ``market.service.payments``. Refunds are wired back by finance: the ledger records them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from market.models import Order, Payment, Provider
from market.payments.base import CheckoutStart, LineDescription
from tanhui.settings import get_settings


@dataclass(frozen=True)
class BankAccount:
    bank: str
    holder: str
    number: str


def platform_account() -> BankAccount:
    """The account enterprises pay to: ``bank | holder | number`` from the settings."""
    parts = [part.strip() for part in get_settings().market_bank_account.split("|")]
    while len(parts) < 3:
        parts.append("")
    return BankAccount(bank=parts[0], holder=parts[1], number=parts[2])


class BankTransferProvider:
    name = Provider.bank_transfer

    def start(
        self, order: Order, payment: Payment, lines: Sequence[LineDescription]
    ) -> CheckoutStart:
        base = get_settings().base_url.rstrip("/")
        return CheckoutStart(
            external_id=f"bank_{order.number}_{payment.id.hex[:8]}",
            checkout_url=f"{base}/market/orders/{order.id}",
        )

    def refund(
        self, *, payment: Payment | None, amount_fen: int, key: str, reason: str
    ) -> str | None:
        return None  # finance wires the money back; the ledger entry is the record

    def cancel(self, payment: Payment) -> None:
        return None
