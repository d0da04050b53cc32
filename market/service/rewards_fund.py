"""The residents' rewards fund (ADR 0059): the residents' pooled reductions are sold like any
credit, and what the pool operator would have received goes to this fund instead; the fund
reimburses merchants who honour the platform's vouchers with a face value.

Two CNY accounts, both the platform's:

- ``system:rewards_fund`` (floor 0) is credited by the settlement of every order line of a
  residents' (RES) project with the seller's net share (the price minus the platform fee and any
  households' part), in the settlement's single entry;
- ``system:operating`` (unbounded) is the platform's own money: when the fund holds less than a
  voucher's face value, the platform pays the rest.

A reimbursement is one journal entry (``code = reward_reimbursement``, idempotency key
``reward_reimbursement:<redemption>`` in scope ``rewards``) posted in the transaction that
confirms the voucher. The figures residents and the public see are read from the ledger: what
the fund received from sales, what it paid for rewards, its balance, and the platform's top-ups.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from market.service.common import CNY, cny_account, org_owner
from registry.models import Project, ProjectType
from wallet import service as wallet

FUND = "rewards_fund"
FUND_OWNER = f"system:{FUND}"
OPERATING = "operating"
REIMBURSEMENT_CODE = "reward_reimbursement"
REIMBURSEMENT_SCOPE = "rewards"
SETTLEMENT_CODE = "settlement"


def fund_account(session: Session) -> uuid.UUID:
    return wallet.system_account(session, FUND, CNY).id


def operating_account(session: Session) -> uuid.UUID:
    return wallet.system_account(session, OPERATING, CNY).id


def is_residents_project(session: Session, project_id: uuid.UUID) -> bool:
    project = session.get(Project, project_id)
    return project is not None and project.type == ProjectType.residents


@dataclass(frozen=True)
class Reimbursement:
    """How a voucher's face value reached the merchant: from the fund, then the platform."""

    entry_id: uuid.UUID
    from_fund_fen: int
    from_platform_fen: int

    @property
    def total_fen(self) -> int:
        return self.from_fund_fen + self.from_platform_fen


def reimburse(
    session: Session,
    *,
    redemption_id: uuid.UUID,
    reward_id: uuid.UUID,
    merchant_id: uuid.UUID,
    value_fen: int,
) -> Reimbursement | None:
    """Pay ``merchant_id`` the face value of the voucher it honoured: from the fund as far as its
    balance goes (read with the fund's balance row locked, so concurrent confirmations cannot
    both count the same money), the rest from the platform's operating account. One entry; a
    second call for the same redemption returns the first payment and moves nothing."""
    if value_fen <= 0:
        return None
    # Once paid, the answer is the first payment: the split depends on the fund's balance at the
    # time, so a second call would otherwise be a different request under the same key.
    earlier = reimbursement_of(session, redemption_id)
    if earlier is not None:
        return earlier
    fund = fund_account(session)
    available = max(0, wallet.locked_balance(session, fund).available)
    from_fund = min(available, value_fen)
    from_platform = value_fen - from_fund
    merchant = cny_account(session, org_owner(merchant_id))
    transfers = []
    if from_fund:
        transfers.append(wallet.Transfer(fund, merchant, from_fund))
    if from_platform:
        transfers.append(wallet.Transfer(operating_account(session), merchant, from_platform))
    entry = wallet.post_entry(
        session,
        code=REIMBURSEMENT_CODE,
        transfers=transfers,
        idempotency_key=f"{REIMBURSEMENT_CODE}:{redemption_id}",
        scope=REIMBURSEMENT_SCOPE,
        metadata={
            "redemption": str(redemption_id),
            "reward": str(reward_id),
            "merchant": str(merchant_id),
            "value_fen": value_fen,
            "from_fund_fen": from_fund,
            "from_platform_fen": from_platform,
        },
    )
    return Reimbursement(
        entry_id=entry.id, from_fund_fen=from_fund, from_platform_fen=from_platform
    )


def reimbursement_of(session: Session, redemption_id: uuid.UUID) -> Reimbursement | None:
    """How the voucher ``redemption_id`` was reimbursed, read back from its journal entry."""
    entry = wallet.find_entry_by_key(
        session,
        scope=REIMBURSEMENT_SCOPE,
        idempotency_key=f"{REIMBURSEMENT_CODE}:{redemption_id}",
    )
    if entry is None:
        return None
    metadata = json.loads(entry.metadata_json)
    return Reimbursement(
        entry_id=entry.id,
        from_fund_fen=int(metadata.get("from_fund_fen", 0)),
        from_platform_fen=int(metadata.get("from_platform_fen", 0)),
    )


@dataclass(frozen=True)
class ReceivedReimbursement:
    """One platform voucher a merchant honoured, as its CNY account received the payment."""

    entry_id: uuid.UUID
    at: datetime
    redemption_id: uuid.UUID
    reward_id: uuid.UUID
    amount_fen: int
    from_fund_fen: int
    from_platform_fen: int
    cursor: int  # pass as ``before`` for the reimbursements older than this one


def reimbursements_to(
    session: Session,
    merchant_id: uuid.UUID,
    *,
    before: int | None = None,
    limit: int = 100,
) -> list[ReceivedReimbursement]:
    """The reimbursements ``merchant_id`` received for platform vouchers it honoured, newest
    first, from its CNY account's postings (read-only: a merchant without an account has none).
    A reimbursement paid partly by the fund and partly by the platform credits the merchant
    twice in one entry: it is one item, the credits summed. ``before``: the ``cursor`` of the
    last item of the previous page."""
    account = wallet.find_account(session, asset=CNY, owner=org_owner(merchant_id))
    if account is None:
        return []
    credits = wallet.credits_by_entry(
        session, account.id, code=REIMBURSEMENT_CODE, before=before, limit=limit
    )
    return [
        ReceivedReimbursement(
            entry_id=credit.entry_id,
            at=credit.created_at,
            redemption_id=uuid.UUID(str(credit.metadata["redemption"])),
            reward_id=uuid.UUID(str(credit.metadata["reward"])),
            amount_fen=credit.amount,
            from_fund_fen=int(credit.metadata.get("from_fund_fen", 0)),
            from_platform_fen=int(credit.metadata.get("from_platform_fen", 0)),
            cursor=credit.cursor,
        )
        for credit in credits
    ]


@dataclass(frozen=True)
class FundSummary:
    """The fund's figures, from the journal."""

    from_sales_fen: int  # credited by settlements of residents' pool batches
    paid_for_rewards_fen: int  # debited by reimbursements of honoured vouchers
    balance_fen: int
    platform_topped_up_fen: int  # what the platform's own account added to reimbursements
    rewards_reimbursed: int  # how many vouchers were reimbursed (fund or platform)

    @property
    def rewards_total_fen(self) -> int:
        return self.paid_for_rewards_fen + self.platform_topped_up_fen


def summary(
    session: Session, *, since: datetime | None = None, until: datetime | None = None
) -> FundSummary:
    """Read-only: opens nothing (a fund that never received money reads as zeros). With
    ``since`` / ``until``, the money that moved in [since, until) and the balance at ``until``
    (e.g. one month's figures); without, everything and the balance now."""
    fund = wallet.find_account(session, asset=CNY, owner=FUND_OWNER)
    operating = wallet.find_account(session, asset=CNY, owner=f"system:{OPERATING}")
    period = {"since": since, "until": until}
    fund_codes = wallet.totals_by_code(session, fund.id, **period) if fund else {}
    operating_codes = wallet.totals_by_code(session, operating.id, **period) if operating else {}
    if fund is None:
        balance = 0
    elif until is None:
        balance = wallet.get_balance(session, fund.id).balance
    else:
        to_date = wallet.totals_by_code(session, fund.id, until=until).values()
        balance = sum(totals.credits - totals.debits for totals in to_date)
    sales = fund_codes.get(SETTLEMENT_CODE)
    paid = fund_codes.get(REIMBURSEMENT_CODE)
    topped = operating_codes.get(REIMBURSEMENT_CODE)
    # A reimbursement touching both accounts is one entry; count entries, not postings.
    reimbursed = wallet.count_entries(
        session,
        account_ids=[account.id for account in (fund, operating) if account is not None],
        code=REIMBURSEMENT_CODE,
        since=since,
        until=until,
    )
    return FundSummary(
        from_sales_fen=sales.credits if sales else 0,
        paid_for_rewards_fen=paid.debits if paid else 0,
        balance_fen=balance,
        platform_topped_up_fen=topped.debits if topped else 0,
        rewards_reimbursed=reimbursed,
    )
