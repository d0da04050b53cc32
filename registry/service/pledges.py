"""Pledges (碳汇质押): a lender encumbers a holder's credits, or a contract's future proceeds.

A pledge states its terms: the principal (``loan_amount_fen``), the yearly interest
(``interest_rate_bp``) and the maturity (``matures_on``). The pledgor offers it (``proposed``)
and the lender accepts the terms (``active``). The lender releases it when the loan is repaid.
Enforcing it (the pledged tonnes become the lender's) is refused until the loan has matured
unpaid (the day after ``matures_on``, Asia/Shanghai) or a default the lender declared has been
confirmed by the pledgor's cooperative (the pledgor itself, when it is one) or by the platform:
a lender cannot take the collateral of a loan that is running and paid. Every step is audited.

Pledged credits are blocks in state ``pledged`` (they cannot be listed, transferred or retired)
and, in the wallet, a hold from the holder to the lender (so the holder's available balance
excludes them too), from the offer on. A pledge on a contract's proceeds records the
encumbrance; the contract cannot be terminated while it is open.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

from sqlmodel import Session, col, select

from registry.errors import (
    InvalidContract,
    InvalidPledge,
    PledgeConflict,
    PledgeNotEnforceable,
    RegistryNotFound,
)
from registry.models import (
    OPEN_PLEDGE_STATUSES,
    Batch,
    BlockState,
    Contract,
    ContractStatus,
    Pledge,
    PledgeStatus,
    SerialBlock,
)
from registry.service import blocks as block_service
from registry.service import suspension
from registry.service.actors import Actor, owner_org_id, require
from registry.service.contracts import today as local_today
from tanhui import audit
from tanhui.db import utcnow
from tanhui.errors import InvalidInput
from tanhui.i18n import N_
from tanhui.models import Organisation, OrgKind, Role
from wallet import service as wallet
from wallet.errors import HoldExpired

HOLD_GRACE = timedelta(days=365)  # the wallet hold outlives the maturity by this much
OPEN_ENDED_HOLD = timedelta(days=30 * 365)
MAX_INTEREST_BP = 10_000  # 100 % a year: anything above is a typo
MAX_TERM = timedelta(days=30 * 366)
MAX_REASON = 500


def _check_terms(
    loan_amount_fen: int, interest_rate_bp: int, matures_on: date, today: date
) -> None:
    """Principal, interest and maturity of a new pledge: every one stated and plausible."""
    errors = []
    if isinstance(loan_amount_fen, bool) or loan_amount_fen <= 0:
        errors.append({"field": "loan_amount_fen", "message": "positive"})
    if isinstance(interest_rate_bp, bool) or not 0 <= interest_rate_bp <= MAX_INTEREST_BP:
        errors.append({"field": "interest_rate_bp", "message": "0 to 10000"})
    if not today < matures_on <= today + MAX_TERM:
        errors.append({"field": "matures_on", "message": "after today"})
    if errors:
        raise InvalidPledge(
            N_(
                "A pledge states its loan: a positive principal, a yearly interest rate from 0"
                " to 100 % and a maturity date after today (within 30 years)."
            ),
            errors=errors,
        )


def _hold_expiry(matures_on: date | None) -> datetime:
    if matures_on is None:
        return utcnow() + OPEN_ENDED_HOLD
    return max(datetime.combine(matures_on, time(), tzinfo=UTC), utcnow()) + HOLD_GRACE


def pledge_credits(
    session: Session,
    *,
    actor: Actor,
    batch_id: uuid.UUID,
    quantity_t: int,
    lender_id: uuid.UUID,
    loan_amount_fen: int,
    interest_rate_bp: int,
    matures_on: date,
    today: date | None = None,
) -> Pledge:
    """The holder offers ``quantity_t`` of its available tonnes of a batch to a lender as
    collateral for a loan on these terms; the tonnes are encumbered from the offer on."""
    require(actor, *OrgKind, action="Pledging credits", admin=False)
    lender = session.get(Organisation, lender_id)
    if lender is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="organisation", id=str(lender_id))
    if lender.id == actor.organisation_id:
        raise InvalidInput(N_("A holder cannot pledge credits to itself."))
    _check_terms(loan_amount_fen, interest_rate_bp, matures_on, today or local_today())
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="batch", id=str(batch_id))
    holder = actor.owner
    suspension.ensure_movable(session, batch, holder)
    taken = block_service.take(
        session, batch_id=batch.id, holder=holder, quantity=quantity_t, lowest=True
    )
    pledge = Pledge(
        holder=holder,
        lender_id=lender.id,
        batch_id=batch.id,
        quantity_t=quantity_t,
        loan_amount_fen=loan_amount_fen,
        interest_rate_bp=interest_rate_bp,
        matures_on=matures_on,
    )
    session.add(pledge)
    session.flush()
    block_service.change(
        session,
        taken,
        kind="pledge",
        reference=str(pledge.id),
        state=BlockState.pledged,
        pledge_id=pledge.id,
    )
    held = wallet.hold(
        session,
        debit_account_id=wallet.account_for(session, asset=batch.asset_code, owner=holder).id,
        credit_account_id=wallet.account_for(
            session, asset=batch.asset_code, owner=f"org:{lender.id}"
        ).id,
        amount=quantity_t,
        expires_at=_hold_expiry(matures_on),
        code="pledge",
        idempotency_key=f"pledge:{pledge.id}",
        scope="registry",
        metadata={"pledge": str(pledge.id), "batch": batch.serial_prefix},
    )
    pledge.wallet_hold_id = held.id
    session.add(pledge)
    session.flush()
    _audit(session, actor, pledge, "pledge.created", batch=batch.serial_prefix)
    return pledge


def pledge_contract(
    session: Session,
    *,
    actor: Actor,
    contract_id: uuid.UUID,
    lender_id: uuid.UUID,
    loan_amount_fen: int,
    interest_rate_bp: int,
    matures_on: date,
    today: date | None = None,
) -> Pledge:
    """The cooperative offers a contract's future sale proceeds as collateral (the Anji
    sink-backed loan)."""
    require(actor, OrgKind.cooperative, action="Pledging a contract")
    contract = session.get(Contract, contract_id)
    if contract is None or (
        not actor.is_platform_admin and contract.cooperative_id != actor.organisation_id
    ):
        raise RegistryNotFound(N_("No {what} {id}."), what="contract", id=str(contract_id))
    if contract.status != ContractStatus.active:
        raise InvalidContract(N_("Contract {code} is not active."), code=contract.code)
    if session.get(Organisation, lender_id) is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="organisation", id=str(lender_id))
    if lender_id == contract.cooperative_id:
        raise InvalidInput(N_("A holder cannot pledge credits to itself."))
    _check_terms(loan_amount_fen, interest_rate_bp, matures_on, today or local_today())
    pledge = Pledge(
        holder=f"org:{contract.cooperative_id}",
        lender_id=lender_id,
        contract_id=contract.id,
        loan_amount_fen=loan_amount_fen,
        interest_rate_bp=interest_rate_bp,
        matures_on=matures_on,
    )
    session.add(pledge)
    session.flush()
    _audit(session, actor, pledge, "pledge.created", contract=contract.code)
    return pledge


def _is_party(actor: Actor, pledge: Pledge) -> bool:
    return actor.is_platform_admin or actor.organisation_id in {
        pledge.lender_id,
        owner_org_id(pledge.holder),
    }


def _locked(session: Session, pledge_id: uuid.UUID, actor: Actor) -> Pledge:
    pledge = session.exec(
        select(Pledge).where(col(Pledge.id) == pledge_id).with_for_update()
    ).one_or_none()
    visible = pledge is not None and (
        actor.is_platform_admin
        or actor.organisation_id in {pledge.lender_id, owner_org_id(pledge.holder)}
    )
    if pledge is None or not visible:
        raise RegistryNotFound(N_("No {what} {id}."), what="pledge", id=str(pledge_id))
    return pledge


def get_pledge(session: Session, *, actor: Actor, pledge_id: uuid.UUID) -> Pledge:
    pledge = session.get(Pledge, pledge_id)
    if pledge is None or not (
        actor.is_platform_admin
        or actor.organisation_id in {pledge.lender_id, owner_org_id(pledge.holder)}
    ):
        raise RegistryNotFound(N_("No {what} {id}."), what="pledge", id=str(pledge_id))
    return pledge


def _lender_only(actor: Actor, pledge: Pledge, action: str) -> None:
    if actor.is_platform_admin:
        return
    require(actor, *OrgKind, action=action, admin=False)
    if actor.organisation_id != pledge.lender_id:
        raise PledgeConflict(N_("Only the lender may {action}."), action=action)


def _pledged_blocks(session: Session, pledge: Pledge) -> list[SerialBlock]:
    return list(
        session.exec(
            select(SerialBlock)
            .where(col(SerialBlock.pledge_id) == pledge.id)
            .where(col(SerialBlock.state) == BlockState.pledged)
            .order_by(col(SerialBlock.first))
            .with_for_update()
        ).all()
    )


def _end_wallet_hold(session: Session, pledge: Pledge, *, enforce: bool) -> None:
    """Void (release) or capture (enforce) the wallet hold that mirrors the pledged tonnes.

    The hold carries an expiry (the wallet requires one) but the pledge lasts until the lender
    ends it: a hold that has lapsed, swept by ``tanhui wallet expire-holds`` or not, reserves
    nothing any more (it is released here if still pending), and enforcing then moves the tonnes
    to the lender with a plain entry instead of the capture.
    """
    if pledge.wallet_hold_id is None:
        return
    try:
        if enforce:
            wallet.capture_hold(session, pledge.wallet_hold_id)
        else:
            wallet.void_hold(session, pledge.wallet_hold_id)
        return
    except HoldExpired:
        pass
    lapsed = wallet.expire_hold(session, pledge.wallet_hold_id)
    if enforce:
        wallet.post_entry(
            session,
            code=lapsed.code,
            transfers=[
                wallet.Transfer(lapsed.debit_account_id, lapsed.credit_account_id, lapsed.amount)
            ],
            idempotency_key=f"pledge-enforced:{pledge.id}",
            scope="registry",
            metadata={"pledge": str(pledge.id), "hold": str(lapsed.id)},
        )


def _change(session: Session, actor: Actor, pledge: Pledge, action: str) -> Pledge:
    session.add(pledge)
    session.flush()
    _audit(session, actor, pledge, action)
    return pledge


def _require_status(pledge: Pledge, *allowed: PledgeStatus) -> None:
    if pledge.status not in allowed:
        raise PledgeConflict(N_("The pledge is {status}."), status=str(pledge.status))


def accept(session: Session, *, actor: Actor, pledge_id: uuid.UUID) -> Pledge:
    """The lender accepts the offered terms: the loan runs."""
    pledge = _locked(session, pledge_id, actor)
    _lender_only(actor, pledge, "accept the pledge")
    _require_status(pledge, PledgeStatus.proposed)
    pledge.status = PledgeStatus.active
    pledge.accepted_at = utcnow()
    return _change(session, actor, pledge, "pledge.accepted")


def declare_default(session: Session, *, actor: Actor, pledge_id: uuid.UUID, reason: str) -> Pledge:
    """The lender says the borrower defaulted (a missed instalment, say); until the pledgor's
    cooperative or the platform confirms it, this alone enforces nothing."""
    pledge = _locked(session, pledge_id, actor)
    _lender_only(actor, pledge, "declare a default")
    _require_status(pledge, PledgeStatus.active)
    text = (reason or "").strip()
    if not text or len(text) > MAX_REASON:
        raise InvalidPledge(
            N_("Say why the loan is in default (1 to {maximum} characters)."),
            maximum=MAX_REASON,
            errors=[{"field": "reason", "message": "required"}],
        )
    pledge.status = PledgeStatus.default_declared
    pledge.default_declared_at = utcnow()
    pledge.default_reason = text
    return _change(session, actor, pledge, "pledge.default_declared")


def may_confirm_default(actor: Actor, pledge: Pledge) -> bool:
    """The platform (its admins and staff), or the pledgor when it is a cooperative; never the
    lender, who declared it."""
    if actor.organisation_id is not None and actor.organisation_id == pledge.lender_id:
        return False
    if actor.is_platform_admin:
        return True
    if actor.role is None or actor.role == Role.viewer:
        return False
    if actor.org_kind == OrgKind.platform:
        return True
    return actor.org_kind == OrgKind.cooperative and actor.organisation_id == owner_org_id(
        pledge.holder
    )


def confirm_default(session: Session, *, actor: Actor, pledge_id: uuid.UUID) -> Pledge:
    """The pledgor's cooperative or the platform confirms the default the lender declared."""
    pledge = session.exec(
        select(Pledge).where(col(Pledge.id) == pledge_id).with_for_update()
    ).one_or_none()
    if pledge is None or not (actor.org_kind == OrgKind.platform or _is_party(actor, pledge)):
        raise RegistryNotFound(N_("No {what} {id}."), what="pledge", id=str(pledge_id))
    require(actor, *OrgKind, action="Confirming a default")
    if not may_confirm_default(actor, pledge):
        raise PledgeConflict(
            N_("Only the pledgor's cooperative or the platform may confirm a default.")
        )
    _require_status(pledge, PledgeStatus.default_declared)
    pledge.status = PledgeStatus.defaulted
    pledge.default_confirmed_at = utcnow()
    pledge.default_confirmed_by = actor.ref
    return _change(session, actor, pledge, "pledge.default_confirmed")


def release(session: Session, *, actor: Actor, pledge_id: uuid.UUID) -> Pledge:
    """The loan is repaid (or the lender declines the offer, or the pledgor withdraws it before
    the lender accepted): the credits are free again."""
    pledge = _locked(session, pledge_id, actor)
    withdrawing = (
        pledge.status == PledgeStatus.proposed
        and not actor.is_platform_admin
        and actor.organisation_id == owner_org_id(pledge.holder)
        and actor.role is not None
        and actor.role != Role.viewer
    )
    if not withdrawing:
        _lender_only(actor, pledge, "release the pledge")
    _require_status(pledge, *OPEN_PLEDGE_STATUSES)
    blocks = _pledged_blocks(session, pledge)
    block_service.change(
        session, blocks, kind="pledge_release", reference=str(pledge.id), state=BlockState.held
    )
    _end_wallet_hold(session, pledge, enforce=False)
    pledge.status = PledgeStatus.released
    pledge.closed_at = utcnow()
    return _change(session, actor, pledge, "pledge.released")


def enforce(
    session: Session, *, actor: Actor, pledge_id: uuid.UUID, today: date | None = None
) -> Pledge:
    """The borrower defaulted: the pledged credits become the lender's. Only once the loan
    matured unpaid or its default was confirmed; before, nothing is written."""
    pledge = _locked(session, pledge_id, actor)
    _lender_only(actor, pledge, "enforce the pledge")
    _require_status(
        pledge, PledgeStatus.active, PledgeStatus.default_declared, PledgeStatus.defaulted
    )
    if pledge.batch_id is None:
        raise PledgeConflict(
            N_("A pledge on contract proceeds is enforced outside the registry (by the court).")
        )
    matured = pledge.matures_on is not None and (today or local_today()) > pledge.matures_on
    if pledge.status != PledgeStatus.defaulted and not matured:
        raise PledgeNotEnforceable(
            N_(
                "The loan matures on {date} and no default is confirmed: the pledge can be"
                " enforced after maturity, or once the pledgor's cooperative or the platform"
                " confirms a declared default."
            ),
            date=pledge.matures_on.isoformat() if pledge.matures_on else "-",
        )
    blocks = _pledged_blocks(session, pledge)
    lender_owner = f"org:{pledge.lender_id}"
    block_service.change(
        session,
        blocks,
        kind="pledge_enforcement",
        reference=str(pledge.id),
        holder=lender_owner,
        state=BlockState.held,
    )
    _end_wallet_hold(session, pledge, enforce=True)
    pledge.status = PledgeStatus.enforced
    pledge.closed_at = utcnow()
    return _change(session, actor, pledge, "pledge.enforced")


def pledges_of(session: Session, *, actor: Actor) -> list[Pledge]:
    query = select(Pledge).order_by(col(Pledge.created_at).desc())
    if not actor.is_platform_admin:
        query = query.where(
            (col(Pledge.lender_id) == actor.organisation_id)
            | (col(Pledge.holder) == f"org:{actor.organisation_id}")
        )
    return list(session.exec(query).all())


def _audit(session: Session, actor: Actor, pledge: Pledge, action: str, **extra: str) -> None:
    audit.record(
        session,
        actor=actor.ref,
        action=action,
        subject_type="pledge",
        subject_id=pledge.id,
        payload={
            "holder": pledge.holder,
            "lender": str(pledge.lender_id),
            "quantity_t": pledge.quantity_t,
            "loan_amount_fen": pledge.loan_amount_fen,
            "interest_rate_bp": pledge.interest_rate_bp,
            "matures_on": pledge.matures_on.isoformat() if pledge.matures_on else None,
            "status": str(pledge.status),
            "reason": pledge.default_reason,
            **extra,
        },
    )
