"""The live totals on the home page, from the registry's and the wallet's services.

Tonnes issued and retired come from the registry's public read model; residents' reductions are
what the wallet's ``system:issuance`` account has issued in grams (``RED_G``). Households paid
are the household CNY accounts that ever received money (one aggregate query in the wallet).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from registry.service import public
from wallet import service as wallet

HOUSEHOLD_OWNER_PREFIX = "household:"


@dataclass(frozen=True)
class Totals:
    issued_t: int
    retired_t: int
    households_paid: int
    paid_to_households_fen: int
    residents_reductions_g: int


def households_paid(session: Session) -> tuple[int, int]:
    """(households that ever received CNY, the CNY they received in fen)."""
    paid = wallet.owner_totals(session, owner_prefix=HOUSEHOLD_OWNER_PREFIX, asset=wallet.ASSET_CNY)
    return paid.accounts_credited, paid.posted_credits


def residents_reductions_g(session: Session) -> int:
    """Grams CO2e credited to residents: what the reductions issuance account has issued."""
    account = wallet.find_account(session, asset=wallet.ASSET_REDUCTION_G, owner="system:issuance")
    if account is None:
        return 0
    balance = wallet.get_balance(session, account.id)
    return max(0, balance.posted_debits - balance.posted_credits)


def totals(session: Session) -> Totals:
    per_project = public.project_totals(session).values()
    count, amount = households_paid(session)
    return Totals(
        issued_t=sum(issued for issued, _ in per_project),
        retired_t=sum(retired for _, retired in per_project),
        households_paid=count,
        paid_to_households_fen=amount,
        residents_reductions_g=residents_reductions_g(session),
    )
