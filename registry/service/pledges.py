"""Pledges (碳汇质押): a lender encumbers a holder's credits, or a contract's future proceeds.

Pledged credits are blocks in state ``pledged`` (they cannot be listed, transferred or retired)
and, in the wallet, a hold from the holder to the lender (so the holder's available balance
excludes them too). The lender releases the pledge when the loan is repaid, or enforces it on
default: the pledged tonnes then become the lender's. A pledge on a contract's proceeds records
the encumbrance; the contract cannot be terminated while it is active.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

from sqlmodel import Session, col, select

from registry.errors import InvalidContract, PledgeConflict, RegistryNotFound
from registry.models import (
    Batch,
    BlockState,
    Contract,
    ContractStatus,
    Pledge,
    PledgeStatus,
    SerialBlock,
)
from registry.service import blocks as block_service
from registry.service.actors import Actor, owner_org_id, require
from tanhui import audit
from tanhui.db import utcnow
from tanhui.errors import InvalidInput
from tanhui.i18n import N_
from tanhui.models import Organisation, OrgKind
from wallet import service as wallet
from wallet.errors import HoldExpired

HOLD_GRACE = timedelta(days=365)  # the wallet hold outlives the maturity by this much
OPEN_ENDED_HOLD = timedelta(days=30 * 365)


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
    loan_amount_fen: int | None = None,
    matures_on: date | None = None,
) -> Pledge:
    """The holder pledges ``quantity_t`` of its available tonnes of a batch to a lender."""
    require(actor, *OrgKind, action="Pledging credits", admin=False)
    lender = session.get(Organisation, lender_id)
    if lender is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="organisation", id=str(lender_id))
    if lender.id == actor.organisation_id:
        raise InvalidInput(N_("A holder cannot pledge credits to itself."))
    if loan_amount_fen is not None and loan_amount_fen <= 0:
        raise InvalidInput(N_("The loan amount must be positive."))
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise RegistryNotFound(N_("No {what} {id}."), what="batch", id=str(batch_id))
    holder = actor.owner
    taken = block_service.take(
        session, batch_id=batch.id, holder=holder, quantity=quantity_t, lowest=True
    )
    pledge = Pledge(
        holder=holder,
        lender_id=lender.id,
        batch_id=batch.id,
        quantity_t=quantity_t,
        loan_amount_fen=loan_amount_fen,
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
    matures_on: date | None = None,
) -> Pledge:
    """The cooperative pledges a contract's future sale proceeds (the Anji sink-backed loan)."""
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
    if loan_amount_fen <= 0:
        raise InvalidInput(N_("The loan amount must be positive."))
    pledge = Pledge(
        holder=f"org:{contract.cooperative_id}",
        lender_id=lender_id,
        contract_id=contract.id,
        loan_amount_fen=loan_amount_fen,
        matures_on=matures_on,
    )
    session.add(pledge)
    session.flush()
    _audit(session, actor, pledge, "pledge.created", contract=contract.code)
    return pledge


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


def release(session: Session, *, actor: Actor, pledge_id: uuid.UUID) -> Pledge:
    """The loan is repaid: the credits are free again."""
    pledge = _locked(session, pledge_id, actor)
    _lender_only(actor, pledge, "release the pledge")
    if pledge.status != PledgeStatus.active:
        raise PledgeConflict(N_("The pledge is {status}."), status=str(pledge.status))
    blocks = _pledged_blocks(session, pledge)
    block_service.change(
        session, blocks, kind="pledge_release", reference=str(pledge.id), state=BlockState.held
    )
    _end_wallet_hold(session, pledge, enforce=False)
    pledge.status = PledgeStatus.released
    pledge.closed_at = utcnow()
    session.add(pledge)
    session.flush()
    _audit(session, actor, pledge, "pledge.released")
    return pledge


def enforce(session: Session, *, actor: Actor, pledge_id: uuid.UUID) -> Pledge:
    """The borrower defaulted: the pledged credits become the lender's."""
    pledge = _locked(session, pledge_id, actor)
    _lender_only(actor, pledge, "enforce the pledge")
    if pledge.status != PledgeStatus.active:
        raise PledgeConflict(N_("The pledge is {status}."), status=str(pledge.status))
    if pledge.batch_id is None:
        raise PledgeConflict(
            N_("A pledge on contract proceeds is enforced outside the registry (by the court).")
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
    session.add(pledge)
    session.flush()
    _audit(session, actor, pledge, "pledge.enforced")
    return pledge


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
            "status": str(pledge.status),
            **extra,
        },
    )
